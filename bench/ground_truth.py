"""How good is the ground truth, and what can an IDM score on it: intent players vs random keys, per game.

For each game it generates (with ``python -m d2e.cli generate``, skipped when the files exist) two
recordings per policy, the intent players (default) and the old random human-like policy: seed 1 fits
the chance baseline's rates, seed 2 is measured. Columns:

- held: fraction of 50 ms ticks with a direction key down; presses/s: key presses per second;
- opposing: fraction of native steps with opposing keys down together (left+right, up+down, a+d, w+s);
- visible: fraction of presses whose key the state oracle sees held within 100 ms (identifiability);
- score: the game's own reward over the recording;
- press F1 (+-50 ms) / per-key F1 of the state oracle (the ceiling), of random presses at the true rate
  (chance, fitted on seed 1) and of every key always held, against the true events.

    python bench/ground_truth.py --minutes 1.5 --out /tmp/gt   # prints the Markdown table, --json for JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capture.format import RecordingReader  # noqa: E402
from capture.schema import KeyboardEvent  # noqa: E402
from core.grid import TICK_NS  # noqa: E402
from core.ticks import EventTable, down_intervals  # noqa: E402
from idm.baselines import AlwaysHeld, RandomAtRate  # noqa: E402
from idm.metrics import Window, evaluate_events  # noqa: E402
from idm.oracle import identifiable, load_states, oracle_events  # noqa: E402

GAMES = [("ale", "Breakout"), ("ale", "Pong"), ("ale", "SpaceInvaders"), ("ale", "MsPacman"), ("ale", "Enduro"),
         ("ale", "Seaquest"), ("vizdoom", "basic"), ("vizdoom", "health_gathering"), ("vizdoom", "deathmatch")]
NOT_DIRECTIONS = {"space", "shift", "e"}
OPPOSING = [("left", "right"), ("up", "down"), ("a", "d"), ("w", "s")]


def generate(source: str, game: str, policy: str, seed: int, minutes: float, out: Path) -> Path:
    folder = out / policy
    stem = f"doom-{game}" if source == "vizdoom" else _rom(game)
    path = folder / f"{stem}-s{seed}.mcap"
    if not path.exists():
        flag = ["--scenario", game] if source == "vizdoom" else ["--game", game]
        subprocess.run([sys.executable, "-m", "d2e.cli", "generate", source, *flag, "--policy", policy, "--seed",
                        str(seed), "--minutes", str(minutes), "--out", str(folder)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    return path


def _rom(game: str) -> str:
    from capture.sources.ale import rom_id

    return rom_id(game)


def read(path: Path) -> tuple[list[Any], list[int], dict[str, Any]]:
    with RecordingReader(path) as r:
        truth = list(r.iter(topics=["keyboard", "mouse/raw"]))
        frames = [f.t_ns for f in r.iter(topics=["screen"])]
        return truth, frames, dict(r.end_info)


def behaviour(truth: list[Any], frames: list[int], native_times: np.ndarray) -> dict[str, float]:
    """Hold fraction (50 ms ticks), presses per second and the fraction of native steps with opposing keys."""
    keys = [e for e in truth if isinstance(e, KeyboardEvent)]
    vks = {e.key: e.vk for e in keys}
    directions = [vk for name, vk in vks.items() if name not in NOT_DIRECTIONS]
    table = EventTable(keys)
    state, _b, _m = table.ticks(frames[0], len(frames), directions)
    seconds = len(frames) * TICK_NS / 1e9
    intervals = down_intervals((e.t_ns, e.vk, e.action == "press") for e in keys)
    both = np.zeros(len(native_times), bool)
    for a, b in OPPOSING:
        if a in vks and b in vks:
            down = {}
            for name in (a, b):
                rows = intervals[intervals[:, 0] == vks[name]]
                held = np.zeros(len(native_times), bool)
                for _vk, start, end in rows.tolist():
                    held[(native_times >= start) & (native_times < end)] = True
                down[name] = held
            both |= down[a] & down[b]
    return {"held": float(state.any(1).mean()) if directions else 0.0,
            "presses_per_s": sum(e.action == "press" for e in keys) / seconds,
            "opposing": float(both.mean())}


def keys_only(events: list[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, KeyboardEvent)]


def measure(source: str, game: str, policy: str, minutes: float, out: Path) -> dict[str, Any]:
    fit_path = generate(source, game, policy, 1, minutes, out)
    path = generate(source, game, policy, 2, minutes, out)
    truth, frames, end = read(path)
    fit_truth, fit_frames, _ = read(fit_path)
    track = load_states(path)
    window = Window(frames[0], frames[-1] + TICK_NS)
    vks = sorted({e.vk for e in keys_only(truth)})
    chance = RandomAtRate(seed=2).fit([keys_only(fit_truth)], len(fit_frames) * TICK_NS / 1e9, vks)
    methods = {"oracle": keys_only(oracle_events(track)), "random_at_rate": chance.predict(frames),
               "always_held": AlwaysHeld().fit(vks).predict(frames)}
    row: dict[str, Any] = {"game": game, "policy": policy, "seconds": len(frames) * TICK_NS / 1e9,
                           **behaviour(truth, frames, track.times), "visible": identifiable(track, truth)["all"],
                           "score": end.get("score")}
    for name, pred in methods.items():
        m = evaluate_events(keys_only(truth), pred, window)
        row[f"{name}_press_f1"], row[f"{name}_per_key_f1"] = m["press_f1"], m["per_key_f1"]
    return row


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}" \
        if isinstance(v, float) else str(v)


def render(rows: list[dict[str, Any]]) -> str:
    head = ["game", "policy", "held", "presses/s", "opposing", "visible", "score", "oracle press F1",
            "oracle per-key F1", "random-at-rate press F1", "random-at-rate per-key F1", "always-held press F1",
            "always-held per-key F1"]
    cols = ["game", "policy", "held", "presses_per_s", "opposing", "visible", "score", "oracle_press_f1",
            "oracle_per_key_f1", "random_at_rate_press_f1", "random_at_rate_per_key_f1", "always_held_press_f1",
            "always_held_per_key_f1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c], 3 if c == "opposing" else 0 if c == "score" else 2)
                                       for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/d2e-ground-truth", help="folder for the generated recordings")
    p.add_argument("--minutes", type=float, default=1.5, help="length of each recording")
    p.add_argument("--games", nargs="*", help="subset, e.g. Breakout basic")
    p.add_argument("--policies", nargs="*", default=["intent", "random"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = []
    for source, game in GAMES:
        if args.games and game not in args.games:
            continue
        for policy in args.policies:
            rows.append(measure(source, game, policy, args.minutes, Path(args.out)))
            if not args.json:
                print(render(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
