"""``d2e demo``: the main job on embedded defaults, runnable on a fresh machine with no data.

It makes a sample recording, shows and validates it, kills a live writer with SIGKILL and recovers what it had
written, and round-trips it through OWAMcap (``capture.demo``); then it plays Breakout and Pong, trains a tiny
IDM on Breakout, exports Pong as a web video, pseudo-labels it and scores the labels against the truth, with
the same commands a user would type. The tiny model trained here is too briefly trained to label well: the
demo shows the pipeline; ``bench/idm.py`` measures quality.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from capture.demo import run_format_demo, step


def _d2e(*args: str, capture: bool = False) -> str:
    print("$ d2e " + " ".join(args), flush=True)
    run = subprocess.run([sys.executable, "-m", "d2e.cli", *args], text=True,
                         stdout=subprocess.PIPE if capture else None)
    if run.returncode:
        raise RuntimeError(f"'d2e {' '.join(args)}' failed with exit code {run.returncode}")
    return run.stdout if capture else ""


def run_idm_demo(out: Path, quick: bool = False) -> dict[str, Any]:
    missing = [m for m, extra in (("torch", "train"), ("ale_py", "sources")) if importlib.util.find_spec(m) is None]
    if missing:
        print(f"\n== IDM demo skipped: install the extras for {missing} (pip install 'd2e[train,sources]')")
        return {"idm_demo": "skipped"}
    # quick (CI smoke): a few steps, and shorter token windows so an untrained decoder's babble stays cheap
    minutes, steps, tokens = ("0.1", "8", "256") if quick else ("1", "150", "768")
    data, web, labels, run = out / "games", out / "web", out / "labels", out / "idm"
    step(f"IDM: {minutes} min each of Breakout (training) and Pong (held out), a tiny IDM, {steps} steps")
    _d2e("generate", "ale", "--game", "Breakout", "--minutes", minutes, "--seed", "1", "--out", str(data), "--force")
    _d2e("generate", "ale", "--game", "Pong", "--minutes", minutes, "--seed", "2", "--out", str(data), "--force")
    _d2e("idm", "train", str(data), "--out", str(run), "--held-out", "pong", "--set", f"max_steps={steps}",
         "--set", "batch_size=8", "--set", f"max_tokens={tokens}", "--quiet", "--restart")

    step("the held-out game as a web video (480 px, 300 kb/s), pseudo-labeled and scored")
    [pong] = sorted(data.glob("pong*.mcap"))
    _d2e("export-web", str(pong), "-o", str(web / "pong.mp4"), "--width", "480", "--bitrate", "300000", "--force")
    summary = json.loads(_d2e("label", str(web), "--model", str(run), "--out", str(labels), "--json", "--quiet",
                              "--replace", capture=True))
    scores = json.loads(_d2e("idm", "eval", "--labels", str(labels), str(web / "pong.truth.mcap"), "--json",
                             capture=True))
    pong_scores = scores["per_game"]["pseudo_labels"]["pong"]
    [labeled] = sorted(labels.glob("*.mcap"))
    _d2e("info", str(labeled), "--no-video")
    print(f"labeled {summary['labeled_hours'] * 3600:.0f} s of video at {summary['realtime_factor']:.2f}x real time;"
          f" key-press F1 {pong_scores['press_f1'] or 0:.3f}, per-key F1 {pong_scores['per_key_f1'] or 0:.3f}"
          " (a briefly trained tiny model: see bench/idm.py for real numbers)")
    return {"idm_trained": (run / "model.safetensors").exists(), "pseudo_labels": str(labeled),
            "label_realtime_factor": round(summary["realtime_factor"], 2)}


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="d2e-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"d2e demo: working in {out}")
    results = run_format_demo(out, seconds=args.seconds)
    results.update(run_idm_demo(out, quick=args.quick))
    step("summary")
    for k, v in results.items():
        print(f"  {k}: {v}")
    ok = all(v is not False for v in results.values())
    print(f"\nd2e demo {'finished' if ok else 'FAILED'}; outputs in {out}")
    return 0 if ok else 1


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for the demo's outputs (default: a new temp folder)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the sample recording")
    p.add_argument("--quick", action="store_true", help="smallest settings for every stage (CI smoke)")
    p.set_defaults(func=cmd_demo)
    return p
