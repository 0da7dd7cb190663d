"""``d2e idm eval``: score a model (and the baselines) per game with D2E's, VPT's and F1 metrics.

Each recording is labelled end to end exactly as ``d2e label`` would (frames on the 20 Hz grid, the
model's streaming inference), then compared with its true events over the same time range. Games the
model was trained on are marked ``seen``; the others are zero-shot. Every model is read against:

- the ceiling: the state oracle (``idm.oracle``), the keys a perfect IDM could know from the game's own state,
  for generated recordings (they store it); press F1 is also given as a fraction of the oracle's;
- chance: random presses of the game's keys at their true rate (press F1 as a multiple of it), and every key
  of the game held all the time (the per-key F1 of never letting go);
- predict-nothing, majority keys and optical-flow mouse (statistics and scale fitted on the model's training
  recordings when its ``split.json`` names them, else on the evaluated ones, which favours them).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.format import RecordingReader
from capture.schema import KeyboardEvent
from core.config import DataConfig
from core.data.dataset import WindowDataset
from core.data.index import RecordingEntry, game_of, index_recordings, keys_of
from core.grid import TICK_NS, TICKS_PER_SECOND
from core.run import RunFolder
from core.ticks import tick_labels

from .baselines import AlwaysHeld, MajorityBaseline, OpticalFlowMouse, RandomAtRate, frame_shifts, predict_nothing
from .metrics import Window, aggregate, evaluate_events

# Best possible exact-action accuracy from 4 future frames, measured by restoring the emulator and
# trying every action (DESIGN section 2).
ATARI_CEILING = {"pong": 0.32, "ms_pacman": 0.19, "breakout": 0.61, "space_invaders": 0.44, "enduro": 0.43,
                 "seaquest": 0.45}
HEADLINE = ["press_f1", "of_oracle", "x_chance", "per_key_f1", "keyboard_accuracy", "button_accuracy", "pearson_x",
            "pearson_y", "scale_ratio", "vpt_key_accuracy", "tick_exact_accuracy"]
ORACLE, CHANCE = "oracle", "random_at_rate"  # the ceiling and the chance level every press F1 is read against
CHANCE_DRAWS = 10  # chance is the mean of this many seeded random-at-rate draws (one draw swings by hundredths)


@dataclass
class RecordingFrames:
    entry: RecordingEntry
    times: list[int]
    frames: np.ndarray
    truth: list[Any]


def load_frames(entry: RecordingEntry, data: DataConfig, max_seconds: float | None = None) -> RecordingFrames:
    """Every grid frame of a recording prepared as the model's data config says, and its true input events."""
    n = entry.grid_len if max_seconds is None else min(entry.grid_len, int(max_seconds * TICKS_PER_SECOND))
    times, frames = WindowDataset([entry], data).frames(0, 0, n)
    with RecordingReader(entry.path) as r:
        end = int(times[-1]) + TICK_NS
        truth = [m for m in r.iter(topics=["keyboard", "mouse", "mouse/raw"]) if m.t_ns < end]
    return RecordingFrames(entry, [int(t) for t in times], frames, truth)


def tick_exact_accuracy(truth: list[Any], pred: list[Any], window: Window, vks: list[int]) -> float | None:
    """Fraction of ticks whose whole key-down set is predicted exactly (comparable to the Atari ceiling)."""
    if not vks or not window.n_bins:
        return None
    kt, _b, _m = tick_labels(truth, window.start_ns, window.n_bins, vks)
    kp, _b, _m = tick_labels(pred, window.start_ns, window.n_bins, vks)
    return float((kt == kp).all(1).mean())


def score(rec: RecordingFrames, pred: list[Any], vks: list[int]) -> dict[str, float | None]:
    window = Window(rec.times[0], rec.times[-1] + TICK_NS)
    truth = [e for e in rec.truth if e.t_ns >= window.start_ns]
    result = evaluate_events(truth, pred, window)
    result["tick_exact_accuracy"] = tick_exact_accuracy(rec.truth, pred, window, vks)
    return result


def fit_baselines(train: list[RecordingFrames], vks: list[int]) -> tuple[MajorityBaseline, OpticalFlowMouse]:
    states, shifts, motion = [], [], []
    for rec in train:
        keys, _b, mouse = tick_labels(rec.truth, rec.times[0], len(rec.times), vks)
        states.append(keys)
        s = frame_shifts(list(rec.frames))
        shifts.append(s[:-1])
        motion.append(mouse[:-1])  # motion during tick i shows up between frame i and frame i + 1
    majority = MajorityBaseline().fit(np.concatenate(states) if states else np.zeros((0, len(vks))), vks)
    flow = OpticalFlowMouse().fit(np.concatenate(shifts), np.concatenate(motion)) if shifts else OpticalFlowMouse()
    return majority, flow


def game_chance(rec: RecordingFrames, draws: int = CHANCE_DRAWS) -> tuple[list[list[Any]], list[Any]]:
    """The game's own chance levels: ``draws`` seeded draws of random presses of its keys at their true rate
    and hold lengths in this recording, and every one of its keys held the whole time (keys of other games
    would only lower them)."""
    keys = sorted({e.vk for e in rec.truth if isinstance(e, KeyboardEvent)})
    rate = RandomAtRate().fit([rec.truth], len(rec.times) / TICKS_PER_SECOND, keys)
    chances = []
    for seed in range(draws):
        rate.seed = seed
        chances.append(rate.predict(rec.times))
    return chances, AlwaysHeld().fit(keys).predict(rec.times)


def chance_scores(draws: list[dict[str, float | None]]) -> dict[str, float | None]:
    """The mean of each metric over the chance draws, and ``press_f1_sd``: how far one draw strays from it
    (a model within a standard deviation or two of chance reads nothing)."""
    out = aggregate(draws)
    f1 = [d["press_f1"] for d in draws if d.get("press_f1") is not None]
    out["press_f1_sd"] = float(np.std(f1)) if len(f1) > 1 else None
    return out


def oracle(rec: RecordingFrames) -> list[Any] | None:
    """The state oracle's events for a generated recording (None for recordings without a ``state`` topic)."""
    from .oracle import oracle_events

    try:
        return oracle_events(rec.entry.path)
    except D2EError:
        return None


def relative_to_ceiling_and_chance(table: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each method's press F1 as a fraction of the oracle's and as a multiple of chance's, per game."""
    for by_game in table.values():
        for game, scores in by_game.items():
            f1 = scores.get("press_f1")
            ceiling = table.get(ORACLE, {}).get(game, {}).get("press_f1")
            chance = table.get(CHANCE, {}).get(game, {}).get("press_f1")
            scores["of_oracle"] = f1 / ceiling if f1 is not None and ceiling else None
            scores["x_chance"] = f1 / chance if f1 is not None and chance else None


def evaluate(model_dir: str | None, paths: list[str], *, baselines: bool = True, max_seconds: float | None = None,
             device: str = "auto", labeler=None, data: DataConfig | None = None) -> dict[str, Any]:
    """Per-recording and per-game scores of the model (if given) and the baselines, JSON-ready.

    Frames are prepared with the model's own data config (or ``data``; default: 64 px, stretched)."""
    info: dict[str, Any] = {}
    seen: set[str] = set()
    train_paths: list[str] = []
    data = data or DataConfig()
    if model_dir is not None:
        from .config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig
        from .predict import load_labeler, model_info

        run = RunFolder(model_dir)
        cfg, data, _train = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
        split = run.split()
        seen, train_paths = set(split.get("train_games", [])), split.get("train", [])
        if labeler is None:
            labeler = load_labeler(model_dir, device=device)
        info = {"model": model_dir, "model_id": cfg.name, "kind": cfg.kind,
                "config_hash": model_info(model_dir)["config_hash"]}
    entries = index_recordings(paths)
    vks = list(data.keys) or keys_of(entries)
    recs = [load_frames(e, data, max_seconds) for e in entries]
    methods: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    if baselines:
        fit_on = [load_frames(e, data, max_seconds) for e in index_recordings(train_paths)] if train_paths else recs
        majority, flow = fit_baselines(fit_on, vks)
        info["baselines_fitted_on"] = "training recordings" if train_paths else "evaluated recordings (favours them)"
        info["optical_flow_scale"] = flow.scale
    per_recording = []
    for rec in recs:
        row: dict[str, Any] = {"path": rec.entry.path, "game": rec.entry.game, "seen": rec.entry.game in seen,
                               "seconds": len(rec.times) / 20}
        preds: dict[str, list[Any]] = {}
        if labeler is not None:
            t0 = time.perf_counter()
            for_game = getattr(labeler, "for_game", None)  # a training game decides at its own thresholds
            label = for_game(rec.entry.game) if for_game else labeler
            preds["idm"] = [e for e, _c in label(rec.frames, rec.times)]
            row["label_seconds"] = time.perf_counter() - t0
        if baselines:
            preds["nothing"] = predict_nothing(rec.times)
            preds["majority"] = majority.predict(rec.times)
            chances, preds["always_held"] = game_chance(rec)
            row[CHANCE] = chance_scores([score(rec, c, vks) for c in chances])
            methods[CHANCE][rec.entry.game].append(row[CHANCE])
            preds["optical_flow"] = flow.predict(frame_shifts(list(rec.frames)), rec.times)
            ceiling = oracle(rec)
            if ceiling is not None:
                preds[ORACLE] = ceiling
        for name, pred in preds.items():
            row[name] = score(rec, pred, vks)
            methods[name][rec.entry.game].append(row[name])
        per_recording.append(row)
    if labeler is not None:  # inference speed on the frames already decoded and resized
        video_s = sum(r["seconds"] for r in per_recording)
        spent = sum(r["label_seconds"] for r in per_recording)
        info["inference"] = {"video_seconds": video_s, "seconds": spent, "realtime_factor": video_s / max(spent, 1e-9),
                             "frames_per_second": video_s * 20 / max(spent, 1e-9)}
    games = sorted({r["game"] for r in per_recording})
    table = {name: {g: aggregate(by_game[g]) for g in games if by_game.get(g)} for name, by_game in methods.items()}
    relative_to_ceiling_and_chance(table)
    return {**info, "vks": vks, "games": {g: {"seen": g in seen, "ceiling": ATARI_CEILING.get(g)} for g in games},
            "per_game": table, "per_recording": per_recording}


def _same_file(a: str) -> str:
    return a if "://" in a else str(Path(a).resolve())


def evaluate_labels(label_paths: list[str], truth_paths: list[str]) -> dict[str, Any]:
    """Score pseudo-label recordings (``d2e label`` outputs) against the truth files of the same videos
    (``d2e export-web`` writes ``NAME.truth.mcap`` beside ``NAME.mp4``), with the same metrics.

    Labels and truth are matched by the source video; both are on the video's clock. The scored span is
    the labeled one (first to last model frame); segments skipped as static count as predicting nothing.
    """
    by_video: dict[str, str] = {}
    for path in label_paths:
        with RecordingReader(path) as r:
            source = (r.meta.extra or {}).get("source_video")
        if source:
            by_video[_same_file(source)] = path
    truths = []
    for path in truth_paths:
        with RecordingReader(path) as r:
            truths.append((path, game_of(r.meta.extra, r.meta.source), r.video_path,
                           list(r.iter(topics=["keyboard", "mouse", "mouse/raw"]))))
    vks = sorted({e.vk for *_x, events in truths for e in events if isinstance(e, KeyboardEvent)})
    methods: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    per_recording, unmatched = [], []
    for path, game, video, truth in truths:
        label = by_video.get(_same_file(video))
        if label is None:
            unmatched.append(path)
            continue
        with RecordingReader(label) as r:
            times = [f.t_ns for f in r.iter(topics=["screen"])]
            pred = list(r.iter(topics=["keyboard", "mouse", "mouse/raw"]))
        if not times:
            unmatched.append(path)
            continue
        entry = RecordingEntry(path, game, "truth", np.array(times, np.int64), np.array(times, np.int64), vks)
        rec = RecordingFrames(entry, times, np.zeros((0,), np.uint8), truth)
        row = {"path": path, "labels": label, "game": game, "seen": False, "seconds": len(times) / 20,
               "pseudo_labels": score(rec, pred, vks)}
        methods["pseudo_labels"][game].append(row["pseudo_labels"])
        per_recording.append(row)
    if not per_recording:
        raise D2EError("no truth file matches a labeled video", path=", ".join(truth_paths[:3]),
                       fix="pass the NAME.truth.mcap files written by 'd2e export-web' for the videos you labeled")
    games = sorted({r["game"] for r in per_recording})
    table = {name: {g: aggregate(by_game[g]) for g in games if by_game.get(g)} for name, by_game in methods.items()}
    return {"labels": sorted(by_video.values()), "unmatched_truth": unmatched, "vks": vks,
            "games": {g: {"seen": False, "ceiling": ATARI_CEILING.get(g)} for g in games},
            "per_game": table, "per_recording": per_recording}


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def render_markdown(result: dict[str, Any], metrics: list[str] | None = None) -> str:
    metrics = metrics or HEADLINE
    lines = []
    for game, facts in result["games"].items():
        tag = "seen" if facts["seen"] else "held out"
        ceiling = f", Atari ceiling (exact action) {facts['ceiling']:.2f}" if facts.get("ceiling") else ""
        chance = result["per_game"].get(CHANCE, {}).get(game, {})
        lines += [f"### {game} ({tag}{ceiling})", ""]
        if chance.get("press_f1") is not None and chance.get("press_f1_sd") is not None:
            lines += [f"Chance ({CHANCE}): press F1 {chance['press_f1']:.3f}, standard deviation "
                      f"{chance['press_f1_sd']:.3f} over {CHANCE_DRAWS} draws.", ""]
        lines += ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for method, by_game in result["per_game"].items():
            if game in by_game:
                lines.append(f"| {method} | " + " | ".join(_fmt(by_game[game].get(m)) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)
