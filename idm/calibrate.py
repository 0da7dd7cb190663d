"""Decision thresholds chosen on held-back data after training, saved with the model.

A per-tick head trained with weighted losses ranks ticks well but its probabilities are not the base rates
of a new recording, and a fixed 0.5 cut threw the evidence away (keys held a third of the time never crossed
it). The last ``calib_fraction`` of every training recording is kept out of training; afterwards each key's
press-onset threshold is chosen to maximise press F1 (+-50 ms, the headline metric) on it, then its held
threshold to maximise the per-key F1 of the decoded key state, and each button's threshold its per-tick F1.

Key columns are shared by all games (a VK code), but a key means something else in each game and its
probabilities sit at another level there, so besides the pooled thresholds (used on a game the model never
saw) each training game gets its own, chosen on that game's held-back ticks alone. A key the game's recordings
never press never fires there; a key pressed fewer than ``MIN_PRESSES`` times in its held-back ticks keeps the
pooled thresholds (too few to choose from). With the same weights on the IDM benchmark's test recordings that
raised press F1 on Enduro from 0.14 to 0.29 and SpaceInvaders from 0.15 to 0.20, and per-key F1 on Pong from
0.32 to 0.63 and ViZDoom basic from 0.31 to 0.43 (keys of other games no longer fire).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from capture.format import RecordingReader
from capture.schema import KeyboardEvent, RawMouseEvent
from core.config import DataConfig
from core.data.dataset import WindowDataset, span_of
from core.data.index import RecordingEntry
from core.grid import FLAG_BUTTON
from core.nn.heads import BUTTONS, KEYS, PRESSES
from core.ticks import tick_labels

from .metrics import Window, key_events, key_state_ticks, press_f1

STATE_WEIGHT = 0.25  # weights 0 and 0.25 gave the same mean press F1 (IDM benchmark); 0.25 added 0.11 per-key F1
CANDIDATES = [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]
MIN_PRESSES = 5  # a key's presses in one game's held-back ticks below which that game keeps the pooled thresholds
NEVER = 1.01  # a threshold no probability reaches (a sigmoid can round to 1.0): the key (button) never fires
KEEP_DOWN = "keep_down"  # per key: a pressed key stays down while its held probability is above this (hysteresis)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(1, 2 * tp + fp + fn)


def _segments(model: Any, entries: Sequence[RecordingEntry], data: DataConfig, span: tuple[float, float],
              device: Any) -> list[dict[str, Any]]:
    """Per recording: grid times of its calibration span, the model's per-tick probabilities, the true events."""
    from .predict import tick_probabilities

    out = []
    for i, entry in enumerate(entries):
        lo, hi = span_of(entry, span)
        if hi - lo < data.frames:
            continue
        times, frames = WindowDataset([entry], data).frames(0, lo, hi - lo)
        with RecordingReader(entry.path) as r:
            truth = list(r.iter(topics=["keyboard", "mouse", "mouse/raw"]))
        out.append({"times": [int(t) for t in times], "probs": tick_probabilities(model, frames, device=device),
                    "truth": truth, "index": i})
    return out


def _decode_one(seg: dict[str, Any], k: int, vk: int, held: float, onset: float, keep: float | None = None
                ) -> list[Any]:
    """Key ``k``'s events in one segment at the given thresholds."""
    from .predict import key_events as decode_keys

    probs = seg["probs"]
    presses = probs[PRESSES][:, k:k + 1] if PRESSES in probs else None
    thresholds = {KEYS: [held], PRESSES: [onset], KEEP_DOWN: [held if keep is None else keep]}
    return [e for e, _c in decode_keys(probs[KEYS][:, k:k + 1], presses, thresholds, seg["times"], [vk])]


def _counts(segments: list[dict[str, Any]], k: int, vk: int, held: float, onset: float, keep: float | None = None
            ) -> tuple[tuple, tuple]:
    """Key ``k``'s (tp, fp, fn) of presses (+-50 ms) and of key-down ticks over ``segments`` at the thresholds."""
    press, state = np.zeros(3, int), np.zeros(3, int)
    for seg in segments:
        times = seg["times"]
        pred = _decode_one(seg, k, vk, held, onset, keep)
        window = Window(times[0], times[-1] + 50_000_000)
        truth = [e for e in key_events(seg["truth"]) if e[1] == str(vk)]
        scores = press_f1(truth, key_events(pred), window)
        n_true = int(scores["true_presses"] or 0)
        n_pred = sum(1 for e in pred if e.action == "press" and window.start_ns <= e.t_ns < window.end_ns)
        hit = round((scores["press_recall"] or 0) * n_true)
        press += (hit, n_pred - hit, n_true - hit)
        truth_state = key_state_ticks(truth, window, [str(vk)])
        pred_state = key_state_ticks(key_events(pred), window, [str(vk)])
        state += (int((truth_state & pred_state).sum()), int((~truth_state & pred_state).sum()),
                  int((truth_state & ~pred_state).sum()))
    return tuple(press), tuple(state)


def choose_thresholds(segments: list[dict[str, Any]], vks: Sequence[int]) -> dict[str, Any]:
    """Per-key onset and held thresholds and per-button thresholds, each the best candidate on ``segments``."""
    n_keys = len(vks)
    has_onset = bool(segments) and PRESSES in segments[0]["probs"]
    thresholds: dict[str, Any] = {KEYS: [0.5] * n_keys, BUTTONS: [0.5] * 5}
    if has_onset:
        thresholds[PRESSES] = [0.5] * n_keys
        thresholds[KEEP_DOWN] = [0.5] * n_keys
    scores: dict[str, list[float]] = {"press_f1": [], "per_key_f1": []}

    for k, vk in enumerate(vks):
        held, onset, keep, press, state = _key_thresholds(segments, k, vk, has_onset)
        thresholds[KEYS][k] = held
        if has_onset:
            thresholds[PRESSES][k], thresholds[KEEP_DOWN][k] = onset, keep
            scores["press_f1"].append(_f1(*press))
        scores["per_key_f1"].append(_f1(*state))
    for b in range(5):
        truth = [tick_labels(seg["truth"], seg["times"][0], len(seg["times"]), [])[1][:, b] for seg in segments]
        probs = [seg["probs"][BUTTONS][:, b] for seg in segments]
        if any(t.any() for t in truth):
            thresholds[BUTTONS][b] = _button_threshold(truth, probs)
    return {"thresholds": thresholds,
            "calibration": {"recordings": len(segments), "ticks": sum(len(s["times"]) for s in segments),
                            **{name: float(np.mean(v)) if v else None for name, v in scores.items()}}}


def _key_thresholds(segments: list[dict[str, Any]], k: int, vk: int, has_onset: bool) -> tuple:
    """Key ``k``'s held, onset and keep-down thresholds and its (press, state) counts there: the onset threshold
    for press F1, then the held one for press + per-key F1 (a rise of the held state can be a press), then the
    onset one again at that held threshold, then the keep-down one (at most the held one) for the same mix."""
    held, onset = 0.5, 0.5
    if has_onset:
        onset = _best(lambda c: _f1(*_counts(segments, k, vk, held, c)[0]))
    held = _best(lambda c: _weighted(*_counts(segments, k, vk, c, onset)))
    keep = held
    if has_onset:
        onset = _best(lambda c: _f1(*_counts(segments, k, vk, held, c)[0]))
        keep = _best(lambda c: _weighted(*_counts(segments, k, vk, held, onset, c)), upto=held)
    return (held, onset, keep, *_counts(segments, k, vk, held, onset, keep))


def _weighted(press: tuple, state: tuple) -> float:
    """Press F1 (the headline) first; the per-key F1 of the key-down state as a smaller second concern."""
    return _f1(*press) + STATE_WEIGHT * _f1(*state)


def _button_threshold(truth: list[np.ndarray], probs: list[np.ndarray]) -> float:
    return _best(lambda c: _f1(*_tick_counts(truth, probs, c)))


def _best(score: Callable[[float], float], upto: float = 1.0) -> float:
    """The candidate threshold (at most ``upto``) with the best score (ties: the one nearest 0.5)."""
    return max([c for c in CANDIDATES if c <= upto] or [upto], key=lambda c: (score(c), -abs(c - 0.5)))


def _tick_counts(truth: list[np.ndarray], probs: list[np.ndarray], c: float) -> tuple[int, int, int]:
    tp = sum(int((t & (p > c)).sum()) for t, p in zip(truth, probs))
    fp = sum(int((~t & (p > c)).sum()) for t, p in zip(truth, probs))
    fn = sum(int((t & ~(p > c)).sum()) for t, p in zip(truth, probs))
    return tp, fp, fn


def game_thresholds(segments: list[dict[str, Any]], vks: Sequence[int], pooled: dict[str, Any]) -> dict[str, Any]:
    """One game's thresholds from its own ``segments`` (every segment's ``truth`` is its whole recording, so the
    keys and buttons it never uses are known); ``pooled`` fills in keys with too few presses to choose from."""
    own = choose_thresholds(segments, vks)["thresholds"]
    out = {name: list(values) for name, values in own.items()}
    used = {e.vk for seg in segments for e in seg["truth"] if isinstance(e, KeyboardEvent) and e.action == "press"}
    for k, vk in enumerate(vks):
        presses = sum(1 for seg in segments for e in seg["truth"] if isinstance(e, KeyboardEvent)
                      and e.vk == vk and e.action == "press" and seg["times"][0] <= e.t_ns <= seg["times"][-1])
        for name in (KEYS, PRESSES, KEEP_DOWN):
            if name in out:
                out[name][k] = NEVER if vk not in used else out[name][k] if presses >= MIN_PRESSES else pooled[name][k]
    clicked = {b for seg in segments for e in seg["truth"] if isinstance(e, RawMouseEvent) and e.button_flags
               for flag, (b, _is_up) in FLAG_BUTTON.items() if e.button_flags & flag}
    out[BUTTONS] = [t if b in clicked else NEVER for b, t in enumerate(out[BUTTONS])]
    return out


def calibrate(model: Any, entries: Sequence[RecordingEntry], data: DataConfig, fraction: float,
              device: Any = "cpu") -> dict[str, Any]:
    """Thresholds for ``model`` chosen on the last ``fraction`` of each of ``entries`` (kept out of training):
    ``thresholds`` pooled over all of them, and ``thresholds_by_game`` for each of their games."""
    import torch

    segments = _segments(model, entries, data, (1 - fraction, 1.0), torch.device(device))
    out = choose_thresholds(segments, data.keys)
    games = sorted({entries[seg["index"]].game for seg in segments})
    out["thresholds_by_game"] = {
        game: game_thresholds([seg for seg in segments if entries[seg["index"]].game == game], data.keys,
                              out["thresholds"]) for game in games}
    return out


def thresholds_for(labels: dict[str, Any], game: str | None) -> dict[str, Any]:
    """The thresholds a model decides with on ``game``: that game's when it was calibrated on it, else pooled."""
    return labels.get("thresholds_by_game", {}).get(game or "") or labels.get("thresholds", {})
