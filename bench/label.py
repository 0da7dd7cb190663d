"""Pseudo-labeling benchmark: real-time factor on this machine and label quality vs the kept ground truth.

For each recording (by default the held-out games of ``bench/idm.py``'s test set), ``d2e export-web``
writes "web video" copies at several qualities, each with its truth file; ``d2e label`` labels every
copy with each model (timed, as a user runs it), and ``d2e idm eval --labels`` scores the pseudo-labels
against the truth with the IDM metrics. The table shows how much a lower bitrate or resolution costs.

    python bench/idm.py --work bench_out/idm                         # trains the models first
    python bench/label.py --idm-work bench_out/idm --work bench_out/label
    python bench/label.py --model runs/idm --recordings data/test/ --games pong
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# name -> (folder, d2e export-web options); the sources are 20 fps game captures (160x210 Atari, 320x240 Doom)
VARIANTS = {
    "as recorded (CRF)": ("as_recorded", []),
    "upscaled 640 px, 500 kb/s": ("640px_500k", ["--width", "640", "--bitrate", "500000"]),
    "200 kb/s": ("200k", ["--bitrate", "200000"]),
    "50 kb/s": ("50k", ["--bitrate", "50000"]),
    "80 px wide": ("80px", ["--width", "80"]),
}
COLUMNS = ["press_f1", "per_key_f1", "keyboard_accuracy", "pearson_x", "pearson_y", "tick_exact_accuracy"]


def d2e(*args: str, capture: bool = False) -> str:
    print("$ d2e " + " ".join(args), file=sys.stderr, flush=True)
    run = subprocess.run([sys.executable, "-m", "d2e.cli", *args], check=True, text=True,
                         stdout=subprocess.PIPE if capture else None)
    return run.stdout if capture else ""


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--idm-work", default="bench_out/idm", help="bench/idm.py's folder (models and test set)")
    p.add_argument("--model", action="append", help="checkpoint folder(s) (default: the idm bench's two models)")
    p.add_argument("--recordings", help="folder of test recordings (default: IDM_WORK/test)")
    p.add_argument("--games", nargs="+", help="only these games (default: the models' held-out games)")
    p.add_argument("--work", default="bench_out/label", help="folder for web videos, labels and results")
    args = p.parse_args()
    idm_work = Path(args.idm_work)
    models = [Path(m) for m in args.model] if args.model else [idm_work / "runs" / "events",
                                                              idm_work / "runs" / "ticks"]
    games = args.games
    if not games:
        split = json.loads((models[0] / "split.json").read_text())
        games = split["held_out_games"] or split["train_games"]
    from core.data.index import find_recordings, index_recordings

    recordings = [e.path for e in index_recordings(find_recordings([args.recordings or str(idm_work / "test")]))
                  if e.game in games]
    if not recordings:
        raise SystemExit(f"no test recordings of {games}")
    work = Path(args.work)
    rows = []
    for variant, (slug, options) in VARIANTS.items():
        folder = work / "web" / slug
        for rec in recordings:
            out = folder / (Path(rec).stem + ".mp4")
            if not out.exists():
                d2e("export-web", rec, "-o", str(out), *options)
        size_kb = sum(f.stat().st_size for f in folder.glob("*.mp4")) / 1024
        for model in models:
            labels = work / "labels" / model.name / folder.name
            timing = labels / "first_run.json"
            if not timing.exists():
                summary = json.loads(d2e("label", str(folder), "--model", str(model), "--out", str(labels),
                                         "--json", "--quiet", capture=True))
                timing.write_text(json.dumps(summary, indent=1))
            summary = json.loads(timing.read_text())
            scores = json.loads(d2e("idm", "eval", "--labels", str(labels), *map(str, folder.glob("*.truth.mcap")),
                                    "--json", capture=True))
            per_game = scores["per_game"]["pseudo_labels"]
            means = {c: _mean([per_game[g].get(c) for g in per_game]) for c in COLUMNS}
            rows.append((model.name, variant, size_kb, summary["realtime_factor"], summary["labeled_hours"] * 3600,
                         means))
    print(f"\n## Pseudo-labeling: {len(recordings)} recordings of {', '.join(games)}; models "
          f"{', '.join(m.name for m in models)}\n")
    print("| model | web video | size KiB | real-time factor | labeled s | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(COLUMNS))
    for model, variant, size_kb, rtf, seconds, means in rows:
        print(f"| {model} | {variant} | {size_kb:.0f} | {rtf:.2f}x | {seconds:.0f} | "
              + " | ".join(_f(means[c]) for c in COLUMNS) + " |")
    (work / "results.json").write_text(json.dumps([dict(zip(["model", "variant", "size_kib", "realtime_factor",
                                                             "labeled_seconds", "metrics"], r)) for r in rows],
                                                  indent=1))


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


if __name__ == "__main__":
    main()
