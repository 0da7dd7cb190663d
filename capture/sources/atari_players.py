"""Atari players with intent: each reads the objects from RAM (``atari_ram``) and wants the keys a person
who plays the game would want; ``hands.Hands`` adds the reaction times, holds, mistakes and rests.

What each one does (and why its presses are visible): it moves only when it has somewhere to go and stops
short of the walls, so a direction press moves the player on screen; it presses fire where the game uses
it (serve, shoot) and only when fire can do something (no missile already in flight).
"""

from __future__ import annotations

import math

from .atari_ram import GHOSTS, Ram, signed
from .hands import IntentPolicy, approach

FRAME_NS = 1e9 / 60


def _axis(direction: int, negative: str, positive: str) -> set[str]:
    return {positive} if direction > 0 else {negative} if direction < 0 else set()


def _reflect(x: float, lo: float, hi: float) -> float:
    """Where a point moving freely between walls at ``lo`` and ``hi`` ends up (mirror folding)."""
    span = hi - lo
    if span <= 0:
        return lo
    u = (x - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


class AtariPlayer(IntentPolicy):
    game = ""

    def lead(self) -> float:
        """Frames the player expects its own object to keep moving: what feedback has not shown yet plus
        the coasting after a release."""
        return self.feedback_ms * 1e6 / FRAME_NS + 2

    def ram(self, state: list[int]) -> Ram:
        return Ram(self.game, state)

    def steer(self, name: str, goal: float, deadband: float, extra_lead: float = 0.0) -> int:
        """-1/0/+1 on the player's own coordinate ``name`` toward ``goal``, from the fast feedback view."""
        own, before = self.own()
        x, px = self.position(own, name), self.position(before, name)
        return approach(x, x - px, goal, deadband, self.lead() + extra_lead)

    def position(self, state: list[int], name: str) -> float:
        return getattr(self.ram(state), name)


class BreakoutPlayer(AtariPlayer):
    """Serves after a short pause, then moves the paddle under where the falling ball will land."""

    game = "breakout"
    tap_keys = frozenset({"space"})
    hands_options = {"min_hold_ms": (35.0, 80.0)}  # the paddle crosses 30 px in 100 ms: short corrections
    PADDLE = (55, 191)
    PADDLE_Y = 180  # ball_y where the ball meets the paddle (screen row 189)
    WALLS = (57, 199)  # ball_x range inside the side walls
    OFFSET = -9  # paddle x that centres the paddle under ball x

    def setup(self) -> None:
        self.serve_at: int | None = None
        self.aim = 0.0

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        r, p = self.ram(now), self.ram(before)
        if r.ball_y == 0:  # no ball in play: wait a moment, serve once, then give it time to appear
            if self.serve_at is None:
                self.serve_at = t_ns + int(self.rng.uniform(0.4, 1.5) * 1e9)
            if t_ns >= self.serve_at:
                self.serve_at = t_ns + int(1.5e9)
                return {"space"}
            return set()
        self.serve_at = None
        vx, vy = r.ball_x - p.ball_x, r.ball_y - p.ball_y
        if vy > 0:  # falling: where will it cross the paddle's line?
            steps = (self.PADDLE_Y - r.ball_y) / vy
            landing = _reflect(r.ball_x + vx * steps, *self.WALLS)
            target = r.ball_x + 0.85 * (landing - r.ball_x)
            deadband = 6.0  # the paddle is 16 px wide
        else:  # rising: drift under the ball without hurry
            target, deadband = r.ball_x, 14.0
        if abs(vx) + abs(vy) and self.rng.random() < 0.02:
            self.aim = self.rng.gauss(0, 5)  # where on the paddle this player aims, re-chosen now and then
        goal = min(max(target + self.OFFSET + self.aim, self.PADDLE[0] + 3), self.PADDLE[1] - 3)
        return _axis(self.steer("player_x", goal, deadband), "left", "right")


class PongPlayer(AtariPlayer):
    """Moves the right paddle to where the ball will arrive; drifts back toward the middle otherwise.
    RIGHT moves the paddle up, LEFT down (ALE's Pong mapping). FIRE does nothing in play, so it is never used."""

    game = "pong"
    PADDLE = (38, 203)
    PADDLE_X = 188
    WALLS = (48, 204)
    OFFSET = -8

    def setup(self) -> None:
        self.aim = 0.0

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        r, p = self.ram(now), self.ram(before)
        vx, vy = r.ball_x - p.ball_x, r.ball_y - p.ball_y
        if r.ball_x == 0 or vx <= 0:  # no ball, or it goes away: back toward the middle
            target, deadband = 120.0, 25.0
        else:
            steps = max(0.0, (self.PADDLE_X - r.ball_x) / vx)
            target, deadband = _reflect(r.ball_y + vy * steps, *self.WALLS), 5.0
        if self.rng.random() < 0.02:
            self.aim = self.rng.gauss(0, 4)
        goal = min(max(target + self.OFFSET + self.aim, self.PADDLE[0] + 4), self.PADDLE[1] - 4)
        return _axis(self.steer("player_y", goal, deadband, 2), "right", "left")  # up (y shrinks): RIGHT


class SpaceInvadersPlayer(AtariPlayer):
    """Walks under a chosen point of the invader formation and shoots when its last shot is gone."""

    game = "space_invaders"
    tap_keys = frozenset({"space"})
    PLAYER = (35, 117)
    NO_MISSILE = 246  # player_missile_y while no shot is in flight

    def setup(self) -> None:
        self.goal = 76.0
        self.next_goal = 0
        self.next_shot = 0

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        if t_ns >= self.next_goal:
            self.goal = self.rng.uniform(self.PLAYER[0] + 4, self.PLAYER[1] - 4)
            self.next_goal = t_ns + int(self.rng.uniform(0.8, 3.0) * 1e9)
        keys = _axis(self.steer("player_x", self.goal, 3.0), "left", "right")
        if self.ram(now).player_missile_y == self.NO_MISSILE and t_ns >= self.next_shot:
            keys.add("space")  # the shot shows only a reaction time later: do not fire again before that
            self.next_shot = t_ns + int(self.rng.uniform(0.45, 1.2) * 1e9)
        return keys


class SeaquestPlayer(AtariPlayer):
    """Swims between chosen points (diagonals included), torpedoes now and then, surfaces when out of air."""

    game = "seaquest"
    tap_keys = frozenset({"space"})
    X, Y = (21, 134), (13, 100)

    def setup(self) -> None:
        self.goal = (76.0, 50.0)
        self.next_goal = 0
        self.next_shot = 0

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        r = self.ram(now)
        if t_ns >= self.next_goal:
            x, y = self.rng.uniform(self.X[0] + 8, self.X[1] - 8), self.rng.uniform(self.Y[0] + 20, self.Y[1] - 5)
            self.goal = (x, y)
            self.next_goal = t_ns + int(self.rng.uniform(1.0, 3.5) * 1e9)
        gx, gy = self.goal
        if r.oxygen_meter_value < 16:
            gy = self.Y[0]
        keys = _axis(self.steer("player_x", gx, 6.0), "left", "right")
        keys |= _axis(self.steer("player_y", gy, 6.0), "up", "down")
        if r.player_y > self.Y[0] + 3 and t_ns >= self.next_shot and r.player_missile_x == 0:
            keys.add("space")
            self.next_shot = t_ns + int(self.rng.uniform(0.3, 1.2) * 1e9)
        return keys


class MsPacmanPlayer(AtariPlayer):
    """Holds a direction until she turns that way, picks a new one when she stops at a wall or a ghost comes
    near, and lets go once the turn is made. A turn is taken at the next opening, so some presses show late."""

    game = "ms_pacman"
    DIRECTIONS = {"up": (0, -1), "right": (1, 0), "down": (0, 1), "left": (-1, 0)}
    CODE = {0: "up", 1: "right", 2: "down", 3: "left"}  # byte 56

    def setup(self) -> None:
        self.goal_key: str | None = None
        self.since = 0
        self.stuck_since: int | None = None

    def _pick(self, r: Ram, heading: str | None) -> str:
        danger = min(GHOSTS, key=lambda g: abs(getattr(r, g[0]) - r.player_x) + abs(getattr(r, g[1]) - r.player_y))
        gx, gy = getattr(r, danger[0]) - r.player_x, getattr(r, danger[1]) - r.player_y
        near = abs(gx) + abs(gy) < 30
        options = [k for k in self.DIRECTIONS if k != heading]
        weights = []
        for k in options:
            dx, dy = self.DIRECTIONS[k]
            away = -(dx * gx + dy * gy)  # positive when the direction leads away from the nearest ghost
            weights.append(math.exp(away / 10) if near else 1.0)
        return self.rng.choices(options, weights)[0]

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        r, p = self.ram(now), self.ram(before)
        heading = self.CODE.get(r.player_direction & 3)
        moved = (r.player_x, r.player_y) != (p.player_x, p.player_y)
        if moved:
            self.stuck_since = None
        elif self.stuck_since is None:
            self.stuck_since = t_ns
        stuck = self.stuck_since is not None and t_ns - self.stuck_since > 150_000_000
        if self.goal_key is None:
            if stuck or self.rng.random() < 0.03:
                self.goal_key, self.since = self._pick(r, heading), t_ns
            return set()
        turned = heading == self.goal_key and moved
        if (turned and t_ns - self.since > 150_000_000) or t_ns - self.since > 2_500_000_000:
            self.goal_key = None
            return set()
        return {self.goal_key}


class EnduroPlayer(AtariPlayer):
    """Keeps the accelerator (FIRE) down with short lifts, steers toward a lane chosen every few seconds
    and brakes now and then (never with the accelerator)."""

    game = "enduro"
    hands_options = {"mistake_keys": frozenset({"left", "right"})}  # DOWN brakes; UP does nothing
    X = (-22, 20)  # signed byte 46, left positive

    def position(self, state: list[int], name: str) -> float:
        return signed(getattr(self.ram(state), name))

    def setup(self) -> None:
        self.lane = 0.0
        self.next_lane = 0
        self.lift_until = 0
        self.brake_until = 0

    def want(self, now: list[int], before: list[int], t_ns: int) -> set[str]:
        if t_ns >= self.next_lane:
            self.lane = self.rng.uniform(self.X[0] + 4, self.X[1] - 4)
            self.next_lane = t_ns + int(self.rng.uniform(1.0, 4.0) * 1e9)
        keys = _axis(self.steer("player_x", self.lane, 2.5), "right", "left")  # LEFT raises x
        if t_ns >= max(self.lift_until, self.brake_until):
            if self.rng.random() < 0.15 / 60:
                self.lift_until = t_ns + int(self.rng.uniform(0.2, 0.8) * 1e9)
            elif self.rng.random() < 0.05 / 60:
                self.brake_until = t_ns + int(self.rng.uniform(0.2, 0.6) * 1e9)
        if t_ns < self.brake_until:
            keys.add("down")
        elif t_ns >= self.lift_until:
            keys.add("space")
        return keys


PLAYERS: dict[str, type[AtariPlayer]] = {cls.game: cls for cls in (BreakoutPlayer, PongPlayer, SpaceInvadersPlayer,
                                                                     SeaquestPlayer, MsPacmanPlayer, EnduroPlayer)}
