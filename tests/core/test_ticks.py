"""The one per-tick key-state rule, by hand: taps, carried-in presses, auto-repeat, stray releases."""

from __future__ import annotations

import numpy as np

from core.ticks import NEVER, down_intervals, held_per_tick

MS = 1_000_000


def test_down_intervals_ignore_repeats_and_stray_releases() -> None:
    iv = down_intervals([(0, 1, True), (30 * MS, 1, True), (40 * MS, 2, False), (70 * MS, 1, False),
                         (80 * MS, 3, True)])
    assert iv.tolist() == [[1, 0, 70 * MS], [3, 80 * MS, int(NEVER)]]


def test_held_per_tick_by_hand() -> None:
    iv = down_intervals(sorted([
        (-500 * MS, 10, True),               # held since long before the window
        (-300 * MS, 11, True), (-200 * MS, 11, False),  # pressed and released before it: never shows
        (120 * MS, 12, True), (130 * MS, 12, False),    # a 10 ms tap inside tick 2
        (60 * MS, 10, False),                # key 10 released in tick 1: tick 1 still counts
        (170 * MS, 13, True),                # never released: down to the end
    ]))
    state = held_per_tick(iv, [10, 11, 12, 13], 0, 5)
    expected = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], bool)
    assert np.array_equal(state, expected)
    assert held_per_tick(iv, [99], 0, 3).sum() == 0  # ids outside the columns are ignored


def test_flagged_auto_repeats_are_not_presses_for_labels_tokens_or_metrics() -> None:
    from capture.schema import KeyboardEvent
    from core.inputs import model_inputs
    from core.ticks import EventTable
    from core.tokens import Vocabulary, decode_tokens, encode_window
    from idm.metrics import Window, press_f1
    from idm.metrics import key_events as metric_keys

    held = [KeyboardEvent(0, "press", "right", 0x27), *(KeyboardEvent(k * 33 * MS, "press", "right", 0x27, repeat=True)
                                                        for k in range(3, 9)),
            KeyboardEvent(320 * MS, "release", "right", 0x27)]
    assert [e.t_ns for e in model_inputs(held)] == [0, 320 * MS]
    assert EventTable(held).presses(0, 8, [0x27])[:, 0].tolist() == [True] + [False] * 7
    frames = [k * 50 * MS for k in range(8)]
    vocab = Vocabulary.default()
    decoded = decode_tokens(encode_window(held, frames, 0, vocab), 0, 0, vocab)
    assert [(e.action, e.t_ns) for e in decoded] == [("press", 0), ("release", 320 * MS)]
    truth = metric_keys(held)
    assert press_f1(truth, truth[:1], Window(0, 400 * MS))["press_f1"] == 1.0  # one press, not seven
