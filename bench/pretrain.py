"""VAPT pretraining for the transfer benchmarks: one trunk on ground truth, one on ground truth + pseudo-labels.

Everything runs through user commands, printed as it goes:

1. ``d2e generate`` gameplay recordings with ground truth (the intent players) for the trunks to learn from;
   ``--idm-data`` reuses the IDM benchmark's instead.
2. the pseudo-label set: fresh recordings of the same games exported as web videos (``d2e export-web``: the
   truth is dropped, only video is left) and labeled by the IDM (``d2e label --model IDM``);
3. ``d2e pretrain`` twice with the same budget: on the ground truth alone, and with the pseudo-labels mixed in
   (``--pseudo-weight``).

Every step is skipped when its output exists (reruns resume). Prints the two runs' validation next-event loss
and token accuracy.

    python bench/pretrain.py --work bench_out/pretrain --idm bench_out/idm/runs/events
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

GAMES = [("ale", "--game", "Breakout"), ("ale", "--game", "Pong"), ("ale", "--game", "SpaceInvaders"),
         ("vizdoom", "--scenario", "health_gathering"), ("vizdoom", "--scenario", "basic")]


def d2e(*args: str) -> None:
    print("$ d2e " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "d2e.cli", *args], check=True)


def generate(folder: Path, minutes: float, seed: int) -> None:
    if folder.exists() and any(folder.glob("*.mcap")):
        return
    for i, (engine, flag, game) in enumerate(GAMES):
        d2e("generate", engine, flag, game, "--minutes", str(minutes), "--seed", str(seed + i), "--out", str(folder))


def pseudo_labels(work: Path, idm: Path, minutes: float) -> Path:
    labels = work / "labels"
    if (labels / "run_summary.json").exists():
        return labels
    raw, web = work / "unlabeled", work / "web"
    generate(raw, minutes, 500)
    for rec in sorted(raw.glob("*.mcap")):
        out = web / f"{rec.stem}.mp4"
        if not out.exists():
            d2e("export-web", str(rec), "-o", str(out))
    d2e("label", str(web), "--model", str(idm), "--out", str(labels), "--quiet")
    return labels


def pretrain(run: Path, data: Path, steps: int, *extra: str) -> dict:
    summary = run / "train_summary.json"
    if not summary.exists() or json.loads(summary.read_text())["steps"] < steps:
        d2e("pretrain", str(data), "--out", str(run), "--set", f"max_steps={steps}", "--quiet", *extra)
    return json.loads(summary.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench_out/pretrain", help="folder for data and runs (reused)")
    p.add_argument("--idm", required=True, help="the IDM run that pseudo-labels (e.g. bench_out/idm/runs/events)")
    p.add_argument("--idm-data", help="ground-truth recordings to pretrain on (default: generate --minutes per game)")
    p.add_argument("--minutes", type=float, default=2.0, help="minutes of gameplay per game (ground truth)")
    p.add_argument("--pseudo-minutes", type=float, default=2.0, help="minutes of video per game to pseudo-label")
    p.add_argument("--steps", type=int, default=1000, help="pretraining steps of each trunk")
    p.add_argument("--pseudo-weight", type=float, default=0.5, help="share of pseudo-labeled windows")
    args = p.parse_args()
    work = Path(args.work)
    data = Path(args.idm_data) if args.idm_data else work / "data"
    if not args.idm_data:
        generate(data, args.minutes, 100)
    labels = pseudo_labels(work, Path(args.idm), args.pseudo_minutes)
    runs = {"ground truth": pretrain(work / "vapt-gt", data, args.steps),
            "ground truth + pseudo-labels": pretrain(work / "vapt-pl", data, args.steps, "--pseudo", str(labels),
                                                     "--pseudo-weight", str(args.pseudo_weight))}
    print("\n| trunk | steps | train s | val next-event loss | val token acc. | val event-type acc. |")
    print("|---|---|---|---|---|---|")
    for name, s in runs.items():
        m = s["metrics"]
        print(f"| {name} | {s['steps']} | {s['seconds']:.0f} | {m.get('val/loss', float('nan')):.3f} | "
              f"{m.get('val/token_acc', float('nan')):.3f} | {m.get('val/event_type_acc', float('nan')):.3f} |")
    print(f"\nruns: {work / 'vapt-gt'}, {work / 'vapt-pl'}")


if __name__ == "__main__":
    main()
