"""Per-tick labels: which keys and buttons are down in each 50 ms tick, and the mouse motion in it.

One rule shared by training labels, the IDM metrics, the tick model's output and the VPT export: a key
counts as down in every tick in which it is down at any moment, the tick of its release included, so a tap
shorter than a tick still marks its tick (VPT's dense labels do the same). A press before the first tick
carries into it; a key never released stays down to the end. Intervals are kept as an int64 array so that
serving thousands of training windows filters them with one comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from capture.keys import name_for
from capture.schema import BUTTON_FLAGS, KeyboardEvent, RawMouseEvent

from .grid import BUTTONS, FLAG_BUTTON, TICK_NS
from .inputs import model_inputs

NEVER = np.iinfo(np.int64).max


def down_intervals(transitions: Iterable[tuple[int, int, bool]]) -> np.ndarray:
    """(m, 3) rows of (id, down_ns, up_ns) from time-ordered (t_ns, id, pressed) transitions.

    A repeated press of a held id (auto-repeat) is ignored, a release of an id that is not down is
    dropped, and ids still down at the end get ``up_ns = NEVER``.
    """
    rows: list[tuple[int, int, int]] = []
    down: dict[int, int] = {}
    for t, ident, pressed in transitions:
        if pressed:
            down.setdefault(ident, t)
        elif ident in down:
            rows.append((ident, down.pop(ident), t))
    rows += [(ident, t, int(NEVER)) for ident, t in down.items()]
    return np.array(rows, np.int64).reshape(-1, 3)


def held_per_tick(intervals: np.ndarray, columns: Sequence[int], start_ns: int, n: int,
                  tick_ns: int = TICK_NS) -> np.ndarray:
    """(n, len(columns)) bool: which column ids are down during each of ``n`` ticks from ``start_ns``."""
    state = np.zeros((n, len(columns)), bool)
    col = {ident: i for i, ident in enumerate(columns)}
    end_ns = start_ns + n * tick_ns
    near = intervals[(intervals[:, 2] >= start_ns) & (intervals[:, 1] < end_ns)]
    for ident, down, up in near.tolist():
        if ident in col:
            state[max(0, (down - start_ns) // tick_ns):(up - start_ns) // tick_ns + 1, col[ident]] = True
    return state


class EventTable:
    """A recording's input events, prepared once so that each window's labels cost a few array lookups.

    The model inputs in time order (``core.inputs``), the raw mouse motion as arrays, and each key's and
    button's down intervals. Intervals make "held since before the window" exact however long ago the press
    was, and avoid re-walking thousands of 1 kHz mouse events before every window.
    """

    def __init__(self, events: Sequence[Any]):
        self.events = sorted(model_inputs(events), key=lambda e: e.t_ns)
        self.t = np.fromiter((e.t_ns for e in self.events), np.int64, len(self.events))
        mouse = [e for e in self.events if isinstance(e, RawMouseEvent)]
        self.mouse_t = np.fromiter((e.t_ns for e in mouse), np.int64, len(mouse))
        self.mouse_d = np.array([(e.dx, e.dy) for e in mouse], np.float32).reshape(-1, 2)
        keys = ((e.t_ns, e.vk, e.action == "press") for e in self.events if isinstance(e, KeyboardEvent))
        buttons = ((e.t_ns, b, not is_up) for e in self.events if isinstance(e, RawMouseEvent) and e.button_flags
                   for flag, (b, is_up) in FLAG_BUTTON.items() if e.button_flags & flag)
        self.key_iv = down_intervals(keys)
        self.btn_iv = down_intervals(buttons)

    def between(self, start_ns: int, end_ns: int) -> list[Any]:
        """The events with ``start_ns <= t < end_ns``."""
        lo, hi = np.searchsorted(self.t, [start_ns, end_ns])
        return self.events[lo:hi]

    def ticks(self, start_ns: int, n: int, vks: Sequence[int],
              tick_ns: int = TICK_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels of ``n`` ticks from ``start_ns``: keys (n, K) and buttons (n, 5) down at any time in a tick
        (the tick of a release included), mouse (n, 2) summed raw motion."""
        end_ns = start_ns + n * tick_ns
        keys = held_per_tick(self.key_iv, vks, start_ns, n, tick_ns)
        buttons = held_per_tick(self.btn_iv, range(len(BUTTONS)), start_ns, n, tick_ns)
        lo, hi = np.searchsorted(self.mouse_t, [start_ns, end_ns])
        mouse = np.zeros((n, 2), np.float32)
        np.add.at(mouse, (self.mouse_t[lo:hi] - start_ns) // tick_ns, self.mouse_d[lo:hi])
        return keys, buttons, mouse


def tick_labels(events: Sequence[Any], start_ns: int, n: int, vks: Sequence[int],
                tick_ns: int = TICK_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels per tick (see ``EventTable.ticks``) from a list of events, which must include those before
    ``start_ns`` that set the key/button state entering it."""
    return EventTable(events).ticks(start_ns, n, vks, tick_ns)


def ticks_to_events(keys: np.ndarray, buttons: np.ndarray, mouse: np.ndarray, times: Sequence[int],
                    vks: Sequence[int], key_conf: np.ndarray | None = None) -> list[tuple[Any, float]]:
    """The inverse: per-tick states -> press/release events at tick starts and raw motion per tick, with
    confidences; whatever is still down at the end is released in the last tick."""
    out: list[tuple[Any, float]] = []
    prev_k = np.zeros(keys.shape[1], bool)
    prev_b = np.zeros(buttons.shape[1], bool)
    for i, t in enumerate(times):
        for j in np.flatnonzero(keys[i] != prev_k):
            conf = float(key_conf[i, j]) if key_conf is not None else 1.0
            vk = int(vks[j])
            out.append((KeyboardEvent(t, "press" if keys[i, j] else "release", name_for(vk), vk), conf))
        for j in np.flatnonzero(buttons[i] != prev_b):
            down, up = BUTTON_FLAGS[BUTTONS[j]]
            out.append((RawMouseEvent(t + 1, 0, 0, down if buttons[i, j] else up), 1.0))
        dx, dy = int(round(mouse[i, 0])), int(round(mouse[i, 1]))
        if dx or dy:
            out.append((RawMouseEvent(t + 2, dx, dy), 1.0))
        prev_k, prev_b = keys[i], buttons[i]
    if len(times):
        t_end = times[-1] + TICK_NS
        for j in np.flatnonzero(prev_k):
            vk = int(vks[j])
            out.append((KeyboardEvent(t_end - 1, "release", name_for(vk), vk), 1.0))
        for j in np.flatnonzero(prev_b):
            out.append((RawMouseEvent(t_end - 1, 0, 0, BUTTON_FLAGS[BUTTONS[j]][1]), 1.0))
    return out
