import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.demos.nav_generate import UNSEEN_SEED_BASE, demo_file_name, generate_demos
from transfer.demos.store import open_demos, read_demos
from transfer.envs.nav import NavAction

if importlib.util.find_spec("miniworld") is None or importlib.util.find_spec("h5py") is None:
    pytest.skip("miniworld and h5py are needed (pip install 'd2e[nav]')", allow_module_level=True)


def test_tiny_generation_in_the_demo_layout_and_rerun_skips(tmp_path):
    doc = generate_demos("goal-object", tmp_path, episodes=3, seed=5, image_size=32, workers=1, progress=False)
    folder = tmp_path / "goal-object"
    assert doc["summary"]["overall"]["episodes"] == 3 and doc["summary"]["overall"]["successes"] == 3
    files = doc["meta"]["demo_files"]
    assert sum(files.values()) == 3 and not (folder / ".episodes").exists()
    seeds = []
    for name in files:
        info = open_demos(folder / name)
        assert name == demo_file_name(info.instruction) and info.env_args["task"] == "goal-object"
        assert info.env_args["actions"] == ["turn_left", "turn_right", "forward", "done"]
        for demo in read_demos(folder / name):
            n = len(demo)
            assert demo.obs["rgb"].shape == (n, 32, 32, 3) and demo.obs["rgb"].dtype == np.uint8
            assert demo.obs["state"].shape == (n, 4) and np.allclose(demo.obs["state"][0], [0, 0, 1, 0])
            assert demo.actions.dtype == np.int64 and demo.actions[-1] == NavAction.DONE
            assert (demo.actions[:-1] != NavAction.DONE).all() and demo.dones[-1] == 1
            assert demo.attrs["instruction"] == info.instruction and demo.attrs["layout"] in {
                "three_rooms", "four_rooms", "maze"}
            assert 0.5 < demo.attrs["spl"] <= 1.0 and demo.attrs["shortest_path_length"] >= 2.0
            assert len(demo.attrs["objects"]) == 6
            seeds.append(demo.attrs["seed"])
    assert sorted(seeds) == [5, 6, 7]
    assert "Expert demonstrations: goal-object" in (folder / "results.md").read_text()
    log = (folder / "episodes.jsonl").read_text()
    again = generate_demos("goal-object", tmp_path, episodes=3, seed=5, image_size=32, progress=False)
    assert again == doc and (folder / "episodes.jsonl").read_text() == log
    with pytest.raises(D2EError, match="another run"):
        generate_demos("goal-object", tmp_path, episodes=4, seed=5, image_size=32, progress=False)


def test_seeds_must_stay_out_of_the_unseen_range(tmp_path):
    with pytest.raises(D2EError, match="unseen evaluation range"):
        generate_demos("maze", tmp_path, episodes=10, seed=UNSEEN_SEED_BASE - 5)
    with pytest.raises(D2EError, match="unknown navigation task"):
        generate_demos("kitchen", tmp_path, episodes=1)
    assert not list(tmp_path.iterdir())


@pytest.mark.heavy
def test_killed_generation_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "d2e.cli", "transfer", "nav", "generate-demos", "--env", "fourrooms",
           "--episodes", "12", "--out", str(tmp_path), "--image-size", "32", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "fourrooms" / "episodes.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = log.read_text().splitlines()
    assert 3 <= len(before) < 12 and not (tmp_path / "fourrooms" / "results.json").exists()
    done = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = [line for line in log.read_text().splitlines() if line.strip()]
    keys = [(json.loads(line)["index"]) for line in after if line.startswith("{") and line.endswith("}")]
    assert sorted(keys) == list(range(12)), "each episode ran exactly once"
    assert after[: len(before) - 1] == before[: len(before) - 1]
    report = json.loads(done.stdout)
    assert sum(report["demo_files"].values()) == report["summary"]["overall"]["successes"] == 12
