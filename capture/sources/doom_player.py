"""A Doom player with intent: turns toward what it sees, walks, strafes in a fight and shoots when on target.

It reads ``DoomEnv.state()`` (game variables and the nearest visible enemy and pickup). The mouse moves
the way a hand does: smooth turns toward the target whose speed grows with the error (a second-order
response, no instant jumps), tremor-like noise, and fast flicks of 60-150 ms when a target appears far
off-centre or the player turns away from a wall. Keys come through ``hands.Hands`` (reaction times,
holds, never W+S or A+D together). When W is held and the player does not move, it stops pushing and
turns away, as people do at a wall.
"""

from __future__ import annotations

import math
from typing import Any

from .hands import IntentPolicy
from .policy import Intent
from .vizdoom import STATE_NAMES

_I = {name: i for i, name in enumerate(STATE_NAMES)}


def var(state: list[float], name: str) -> float:
    return state[_I[name]]


def wrap_degrees(a: float) -> float:
    """An angle difference in (-180, 180]."""
    return (a + 180.0) % 360.0 - 180.0


def bearing(state: list[float], x: float, y: float) -> float:
    """Degrees to turn left (positive) to face the point (x, y)."""
    here_x, here_y = var(state, "POSITION_X"), var(state, "POSITION_Y")
    return wrap_degrees(math.degrees(math.atan2(y - here_y, x - here_x)) - var(state, "ANGLE"))


class DoomPlayer(IntentPolicy):
    """Aims, walks and shoots with human timing. ``sensitivity`` is the game's mouse counts per degree."""

    hands_options = {"min_hold_ms": (90.0, 220.0), "mistake_keys": frozenset({"a", "d"}), "idle_rate": 0.04}
    feedback_ms = 60.0

    def __init__(self, sensitivity: float = 8.0, **hands: Any):
        self.sensitivity = sensitivity
        super().__init__(**hands)

    def setup(self) -> None:
        self.yaw_rate = self.pitch_rate = 0.0  # degrees per second, the hand's current speed
        self.carry = (0.0, 0.0)
        self.flick_until = 0
        self.flick_rate = 0.0
        self.had_target = False
        self.wander_turn = 0.0
        self.next_wander = 0
        self.strafe: str | None = None
        self.strafe_until = 0
        self.run_until = 0
        self.stuck_since: int | None = None
        self.turn_away_until = 0
        self.fire_until = 0
        self.next_shot = 0
        self.pause_until = 0
        self._last_t: int | None = None

    # -- keys ------------------------------------------------------------------------------------
    def want(self, now: list[float], before: list[float], t_ns: int) -> set[str]:
        own, _ = self.own()
        enemy = var(now, "enemy_visible") > 0
        item = var(now, "item_visible") > 0
        speed = math.hypot(var(own, "VELOCITY_X"), var(own, "VELOCITY_Y"))
        keys: set[str] = set()
        if t_ns < self.turn_away_until or t_ns < self.pause_until:
            return keys
        if enemy:
            distance = math.dist((var(now, "enemy_x"), var(now, "enemy_y")),
                                 (var(now, "POSITION_X"), var(now, "POSITION_Y")))
            if t_ns >= self.strafe_until:  # fights are fought sideways: alternate strafes with pauses
                self.strafe = self.rng.choice(["a", "d", None, None]) if self.strafe is None else None
                self.strafe_until = t_ns + int(self.rng.uniform(0.3, 0.9) * 1e9)
            if self.strafe:
                keys.add(self.strafe)
            if distance < 180:
                keys.add("s")
            elif distance > 450 and abs(bearing(now, var(now, "enemy_x"), var(now, "enemy_y"))) < 20:
                keys.add("w")
        else:
            self.strafe = None
            heading_ok = not item or abs(bearing(now, var(now, "item_x"), var(now, "item_y"))) < 35
            if heading_ok:
                keys.add("w")
            elif self.rng.random() < 0.3 / 35:
                self.pause_until = t_ns + int(self.rng.uniform(0.2, 0.6) * 1e9)
            if t_ns >= self.run_until and self.rng.random() < 0.25 / 35:
                self.run_until = t_ns + int(self.rng.uniform(0.8, 2.5) * 1e9)
            if t_ns < self.run_until and "w" in keys:
                keys.add("shift")
        pushing = "w" in self.hands.held or "s" in self.hands.held
        if pushing and speed < 0.4:
            self.stuck_since = self.stuck_since if self.stuck_since is not None else t_ns
            if t_ns - self.stuck_since > 300_000_000:  # against a wall: let go and turn away
                self.stuck_since = None
                self.turn_away_until = t_ns + int(self.rng.uniform(0.3, 0.7) * 1e9)
                self._flick(t_ns, self.rng.choice([-1, 1]) * self.rng.uniform(70, 160))
                return set()
        else:
            self.stuck_since = None
        return keys

    # -- mouse -----------------------------------------------------------------------------------
    def _flick(self, t_ns: int, degrees: float) -> None:
        duration = self.rng.uniform(0.06, 0.15)
        self.flick_rate = degrees / duration
        self.flick_until = t_ns + int(duration * 1e9)

    def _aim_error(self, now: list[float], own: list[float]) -> float | None:
        """Degrees to turn left to face the target seen one reaction ago, from where the player faces now."""
        for kind in ("enemy", "item"):
            if var(now, f"{kind}_visible") > 0:
                seen = bearing(now, var(now, f"{kind}_x"), var(now, f"{kind}_y"))
                return wrap_degrees(seen - wrap_degrees(var(own, "ANGLE") - var(now, "ANGLE")))
        return None

    def mouse(self, t_ns: int) -> tuple[int, int, bool]:
        """(dx, dy) mouse counts for this step and whether the attack button is down."""
        dt = 0.0 if self._last_t is None else (t_ns - self._last_t) / 1e9
        self._last_t = t_ns
        own, _ = self.own()
        seen = t_ns - self.hands.lag_ns
        now = self.history.at(seen)
        error = self._aim_error(now, own)
        rng = self.rng
        if error is not None:
            if not self.had_target and abs(error) > 25:
                self._flick(t_ns, error * rng.uniform(0.75, 0.95))  # a new target far off: flick most of the way
            wanted = max(-300.0, min(300.0, 6.0 * error))  # smooth pursuit, faster for bigger errors
        else:
            if t_ns >= self.next_wander:  # look around: slow sweeps that change now and then
                self.wander_turn = rng.gauss(0, 45)
                self.next_wander = t_ns + int(rng.uniform(0.5, 2.0) * 1e9)
            wanted = self.wander_turn
        self.had_target = error is not None
        if t_ns < self.flick_until:
            wanted = self.flick_rate
        # the hand's speed follows the wanted speed with ~50 ms of inertia, plus tremor
        self.yaw_rate += (wanted - self.yaw_rate) * min(1.0, dt / 0.05) + rng.gauss(0, 12) * math.sqrt(dt)
        pitch_wanted = -4.0 * var(own, "PITCH")  # keep the view level
        self.pitch_rate += (pitch_wanted - self.pitch_rate) * min(1.0, dt / 0.08) + rng.gauss(0, 6) * math.sqrt(dt)
        # degrees -> counts: turning left (angle up) is negative dx, looking up (pitch up) is negative dy
        fx = -self.yaw_rate * dt * self.sensitivity + self.carry[0]
        fy = -self.pitch_rate * dt * self.sensitivity + self.carry[1]
        dx, dy = round(fx), round(fy)
        self.carry = (fx - dx, fy - dy)
        attack = False
        if t_ns < self.fire_until:
            attack = True
        elif (var(now, "enemy_visible") > 0 and error is not None and abs(error) < 4 and t_ns >= self.next_shot
              and var(own, "ATTACK_READY") > 0):
            self.fire_until = t_ns + int(rng.uniform(0.06, 0.2) * 1e9)
            self.next_shot = self.fire_until + int(rng.uniform(0.15, 0.5) * 1e9)
            attack = True
        return dx, dy, attack

    def step(self, t_ns: int) -> Intent:
        keys = super().step(t_ns)
        if self._state is None:
            return keys
        dx, dy, attack = self.mouse(t_ns)
        return Intent(keys.keys, frozenset({"left"}) if attack else frozenset(), float(dx), float(dy))
