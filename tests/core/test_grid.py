"""The frame rule on the 20 Hz grid: the nearest frame, ties to the earlier, the same for arrays and streams."""

from __future__ import annotations

import numpy as np

from core.grid import BUTTONS, TICK_NS, frame_at, grid_length, grid_times, nearer_is_next, tau_ns, tau_ticks

MS = 1_000_000


def test_nearest_frame_with_jitter_ties_and_edges() -> None:
    frames = np.array([0, 48, 103, 149, 201, 300], np.int64) * MS
    times = grid_times(0, 8)
    assert frame_at(frames, times).tolist() == [0, 1, 2, 3, 4, 4, 5, 5]  # 250 ms: 201 (49 away) beats 300 (50)
    assert frame_at(frames, np.array([-10, 75, 76, 10_000], np.int64) * MS).tolist() == [0, 1, 2, 5]
    assert frame_at(frames, np.array([int(75.5 * MS)], np.int64)).tolist() == [1]  # a tie: the earlier frame


def test_the_stream_rule_agrees_with_the_array_rule() -> None:
    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.integers(20, 70, 200)) * MS
    times = grid_times(int(frames[0]), grid_length(int(frames[0]), int(frames[-1])))
    streamed, k = [], 0
    for g in times:  # a decoder walking forward: current <= g < next
        while k + 1 < len(frames) and frames[k + 1] <= g:
            k += 1
        after = k + 1 if k + 1 < len(frames) else k
        streamed.append(after if after != k and nearer_is_next(int(frames[k]), int(frames[after]), int(g)) else k)
    assert streamed == frame_at(frames, times).tolist()


def test_units() -> None:
    assert TICK_NS == 50 * MS and BUTTONS == ("left", "right", "middle", "x1", "x2")
    assert tau_ns(100) == 100 * MS and tau_ticks(150) == 3.0
    assert grid_length(0, 0) == 1 and grid_length(0, 99 * MS) == 2
