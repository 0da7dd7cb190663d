"""Intent players on the real games: they play (keys of the game, fire where it matters), never hold opposing
keys, do not push into walls, and are repeatable given the seed."""

from __future__ import annotations

import pytest

from capture.sources.hands import OPPOSING
from capture.sources.policy import Intent

pytest.importorskip("ale_py")


def _play(env, policy, seconds: float, seed: int = 4) -> tuple[list[Intent], list[list[float]]]:
    env.reset(seed)
    policy.reset(seed)
    intents, states = [], []
    for k in range(int(seconds * env.native_hz)):
        state = env.state()
        policy.observe(state)
        intent = policy.step(round(k * 1e9 / env.native_hz))
        intents.append(intent)
        states.append(state)
        env.step(intent)
    return intents, states


@pytest.mark.parametrize("game", ["Breakout", "Pong", "SpaceInvaders", "MsPacman", "Enduro", "Seaquest"])
def test_atari_players_play_with_game_keys_and_no_opposing_keys(game: str) -> None:
    from capture.sources.ale import AleEnv, default_policy

    env = AleEnv(game)
    intents, _ = _play(env, default_policy(env), 20)
    used = set().union(*(i.keys for i in intents))
    assert used and used <= set(env.keys)
    assert not any(a in i.keys and b in i.keys for i in intents for a, b in OPPOSING)
    presses = sum(len(b.keys - a.keys) for a, b in zip(intents, intents[1:]))
    assert 0.3 < presses / 20 < 8  # people press a few keys a second


def test_breakout_serves_and_does_not_push_the_paddle_into_the_walls() -> None:
    from capture.sources.ale import AleEnv, default_policy
    from capture.sources.atari_players import BreakoutPlayer

    env = AleEnv("Breakout")
    intents, states = _play(env, default_policy(env), 40)
    assert any("space" in i.keys for i in intents)
    lo, hi = BreakoutPlayer.PADDLE
    pinned = sum(1 for i, s in zip(intents, states)
                 if ("left" in i.keys and s[72] <= lo) or ("right" in i.keys and s[72] >= hi))
    moving = sum(1 for i in intents if {"left", "right"} & i.keys)
    assert pinned < 0.05 * moving


def test_players_are_repeatable_given_the_seed() -> None:
    from capture.sources.ale import AleEnv, default_policy

    env = AleEnv("Pong")
    a, _ = _play(env, default_policy(env), 8, seed=1)
    b, _ = _play(env, default_policy(env), 8, seed=1)
    c, _ = _play(env, default_policy(env), 8, seed=2)
    assert a == b and a != c


def test_doom_player_aims_smoothly_and_shoots() -> None:
    pytest.importorskip("vizdoom")
    from capture.sources.vizdoom import DoomEnv, default_policy

    env = DoomEnv("basic")
    intents, states = _play(env, default_policy(env), 10)
    assert any(i.buttons for i in intents)  # shoots the enemy in view
    dx = [i.dx for i in intents]
    assert sum(abs(x) for x in dx) > 200
    # no teleporting hand: consecutive tics differ by what ~50 ms of inertia allows, except flicks
    jumps = sum(1 for a, b in zip(dx, dx[1:]) if abs(b - a) > 60)
    assert jumps < 0.05 * len(dx)
    assert not any(a in i.keys and b in i.keys for i in intents for a, b in OPPOSING)
    assert not any("e" in i.keys for i in intents)  # USE does nothing in these scenarios
