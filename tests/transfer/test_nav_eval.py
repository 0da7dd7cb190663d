import importlib.util
import json
import os

import av
import pytest

from capture.errors import D2EError
from d2e.cli import main
from transfer.nav_eval import SPLITS, nav_episodes, nav_policy


def test_splits_are_fixed_and_disjoint():
    seen = nav_episodes("goal-object", "seen", 50)
    unseen = nav_episodes("goal-object", "unseen", 50)
    assert [e.seed for e in seen] == list(range(50)) and unseen[0].seed == SPLITS["unseen"]
    assert not {e.seed for e in seen} & {e.seed for e in unseen}
    assert nav_episodes("goal-object", "unseen", 50) == unseen and seen[0].max_steps == 500
    assert nav_episodes("maze", "seen", 1, max_steps=40)[0].max_steps == 40
    with pytest.raises(D2EError, match="unknown split"):
        nav_episodes("maze", "train", 3)
    with pytest.raises(D2EError, match="unknown navigation policy"):
        nav_policy("oracle")


def test_help_has_examples(capsys):
    for verb in ("eval", "generate-demos"):
        with pytest.raises(SystemExit):
            main(["transfer", "nav", verb, "--help"])
        assert f"d2e transfer nav {verb} --" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("miniworld") is None, reason="miniworld is not installed")
def test_eval_with_two_workers_videos_and_resume(tmp_path, capsys):
    out = tmp_path / "expert"
    args = ["transfer", "nav", "eval", "--policy", "expert", "--env", "fourrooms", "--split", "unseen", "--episodes",
            "4", "--workers", "2", "--out", str(out), "--image-size", "32", "--videos", "1", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["successes"] == 4 and summary["overall"]["spl"] > 0.8
    doc = json.loads((out / "results.json").read_text())
    assert [e["seed"] for e in doc["episodes"]] == [SPLITS["unseen"] + i for i in range(4)]
    workers = {e["worker"] for e in doc["episodes"]}
    assert len(workers) == 2 and os.getpid() not in workers
    videos = [e["video"] for e in doc["episodes"] if e["video"]]
    assert len(videos) == 1
    with av.open(videos[0]) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == doc["episodes"][0]["steps"] + 1
    log = (out / "episodes.jsonl").read_text()
    assert main(args) == 0 and (out / "episodes.jsonl").read_text() == log  # nothing ran again
    capsys.readouterr()
    # another policy into the same folder is refused; into its own folder it runs
    assert main([*args[:4], "random", *args[5:]]) == 2
    assert "another run" in capsys.readouterr().err
    assert main(["transfer", "nav", "eval", "--policy", "random", "--env", "fourrooms", "--episodes", "2",
                 "--workers", "1", "--out", str(tmp_path / "random"), "--image-size", "32", "--max-steps", "50"]) == 0
    assert "| fourrooms | 2 |" in capsys.readouterr().out
