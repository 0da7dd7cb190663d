"""IDM benchmark: the event-token IDM against the VPT-style tick IDM and the baselines, seen vs held-out games.

Everything runs through the user-facing commands, so the table is what a user reproduces by hand:

1. ``d2e generate`` the development set played by the intent players (ALE Breakout, Pong, SpaceInvaders,
   MsPacman, Enduro, Seaquest; ViZDoom basic, health_gathering, deathmatch): ``--recordings`` x ``--minutes``
   per game for training, and one fresh recording per game (other seeds) for testing.
2. ``d2e idm train`` the tick model (VPT-style) and the event model (D2E-style, NEP-tau 100 ms) with the
   same data, leaving ``--held-out`` games out of training, at about the same CPU time (tick ``--tick-steps``, event
   ``--steps``: an event step costs twice a tick step); again with ``--extra-seeds``.
3. ``d2e idm eval`` both on the test recordings, beside the state oracle (the ceiling: keys read from the
   game's own state), random presses at the true rate (chance), always-held keys, majority and optical flow
   (fitted on the training recordings). Press F1 is reported as a fraction of the oracle's and a multiple
   of chance's, per game.
4. Optionally the NEP-tau sweep: event models with tau in ``--taus`` at ``--sweep-steps`` each, scored on the
   first ``--sweep-seconds`` of each test recording.

Every step is skipped when its output exists (runs resume), so an interrupted benchmark continues.
Prints per-game tables, means over seen and held-out games, train time and inference speed.

    python bench/idm.py --work bench_out/idm                  # ~2-3 h on a 2-core CPU
    python bench/idm.py --work bench_out/idm --steps 300 --tick-steps 600 --minutes 0.5   # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ALE = ["Breakout", "Pong", "SpaceInvaders", "MsPacman", "Enduro", "Seaquest"]
DOOM = ["basic", "health_gathering", "deathmatch"]
COLUMNS = ["press_f1", "of_oracle", "x_chance", "per_key_f1", "keyboard_accuracy", "pearson_x", "pearson_y"]
BASELINES = ["oracle", "random_at_rate", "always_held", "optical_flow"]  # ceiling, chance, trivial, flow


def d2e(*args: str, quiet: bool = False) -> None:
    """Run a user command, echoed; ``quiet``: its stdout (tables also written to files) is not repeated here."""
    cmd = [sys.executable, "-m", "d2e.cli", *args]
    print("$ d2e " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)


def generate(folder: Path, minutes: float, recordings: int, seed_offset: int) -> None:
    if folder.exists() and any(folder.glob("*.mcap")):
        return
    for i, game in enumerate(ALE + DOOM, start=1):
        engine, flag = ("ale", "--game") if game in ALE else ("vizdoom", "--scenario")
        d2e("generate", engine, flag, game, "--minutes", str(minutes), "--recordings", str(recordings),
            "--seed", str(10 * i + seed_offset), "--workers", "2", "--out", str(folder))


def train(data: Path, run: Path, steps: int, held_out: list[str], *sets: str, kind: str = "events") -> dict:
    summary = run / "train_summary.json"
    if not summary.exists() or json.loads(summary.read_text())["steps"] < steps:
        args = ["idm", "train", str(data), "--out", str(run), "--kind", kind, "--quiet",
                "--set", f"max_steps={steps}"]
        for s in sets:
            args += ["--set", s]
        d2e(*args, "--held-out", *held_out)
    return json.loads(summary.read_text())


def evaluate(run: Path, test: Path, *, baselines: bool, seconds: float | None = None) -> dict:
    out = run / (("eval" if baselines else "eval_model") + (f"_{seconds:g}s" if seconds else "") + ".json")
    if not out.exists():
        d2e("idm", "eval", "--model", str(run), str(test), "--out", str(out), "--markdown",
            str(out.with_suffix(".md")), *([] if baselines else ["--no-baselines"]),
            *(["--max-seconds", f"{seconds:g}"] if seconds else []), quiet=True)
    return json.loads(out.read_text())


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def table(results: dict[str, dict], columns: list[str]) -> str:
    """Rows: method x game group (seen / held out); columns: metric means over the games of the group."""
    first = next(iter(results.values()))
    groups = {"held out": [g for g, f in first["games"].items() if not f["seen"]],
              "seen": [g for g, f in first["games"].items() if f["seen"]]}
    lines = ["| method | games | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for label, result in results.items():
        for group, games in groups.items():
            for method, by_game in result["per_game"].items():
                if method != "idm" and (label != "tick IDM (VPT-style)" or method not in BASELINES):
                    continue  # baselines once, with the first model
                name = label if method == "idm" else method
                cells = [_f(_mean([by_game.get(g, {}).get(c) for g in games])) for c in columns]
                lines.append(f"| {name} | {group} ({len(games)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_game(results: dict[str, dict]) -> str:
    """Per game: each model's press F1 against the oracle (ceiling) and random presses at the true rate (chance),
    and its per-key F1 against holding every key (the trivial per-key baseline)."""
    first = next(iter(results.values()))
    lines = ["| game | seen | model | press F1 | oracle | chance | of oracle | x chance | per-key F1 | always held |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for game, facts in first["games"].items():
        base = first["per_game"]
        for label, result in results.items():
            s = result["per_game"]["idm"].get(game, {})
            lines.append(f"| {game} | {'yes' if facts['seen'] else 'no'} | {label} | {_f(s.get('press_f1'))} | "
                         f"{_f(base.get('oracle', {}).get(game, {}).get('press_f1'))} | "
                         f"{_f(base.get('random_at_rate', {}).get(game, {}).get('press_f1'))} | "
                         f"{_f(s.get('of_oracle'))} | {_f(s.get('x_chance'))} | {_f(s.get('per_key_f1'))} | "
                         f"{_f(base.get('always_held', {}).get(game, {}).get('per_key_f1'))} |")
    return "\n".join(lines)


def spread_table(spread: dict[str, list[dict]]) -> str:
    """Min-max over seeds of each model's group means (seen / held out) for the headline metrics."""
    metrics = ["press_f1", "of_oracle", "x_chance", "per_key_f1", "pearson_x"]
    lines = ["| model | games | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for label, results in spread.items():
        for group, seen in (("seen", True), ("held out", False)):
            cells = []
            for m in metrics:
                vals = [_mean([r["per_game"]["idm"].get(g, {}).get(m) for g, f in r["games"].items()
                               if f["seen"] == seen]) for r in results]
                vals = [v for v in vals if v is not None]
                cells.append(f"{min(vals):.3f}-{max(vals):.3f}" if vals else "-")
            lines.append(f"| {label} | {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench_out/idm", help="folder for data, runs and results (reused)")
    p.add_argument("--minutes", type=float, default=2.0, help="length of each training recording")
    p.add_argument("--recordings", type=int, default=2, help="training recordings per game")
    p.add_argument("--test-minutes", type=float, default=1.0, help="length of the one test recording per game")
    p.add_argument("--steps", type=int, default=1500, help="training steps of the event models")
    p.add_argument("--tick-steps", type=int, default=3000,
                   help="training steps of the tick models (default 3000: about the CPU time of the event model's "
                        "1500, since a tick step costs half an event step)")
    p.add_argument("--sweep-steps", type=int, default=0,
                   help="steps per NEP-tau sweep model (default 0: no sweep; docs/idm-ablations.md has the last one)")
    p.add_argument("--extra-seeds", type=int, nargs="*", default=[1],
                   help="train each model again with these seeds to show the run-to-run spread (default: 1)")
    p.add_argument("--taus", type=int, nargs="+", default=[0, 50, 100, 150], help="NEP-tau values (ms) to sweep")
    p.add_argument("--sweep-seconds", type=float, default=30,
                   help="score sweep models on the first N seconds of each test recording (0: all): models that "
                        "have not learned when to stop write to the token limit and decode at ~0.5x real time")
    p.add_argument("--held-out", nargs="+", default=["ms_pacman", "health_gathering"],
                   help="games left out of training")
    args = p.parse_args()
    work = Path(args.work)
    data, test, runs = work / "data", work / "test", work / "runs"
    generate(data, args.minutes, args.recordings, 0)
    generate(test, args.test_minutes, 1, 5)

    models = [("tick IDM (VPT-style)", "ticks", args.tick_steps, ()),  # (label, kind, steps, --set values)
              ("event IDM (D2E-style)", "events", args.steps, ("tau_ms=100",))]
    trained = {label: train(data, runs / kind, steps, args.held_out, *sets, kind=kind)
               for label, kind, steps, sets in models}
    results = {label: evaluate(runs / kind, test, baselines=True) for label, kind, _steps, _sets in models}
    spread: dict[str, list[dict]] = {label: [result] for label, result in results.items()}
    for seed in args.extra_seeds:
        for label, kind, steps, sets in models:
            run = runs / f"{kind}-seed{seed}"
            train(data, run, steps, args.held_out, *sets, f"seed={seed}", kind=kind)
            spread[label].append(evaluate(run, test, baselines=True))
    sweep: dict[str, dict] = {}
    sweep_trained: dict[str, dict] = {}
    for tau in args.taus if args.sweep_steps else []:
        run = runs / f"sweep-tau{tau}"
        sweep_trained[f"tau {tau} ms"] = train(data, run, args.sweep_steps, args.held_out, f"tau_ms={tau}")
        sweep[f"event IDM, tau {tau} ms"] = evaluate(run, test, baselines=False, seconds=args.sweep_seconds or None)

    print(f"\n## IDM benchmark: tick {args.tick_steps} / event {args.steps} steps, held out: "
          f"{', '.join(args.held_out)}\n")
    print(table(results, COLUMNS))
    print("\n" + per_game(results))
    if args.extra_seeds:
        print(f"\n### Seeds 0, {', '.join(map(str, args.extra_seeds))}: the spread of the means (min-max)\n")
        print(spread_table(spread))
    print("\n| model | parameters | train steps | train s | s/step | inference frames/s | real-time factor |")
    print("|---|---|---|---|---|---|---|")
    for label, summary in {**trained, **sweep_trained}.items():
        res = results.get(label) or sweep.get(f"event IDM, {label}") or {}
        inf = res.get("inference", {})
        print(f"| {label} | {summary['parameters']:,} | {summary['steps']} | {summary['seconds']:.0f} | "
              f"{summary['seconds'] / max(1, summary['steps']):.2f} | {_f(inf.get('frames_per_second'))} | "
              f"{_f(inf.get('realtime_factor'))} |")
    if sweep:
        scored = f", first {args.sweep_seconds:g} s of each test recording" if args.sweep_seconds else ""
        print(f"\n## NEP-tau sweep ({args.sweep_steps} steps each{scored})\n")
        print(table(sweep, ["press_f1", "per_key_f1", "pearson_x", "pearson_y"]))
    print("\nall metrics per game: " + ", ".join(str(runs / kind / "eval.md") for kind in ("ticks", "events")))
    (work / "results.json").write_text(json.dumps({"main": results, "sweep": sweep}, indent=1))


if __name__ == "__main__":
    main()
