"""Human timing of intent policies: reactions, holds, taps, and never two opposing keys at once."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from capture.sources.hands import OPPOSING, Hands, IntentPolicy, StateHistory, approach

FRAME = round(1e9 / 60)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.frozensets(st.sampled_from(["left", "right", "up", "down", "space"])), min_size=1, max_size=300),
       st.integers(0, 2**16))
def test_opposing_keys_are_never_held_together(wishes: list[frozenset[str]], seed: int) -> None:
    hands = Hands(tap_keys=frozenset({"space"}), mistake_prob=0.3, rng=random.Random(seed))
    for k, wanted in enumerate(wishes):
        held = hands.apply(set(wanted), k * FRAME)
        assert not any(a in held and b in held for a, b in OPPOSING), held


def _holds(hands: Hands, wishes: list[set[str]]) -> tuple[list[frozenset[str]], dict[str, list[int]]]:
    timeline, started, lengths = [], {}, {}
    prev: frozenset[str] = frozenset()
    for k, wanted in enumerate(wishes):
        held = hands.apply(wanted, k * FRAME)
        for key in held - prev:
            started[key] = k
        for key in prev - held:
            lengths.setdefault(key, []).append(k - started.pop(key))
        timeline.append(held)
        prev = held
    return timeline, lengths


def test_holds_last_at_least_a_tap_and_taps_are_released_and_repressed() -> None:
    hands = Hands(tap_keys=frozenset({"space"}), mistake_prob=0.0, idle_rate=0.0, rng=random.Random(1))
    # flicker the wish for right every frame and hold the wish for space for 3 s
    wishes = [({"right"} if k % 2 else set()) | {"space"} for k in range(180)]
    timeline, lengths = _holds(hands, wishes)
    assert min(lengths["right"]) >= 3  # >= 50 ms even though the wish lasted one frame
    assert len(lengths["space"]) >= 5 and max(lengths["space"]) <= 13  # taps of 60-200 ms, pressed again
    gaps = [k for k in range(1, 180) if "space" in timeline[k] and "space" not in timeline[k - 1]]
    assert min(b - a for a, b in zip(gaps, gaps[1:])) >= 8  # a pause between taps


def test_switching_direction_releases_first_and_waits() -> None:
    hands = Hands(mistake_prob=0.0, idle_rate=0.0, rng=random.Random(2))
    timeline, _ = _holds(hands, [{"left"}] * 20 + [{"right"}] * 20)
    first_right = next(k for k, h in enumerate(timeline) if "right" in h)
    last_left = max(k for k, h in enumerate(timeline) if "left" in h)
    assert first_right > last_left + 1  # at least one frame with neither


def test_mistakes_go_the_wrong_way_then_correct() -> None:
    hands = Hands(mistake_prob=1.0, idle_rate=0.0, rng=random.Random(3))
    timeline, _ = _holds(hands, [{"right"}] * 60)
    assert timeline[0] == {"left"} and "right" in timeline[-1]


class _Echo(IntentPolicy):
    """Wants "right" whenever the state it sees (one reaction ago) is positive."""

    def want(self, now, before, t_ns):
        return {"right"} if now > 0 else set()


def test_policies_answer_a_change_one_reaction_time_later() -> None:
    delays = []
    for seed in range(20):
        policy = _Echo(mistake_prob=0.0, idle_rate=0.0)
        policy.reset(seed)
        for k in range(120):
            policy.observe(1 if k >= 30 else 0)
            if "right" in policy.step(k * FRAME).keys:
                delays.append((k - 30) * FRAME / 1e6)
                break
    assert len(delays) == 20 and min(delays) >= 140 and max(delays) <= 320


def test_history_reads_the_state_at_a_past_time() -> None:
    h = StateHistory()
    for k in range(10):
        h.add(k * 10, k)
    assert h.at(55) == 5 and h.at(55, back=2) == 3 and h.at(-5) == 0


def test_approach_stops_early_by_the_expected_coast() -> None:
    assert approach(0, 0, 10, 2, 0) == 1 and approach(0, 5, 10, 2, 2) == 0 and approach(20, 0, 10, 2, 0) == -1
