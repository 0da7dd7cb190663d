"""The state oracle: every rule on hand-made state sequences, then end to end on a generated recording."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from capture.schema import KeyboardEvent, RawMouseEvent
from capture.sources.atari_ram import RAM
from capture.sources.vizdoom import STATE_NAMES
from idm.oracle import (
    DOOM_FRICTION,
    RUN,
    STRAFE,
    WALK,
    StateTrack,
    debounce,
    identifiable,
    oracle_events,
)

FRAME = round(1e9 / 60)
TIC = round(1e9 / 35)


def _atari(game: str, n: int, **series: list[int] | np.ndarray) -> StateTrack:
    values = np.zeros((n, 128))
    for name, v in series.items():
        values[:, RAM[game][name]] = v
    return StateTrack(game, np.arange(n) * FRAME, values, [f"ram_{i}" for i in range(128)], 60.0)


def _presses(events: list, key: str | None = None) -> list[tuple[int, str]]:
    return [(round(e.t_ns / FRAME), e.key) for e in events
            if isinstance(e, KeyboardEvent) and e.action == "press" and (key is None or e.key == key)]


def test_breakout_paddle_motion_is_read_one_frame_late_and_a_coast_is_not_a_hold() -> None:
    x = np.full(40, 100)
    x[12:20] = 100 + 6 * np.arange(1, 9)  # RIGHT pressed at step 10 moves the paddle from state 12 on
    x[20], x[21:] = x[19] + 3, x[19] + 4  # released at step 18: it slides 3 px, then 1 px, then stops
    ball_y = np.where(np.arange(40) >= 31, 150, 0)  # FIRE at step 30: the ball is there from state 31
    events = oracle_events(_atari("breakout", 40, player_x=x, ball_y=ball_y))
    assert _presses(events) == [(10, "right"), (30, "space")]
    release = [round(e.t_ns / FRAME) for e in events if e.key == "right" and e.action == "release"]
    assert release == [18]  # sliding 3 px and then 1 px is not holding


def test_pong_paddle_up_is_right_and_down_is_left() -> None:
    y = np.full(60, 120)
    y[12:30:2] = 120 - 6 * np.arange(1, 10)  # drawn every second frame
    y[13:30:2] = y[12:30:2]
    y[30:] = y[29]
    y[44:] = y[29] + 8 * np.arange(1, 17)
    events = oracle_events(_atari("pong", 60, player_y=y))
    assert [k for _t, k in _presses(events)] == ["right", "left"]


def test_space_invaders_shot_and_walk() -> None:
    x = np.full(40, 50)
    x[6:20] = 51 + np.arange(14) // 2  # RIGHT at step 5
    x[20:] = x[19]
    shot = np.full(40, 246)
    shot[26:] = 85
    events = oracle_events(_atari("space_invaders", 40, player_x=x, player_missile_y=shot))
    (walk, right), (fire, space) = _presses(events)
    assert (right, space, fire) == ("right", "space", 25)
    assert abs(walk - 5) <= 1  # the ship moves every second frame: one frame of doubt


def test_seaquest_diagonal_and_torpedo() -> None:
    x, y = np.full(30, 70), np.full(30, 50)
    x[5:15], y[5:15] = 70 - np.arange(10), 50 + np.arange(10)
    x[15:], y[15:] = x[14], y[14]
    torpedo = np.where(np.arange(30) >= 21, 90, 0)
    events = oracle_events(_atari("seaquest", 30, player_x=x, player_y=y, player_missile_x=torpedo))
    assert sorted(_presses(events)) == [(4, "down"), (4, "left"), (20, "space")]


def test_ms_pacman_a_turn_is_a_press_of_the_new_direction() -> None:
    x, y = 50 + np.arange(30), np.full(30, 80)
    x[15:], y[15:] = x[14], 80 - np.arange(15)  # right until state 14, then up: the first move up is at 15
    events = oracle_events(_atari("ms_pacman", 30, player_x=x, player_y=y))
    assert _presses(events) == [(15, "up")]  # the first heading needs no key


def test_enduro_steering_and_accelerator() -> None:
    x = np.zeros(60, int)
    x[10:20] = np.arange(1, 11)  # LEFT raises the (signed) car x
    x[20:] = 10
    x[40:50] = (10 - np.arange(1, 11)) % 256  # RIGHT down to 0 and below (two's complement)
    x[50:] = 0
    speed = np.full(60, 20)
    speed[30:] = 20 + np.arange(30) // 3
    events = oracle_events(_atari("enduro", 60, player_x=x, speed=speed))
    assert [k for _t, k in _presses(events)] == ["left", "space", "right"]


def _doom(steps: list[tuple[float, float, float]], angle: list[float], pitch: list[float] | None = None,
          ready: list[float] | None = None, jump_at: int | None = None) -> StateTrack:
    """(forward, side, _) thrust per tic with the view angle per state -> velocities and positions."""
    n = len(angle)
    values = np.zeros((n, len(STATE_NAMES)))
    col = {name: i for i, name in enumerate(STATE_NAMES)}
    v = np.zeros(2)
    pos = np.zeros(2)
    for k in range(n):
        values[k, col["VELOCITY_X"]], values[k, col["VELOCITY_Y"]] = v
        values[k, col["POSITION_X"]], values[k, col["POSITION_Y"]] = pos
        values[k, col["episode_tic"]] = k
        if k < len(steps):
            f, s, _ = steps[k]
            a = math.radians(angle[min(k + 1, n - 1)])
            v = DOOM_FRICTION * v + f * np.array([math.cos(a), math.sin(a)]) + s * np.array([math.sin(a), -math.cos(a)])
            pos = pos + v
    values[:, col["ANGLE"]] = angle
    values[:, col["PITCH"]] = pitch if pitch is not None else 0.0
    values[:, col["ATTACK_READY"]] = ready if ready is not None else 1.0
    if jump_at is not None:
        values[jump_at:, col["POSITION_X"]] += 500
        values[jump_at:, col["episode_tic"]] -= jump_at
    return StateTrack("doom", np.arange(n) * TIC, values, list(STATE_NAMES), 35.0,
                      {"mouse_sensitivity_counts_per_degree": 8.0})


def test_doom_keys_come_from_the_thrust_in_the_view_frame() -> None:
    angle = list(np.linspace(0, 90, 40))  # turning while moving: thrust follows the view
    steps = [(0, 0, 0)] * 5 + [(WALK, 0, 0)] * 10 + [(RUN, 0, 0)] * 5 + [(0, STRAFE, 0)] * 8 + [(-WALK, -STRAFE, 0)] * 8
    events = oracle_events(_doom(steps + [(0, 0, 0)] * 3, angle))
    presses = [(round(e.t_ns / TIC), e.key) for e in events if isinstance(e, KeyboardEvent) and e.action == "press"]
    assert sorted(presses) == [(5, "w"), (15, "shift"), (20, "d"), (28, "a"), (28, "s")]


def test_doom_mouse_is_the_turn_and_pitch_times_the_sensitivity_and_attack_is_the_weapon_firing() -> None:
    angle = [0, 0, 10, 10, 5, 355, 355]  # left 10 deg, right 5, right 10 through 0
    pitch = [0, 0, 0, -2, -2, -2, -2]
    ready = [1, 1, 1, 1, 0, 0, 1]
    events = oracle_events(_doom([(0, 0, 0)] * 7, angle, pitch, ready))
    motion = [(round(e.t_ns / TIC), e.dx, e.dy) for e in events if isinstance(e, RawMouseEvent) and (e.dx or e.dy)]
    assert motion == [(1, -80, 0), (2, 0, 16), (3, 40, 0), (4, 80, 0)]
    clicks = [(round(e.t_ns / TIC), e.button_flags) for e in events if isinstance(e, RawMouseEvent) and e.button_flags]
    assert clicks[0] == (3, 0x0001) and clicks[1][1] == 0x0002


def test_doom_a_new_episode_is_no_input() -> None:
    angle = [0.0] * 10 + [90.0] * 10
    events = oracle_events(_doom([(0, 0, 0)] * 20, angle, jump_at=10))
    assert not [e for e in events if isinstance(e, RawMouseEvent)]


def test_debounce_closes_short_gaps_and_drops_blips() -> None:
    held = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0], bool)
    assert debounce(held, gap=1).astype(int).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0]
    assert debounce(held, gap=1, blip=1).astype(int).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_identifiable_counts_presses_the_state_shows_soon() -> None:
    x = np.full(40, 100)
    x[12:20] = 100 + 4 * np.arange(1, 9)
    x[20:] = x[19]
    track = _atari("breakout", 40, player_x=x)
    truth = [KeyboardEvent(10 * FRAME, "press", "right", 0x27), KeyboardEvent(19 * FRAME, "release", "right", 0x27),
             KeyboardEvent(30 * FRAME, "press", "left", 0x25)]  # left into nothing: invisible
    assert identifiable(track, truth) == {"all": 0.5, "right": 1.0, "left": 0.0}


def test_oracle_on_a_generated_recording_scores_far_above_chance_and_matches_a_hand_count(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    from capture.format import RecordingReader
    from capture.sources.ale import AleEnv, default_policy
    from capture.sources.base import record_game
    from idm.baselines import RandomAtRate
    from idm.metrics import Window, evaluate_events

    env = AleEnv("Breakout")
    path = tmp_path / "b.mcap"
    record_game(env, default_policy(env), path, seconds=20, seed=7, source="ale")
    with RecordingReader(path) as r:
        truth = list(r.iter(topics=["keyboard"]))
        frames = [f.t_ns for f in r.iter(topics=["screen"])]
    window = Window(frames[0], frames[-1] + 50_000_000)
    pred = oracle_events(path)
    oracle = evaluate_events(truth, pred, window)
    chance = evaluate_events(truth, RandomAtRate(seed=1).fit([truth], 20.0).predict(frames), window)
    assert oracle["press_f1"] > 0.85 and oracle["press_f1"] > 3 * chance["press_f1"]
    # the same press F1 counted by hand: each true press takes the nearest unused oracle press of its key
    true_p = [(e.t_ns, e.key) for e in truth if e.action == "press"]
    pred_p = [(e.t_ns, e.key) for e in pred if e.action == "press"]
    used, tp = set(), 0
    for t, key in true_p:
        near = [(abs(t - u), j) for j, (u, k) in enumerate(pred_p) if k == key and j not in used and abs(t - u) <= 5e7]
        if near:
            used.add(min(near)[1])
            tp += 1
    hand = 2 * tp / (len(true_p) + len(pred_p))
    assert abs(hand - oracle["press_f1"]) < 0.01
