"""Key and button down-state per 50 ms tick: one rule shared by training labels and the IDM metrics.

A key counts as down in every tick in which it is down at any moment, the tick of its release
included, so a tap shorter than a tick still marks its tick (VPT's dense labels do the same). A press
before the first tick carries into it; a key never released stays down to the end. Intervals are kept
as an int64 array so that serving thousands of training windows filters them with one comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

GRID_NS = 50_000_000
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
                  tick_ns: int = GRID_NS) -> np.ndarray:
    """(n, len(columns)) bool: which column ids are down during each of ``n`` ticks from ``start_ns``."""
    state = np.zeros((n, len(columns)), bool)
    col = {ident: i for i, ident in enumerate(columns)}
    end_ns = start_ns + n * tick_ns
    near = intervals[(intervals[:, 2] >= start_ns) & (intervals[:, 1] < end_ns)]
    for ident, down, up in near.tolist():
        if ident in col:
            state[max(0, (down - start_ns) // tick_ns):(up - start_ns) // tick_ns + 1, col[ident]] = True
    return state
