import importlib.util
import json

import numpy as np
import pytest

from capture.errors import D2EError

if importlib.util.find_spec("libero") is None or importlib.util.find_spec("h5py") is None:
    pytest.skip("LIBERO and h5py are needed (pip install 'd2e[libero]')", allow_module_level=True)

from d2e.cli import main  # noqa: E402
from transfer.demos.libero_generate import demo_seed, select_tasks  # noqa: E402
from transfer.demos.store import open_demos, read_demos  # noqa: E402
from transfer.envs.libero import LiberoEnv, demo_policy_obs, fresh_episode, upright  # noqa: E402


def test_seeds_and_task_selection():
    seeds = {demo_seed(s, t, i) for s in range(2) for t in range(10) for i in range(20)}
    assert len(seeds) == 400 and demo_seed(0, 3, 7) == demo_seed(0, 3, 7)
    assert [t.number for t in select_tasks("libero_object", [4, 1, 4])] == [4, 1]
    with pytest.raises(D2EError, match="no task 12"):
        select_tasks("libero_spatial", [12])


@pytest.mark.timeout(900)
def test_generate_one_demo_through_the_cli_in_the_official_layout(tmp_path, capsys):
    args = ["transfer", "libero", "generate-demos", "--suite", "libero_object", "--tasks", "5", "--per-task", "1",
            "--out", str(tmp_path), "--image-size", "64", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["overall"]["successes"] == 1 and report["no_expert"] == {}
    folder = tmp_path / "libero_object"
    (path,) = report["demo_files"].values()
    assert path == str(folder / "pick_up_the_tomato_sauce_and_place_it_in_the_basket_demo.hdf5")
    assert not (folder / ".episodes").exists() and (folder / "results.md").exists()
    info = open_demos(path)
    assert info.instruction == "pick up the tomato sauce and place it in the basket"
    assert info.env_args["suite"] == "libero_object" and info.env_args["cameras"] == ["agentview", "wrist"]
    (demo,) = list(read_demos(path))
    n = len(demo)
    assert demo.actions.shape == (n, 7) and np.abs(demo.actions).max() <= 1.0
    assert demo.states.shape[0] == n and demo.dones[-1] == 1 and demo.rewards.sum() == 1
    for key in ("agentview_rgb", "eye_in_hand_rgb"):
        assert demo.obs[key].shape == (n, 64, 64, 3) and demo.obs[key].dtype == np.uint8
    for key, width in (("ee_pos", 3), ("ee_ori", 3), ("ee_states", 6), ("gripper_states", 2), ("joint_states", 7)):
        assert demo.obs[key].shape == (n, width)
    # stored in LIBERO's raw orientation: turned upright it is exactly what the env shows a policy
    env = LiberoEnv("libero_object/5", cameras=("agentview", "wrist"), image_size=64)
    try:
        first = env.reset(fresh_episode(env.task, demo.attrs["index"], demo.attrs["seed"]))
        policy_view = demo_policy_obs(demo.obs)
        assert (policy_view["agentview_rgb"][0] == first["agentview_rgb"]).all()
        assert (upright(demo.obs["eye_in_hand_rgb"][0]) == first["eye_in_hand_rgb"]).all()
        assert np.allclose(policy_view["state"][0], first["state"], atol=1e-6)
        assert np.array_equal(demo.states[0], env.sim_state())
    finally:
        env.close()
    # a rerun skips the finished task; other settings in the same folder are refused
    log = (folder / "episodes.jsonl").read_text()
    assert main(args) == 0 and (folder / "episodes.jsonl").read_text() == log
    capsys.readouterr()
    assert main(args[:-1] + ["--per-task", "2"]) == 2
    assert "another run" in capsys.readouterr().err
