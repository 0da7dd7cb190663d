"""The 20 Hz grid every model sees: tick length, button order, NEP-tau in ticks, and the frame rule.

Training windows, evaluation, pseudo-labeling of recordings and of web videos all put frames on this
grid. A grid point shows the frame *nearest* to it in time (ties: the earlier one): capture jitter of a
few milliseconds then never shifts a frame by a whole tick, and a 30 fps web video resamples to 20 Hz
without drift. Generated game recordings capture exactly on the grid, where every rule agrees.
"""

from __future__ import annotations

import numpy as np

from capture.schema import BUTTON_FLAGS

TICK_NS = 50_000_000
TICKS_PER_SECOND = 1_000_000_000 // TICK_NS

# Mouse buttons in the order of per-tick button labels and heads.
BUTTONS: tuple[str, ...] = tuple(BUTTON_FLAGS)
# RAWMOUSE button flag -> (button index, is_up)
FLAG_BUTTON: dict[int, tuple[int, bool]] = {flag: (i, is_up) for i, name in enumerate(BUTTONS)
                                            for is_up, flag in enumerate(BUTTON_FLAGS[name])}


def tau_ns(tau_ms: float) -> int:
    """NEP-tau in nanoseconds."""
    return round(tau_ms * 1_000_000)


def tau_ticks(tau_ms: float) -> float:
    """NEP-tau in ticks: how far a token's frame lies after the frames that show its event."""
    return tau_ns(tau_ms) / TICK_NS


def grid_times(start_ns: int, n: int) -> np.ndarray:
    """(n,) int64 grid times from ``start_ns``."""
    return start_ns + np.arange(n, dtype=np.int64) * TICK_NS


def grid_length(first_ns: int, last_ns: int) -> int:
    """Grid points from the first to the last frame time, both included."""
    return int((last_ns - first_ns) // TICK_NS) + 1


def nearer_is_next(current_ns: int, next_ns: int, grid_ns: int) -> bool:
    """The frame rule for a stream: with ``current <= grid < next``, does the next frame show ``grid``?"""
    return next_ns - grid_ns < grid_ns - current_ns


def frame_at(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame shown at each of ``times`` (the nearest; ties: the earlier), over sorted frame times."""
    before = np.clip(np.searchsorted(frame_times, times, side="right") - 1, 0, len(frame_times) - 1)
    after = np.minimum(before + 1, len(frame_times) - 1)
    take_next = (frame_times[after] - times < times - frame_times[before]) & (frame_times[before] <= times)
    return np.where(take_next, after, before)
