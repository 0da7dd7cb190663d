"""Behaviour policies that drive games the way a person drives a keyboard and mouse.

White noise (a new random action every frame) looks nothing like play: people hold keys for hundreds of
milliseconds, press chords, rest, and move the mouse in smooth sweeps with occasional fast flicks. An
IDM trained on white noise learns the wrong timing statistics, so the sources use ``HumanLikePolicy``.

A policy is anything with ``reset(seed)`` and ``step(t_ns) -> Intent``, called at the game's native
rate; it must be deterministic given the seed (the replay tests rely on it). Pass your own to
``record_game(env, policy, ...)`` or ``d2e generate --policy MODULE:FACTORY`` (``FACTORY(env)`` returns it).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Intent:
    """What the player is doing at one instant: keys held, mouse buttons held, mouse motion since the last step."""

    keys: frozenset[str] = frozenset()
    buttons: frozenset[str] = frozenset()
    dx: float = 0.0
    dy: float = 0.0


class Policy(Protocol):
    def reset(self, seed: int) -> None: ...

    def step(self, t_ns: int) -> Intent: ...


@dataclass
class HumanLikePolicy:
    """Keys held 100-800 ms (log-uniform), chords, idle pauses, smooth mouse sweeps and flicks, clicks.

    Attributes:
        keys: Key names this player uses (platform-neutral names, e.g. ``["left", "right", "space"]``).
        chord_keys: Pairs that are often pressed together (e.g. ``[("w", "a")]``); any two keys otherwise.
        press_rate: Mean new key presses per second while active.
        chord_prob: Chance that a press is a chord of two keys.
        idle_prob: Chance per second of starting an idle pause (0.3-1.5 s, no new input).
        mouse: Whether this player moves the mouse (first-person games).
        sweep_speed: Typical sweep speed in mouse counts per second; flicks are 4-8x faster for 60-150 ms.
        flick_rate: Flicks per second.
        click_rate: Mouse button presses per second (left mostly), held 60-250 ms.
        buttons: Mouse buttons this player uses.
    """

    keys: list[str]
    chord_keys: list[tuple[str, str]] = field(default_factory=list)
    press_rate: float = 2.5
    chord_prob: float = 0.2
    idle_prob: float = 0.15
    mouse: bool = False
    sweep_speed: float = 400.0
    flick_rate: float = 0.3
    click_rate: float = 0.6
    buttons: list[str] = field(default_factory=lambda: ["left"])

    def __post_init__(self) -> None:
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._release_at: dict[str, int] = {}
        self._button_release_at: dict[str, int] = {}
        self._idle_until = 0
        self._last_t: int | None = None
        self._vx = self._vy = 0.0
        self._flick_until = 0
        self._flick_v = (0.0, 0.0)
        self._carry = (0.0, 0.0)

    def _hold_ns(self, lo_ms: float = 100, hi_ms: float = 800) -> int:
        return int(math.exp(self._rng.uniform(math.log(lo_ms), math.log(hi_ms))) * 1e6)

    def step(self, t_ns: int) -> Intent:
        rng = self._rng
        dt = 0.0 if self._last_t is None else (t_ns - self._last_t) / 1e9
        self._last_t = t_ns
        for key in [k for k, until in self._release_at.items() if until <= t_ns]:
            del self._release_at[key]
        for b in [b for b, until in self._button_release_at.items() if until <= t_ns]:
            del self._button_release_at[b]
        active = t_ns >= self._idle_until
        if active and rng.random() < self.idle_prob * dt:
            self._idle_until = t_ns + int(rng.uniform(0.3, 1.5) * 1e9)
            active = False
        if active and rng.random() < self.press_rate * dt:
            free = [k for k in self.keys if k not in self._release_at]
            if free:
                chosen = [rng.choice(free)]
                if rng.random() < self.chord_prob:
                    pairs = [p for p in self.chord_keys if chosen[0] in p]
                    other = None
                    if pairs:
                        pair = rng.choice(pairs)
                        other = pair[1] if pair[0] == chosen[0] else pair[0]
                    elif len(free) > 1:
                        other = rng.choice([k for k in free if k != chosen[0]])
                    if other is not None and other not in self._release_at:
                        chosen.append(other)
                hold = self._hold_ns()
                for k in chosen:
                    self._release_at[k] = t_ns + hold
        if self.mouse and active and rng.random() < self.click_rate * dt and self.buttons:
            b = self.buttons[0] if rng.random() < 0.8 else rng.choice(self.buttons)
            self._button_release_at.setdefault(b, t_ns + self._hold_ns(60, 250))
        dx = dy = 0.0
        if self.mouse:
            # Ornstein-Uhlenbeck velocity: smooth sweeps that drift back to rest; flicks on top.
            theta, sigma = 2.0, self.sweep_speed
            self._vx += -theta * self._vx * dt + sigma * math.sqrt(max(dt, 1e-9)) * rng.gauss(0, 1) * 1.5
            self._vy += -theta * self._vy * dt + sigma * 0.3 * math.sqrt(max(dt, 1e-9)) * rng.gauss(0, 1)
            if not active:
                self._vx *= 0.5
                self._vy *= 0.5
            if active and t_ns >= self._flick_until and rng.random() < self.flick_rate * dt:
                speed = self.sweep_speed * rng.uniform(4, 8)
                angle = rng.uniform(-0.3, 0.3) + (0 if rng.random() < 0.5 else math.pi)
                self._flick_v = (speed * math.cos(angle), speed * math.sin(angle) * 0.5)
                self._flick_until = t_ns + int(rng.uniform(60, 150) * 1e6)
            vx, vy = self._vx, self._vy
            if t_ns < self._flick_until:
                vx, vy = vx + self._flick_v[0], vy + self._flick_v[1]
            # integer device counts, carrying the remainder so slow sweeps still move
            fx, fy = vx * dt + self._carry[0], vy * dt + self._carry[1]
            dx, dy = float(round(fx)), float(round(fy))
            self._carry = (fx - dx, fy - dy)
        return Intent(frozenset(self._release_at), frozenset(self._button_release_at), dx, dy)
