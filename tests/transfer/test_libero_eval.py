import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.libero_eval import POLICIES, RandomPolicy, libero_policy
from transfer.sim import EpisodeSpec


def test_policy_names_and_the_seeded_random_policy():
    assert POLICIES == ("expert", "replay", "random")
    with pytest.raises(D2EError, match="unknown LIBERO policy"):
        libero_policy("oracle")
    env = SimpleNamespace(episode=EpisodeSpec("libero_object/0", 0, 5, 280))
    policy = libero_policy("random")(env)
    policy.reset("pick up the soup")
    first = [policy.act({}) for _ in range(3)]
    policy.reset("pick up the soup")
    assert all((a == b).all() for a, b in zip(first, [policy.act({}) for _ in range(3)]))
    assert first[0].shape == (7,) and np.abs(np.concatenate(first)).max() <= 1
    assert isinstance(policy, RandomPolicy)


needs_libero = pytest.mark.skipif(importlib.util.find_spec("libero") is None,
                                  reason="LIBERO is needed (pip install 'd2e[libero]')")


@needs_libero
def test_episodes_are_the_fixed_init_states_with_the_suite_horizon():
    from transfer.libero_eval import libero_episodes

    specs = libero_episodes("libero_spatial", [2, 7], init_states=3)
    assert [(s.task.split("/")[1][:30], s.index, s.max_steps) for s in specs][:2] == [
        ("pick_up_the_black_bowl_from_ta", 0, 220), ("pick_up_the_black_bowl_from_ta", 1, 220)]
    assert len(specs) == 6 and all(s.extra == {} for s in specs)
    assert len(libero_episodes("libero_10", [0])) == 50 and libero_episodes("libero_10", [0])[0].max_steps == 520
    with pytest.raises(D2EError, match="init states"):
        libero_episodes("libero_goal", [0], init_states=0)


@needs_libero
@pytest.mark.timeout(900)
def test_eval_runs_the_expert_end_to_end_with_a_video(tmp_path, capsys):
    from d2e.cli import main

    out = tmp_path / "eval"
    args = ["transfer", "libero", "eval", "--policy", "expert", "--suite", "libero_object", "--tasks", "6",
            "--init-states", "1", "--out", str(out), "--image-size", "64", "--cameras", "agentview", "--videos", "1",
            "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["episodes"] == 1 and summary["overall"]["successes"] == 1
    (video,) = (out / "videos").glob("*.mp4")
    assert video.stat().st_size > 1000 and "| **overall** | 1 | 100.0 |" in (out / "results.md").read_text()
    assert main(args[:-1]) == 0  # resumed: nothing left to run, the same table
    assert "100.0" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse refuses an unknown camera
        main(["transfer", "libero", "eval", "--suite", "libero_object", "--out", str(out), "--cameras", "top"])
    assert "cameras are a comma-separated subset of agentview,wrist" in capsys.readouterr().err
