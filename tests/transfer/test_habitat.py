"""The habitat adapter: importable and clear without habitat-sim; a real episode where habitat-sim is installed
(it ships through conda only, so these tests are skipped, with the reason, on a pip install)."""

import importlib.util
import math

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.envs.habitat import INSTALL_FIX, HabitatNav, heading_to_yaw
from transfer.envs.nav import NavAction, Pose

HAVE_HABITAT = importlib.util.find_spec("habitat_sim") is not None
needs_habitat = pytest.mark.skipif(not HAVE_HABITAT, reason="habitat-sim is not installed (conda only: " + INSTALL_FIX
                                   + ")")


@pytest.mark.skipif(HAVE_HABITAT, reason="habitat-sim is installed here")
def test_missing_habitat_sim_says_how_to_get_it(tmp_path):
    with pytest.raises(D2EError, match="needs habitat-sim") as err:
        HabitatNav("pointnav", scene=tmp_path / "room.glb")
    assert "conda install" in err.value.line() and "aihabitat" in err.value.line()


def test_bad_task_is_caught_before_anything_loads(tmp_path):
    with pytest.raises(D2EError, match="unknown habitat task"):
        HabitatNav("vln", scene=tmp_path / "room.glb")


def test_heading_convention_matches_nav_pose():
    # habitat's agent looks along -z at heading 0 and turns left about +y: forward (-sin h, 0, -cos h)
    for h in (0.0, 0.5, -2.0, math.pi):
        forward = np.array([-math.sin(h), 0.0, -math.cos(h)])
        yaw = heading_to_yaw(forward)
        pose = Pose(0.0, 0.0, yaw)
        # the point one metre ahead is straight ahead in our convention, too
        assert abs(pose.bearing_to(forward[0], forward[2])) < 1e-9
        assert math.cos(yaw - (h + math.pi / 2)) == pytest.approx(1.0)


def write_room(path, size=(8.0, 6.0), wall=2.5):
    """An .obj scene (y up): a floor and four walls, plus a partition with a 1.5 m door."""
    boxes = [((0, -0.1, 0), (size[0], 0, size[1]))]
    t = 0.1
    boxes += [((0, 0, 0), (size[0], wall, t)), ((0, 0, size[1] - t), (size[0], wall, size[1])),
              ((0, 0, 0), (t, wall, size[1])), ((size[0] - t, 0, 0), (size[0], wall, size[1]))]
    mid = size[0] / 2
    boxes += [((mid - t / 2, 0, 0), (mid + t / 2, wall, 2.0)), ((mid - t / 2, 0, 3.5), (mid + t / 2, wall, size[1]))]
    lines, base = [], 1
    for (x0, y0, z0), (x1, y1, z1) in boxes:
        corners = [(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)]
        lines += [f"v {x} {y} {z}" for x, y, z in corners]
        for a, b, c, d in ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)):
            lines.append(f"f {base + a} {base + b} {base + c} {base + d}")
        base += 8
    path.write_text("\n".join(lines) + "\n")
    return path


@needs_habitat
def test_pointnav_episode_with_the_expert(tmp_path):
    from transfer.demos.nav_expert import NavExpert
    from transfer.evaluate import run_episode
    from transfer.sim import EpisodeSpec

    env = HabitatNav("pointnav", scene=write_room(tmp_path / "room.obj"), image_size=32)
    try:
        spec = EpisodeSpec("pointnav", 0, 3, 500, {"start": [1.0, 0.0, 1.0], "goal": [7.0, 0.0, 5.0]})
        obs = env.reset(spec)
        assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
        assert np.allclose(obs["state"], [0, 0, 1, 0], atol=1e-5) and obs["goal"][0] > 6
        length = env.describe()["shortest_path_length"]
        assert length > math.hypot(6, 4)  # round the partition through its door
        _, done, info = env.step(NavAction.FORWARD)
        assert not done and (info["path_length"] == pytest.approx(0.15, abs=0.01) or info["collisions"] == 1)
        result = run_episode(env, NavExpert(env), spec)
        assert result.success and result.spl > 0.8
    finally:
        env.close()
