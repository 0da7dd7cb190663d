import importlib.util

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.envs.libero import demo_policy_obs, proprio_state, quat_to_axis_angle, upright


def test_upright_flips_rows_of_one_image_or_a_stack_and_undoes_itself():
    image = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    up = upright(image)
    assert up.flags["C_CONTIGUOUS"] and (up[0] == image[-1]).all() and (up[:, 0] == image[::-1, 0]).all()
    assert (upright(up) == image).all()
    stack = np.stack([image, image + 1])
    assert (upright(stack)[1] == upright(image + 1)).all()


def test_axis_angle_and_the_proprio_state():
    assert np.allclose(quat_to_axis_angle(np.array([0, 0, 0, 1.0])), 0)
    half = np.sqrt(0.5)
    assert np.allclose(quat_to_axis_angle(np.array([0, 0, half, half])), [0, 0, np.pi / 2])
    assert np.allclose(quat_to_axis_angle(np.array([1.0, 0, 0, 0])), [np.pi, 0, 0])  # the hand pointing down
    state = proprio_state(np.array([0.1, 0.2, 0.3]), np.array([0, 0, half, half]), np.array([0.04, -0.04]))
    assert state.dtype == np.float32 and np.allclose(state, [0.1, 0.2, 0.3, 0, 0, np.pi / 2, 0.04, -0.04])


def test_demo_observations_are_turned_upright_with_the_state_built_as_in_the_env():
    n = 3
    raw = {"agentview_rgb": np.random.default_rng(0).integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
           "ee_pos": np.ones((n, 3)), "ee_ori": np.zeros((n, 3)), "gripper_states": np.full((n, 2), 0.5)}
    obs = demo_policy_obs(raw, cameras=("agentview",))
    assert (obs["agentview_rgb"] == raw["agentview_rgb"][:, ::-1]).all()
    assert obs["state"].shape == (n, 8) and obs["state"].dtype == np.float32 and obs["state"][0, 6] == 0.5
    with pytest.raises(D2EError, match="eye_in_hand_rgb"):
        demo_policy_obs(raw, cameras=("agentview", "wrist"))


needs_libero = pytest.mark.skipif(importlib.util.find_spec("libero") is None,
                                  reason="LIBERO is needed (pip install 'd2e[libero]')")


@needs_libero
def test_tasks_and_bad_requests():
    from transfer.envs.libero import HORIZONS, LiberoEnv, find_task, init_state_episodes, suite_tasks

    tasks = suite_tasks("libero_object")
    assert len(tasks) == 10 and tasks[3].key == "libero_object/pick_up_the_bbq_sauce_and_place_it_in_the_basket"
    assert find_task("libero_object/3") == tasks[3] == find_task(tasks[3].key)
    assert tasks[3].instruction == "pick up the bbq sauce and place it in the basket"
    specs = init_state_episodes(tasks[0], 3, seed=7)
    assert [(s.index, s.seed, s.max_steps) for s in specs] == [(0, 7, 280), (1, 8, 280), (2, 9, 280)]
    assert HORIZONS == {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}
    with pytest.raises(D2EError, match="unknown LIBERO suite"):
        suite_tasks("libero_100")
    with pytest.raises(D2EError, match="no task"):
        find_task("libero_object/10")
    with pytest.raises(D2EError, match="50 init states"):
        init_state_episodes(tasks[0], 51)
    with pytest.raises(D2EError, match="unknown camera"):
        LiberoEnv(tasks[0], cameras=("frontview",))


@needs_libero
def test_resets_are_deterministic_in_the_spec_and_fresh_placements_are_new():
    from transfer.envs.libero import LiberoEnv, find_task, fresh_episode, init_state_episodes

    task = find_task("libero_object/0")
    env = LiberoEnv(task, cameras=())
    try:
        def scene(spec):
            obs = env.reset(spec)
            assert set(obs) == {"state"} and obs["state"].shape == (8,)
            return env.sim_state()

        first, again = scene(fresh_episode(task, 0, 11)), scene(fresh_episode(task, 0, 11))
        other, fixed = scene(fresh_episode(task, 1, 12)), scene(init_state_episodes(task, 1)[0])
        assert (first == again).all() and not np.allclose(first, other) and not np.allclose(first, fixed)
        assert not env.success()
        with pytest.raises(D2EError, match="7-D"):
            env.step(np.zeros(6))
    finally:
        env.close()


@needs_libero
@pytest.mark.timeout(300)
def test_a_short_rendered_episode_smoke():
    """CI's real LIBERO run: 20 steps with both cameras, images upright (what the camera saw)."""
    from transfer.envs.libero import CAMERAS, LiberoEnv, find_task, init_state_episodes

    env = LiberoEnv(find_task("libero_object/0"), cameras=("agentview", "wrist"), image_size=128)
    try:
        obs = env.reset(init_state_episodes(env.task, 1)[0])
        for _ in range(20):
            obs, done, info = env.step(np.array([0, 0, 0.3, 0, 0, 0, -1.0]))
        assert not done and info == {"success": False}
        assert set(obs) == {"agentview_rgb", "eye_in_hand_rgb", "state"}
        for camera in env.cameras:
            key = CAMERAS[camera][1]
            assert obs[key].shape == (128, 128, 3) and obs[key].dtype == np.uint8
            assert (obs[key] == env.render(camera)[::-1]).all()
        agent = obs["agentview_rgb"].astype(float)
        saturation = agent.max(axis=2) - agent.min(axis=2)
        # upright, the grey wall is at the top of the agent view and the wooden floor at the bottom
        assert saturation[:10].mean() + 10 < saturation[-10:].mean()
        wrist = obs["eye_in_hand_rgb"].astype(float)
        assert wrist[-10:].mean() + 20 < wrist[:10].mean()  # the gripper's dark base along the bottom edge
        assert obs["state"].shape == (8,) and 0.03 < obs["state"][6] < 0.045  # gripper open
    finally:
        env.close()


@needs_libero
@pytest.mark.timeout(300)
def test_images_rendered_on_demand_are_robosuites_own_and_never_stale():
    """Images are rendered when read (a chunked policy skips most frames): the same pixels robosuite's own
    camera sensor gives, and an image read after the env stepped on is refused, never a later scene."""
    from transfer.envs.libero import CAMERAS, LiberoEnv, find_task, init_state_episodes

    env = LiberoEnv(find_task("libero_object/0"), cameras=("agentview", "wrist"), image_size=64)
    try:
        env.reset(init_state_episodes(env.task, 1)[0])
        for camera in env.cameras:  # switch robosuite's sensors back on to compare
            env.raw.modify_observable(f"{CAMERAS[camera][0]}_image", "enabled", True)
        # robosuite samples its sensors within a step's physics substeps, the arm still settles: compare on a
        # still command, to within a grey level on average (the other orientation is ~35 levels off)
        obs, _, _ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
        for camera in env.cameras:
            robosuite_image = env.raw_obs[f"{CAMERAS[camera][0]}_image"][::-1].astype(int)
            assert np.abs(obs[CAMERAS[camera][1]].astype(int) - robosuite_image).mean() < 1.0
        obs, _, _ = env.step(np.array([0, 0, 0.3, 0, 0, 0, -1.0]))
        seen = obs["agentview_rgb"]
        unread, _, _ = env.step(np.array([0, 0, 0.3, 0, 0, 0, -1.0]))
        assert obs["agentview_rgb"] is seen  # read before the step: kept
        with pytest.raises(D2EError, match="after the env stepped on"):
            obs["eye_in_hand_rgb"]
        env.step(np.zeros(7))
        with pytest.raises(D2EError, match="after the env stepped on"):
            unread["agentview_rgb"]
        with pytest.raises(D2EError, match="renders no"):
            env.render("frontview")
    finally:
        env.close()
