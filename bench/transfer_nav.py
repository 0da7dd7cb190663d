"""Navigation transfer: scratch vs a VAPT trunk pretrained on ground truth vs one with pseudo-labels too.

Everything runs through user commands, printed as it goes: ``d2e transfer nav generate-demos`` (the planner
expert, seeded layouts), ``d2e transfer nav finetune`` once per arm with the same budget, and ``d2e transfer nav
eval --model`` on unseen layouts (a seed range demos never use). Success rates carry 95 % Wilson intervals.
Steps are skipped when their outputs exist (reruns resume).

    python bench/pretrain.py --work bench_out/pretrain --idm bench_out/idm/runs/events
    python bench/transfer_nav.py --work bench_out/nav --pretrained-gt bench_out/pretrain/vapt-gt \\
        --pretrained-pl bench_out/pretrain/vapt-pl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from transfer.evaluate import overall_result


def d2e(*args: str) -> None:
    print("$ d2e " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "d2e.cli", *args], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench_out/nav", help="folder for demos, runs and results (reused)")
    p.add_argument("--env", default="goal-object", help="navigation task (default goal-object)")
    p.add_argument("--pretrained-gt", help="pretraining run on ground truth (bench/pretrain.py)")
    p.add_argument("--pretrained-pl", help="pretraining run with pseudo-labels (bench/pretrain.py)")
    p.add_argument("--demos", type=int, default=200, help="expert demo episodes")
    p.add_argument("--steps", type=int, default=2000, help="fine-tuning steps of every arm")
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes per arm (unseen layouts)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    work = Path(args.work)
    demos = work / "demos"
    if not (demos / args.env / "results.json").exists():
        d2e("transfer", "nav", "generate-demos", "--env", args.env, "--episodes", str(args.demos), "--out",
            str(demos), "--workers", str(args.workers))
    arms = {"scratch": None, "pretrained (ground truth)": args.pretrained_gt,
            "pretrained (+ pseudo-labels)": args.pretrained_pl}
    rows = {}
    for name, trunk in arms.items():
        if name != "scratch" and not trunk:
            continue
        slug = name.split()[0] + ("-pl" if "pseudo" in name else "")
        run, out = work / "runs" / slug, work / "eval" / slug
        summary = run / "train_summary.json"
        if not summary.exists() or json.loads(summary.read_text())["steps"] < args.steps:
            d2e("transfer", "nav", "finetune", str(demos / args.env), "--out", str(run), "--set",
                f"max_steps={args.steps}", "--quiet", *(["--pretrained", trunk] if trunk else []))
        if not (out / "results.json").exists():
            d2e("transfer", "nav", "eval", "--model", str(run), "--env", args.env, "--split", "unseen", "--episodes",
                str(args.episodes), "--workers", str(args.workers), "--videos", "2", "--out", str(out))
        rows[name] = (json.loads(summary.read_text()), json.loads((out / "results.json").read_text()))
    chance = work / "eval" / "random"
    if not (chance / "results.json").exists():
        d2e("transfer", "nav", "eval", "--policy", "random", "--env", args.env, "--split", "unseen", "--episodes",
            str(args.episodes), "--workers", str(args.workers), "--out", str(chance))
    rows["chance (uniform turns/forward, DONE at 1 % a step)"] = (
        {"seconds": None}, json.loads((chance / "results.json").read_text()))
    expert = overall_result(demos / args.env)
    print(f"\n## Navigation transfer ({args.env}, {args.demos} demos, {args.steps} steps per arm, "
          f"{args.episodes} unseen layouts)\n")
    print("| arm | success % | 95 % CI | SPL | fine-tune s | eval s/episode |")
    print("|---|---|---|---|---|---|")
    for name, (train, res) in rows.items():
        o = res["summary"]["overall"]
        tuned = "-" if train["seconds"] is None else f"{train['seconds']:.0f}"
        print(f"| {name} | {100 * o['success_rate']:.1f} | {100 * o['ci95'][0]:.1f}-{100 * o['ci95'][1]:.1f} | "
              f"{o.get('spl') or 0:.3f} | {tuned} | {o.get('seconds_per_episode', 0):.2f} |")
    print(f"| expert (privileged planner, demo seeds) | {100 * expert['success_rate']:.1f} | "
          f"{100 * expert['ci95'][0]:.1f}-{100 * expert['ci95'][1]:.1f} | {expert.get('spl') or 0:.3f} | - | - |")


if __name__ == "__main__":
    main()
