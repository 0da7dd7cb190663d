import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.envs.nav import NavAction, NavEnv
from transfer.sim import EpisodeSpec, SimEnv

# not importorskip: importing miniworld before transfer.envs.miniworld puts pyglet in headless mode fails
if importlib.util.find_spec("miniworld") is None:
    pytest.skip("miniworld is not installed (pip install 'd2e[nav]')", allow_module_level=True)
from transfer.envs.miniworld import COLOURS, KINDS, MiniWorldNav, near_radius  # noqa: E402


@pytest.fixture(scope="module")
def goal_env():
    env = MiniWorldNav("goal-object", 64)
    yield env
    env.close()


def spec(seed: int, task: str = "goal-object") -> EpisodeSpec:
    return EpisodeSpec(task, seed, seed, 500)


def test_real_steps_observations_and_state(goal_env):
    env = goal_env
    assert isinstance(env, SimEnv) and isinstance(env, NavEnv)
    obs = env.reset(spec(1))
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].dtype == np.float32 and np.allclose(obs["state"], [0, 0, 1, 0])
    assert env.instruction.startswith("go to the ")
    # upright: the ceiling (top rows) and the floor (bottom rows) differ, and the image is not blank
    assert obs["rgb"].std() > 5
    left, _, info = env.step(NavAction.TURN_LEFT)
    assert left["state"][3] == pytest.approx(math.sin(math.radians(15)), abs=1e-5)
    assert not np.array_equal(left["rgb"], obs["rgb"])
    moved = None
    for _ in range(24):  # turn until a forward step is free, then step
        moved, done, info = env.step(NavAction.FORWARD)
        if info["path_length"] > 0:
            break
        env.step(NavAction.TURN_LEFT)
    assert info["path_length"] == pytest.approx(0.15) and not done
    assert math.hypot(moved["state"][0], moved["state"][1]) == pytest.approx(0.15, abs=1e-5)
    assert set(info) >= {"instruction", "layout", "spl", "distance_to_goal", "success", "collisions"}
    json.dumps(info)  # JSON-safe


def test_done_away_from_the_goal_fails_and_ends(goal_env):
    env = goal_env
    env.reset(spec(2))
    assert not env.at_goal() and env.geodesic_distance() >= 2.0
    _, done, info = env.step(np.array([3]))
    assert done and not env.success() and info["spl"] == 0.0 and not info["success"]
    with pytest.raises(D2EError, match="episode has ended"):
        env.step(NavAction.FORWARD)
    env.reset(spec(2))
    for bad in (4, -1, 1.5, [0, 1], "left"):
        with pytest.raises(D2EError, match="navigation action"):
            env.step(bad)


def test_goal_object_layouts_and_distractors(goal_env):
    env = goal_env
    layouts = set()
    for seed in range(12):
        env.reset(spec(seed))
        objects = env.describe()["objects"]
        pairs = [(o["colour"], o["kind"]) for o in objects]
        assert len(objects) == 6 and len(set(pairs)) == 6
        assert all(c in COLOURS and k in KINDS for c, k in pairs)
        colour, kind = pairs[0]
        assert env.instruction == f"go to the {colour} {kind}"
        assert any(c == colour and k != kind for c, k in pairs[1:]), "a same-colour other-kind distractor"
        assert any(c != colour and k == kind for c, k in pairs[1:]), "a same-kind other-colour distractor"
        path = env.shortest_path()
        assert env.describe()["shortest_path_length"] >= 2.0 and len(path) >= 2
        target = env.world.target
        assert math.dist(path[-1], (target.pos[0], target.pos[2])) < near_radius(env.world, target), "ends near it"
        layouts.add(env.describe()["layout"])
    assert layouts == {"three_rooms", "four_rooms", "maze"}


def test_fourrooms_and_maze_have_the_red_box():
    for task in ("fourrooms", "maze"):
        env = MiniWorldNav(task, 32)
        try:
            obs = env.reset(spec(5, task))
            assert env.instruction == "go to the red box" and obs["rgb"].shape == (32, 32, 3)
            assert env.describe()["layout"] == {"fourrooms": "four_rooms", "maze": "maze"}[task]
        finally:
            env.close()


def test_bad_task_and_size():
    with pytest.raises(D2EError, match="unknown navigation task"):
        MiniWorldNav("kitchen")
    with pytest.raises(D2EError, match="image size"):
        MiniWorldNav("maze", 4)


RUN_ONE = """
import hashlib, json
from transfer.envs.miniworld import MiniWorldNav
from transfer.demos.nav_expert import NavExpert
from transfer.evaluate import run_episode
from transfer.sim import EpisodeSpec
env = MiniWorldNav("goal-object", 48)
trace = []
result = run_episode(env, NavExpert(env), EpisodeSpec("goal-object", 0, 7, 500), trace=trace)
print(json.dumps({"layout": env.describe(), "actions": [int(a) for _, a in trace], "success": result.success,
                  "pose": list(env.pose().__dict__.values()),
                  "first": hashlib.sha256(trace[0][0]["rgb"].tobytes()).hexdigest()}))
"""


def test_same_seed_same_layout_and_trajectory_in_two_processes():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", RUN_ONE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert first["success"] and len(first["actions"]) > 10
    assert first == second
