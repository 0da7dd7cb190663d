"""Key decisions by hand: onset peaks, keys from onset + held probabilities, calibrated thresholds."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from capture.schema import KeyboardEvent  # noqa: E402
from core.nn.heads import BUTTONS, KEYS, MOUSE, PRESSES  # noqa: E402
from idm.calibrate import choose_thresholds  # noqa: E402
from idm.predict import key_events, onset_peaks  # noqa: E402

MS = 1_000_000
TICK = 50 * MS


def test_onset_peaks_are_local_maxima_above_the_threshold_and_apart() -> None:
    p = np.array([0.1, 0.6, 0.5, 0.2, 0.7, 0.8, 0.3, 0.05, 0.45, 0.9])
    assert onset_peaks(p, 0.5) == [1, 5, 9]  # 4 rises into 5; 8 is under the threshold
    assert onset_peaks(p, 0.5, gap=5) == [1, 9]  # 5 lies within 5 ticks of the higher peak at 9
    assert onset_peaks(np.array([0.9, 0.9, 0.1]), 0.5) == [1]  # a plateau counts once (its last tick)
    assert onset_peaks(np.zeros(4), 0.5) == []


def test_keys_from_onsets_and_held_probabilities() -> None:
    times = [i * TICK for i in range(8)]
    onset = np.array([[0.1], [0.9], [0.2], [0.1], [0.8], [0.1], [0.1], [0.1]])
    held = np.array([[0.1], [0.9], [0.8], [0.2], [0.9], [0.9], [0.9], [0.2]])
    events = [e for e, _c in key_events(held, onset, {KEYS: [0.5], PRESSES: [0.5]}, times, [0x41])]
    assert [(e.action, e.t_ns) for e in events] == [
        ("press", TICK + 25 * MS), ("release", 3 * TICK - 1),  # held through tick 2, up in tick 3
        ("press", 4 * TICK + 25 * MS), ("release", 7 * TICK - 1)]
    assert all(isinstance(e, KeyboardEvent) and e.key == "a" for e in events)
    # a held run whose onset peak comes a tick late starts at the peak; a second onset while held re-presses
    onset[4, 0] = 0.1
    onset[5, 0] = 0.95
    again = [(e.action, e.t_ns) for e, _c in key_events(held, onset, {KEYS: [0.5], PRESSES: [0.5]}, times, [0x41])]
    assert again == [("press", TICK + 25 * MS), ("release", 3 * TICK - 1), ("press", 5 * TICK + 25 * MS),
                     ("release", 7 * TICK - 1)]
    # a held run with no onset peak near its start is a press the onset head missed
    quiet = np.full_like(onset, 0.1)
    quiet[1, 0] = 0.9
    missed = [(e.action, e.t_ns) for e, _c in key_events(held, quiet, {KEYS: [0.5], PRESSES: [0.5]}, times, [0x41])]
    assert missed == [("press", TICK + 25 * MS), ("release", 3 * TICK - 1), ("press", 4 * TICK + 25 * MS),
                      ("release", 7 * TICK - 1)]
    # without an onset head: the thresholded held state's changes (VPT's reading)
    legacy = [(e.action, e.t_ns) for e, _c in key_events(held, None, {KEYS: [0.5]}, times, [0x41])]
    assert legacy == [("press", TICK), ("release", 3 * TICK), ("press", 4 * TICK), ("release", 7 * TICK)]


def test_calibration_finds_the_thresholds_that_separate_the_truth() -> None:
    """Probabilities that rank presses perfectly but sit far from 0.5 must still decode the truth."""
    rng = np.random.default_rng(0)
    n = 400
    times = [i * TICK for i in range(n)]
    starts = sorted(rng.choice(np.arange(2, n - 10, 12), 25, replace=False))
    truth, held_true, onset_true = [], np.zeros(n, bool), np.zeros(n, bool)
    for s in starts:
        length = int(rng.integers(2, 6))
        truth += [KeyboardEvent(s * TICK + 10 * MS, "press", "a", 0x41),
                  KeyboardEvent((s + length - 1) * TICK + 30 * MS, "release", "a", 0x41)]
        held_true[s:s + length] = True
        onset_true[s] = True
    probs = {KEYS: np.where(held_true, 0.3, 0.1)[:, None] + rng.uniform(0, 0.05, (n, 1)),
             PRESSES: np.where(onset_true, 0.2, 0.02)[:, None] + rng.uniform(0, 0.02, (n, 1)),
             BUTTONS: np.zeros((n, 5)), MOUSE: np.zeros((n, 2))}
    out = choose_thresholds([{"times": times, "probs": probs, "truth": truth}], [0x41])
    thr = out["thresholds"]
    assert 0.15 < thr[KEYS][0] <= 0.3  # between the two levels of the held probability, far from 0.5
    assert out["calibration"]["press_f1"] == 1.0 and out["calibration"]["per_key_f1"] == 1.0
    decoded = [e for e, _c in key_events(probs[KEYS], probs[PRESSES], thr, times, [0x41])]
    assert [e.action for e in decoded].count("press") == 25
