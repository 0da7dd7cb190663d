"""LIBERO transfer: scratch vs a VAPT trunk pretrained on ground truth vs one with pseudo-labels too.

Everything runs through user commands, printed as it goes: ``d2e transfer libero generate-demos`` (the scripted
expert from fresh placements, which evaluation never uses), ``d2e transfer libero finetune`` once per arm with the
same budget, and ``d2e transfer libero eval --model`` on the benchmark's fixed init states, with 95 % Wilson
intervals per task and suite. Steps are skipped when their outputs exist (reruns resume).

CPU default: libero_object, 20 demos per task, 10 init states per task. ``--full`` runs the protocol of the
papers (four suites, 50 demos and 50 init states per task), meant for a GPU machine with ``--workers`` set to
its cores.

    python bench/pretrain.py --work bench_out/pretrain --idm bench_out/idm/runs/events
    python bench/transfer_libero.py --work bench_out/libero --pretrained-gt bench_out/pretrain/vapt-gt \\
        --pretrained-pl bench_out/pretrain/vapt-pl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from transfer.evaluate import overall_result

SUITES = ["libero_object", "libero_spatial", "libero_goal", "libero_10"]


def d2e(*args: str) -> None:
    print("$ d2e " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "d2e.cli", *args], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench_out/libero", help="folder for demos, runs and results (reused)")
    p.add_argument("--suites", nargs="+", default=["libero_object"], choices=SUITES)
    p.add_argument("--pretrained-gt", help="pretraining run on ground truth (bench/pretrain.py)")
    p.add_argument("--pretrained-pl", help="pretraining run with pseudo-labels (bench/pretrain.py)")
    p.add_argument("--demos", type=int, default=20, help="expert demos per task")
    p.add_argument("--init-states", type=int, default=10, help="fixed init states per task in evaluation")
    p.add_argument("--steps", type=int, default=3000, help="fine-tuning steps of every arm")
    p.add_argument("--image-size", type=int, default=64, help="camera size the policy sees (demos rendered at it)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--full", action="store_true", help="four suites, 50 demos and 50 init states per task")
    args = p.parse_args()
    if args.full:
        args.suites, args.demos, args.init_states = SUITES, 50, 50
    work = Path(args.work)
    arms = {"scratch": None, "pretrained (ground truth)": args.pretrained_gt,
            "pretrained (+ pseudo-labels)": args.pretrained_pl}
    print_rows = []
    for suite in args.suites:
        demos = work / "demos"
        if not (demos / suite / "results.json").exists():
            d2e("transfer", "libero", "generate-demos", "--suite", suite, "--per-task", str(args.demos), "--image-size",
                str(args.image_size), "--out", str(demos), "--workers", str(args.workers))
        expert = overall_result(demos / suite)
        for name, trunk in arms.items():
            if name != "scratch" and not trunk:
                continue
            slug = f"{suite}-{name.split()[0]}" + ("-pl" if "pseudo" in name else "")
            run, out = work / "runs" / slug, work / "eval" / slug
            summary = run / "train_summary.json"
            if not summary.exists() or json.loads(summary.read_text())["steps"] < args.steps:
                d2e("transfer", "libero", "finetune", str(demos / suite), "--out", str(run), "--set",
                    f"max_steps={args.steps}", "--set", f"image_size={args.image_size}", "--quiet",
                    *(["--pretrained", trunk] if trunk else []))
            if not (out / "results.json").exists():
                d2e("transfer", "libero", "eval", "--model", str(run), "--suite", suite, "--init-states",
                    str(args.init_states), "--workers", str(args.workers), "--videos", "2", "--out", str(out))
            train = json.loads(summary.read_text())
            res = overall_result(out)
            print_rows.append((suite, name, res, train))
        print_rows.append((suite, "expert (privileged, fresh placements)", expert, None))
    print(f"\n## LIBERO transfer ({args.demos} demos per task, {args.steps} fine-tuning steps per arm, "
          f"{args.init_states} fixed init states per task)\n")
    print("| suite | policy | episodes | success % | 95 % CI | val L1 (held-out demos) | fine-tune s | s/episode |")
    print("|---|---|---|---|---|---|---|---|")
    for suite, name, res, train in print_rows:
        row = (f"| {suite} | {name} | {res['episodes']} | {100 * res['success_rate']:.1f} | "
               f"{100 * res['ci95'][0]:.1f}-{100 * res['ci95'][1]:.1f} | ")
        if train:
            val = train["metrics"].get("val/loss")
            row += (f"{'-' if val is None else f'{val:.3f}'} | {train['seconds']:.0f} | "
                    f"{res.get('seconds_per_episode', 0):.1f} |")
        else:
            row += "- | - | - |"
        print(row)


if __name__ == "__main__":
    main()
