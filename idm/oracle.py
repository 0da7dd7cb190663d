"""The ceiling of an IDM: the input events a perfect model could know, read from the game's privileged state.

Generated recordings carry the game state at every native step (``state`` topic: ALE RAM, ViZDoom game
variables). The oracle reads only what moves on screen (object positions, the view angle, a missile that
appears) and turns its changes back into inputs: the paddle moved right, so RIGHT was held; the view
turned 5 degrees, so the mouse moved 40 counts. A press that changes nothing on screen (pushing into a
wall, firing while a shot is in flight) is invisible to it as it is to any IDM, so its press F1 against the
truth (``idm.metrics``) is the game's ceiling. It never reads bytes that echo the joystick itself (see
``capture.sources.atari_ram``).

>>> events = oracle_events("breakout-s3.mcap")   # KeyboardEvent/RawMouseEvent in the recording's clock
>>> evaluate_events(truth, events, Window(start, end))["press_f1"]

Rules per game, each returning per-step key states (held at native step ``k`` = the input the game got at
state ``k``) and, for Doom, mouse motion; ``held_to_events`` turns them into press/release events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.format import RecordingReader
from capture.keys import vk_for
from capture.schema import BUTTON_FLAGS, GameState, KeyboardEvent, RawMouseEvent
from capture.sources.atari_players import SpaceInvadersPlayer
from capture.sources.atari_ram import RAM

DOOM_FRICTION = 0.90625  # Doom keeps this fraction of the velocity per tic on the ground
# thrust per tic (map units) of a key, walking and with SPEED held, measured in ViZDoom 1.3
WALK, RUN, STRAFE, STRAFE_RUN = 0.708, 1.416, 0.68, 1.133
FORWARD_LEVELS = np.array([-RUN, -WALK, 0.0, WALK, RUN])
SIDE_LEVELS = np.array([-STRAFE_RUN, -STRAFE, 0.0, STRAFE, STRAFE_RUN])
SNAP = 0.15
TELEPORT = 64.0  # map units in one tic: faster than any run, so the player was placed anew
TAP_S = 0.1  # how long the oracle says a tap it saw was held (a tap's release shows nothing)


@dataclass
class StateTrack:
    """A recording's privileged state: ``values[k]`` at ``times[k]`` (native steps), named by ``names``."""

    game: str
    times: np.ndarray
    values: np.ndarray
    names: list[str]
    native_hz: float
    extra: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def ram(self, name: str) -> np.ndarray:
        return self.values[:, RAM[self.game][name]].astype(np.int64)


def load_states(source: str | Path | RecordingReader) -> StateTrack:
    """The ``state`` topic of a recording (path or open reader) as arrays, with the game it belongs to."""
    reader = source if isinstance(source, RecordingReader) else RecordingReader(source)
    try:
        extra = dict(reader.meta.extra or {})
        states = [m for m in reader.iter(topics=[GameState.TOPIC])]
    finally:
        if reader is not source:
            reader.close()
    game = extra.get("scenario") and "doom" or extra.get("game")
    if not states or not extra.get("state_names"):
        raise D2EError("recording has no game state (state topic)", path=str(reader.path),
                       fix="generate it with this version: d2e generate ... (recordings of people have no state)")
    return StateTrack(str(game), np.array([s.t_ns for s in states], np.int64),
                      np.array([s.values for s in states], np.float64), list(extra["state_names"]),
                      float(extra.get("native_hz", 60.0)), extra)


# -- per-step key states from motion -------------------------------------------------------------------
def motion_keys(position: np.ndarray, lag: int, negative: str, positive: str, *, min_speed: float = 0.5,
                window: int = 1, coast: float = 0.0) -> dict[str, np.ndarray]:
    """Held states of two opposing keys from a position that moves ``lag`` steps after the input.

    The input at step ``k`` is read from the motion from ``k + lag`` to ``k + lag + window`` (a window of
    two for objects the game moves every second frame). With ``coast`` > 0 an object that is slowing down
    by more than that per step is taken as released and still sliding (Breakout's paddle coasts ~4 frames).
    """
    n = len(position)
    v = np.zeros(n)
    if n > window:
        v[:n - window] = (position[window:] - position[:-window]) / window
    speed = np.zeros(n)
    speed[:n - lag] = v[lag:]
    held_pos, held_neg = speed >= min_speed, speed <= -min_speed
    if coast > 0:
        before = np.concatenate([[0.0], speed[:-1]])
        slowing = np.abs(speed) < np.abs(before) - coast
        held_pos &= ~(slowing & (before > 0))
        held_neg &= ~(slowing & (before < 0))
    return {positive: held_pos, negative: held_neg}


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in ``mask``."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def debounce(held: np.ndarray, gap: int = 0, blip: int = 0) -> np.ndarray:
    """Close gaps of at most ``gap`` steps inside a hold, then drop holds of at most ``blip`` steps: motion
    read from positions flickers where the game moves an object in uneven steps."""
    out = held.astype(bool).copy()
    for start, end in runs(~out) if gap else []:
        if end - start <= gap and start > 0 and end < len(out):
            out[start:end] = True
    for start, end in runs(out) if blip else []:
        if end - start <= blip:
            out[start:end] = False
    return out


def onset_keys(appeared: np.ndarray, lag: int, key: str, tap_steps: int) -> dict[str, np.ndarray]:
    """A tap of ``key`` ``lag`` steps before each step where ``appeared`` turns true (a shot leaves)."""
    n = len(appeared)
    held = np.zeros(n, bool)
    starts = np.flatnonzero(appeared[1:] & ~appeared[:-1]) + 1 - lag
    for s in starts[starts >= 0]:
        held[s:s + tap_steps] = True
    return {key: held}


def _taps(track: StateTrack) -> int:
    return max(1, round(TAP_S * track.native_hz))


def breakout(track: StateTrack) -> dict[str, np.ndarray]:
    keys = motion_keys(track.ram("player_x"), 1, "left", "right", min_speed=1.5, coast=1.0)
    keys.update(onset_keys(track.ram("ball_y") != 0, 1, "space", _taps(track)))  # the ball shows in the next state
    return keys


def pong(track: StateTrack) -> dict[str, np.ndarray]:
    # RIGHT moves the paddle up (y shrinks); the paddle is redrawn every second frame
    return motion_keys(track.ram("player_y"), 2, "right", "left", min_speed=1.0, window=2)


def space_invaders(track: StateTrack) -> dict[str, np.ndarray]:
    keys = motion_keys(track.ram("player_x"), 0, "left", "right", min_speed=0.25, window=2)
    keys.update(onset_keys(track.ram("player_missile_y") != SpaceInvadersPlayer.NO_MISSILE, 1, "space", _taps(track)))
    return keys


def seaquest(track: StateTrack) -> dict[str, np.ndarray]:
    keys = motion_keys(track.ram("player_x"), 0, "left", "right", min_speed=0.25, window=2)
    keys.update(motion_keys(track.ram("player_y"), 0, "up", "down", min_speed=0.25, window=2))
    keys.update(onset_keys(track.ram("player_missile_x") != 0, 1, "space", _taps(track)))
    return keys


def ms_pacman(track: StateTrack) -> dict[str, np.ndarray]:
    """She keeps moving without a key and turns at the next opening: what shows is a change of direction.
    Each turn becomes a tap of the new direction's key where she turns."""
    x, y = track.ram("player_x"), track.ram("player_y")
    n = len(x)
    dx, dy = np.zeros(n), np.zeros(n)
    dx[:-1], dy[:-1] = np.diff(x), np.diff(y)
    heading = np.full(n, "", dtype=object)
    heading[dx > 0], heading[dx < 0] = "right", "left"
    heading[dy > 0], heading[dy < 0] = "down", "up"
    keys = {k: np.zeros(n, bool) for k in ("up", "down", "left", "right")}
    last = ""
    for k in range(n):
        h = heading[k]
        if h and h != last:
            if last:  # the first heading of an episode needs no key
                keys[h][k:k + _taps(track)] = True
            last = h
    return keys


def enduro(track: StateTrack) -> dict[str, np.ndarray]:
    x = track.ram("player_x")
    steer = motion_keys(np.where(x >= 128, x - 256, x), 0, "right", "left", min_speed=0.5)  # LEFT raises x
    keys = {k: debounce(v, gap=3) for k, v in steer.items()}  # the car moves in uneven 1 px steps
    speed = track.ram("speed")
    w = max(1, round(0.1 * track.native_hz))
    ahead = np.concatenate([speed[w:], np.repeat(speed[-1:], w)]) if len(speed) else speed
    keys["space"] = debounce(ahead > speed, gap=w, blip=w)  # accelerating (one unit every few frames)
    keys["down"] = ahead < speed - 1  # braking loses speed faster than anything else
    return keys


def _snap(values: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest level to each value and the distance to it."""
    nearest = levels[np.abs(values[:, None] - levels[None, :]).argmin(1)]
    return nearest, np.abs(values - nearest)


def _carry(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` where ``known``, else the last known value before (0 before the first)."""
    index = np.where(known, np.arange(len(values)), -1)
    index = np.maximum.accumulate(index)
    return np.where(index >= 0, values[np.maximum(index, 0)], 0.0)


def _wall_slides(f_level: np.ndarray, s_level: np.ndarray, clean: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                 a: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> None:
    """Keys while sliding along a wall that runs along a map axis: the wall zeroes the velocity across it,
    so only the thrust along it shows. Picks the key combination whose thrust matches it (the previous tic's
    keys when they do), in place; ambiguous tics stay unknown."""
    combos = [(f, s) for f in FORWARD_LEVELS for s in SIDE_LEVELS]
    for k in np.flatnonzero(~clean[:-1]):
        free = 1 if vx[k + 1] == 0 and vy[k + 1] != 0 else 0 if vy[k + 1] == 0 and vx[k + 1] != 0 else None
        if free is None:
            continue
        seen = ty[k] if free else tx[k]
        c, s_ = math.cos(a[k]), math.sin(a[k])
        along = [((f * s_ - s * c) if free else (f * c + s * s_), f, s) for f, s in combos]
        fits = [(f, s) for value, f, s in along if abs(value - seen) < SNAP]
        if not fits:
            continue
        previous = (f_level[k - 1], s_level[k - 1]) if k and clean[k - 1] else None
        if previous in fits:
            f_level[k], s_level[k] = previous
        elif len(fits) == 1:
            f_level[k], s_level[k] = fits[0]
        else:
            continue
        clean[k] = True


def doom(track: StateTrack) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Keys from the thrust the player added (velocity change beyond friction, turned into the view's frame),
    mouse counts from the view's turn and pitch, the attack button from the weapon leaving its ready state."""
    vx, vy = track.column("VELOCITY_X"), track.column("VELOCITY_Y")
    angle = np.radians(track.column("ANGLE"))
    n = len(vx)
    tx, ty = np.zeros(n), np.zeros(n)
    tx[:-1], ty[:-1] = vx[1:] - DOOM_FRICTION * vx[:-1], vy[1:] - DOOM_FRICTION * vy[:-1]
    a = np.concatenate([angle[1:], angle[-1:]])  # movement uses the view after this tic's turn
    forward = tx * np.cos(a) + ty * np.sin(a)
    side = tx * np.sin(a) - ty * np.cos(a)  # positive to the right
    # A thrust is one of a few values (walk/run, each way); anything else is a wall or a push that changed the
    # velocity: the keys of such a tic are unknown and taken to be those of the tic before.
    f_level, f_off = _snap(forward, FORWARD_LEVELS)
    s_level, s_off = _snap(side, SIDE_LEVELS)
    clean = (f_off < SNAP) & (s_off < SNAP)
    _wall_slides(f_level, s_level, clean, tx, ty, a, vx, vy)
    f_level, s_level = _carry(f_level, clean), _carry(s_level, clean)
    keys = {"w": f_level > 0, "s": f_level < 0, "d": s_level > 0, "a": s_level < 0,
            "shift": (np.abs(f_level) > WALK) | (np.abs(s_level) > STRAFE)}
    sens = float(track.extra.get("mouse_sensitivity_counts_per_degree", 8.0))
    turn, pitch = np.zeros(n), np.zeros(n)
    deg = track.column("ANGLE")
    turn[:-1] = (np.diff(deg) + 180.0) % 360.0 - 180.0
    pitch[:-1] = np.diff(track.column("PITCH"))
    mouse = np.stack([np.round(-turn * sens), np.round(-pitch * sens)], 1)
    attack = onset_keys(track.column("ATTACK_READY") <= 0, 1, "left", _taps(track))["left"]
    # a new episode (or a respawn) moves the player and its view at once: no input did that
    jump = np.zeros(n, bool)
    jump[:-1] = np.hypot(np.diff(track.column("POSITION_X")), np.diff(track.column("POSITION_Y"))) > TELEPORT
    if "episode_tic" in track.names:
        jump[:-1] |= np.diff(track.column("episode_tic")) < 0
    for held in keys.values():
        held[jump] = False
    mouse[jump] = 0
    return {k: debounce(v, gap=1, blip=1) for k, v in keys.items()}, mouse, attack


ATARI_RULES: dict[str, Callable[[StateTrack], dict[str, np.ndarray]]] = {
    "breakout": breakout, "pong": pong, "space_invaders": space_invaders, "seaquest": seaquest,
    "ms_pacman": ms_pacman, "enduro": enduro,
}


def held_to_events(times: np.ndarray, keys: dict[str, np.ndarray]) -> list[KeyboardEvent]:
    """Press/release events at the steps where each key's held state changes; released at the end."""
    out: list[KeyboardEvent] = []
    if not len(times):
        return out
    step = int(np.median(np.diff(times))) if len(times) > 1 else 0
    for key, held in keys.items():
        vk = vk_for(key)
        padded = np.concatenate([[False], held.astype(bool), [False]])
        change = np.flatnonzero(padded[1:] != padded[:-1])
        for i in change:
            t = int(times[i]) if i < len(times) else int(times[-1]) + step
            out.append(KeyboardEvent(t, "press" if padded[i + 1] else "release", key, vk))
    return sorted(out, key=lambda e: (e.t_ns, e.action != "release"))


def button_events(times: np.ndarray, held: np.ndarray, button: str = "left") -> list[RawMouseEvent]:
    down, up = BUTTON_FLAGS[button]
    padded = np.concatenate([[False], held, [False]])
    out = []
    for i in np.flatnonzero(padded[1:] != padded[:-1]):
        t = int(times[min(i, len(times) - 1)]) + (1 if i >= len(times) else 0)
        out.append(RawMouseEvent(t, 0, 0, down if padded[i + 1] else up))
    return out


def oracle_events(source: str | Path | RecordingReader | StateTrack, *, game: str | None = None) -> list[Any]:
    """The key (and for Doom mouse) events a perfect IDM could know, in the recording's clock, time-ordered.

    ``source``: a generated recording (path or open ``RecordingReader``) or its loaded ``StateTrack``;
    ``game`` overrides the game named in the metadata (ALE rom id, or "doom" for any ViZDoom scenario).
    Score them like any labeler: ``idm.metrics.evaluate_events(truth, oracle_events(path), window)``.
    """
    track = source if isinstance(source, StateTrack) else load_states(source)
    name = game or track.game
    if name == "doom":
        keys, mouse, attack = doom(track)
        events: list[Any] = held_to_events(track.times, keys)
        events += [RawMouseEvent(int(t), int(dx), int(dy)) for t, (dx, dy) in zip(track.times, mouse) if dx or dy]
        events += button_events(track.times, attack)
        return sorted(events, key=lambda e: e.t_ns)
    rule = ATARI_RULES.get(name)
    if rule is None:
        raise D2EError(f"no state oracle for game {name!r}", fix=f"games with one: doom, {', '.join(ATARI_RULES)}")
    return held_to_events(track.times, rule(track))


def identifiable(track: StateTrack, truth: list[Any], horizon_s: float = 0.1, game: str | None = None) -> dict:
    """The fraction of true key presses whose key the oracle sees held within ``horizon_s`` after the press
    (the identifiability of the keys from the state), per key and overall."""
    name = game or track.game
    keys = doom(track)[0] if name == "doom" else ATARI_RULES[name](track)
    horizon = max(1, round(horizon_s * track.native_hz))
    seen: dict[str, list[bool]] = {}
    for e in truth:
        if isinstance(e, KeyboardEvent) and e.action == "press":  # a key no rule reads shows nothing
            k = int(np.searchsorted(track.times, e.t_ns))
            seen.setdefault(e.key, []).append(e.key in keys and bool(keys[e.key][k:k + horizon + 1].any()))
    allv = [v for vs in seen.values() for v in vs]
    return {"all": float(np.mean(allv)) if allv else math.nan, **{k: float(np.mean(v)) for k, v in seen.items()}}
