"""Recording boundaries: one recording per episode, with the step count the replay needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capture.format import RecordingReader
from capture.inspect import validate
from capture.sources.base import record_game
from capture.sources.policy import HumanLikePolicy, Intent


class CountdownEnv:
    """A 60 Hz game whose episode ends after ``length`` steps; the screen shows the step number."""

    native_hz = 60.0
    name = "countdown"

    def __init__(self, length: int):
        self.length, self.k = length, 0

    def reset(self, seed: int) -> None:
        self.k = 0

    def screen(self) -> np.ndarray:
        return np.full((32, 32, 3), self.k % 256, np.uint8)

    def step(self, intent: Intent) -> bool:
        self.k += 1
        if self.k >= self.length:
            self.k = 0
            return True
        return False

    def describe(self) -> dict[str, Any]:
        return {"key_map": {"space": "jump"}}


def test_one_episode_per_recording(tmp_path: Path) -> None:
    policy = HumanLikePolicy(keys=["space"])
    one = record_game(CountdownEnv(90), policy, tmp_path / "a.mcap", seconds=10, one_episode=True)
    assert (one.steps, one.episodes, one.seconds) == (90, 1, 1.5)
    assert one.frames == 30 and validate(str(tmp_path / "a.mcap")).ok  # 1.5 s at 20 fps
    with RecordingReader(tmp_path / "a.mcap") as r:
        assert r.end_info["steps"] == 90 and r.meta.extra["game"] == "countdown"
    capped = record_game(CountdownEnv(10_000), policy, tmp_path / "b.mcap", seconds=1, one_episode=True)
    assert capped.steps == 60 and capped.episodes == 0  # --minutes caps an endless episode
    many = record_game(CountdownEnv(90), policy, tmp_path / "c.mcap", seconds=4)
    assert many.steps == 240 and many.episodes == 2  # without one_episode, episodes restart inside


def test_generate_with_a_users_policy(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("ale_py")
    (tmp_path / "my_player.py").write_text(
        "from capture.sources.policy import Intent\n"
        "class AlwaysRight:\n"
        "    def reset(self, seed): pass\n"
        "    def step(self, t_ns): return Intent(frozenset({'right'}))\n"
        "def make(env): return AlwaysRight()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "generate", "ale", "--game", "Breakout", "--minutes", "0.02",
                          "--policy", "my_player:make", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    with RecordingReader(tmp_path / "out" / "breakout-s0.mcap") as r:
        keys = list(r.iter(topics=["keyboard"]))
        assert r.meta.extra["policy"] == "my_player:make"
    assert [(k.key, k.action) for k in keys] == [("right", "press")]  # held from the first step, never released
