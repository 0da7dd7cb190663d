"""The human part of an intent policy: seeing late, holding keys for real durations, never fighting itself.

A policy that plays with intent (``capture.sources.players``) decides which keys it *wants* from the game
state; this module turns that wish into key holds a person would produce, so that the recorded ground
truth looks like play and every press has a reason an IDM can see:

- **Reaction time.** Decisions read the state as it was one reaction time ago (150-300 ms, drawn anew
  after every key change, i.e. once per reaction), so a press follows the event it answers by a human delay.
- **Holds.** A press lasts at least a tap (60-120 ms, drawn per press); keys named as taps (fire buttons)
  are released after 60-200 ms even when still wanted and pressed again after a pause, as people tap fire.
- **Opposing keys** (left+right, up+down) are never held together: switching releases one first and presses
  the other at least a frame later.
- **Mistakes and idles.** With a small chance a new direction press goes the wrong way for a short hold,
  and now and then the hands rest for 0.3-1.2 s.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .policy import Intent

OPPOSING = (("left", "right"), ("up", "down"), ("a", "d"), ("w", "s"))


def opposite_of(key: str) -> str | None:
    for a, b in OPPOSING:
        if key == a:
            return b
        if key == b:
            return a
    return None


@dataclass
class Hands:
    """Turns wanted keys into held keys with human timing (see the module docstring).

    Attributes:
        tap_keys: Keys that are tapped, never held long (fire buttons).
        reaction_ms: Range of reaction times, drawn per reaction.
        min_hold_ms: Range of the shortest hold of a press, drawn per press.
        tap_hold_ms: Range of a tap's hold.
        switch_gap_ms: Range of the pause between releasing a key and pressing its opposite.
        retap_gap_ms: Range of the pause between releasing a key and pressing it again.
        mistake_prob: Chance that a new direction press goes the wrong way first.
        mistake_keys: Keys whose presses can go the wrong way (default: every key with an opposite).
        idle_rate: Rests per second while playing; each lasts ``idle_s``.
        idle_s: Range of a rest's length in seconds.
    """

    tap_keys: frozenset[str] = frozenset()
    reaction_ms: tuple[float, float] = (150.0, 300.0)
    min_hold_ms: tuple[float, float] = (60.0, 120.0)
    tap_hold_ms: tuple[float, float] = (60.0, 200.0)
    switch_gap_ms: tuple[float, float] = (17.0, 60.0)
    retap_gap_ms: tuple[float, float] = (80.0, 250.0)
    mistake_prob: float = 0.04
    mistake_keys: frozenset[str] | None = None
    idle_rate: float = 0.05
    idle_s: tuple[float, float] = (0.3, 1.2)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.reset(self.rng)

    def reset(self, rng: random.Random) -> None:
        self.rng = rng
        self.held: dict[str, int] = {}  # key -> earliest release time (ns)
        self.next_press_at: dict[str, int] = {}
        self.forced: dict[str, int] = {}  # mistaken presses held until their time, whatever is wanted
        self.correcting: set[str] = set()  # keys whose next press follows a mistake: done right
        self.idle_until = 0
        self.lag_ns = self._draw(self.reaction_ms)
        self._last_t: int | None = None

    def _draw(self, range_ms: tuple[float, float]) -> int:
        return int(self.rng.uniform(*range_ms) * 1e6)

    def idle(self, t_ns: int) -> bool:
        """Whether the hands rest now (a rest starts at random, ``idle_rate`` per second)."""
        dt = 0.0 if self._last_t is None else (t_ns - self._last_t) / 1e9
        self._last_t = t_ns
        if t_ns < self.idle_until:
            return True
        if self.rng.random() < self.idle_rate * dt:
            self.idle_until = t_ns + int(self.rng.uniform(*self.idle_s) * 1e9)
            return True
        return False

    def _press(self, key: str, t_ns: int, hold_ms: tuple[float, float]) -> None:
        self.held[key] = t_ns + self._draw(hold_ms)
        self.lag_ns = self._draw(self.reaction_ms)  # a new reaction starts with this key change

    def _release(self, key: str, t_ns: int) -> None:
        del self.held[key]
        self.forced.pop(key, None)
        self.next_press_at[key] = t_ns + self._draw(self.retap_gap_ms)  # a finger needs a moment to press again
        other = opposite_of(key)
        if other is not None:
            self.next_press_at[other] = t_ns + self._draw(self.switch_gap_ms)
        self.lag_ns = self._draw(self.reaction_ms)

    def apply(self, wanted: set[str], t_ns: int) -> frozenset[str]:
        """The keys held at ``t_ns`` given the keys wanted now."""
        for key in [k for k in self.forced if k in self.held and t_ns < self.forced[k]]:
            other = opposite_of(key)
            wanted = (wanted - {other}) | {key}
        # releases first: unwanted keys, finished taps
        for key, earliest in list(self.held.items()):
            done_tap = key in self.tap_keys and t_ns >= earliest
            if (key not in wanted or done_tap) and t_ns >= earliest:
                self._release(key, t_ns)
        for key in sorted(wanted - set(self.held)):
            other = opposite_of(key)
            if (other is not None and other in self.held) or t_ns < self.next_press_at.get(key, 0):
                continue  # the opposite is released first, and the hand needs a moment to switch
            if key in self.tap_keys:
                self._press(key, t_ns, self.tap_hold_ms)
            elif (other is not None and (self.mistake_keys is None or key in self.mistake_keys)
                  and other not in wanted and key not in self.correcting and self.rng.random() < self.mistake_prob):
                self._press(other, t_ns, (100.0, 220.0))  # the wrong way first, noticed after a reaction
                self.forced[other] = self.held[other]
                self.correcting.add(key)
            else:
                self._press(key, t_ns, self.min_hold_ms)
                self.correcting.discard(key)
        return frozenset(self.held)


class StateHistory:
    """The states a policy has observed, so that it can read the one from a reaction time ago."""

    def __init__(self, keep_ns: int = 1_000_000_000):
        self.keep_ns = keep_ns
        self.items: deque[tuple[int, Any]] = deque()

    def add(self, t_ns: int, state: Any) -> None:
        self.items.append((t_ns, state))
        while len(self.items) > 2 and self.items[1][0] <= t_ns - self.keep_ns:
            self.items.popleft()

    def at(self, t_ns: int, back: int = 0) -> Any:
        """The latest state observed at or before ``t_ns`` (the oldest one kept if none), ``back`` steps before."""
        items = self.items
        i = len(items) - 1
        while i > 0 and items[i][0] > t_ns:
            i -= 1
        return items[max(0, i - back)][1]


class IntentPolicy:
    """Base of the policies that play with intent: ``observe(state)``, then ``step(t_ns) -> Intent``.

    A subclass implements ``want(now, before, t_ns) -> set of keys``: ``now`` is the state one reaction time
    ago, ``before`` the one observed just before it. The player's own object is steered by faster feedback
    (``own()``: the state ``feedback_ms`` ago), as people correct their own motion continuously and know
    what their hands just did, while they answer events in the world a reaction time late.
    """

    tap_keys: frozenset[str] = frozenset()
    hands_options: dict[str, Any] = {}  # a game's own timing (e.g. shorter taps for a fast paddle)
    feedback_ms = 80.0

    def __init__(self, **hands: Any):
        self._hands_options = {**self.hands_options, **hands}
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.hands = Hands(tap_keys=self.tap_keys, rng=self.rng, **self._hands_options)
        self.history = StateHistory()
        self._state: Any = None
        self.setup()

    def setup(self) -> None:
        """Per-episode memory of a subclass (called by ``reset``)."""

    def observe(self, state: Any) -> None:
        self._state = state

    def want(self, now: Any, before: Any, t_ns: int) -> set[str]:
        raise NotImplementedError

    def step(self, t_ns: int) -> Intent:
        if self._state is None:
            return Intent()
        self.history.add(t_ns, self._state)
        self._t = t_ns
        seen = t_ns - self.hands.lag_ns
        now, before = self.history.at(seen), self.history.at(seen, back=1)
        wanted = set() if self.hands.idle(t_ns) else self.want(now, before, t_ns)
        return Intent(self.hands.apply(wanted, t_ns))

    def own(self) -> tuple[Any, Any]:
        """(state, the one before it) as the player's feedback on its own motion sees them now."""
        seen = self._t - int(self.feedback_ms * 1e6)
        return self.history.at(seen), self.history.at(seen, back=1)


def approach(position: float, velocity: float, target: float, deadband: float, lead: float) -> int:
    """-1, 0 or +1: which way to move so that ``position`` reaches ``target``, stopping early by the motion
    expected during ``lead`` steps (a person releases before the goal, knowing the object still moves)."""
    expected = position + velocity * lead
    error = target - expected
    if abs(error) <= deadband:
        return 0
    return int(math.copysign(1, error))
