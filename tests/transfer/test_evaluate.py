import functools
import json
import os
import time

import av
import numpy as np
import pytest

from capture.errors import D2EError
from transfer.evaluate import (
    EPISODES_FILE,
    evaluate,
    overall_result,
    read_finished,
    run_episodes,
    summarize,
    video_sample,
    wilson_interval,
)
from transfer.sim import EpisodeSpec, Policy, SimEnv


class Corridor:
    """A tiny real simulator for the harness: walk forward ``length`` cells (length from the seed); action 1
    moves, 0 waits. Its image shows the position, so videos differ frame to frame."""

    instruction = "walk to the end"

    def __init__(self, task: str, delay: float = 0.0, broken_seed: int | None = None):
        self.task, self.delay, self.broken_seed = task, delay, broken_seed
        self.pos = self.length = 0

    def _obs(self) -> dict[str, np.ndarray]:
        image = np.zeros((16, 24, 3), np.uint8)
        image[:, : self.pos + 1] = (200, 40, 40)
        return {"rgb": image, "state": np.array([self.pos], np.float32)}

    def reset(self, episode: EpisodeSpec) -> dict[str, np.ndarray]:
        if episode.seed == self.broken_seed:
            raise RuntimeError(f"simulator crashed on seed {episode.seed}")
        self.length = 2 + int(np.random.default_rng(episode.seed).integers(0, 6))
        self.pos = 0
        return self._obs()

    def step(self, action):
        time.sleep(self.delay)
        self.pos += int(action)
        return self._obs(), self.success(), {"spl": float(self.success())}

    def success(self) -> bool:
        return self.pos >= self.length

    def close(self) -> None:
        pass


class Walker:
    def __init__(self, env, forward: bool = True):
        self.forward = forward

    def reset(self, instruction: str) -> None:
        assert instruction == "walk to the end"

    def act(self, obs):
        return int(self.forward)


def episodes(n: int, task: str = "corridor", max_steps: int = 20) -> list[EpisodeSpec]:
    return [EpisodeSpec(task, i, 100 + i, max_steps) for i in range(n)]


def test_protocols_match_the_test_simulator():
    env = Corridor("t")
    assert isinstance(env, SimEnv) and isinstance(Walker(env), Policy)


def test_wilson_interval_by_hand():
    # 7 of 10: p = 0.7, z = 1.96: centre (0.7 + 0.19208) / 1.38415 = 0.64450,
    # half 1.96 * sqrt(0.021 + 0.00960) / 1.38415 = 0.24771 -> (0.3968, 0.8922)
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-4) and high == pytest.approx(0.8922, abs=1e-4)
    # 0 of 10: upper bound z^2 / (n + z^2) = 3.8415 / 13.8415
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_run_summarize_and_write(tmp_path):
    specs = episodes(4) + [EpisodeSpec("short", 0, 1, max_steps=1)]
    doc = evaluate(Corridor, Walker, specs, tmp_path, progress=False, meta={"policy": "walker"}, title="t")
    eps = doc["episodes"]
    assert [(e["task"], e["index"]) for e in eps] == [(s.task, s.index) for s in specs]
    assert all(e["success"] for e in eps[:4]) and not eps[4]["success"] and eps[4]["steps"] == 1
    assert eps[0]["steps"] == 2 + int(np.random.default_rng(100).integers(0, 6))
    summary = doc["summary"]
    assert summary["tasks"]["corridor"]["success_rate"] == 1.0 and summary["tasks"]["short"]["successes"] == 0
    assert summary["overall"]["successes"] == 4 and summary["overall"]["ci95"] == pytest.approx(
        list(wilson_interval(4, 5)))
    assert summary["overall"]["spl"] == pytest.approx(0.8)
    assert json.loads((tmp_path / "results.json").read_text())["meta"] == {"policy": "walker"}
    md = (tmp_path / "results.md").read_text()
    assert "| corridor | 4 | 100.0 |" in md and "**overall**" in md
    assert overall_result(tmp_path) == summary["overall"] and overall_result(tmp_path / "none") is None


def test_rerun_skips_finished_episodes_and_survives_a_torn_line(tmp_path):
    first = run_episodes(Corridor, Walker, episodes(3), out_dir=tmp_path, progress=False)
    with open(tmp_path / EPISODES_FILE, "a") as f:
        f.write('{"task": "corridor", "ind')  # a run killed while writing
    # the same episodes plus two more: only the two new ones run (a policy that waits would fail the old ones)
    again = run_episodes(Corridor, functools.partial(Walker, forward=True), episodes(5), out_dir=tmp_path,
                         progress=False)
    assert again[:3] == first
    assert len(read_finished(tmp_path)) == 5
    untouched = run_episodes(Corridor, functools.partial(Walker, forward=False), episodes(5), out_dir=tmp_path,
                             progress=False)
    assert all(r.success for r in untouched), "finished episodes were run again"


def test_worker_processes_are_used(tmp_path):
    results = run_episodes(functools.partial(Corridor, delay=0.05), Walker, episodes(6), workers=2,
                           out_dir=tmp_path, progress=False)
    workers = {r.worker for r in results}
    assert len(workers) == 2 and os.getpid() not in workers
    assert all(r.success for r in results)
    assert [r.index for r in results] == list(range(6))


def test_a_crash_in_a_worker_stops_the_run_and_keeps_what_finished(tmp_path):
    with pytest.raises(RuntimeError, match="crashed on seed 101"):
        run_episodes(functools.partial(Corridor, delay=0.02, broken_seed=101), Walker, episodes(8), workers=2,
                     out_dir=tmp_path, progress=False)
    finished = {r.index for r in read_finished(tmp_path)}
    assert 1 not in finished and len(finished) < 8
    results = run_episodes(Corridor, Walker, episodes(8), workers=2, out_dir=tmp_path, progress=False)
    assert [r.index for r in results] == list(range(8))
    assert sorted(r.index for r in read_finished(tmp_path)) == list(range(8)), "each episode logged once"


def test_unpicklable_factory_is_a_clear_error():
    with pytest.raises(D2EError, match="cannot be sent to a worker"):
        run_episodes(lambda task: Corridor(task), Walker, episodes(2), workers=2, progress=False)


def test_videos_written_and_readable(tmp_path):
    specs = episodes(5)
    assert len(video_sample(specs, 2)) == 2 and video_sample(specs, 9) == {(s.task, s.index, s.seed) for s in specs}
    results = run_episodes(Corridor, Walker, specs, out_dir=tmp_path, videos=2, progress=False)
    filmed = [r for r in results if r.video]
    assert [r.index for r in filmed] == [0, 4]
    for r in filmed:
        with av.open(r.video) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == r.steps + 1  # the first observation and one per step
        assert frames[0].shape == (256, 384, 3)  # 16x24 scaled up by 16
        # the bar grows: more red in the last frame than in the first
        assert (frames[-1][..., 0] > 128).sum() > (frames[0][..., 0] > 128).sum()
    assert not list(tmp_path.glob("videos/.*part"))


def test_summary_without_spl_and_throughput():
    from transfer.evaluate import EpisodeResult

    results = [EpisodeResult("a", i, i, i % 2 == 0, 10, 0.5) for i in range(4)]
    s = summarize(results, wall_seconds=1.0)
    assert s["overall"]["spl"] is None and s["overall"]["episodes_per_second"] == 4.0
    assert summarize(results)["overall"]["episodes_per_second"] == 2.0


def test_a_folder_refuses_another_run(tmp_path):
    evaluate(Corridor, Walker, episodes(2), tmp_path, progress=False, meta={"policy": "walker", "size": (64, 64)})
    evaluate(Corridor, Walker, episodes(3), tmp_path, progress=False, meta={"policy": "walker", "size": (64, 64)})
    with pytest.raises(D2EError, match="another run .*policy: 'walker'"):
        evaluate(Corridor, Walker, episodes(3), tmp_path, progress=False, meta={"policy": "random", "size": [64, 64]})


def test_trace_records_what_each_action_was_chosen_from():
    from transfer.evaluate import run_episode

    trace = []
    env = Corridor("t")
    result = run_episode(env, Walker(env), episodes(1)[0], trace=trace)
    assert len(trace) == result.steps and all(action == 1 for _, action in trace)
    assert [float(obs["state"][0]) for obs, _ in trace] == list(range(result.steps))
