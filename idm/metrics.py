"""How well predicted input events match the truth: D2E's metrics, VPT's, and event-level F1.

D2E (their evaluate.py, DESIGN section 1): non-overlapping 50 ms bins. Mouse: Pearson correlation of the
per-bin dx and dy sums over bins where either side moves, and the scale ratio of predicted to true
magnitude, reported >= 1. Keyboard and mouse buttons: for every (event kind, bin) that is non-empty on
either side, 1 if the counts match exactly, else 0; the mean is the accuracy (predicting nothing scores 0).

VPT: per 50 ms tick, key-down state per key (accuracy) and mouse motion R^2.

Because always predicting the most common key state already scores high per-tick accuracy on games
(DESIGN section 2), the headline numbers are per-key F1 of key-down state per tick and key-press F1, where
a predicted press matches a true press of the same key within +-50 ms (one to one).

All functions take lists of ``capture.schema`` messages (truth, prediction) and a time window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from capture.schema import BUTTON_FLAGS, KeyboardEvent, MouseEvent, RawMouseEvent
from core.grid import TICK_NS
from core.ticks import down_intervals, held_per_tick

BIN_NS = TICK_NS  # D2E's metric bins are the grid's ticks
TOLERANCE_NS = 50_000_000
_FLAG_TO_BUTTON = {flag: (name, action) for name, flags in BUTTON_FLAGS.items()
                   for flag, action in zip(flags, ("press", "release"), strict=True)}


@dataclass(frozen=True)
class Window:
    """The scored time range ``[start_ns, end_ns)``; bins and ticks start at ``start_ns``."""

    start_ns: int
    end_ns: int

    @property
    def n_bins(self) -> int:
        return max(0, math.ceil((self.end_ns - self.start_ns) / BIN_NS))

    def bin_of(self, t: int) -> int | None:
        if t < self.start_ns or t >= self.end_ns:
            return None
        return (t - self.start_ns) // BIN_NS


def key_events(events: Iterable[Any]) -> list[tuple[int, str, str]]:
    """(t, key, action) of keyboard events, auto-repeats left out (holding a key is one press); the key is the
    VK code as a string so names never matter."""
    return [(e.t_ns, str(e.vk), e.action) for e in events if isinstance(e, KeyboardEvent) and not e.repeat]


def button_events(events: Iterable[Any]) -> list[tuple[int, str, str]]:
    """(t, button, action) from raw button flags, or from pointer events when there are no raw ones."""
    events = list(events)
    raw = [(e.t_ns, *_FLAG_TO_BUTTON[bit]) for e in events if isinstance(e, RawMouseEvent)
           for bit in _FLAG_TO_BUTTON if e.button_flags & bit]
    if raw:
        return raw
    return [(e.t_ns, e.button, e.action) for e in events
            if isinstance(e, MouseEvent) and e.action in ("press", "release") and e.button]


def mouse_bins(events: Iterable[Any], window: Window) -> np.ndarray:
    """(n_bins, 2) sums of raw dx, dy per bin."""
    out = np.zeros((window.n_bins, 2), np.float64)
    for e in events:
        if isinstance(e, RawMouseEvent) and (e.dx or e.dy):
            b = window.bin_of(e.t_ns)
            if b is not None:
                out[b, 0] += e.dx
                out[b, 1] += e.dy
    return out


def count_match_accuracy(truth: Sequence[tuple[int, str, str]], pred: Sequence[tuple[int, str, str]],
                         window: Window) -> tuple[float | None, int]:
    """D2E's exact count match over (kind, action, bin) cells non-empty on either side; (accuracy, cells)."""
    def cells(items: Sequence[tuple[int, str, str]]) -> Counter:
        c: Counter = Counter()
        for t, kind, action in items:
            b = window.bin_of(t)
            if b is not None:
                c[(kind, action, b)] += 1
        return c

    ct, cp = cells(truth), cells(pred)
    keys = set(ct) | set(cp)
    if not keys:
        return None, 0
    return sum(ct[k] == cp[k] for k in keys) / len(keys), len(keys)


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def mouse_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """Pearson X/Y over bins where either side moves, and the scale ratio (>= 1)."""
    moving = (np.abs(truth).sum(1) > 0) | (np.abs(pred).sum(1) > 0)
    t, p = truth[moving], pred[moving]
    out: dict[str, float | None] = {"pearson_x": _pearson(t[:, 0], p[:, 0]) if len(t) else None,
                                    "pearson_y": _pearson(t[:, 1], p[:, 1]) if len(t) else None,
                                    "moving_bins": float(moving.sum())}
    true_mag, pred_mag = np.linalg.norm(t, axis=1).sum(), np.linalg.norm(p, axis=1).sum()
    if true_mag > 0 and pred_mag > 0:
        ratio = pred_mag / true_mag
        out["scale_ratio"] = float(max(ratio, 1 / ratio))
    else:
        out["scale_ratio"] = None
    return out


def key_state_ticks(items: Sequence[tuple[int, str, str]], window: Window, keys: Sequence[str]) -> np.ndarray:
    """(n_ticks, n_keys) key-down state per tick; a key down at any time within a tick counts as down
    (the same rule as the training labels, ``core.ticks``)."""
    intervals = down_intervals((t, int(key), action == "press") for t, key, action in sorted(items))
    return held_per_tick(intervals, [int(k) for k in keys], window.start_ns, window.n_bins, BIN_NS)


def _f1(tp: int, fp: int, fn: int) -> float | None:
    if tp + fp + fn == 0:
        return None
    return 2 * tp / (2 * tp + fp + fn)


def press_f1(truth: Sequence[tuple[int, str, str]], pred: Sequence[tuple[int, str, str]], window: Window,
             tolerance_ns: int = TOLERANCE_NS) -> dict[str, float | None]:
    """Key presses matched one to one within +-tolerance, same key, greedily by time distance."""
    def presses(items: Sequence[tuple[int, str, str]]) -> list[tuple[int, str]]:
        return [(t, k) for t, k, a in items if a == "press" and window.start_ns <= t < window.end_ns]

    tp_list, pp_list = presses(truth), presses(pred)
    pairs = sorted((abs(tt - pt), i, j) for i, (tt, tk) in enumerate(tp_list) for j, (pt, pk) in enumerate(pp_list)
                   if tk == pk and abs(tt - pt) <= tolerance_ns)
    used_t, used_p = set(), set()
    for _d, i, j in pairs:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    tp = len(used_t)
    fp, fn = len(pp_list) - tp, len(tp_list) - tp
    return {"press_f1": _f1(tp, fp, fn), "press_precision": tp / (tp + fp) if tp + fp else None,
            "press_recall": tp / (tp + fn) if tp + fn else None, "true_presses": float(len(tp_list))}


def evaluate_events(truth: Sequence[Any], pred: Sequence[Any], window: Window) -> dict[str, float | None]:
    """Every metric for one window of one recording."""
    tk, pk = key_events(truth), key_events(pred)
    tb, pb = button_events(truth), button_events(pred)
    out: dict[str, float | None] = {}
    out["keyboard_accuracy"], n_key_cells = count_match_accuracy(tk, pk, window)
    out["button_accuracy"], n_button_cells = count_match_accuracy(tb, pb, window)
    out["keyboard_cells"], out["button_cells"] = float(n_key_cells), float(n_button_cells)
    tm, pm = mouse_bins(truth, window), mouse_bins(pred, window)
    out.update(mouse_metrics(tm, pm))
    out.update(press_f1(tk, pk, window))

    keys = sorted({k for _t, k, _a in tk} | {k for _t, k, _a in pk})
    if keys and window.n_bins:
        st, sp = key_state_ticks(tk, window, keys), key_state_ticks(pk, window, keys)
        out["vpt_key_accuracy"] = float((st == sp).mean())
        f1s = [_f1(int((st[:, i] & sp[:, i]).sum()), int((~st[:, i] & sp[:, i]).sum()),
                   int((st[:, i] & ~sp[:, i]).sum())) for i in range(len(keys))]
        valid = [f for f in f1s if f is not None]
        out["per_key_f1"] = float(np.mean(valid)) if valid else None
    else:
        out["vpt_key_accuracy"], out["per_key_f1"] = None, None
    ss_tot = float(((tm - tm.mean(0)) ** 2).sum()) if len(tm) else 0.0
    out["vpt_mouse_r2"] = 1 - float(((tm - pm) ** 2).sum()) / ss_tot if ss_tot > 0 else None
    return out


Scores = dict[str, float | None]


def aggregate(results: Sequence[Scores], weights: Sequence[float] | None = None) -> Scores:
    """Mean of each metric over windows/recordings, ignoring windows where it is undefined."""
    keys = {k for r in results for k in r}
    out: dict[str, float | None] = {}
    for k in sorted(keys):
        vals = [(r[k], w) for r, w in zip(results, weights or [1.0] * len(results)) if r.get(k) is not None]
        out[k] = float(sum(v * w for v, w in vals) / sum(w for _v, w in vals)) if vals else None
    return out
