"""Chance baselines: majority, always held and random presses at the true rate."""

from __future__ import annotations

import numpy as np
import pytest

from capture.schema import KeyboardEvent
from idm.baselines import AlwaysHeld, MajorityBaseline, RandomAtRate
from idm.metrics import Window, evaluate_events

LEFT, RIGHT = 0x25, 0x27


def _taps(vk: int, starts_s: list[float], hold_s: float) -> list[KeyboardEvent]:
    out = []
    for s in starts_s:
        out += [KeyboardEvent(int(s * 1e9), "press", "k", vk),
                KeyboardEvent(int((s + hold_s) * 1e9), "release", "k", vk)]
    return out


def test_majority_holds_only_keys_down_in_most_ticks() -> None:
    state = np.array([[1, 0], [1, 1], [1, 0], [0, 0]], bool)
    m = MajorityBaseline().fit(state, [LEFT, RIGHT])
    assert m.held_vks == [LEFT]
    assert m.predict([100, 150]) == [KeyboardEvent(100, "press", "left", LEFT)] and m.predict([]) == []


def test_always_held_presses_every_key_once_and_scores_the_hold_rate() -> None:
    events = AlwaysHeld().fit([LEFT, RIGHT]).predict([0, 50_000_000])
    assert [(e.t_ns, e.vk, e.action) for e in events] == [(0, LEFT, "press"), (0, RIGHT, "press")]
    truth = _taps(LEFT, [0.0, 1.0], 0.5)  # held half the time
    frames = list(range(0, 2_000_000_000, 50_000_000))
    score = evaluate_events(truth, AlwaysHeld().fit([LEFT]).predict(frames), Window(0, 2_000_000_000))
    p = 11 / 20  # down in 11 of every 20 ticks: the tick of the release counts as down (core.ticks)
    assert abs(score["per_key_f1"] - 2 * p / (1 + p)) < 1e-9


def test_random_at_rate_matches_rate_and_holds_and_is_seeded() -> None:
    starts = list(np.arange(0, 60, 0.5))  # 2 presses/s of 100 ms, 1 press/s of 300 ms
    train = _taps(LEFT, starts, 0.1) + _taps(RIGHT, list(np.arange(0.2, 60, 1.0)), 0.3)
    chance = RandomAtRate(seed=5).fit([train], 60.0)
    assert chance.rates == {LEFT: 2.0, RIGHT: 1.0}
    frames = list(range(0, 600_000_000_000, 50_000_000))  # 10 minutes
    pred = chance.predict(frames)
    assert pred == RandomAtRate(seed=5).fit([train], 60.0).predict(frames) != RandomAtRate(seed=6).fit(
        [train], 60.0).predict(frames)
    for vk, rate, hold in ((LEFT, 2.0, 0.1), (RIGHT, 1.0, 0.3)):
        presses = [e.t_ns for e in pred if e.vk == vk and e.action == "press"]
        releases = [e.t_ns for e in pred if e.vk == vk and e.action == "release"]
        assert abs(len(presses) / 600 - rate) < 0.1 * rate
        assert np.allclose(np.array(releases) - np.array(presses), hold * 1e9)
        assert all(r <= p for r, p in zip(releases, presses[1:]))  # pressed again only after the release


def test_random_at_rate_is_near_chance_against_unrelated_truth() -> None:
    rng = np.random.default_rng(0)
    truth = _taps(LEFT, sorted(rng.uniform(0, 120, 240).tolist()), 0.1)
    chance = RandomAtRate(seed=1).fit([truth], 120.0)
    frames = list(range(0, 120_000_000_000, 50_000_000))
    f1 = evaluate_events(truth, chance.predict(frames), Window(0, 120_000_000_000))["press_f1"]
    assert 0.1 < f1 < 0.35  # 2 presses/s each side, +-50 ms: about 2 * 0.1 s * 2 /s = 0.2 of presses collide


def test_chance_is_the_mean_of_seeded_draws_with_its_spread() -> None:
    """One random draw swings press F1 by hundredths, which decided 'below chance' on held-out games; chance
    is the mean of several draws, reported with their standard deviation."""
    from idm.evaluate import CHANCE_DRAWS, RecordingFrames, chance_scores, game_chance, score

    rng = np.random.default_rng(3)
    truth = _taps(LEFT, sorted(rng.uniform(0, 60, 60).tolist()), 0.1)
    frames = list(range(0, 60_000_000_000, 50_000_000))
    rec = RecordingFrames(None, frames, np.zeros((0,), np.uint8), truth)  # type: ignore[arg-type]
    draws, always = game_chance(rec)
    assert len(draws) == CHANCE_DRAWS and len({tuple(e.t_ns for e in d) for d in draws}) == CHANCE_DRAWS
    assert {e.vk for e in always} == {LEFT}
    scores = [score(rec, d, [LEFT]) for d in draws]
    chance = chance_scores(scores)
    f1 = [s["press_f1"] for s in scores]
    assert chance["press_f1"] == pytest.approx(np.mean(f1)) and chance["press_f1_sd"] == pytest.approx(np.std(f1))
    assert 0 < chance["press_f1_sd"] < chance["press_f1"]
