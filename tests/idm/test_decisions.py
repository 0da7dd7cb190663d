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


def _segment(levels: tuple[float, float], presses: int, n: int = 240, vk: int = 0x41, seed: int = 0) -> dict:
    """One segment where key ``vk`` is pressed ``presses`` times, held 3 ticks; its held probability sits at
    ``levels`` (down, up) and its onset probability peaks at each press. The second key column never fires."""
    rng = np.random.default_rng(seed)
    times = [i * TICK for i in range(n)]
    starts = np.linspace(5, n - 10, presses).astype(int) if presses else []
    truth, held, onset = [], np.zeros(n, bool), np.zeros(n, bool)
    for s in starts:
        truth += [KeyboardEvent(s * TICK + 10 * MS, "press", "a", vk), KeyboardEvent((s + 2) * TICK + 30 * MS,
                                                                                      "release", "a", vk)]
        held[s:s + 3], onset[s] = True, True
    keys = np.stack([np.where(held, *levels), np.full(n, 0.01)], 1) + rng.uniform(0, 0.02, (n, 2))
    presses_p = np.stack([np.where(onset, levels[0], 0.02), np.full(n, 0.01)], 1)
    return {"times": times, "truth": truth,
            "probs": {KEYS: keys, PRESSES: presses_p, BUTTONS: np.zeros((n, 5)), MOUSE: np.zeros((n, 2))}}


def test_each_training_game_gets_its_own_thresholds_and_unused_keys_never_fire() -> None:
    """Key A's probabilities sit at 0.3/0.1 in one game and 0.8/0.5 in another: no pooled threshold separates
    both, each game's own does. Key B is never pressed (never fires); a game with too few presses of A keeps
    the pooled thresholds for it."""
    from idm.calibrate import MIN_PRESSES, NEVER, game_thresholds, thresholds_for

    low, high = _segment((0.3, 0.1), 20), _segment((0.8, 0.5), 20, seed=1)
    vks = [0x41, 0x42]
    pooled = choose_thresholds([low, high], vks)["thresholds"]
    own = {name: game_thresholds([seg], vks, pooled) for name, seg in (("low", low), ("high", high))}
    assert 0.1 < own["low"][KEYS][0] <= 0.3 and 0.5 < own["high"][KEYS][0] <= 0.8
    for name, seg in (("low", low), ("high", high)):
        thr = own[name]
        assert thr[KEYS][1] == thr[PRESSES][1] == NEVER and thr[BUTTONS] == [NEVER] * 5  # not used in this game
        decoded = [e for e, _c in key_events(seg["probs"][KEYS], seg["probs"][PRESSES], thr, seg["times"], vks)]
        assert [(e.vk, e.action) for e in decoded].count((0x41, "press")) == 20
        assert not any(e.vk == 0x42 for e in decoded)
    assert not (0.1 < pooled[KEYS][0] <= 0.3 and 0.5 < pooled[KEYS][0] <= 0.8)  # one cut cannot serve both
    rare = game_thresholds([_segment((0.3, 0.1), MIN_PRESSES - 1)], vks, pooled)
    assert rare[KEYS][0] == pooled[KEYS][0] and rare[PRESSES][0] == pooled[PRESSES][0]
    labels = {"thresholds": pooled, "thresholds_by_game": own}
    assert thresholds_for(labels, "high") == own["high"]
    assert thresholds_for(labels, "pong") == thresholds_for(labels, None) == pooled  # a game it never saw


def test_a_labeler_for_a_training_game_decides_at_that_games_thresholds(tick_model) -> None:
    from core.run import RunFolder
    from idm.calibrate import NEVER
    from idm.predict import calibrated_games, load_labeler

    run = RunFolder(tick_model)
    everything = {KEYS: [0.0, 0.0], PRESSES: [0.0, 0.0], BUTTONS: [0.0] * 5}
    nothing = {KEYS: [NEVER] * 2, PRESSES: [NEVER] * 2, BUTTONS: [NEVER] * 5}
    run.save_labels({"thresholds": everything, "thresholds_by_game": {"quiet": nothing}})
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    times = [i * TICK for i in range(12)]
    pooled = load_labeler(tick_model, device="cpu")
    assert calibrated_games(tick_model) == ["quiet"]
    assert any(isinstance(e, KeyboardEvent) for e, _c in pooled(frames, times))
    assert not any(isinstance(e, KeyboardEvent) for e, _c in pooled.for_game("quiet")(frames, times))
    assert not any(isinstance(e, KeyboardEvent) for e, _c in load_labeler(tick_model, device="cpu",
                                                                           game="quiet")(frames, times))
    assert pooled.for_game("unseen").thresholds == everything


def test_a_pressed_key_stays_down_above_its_keep_down_threshold() -> None:
    """Hysteresis: a rise needs the held threshold, staying down only the lower keep-down one."""
    from idm.calibrate import KEEP_DOWN

    times = [i * TICK for i in range(6)]
    onset = np.array([[0.1], [0.9], [0.1], [0.1], [0.1], [0.1]])
    held = np.array([[0.1], [0.9], [0.4], [0.4], [0.1], [0.4]])
    strict = {KEYS: [0.5], PRESSES: [0.5]}
    assert [(e.action, e.t_ns) for e, _c in key_events(held, onset, strict, times, [0x41])] == [
        ("press", TICK + 25 * MS), ("release", 2 * TICK - 1)]
    loose = {**strict, KEEP_DOWN: [0.3]}  # tick 5's 0.4 is no new press: a rise still needs 0.5
    assert [(e.action, e.t_ns) for e, _c in key_events(held, onset, loose, times, [0x41])] == [
        ("press", TICK + 25 * MS), ("release", 4 * TICK - 1)]
