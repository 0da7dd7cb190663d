"""Runs a policy over a fixed set of episodes in worker processes and reports success with its uncertainty.

One harness for every simulator (``transfer.sim``), so LIBERO and navigation numbers are computed the same
way. Why it is shaped like this:

- **Worker processes, spawned.** Simulators hold OpenGL/EGL contexts and MuJoCo state that do not survive
  ``fork``; each worker builds its env and policy itself from picklable factories and keeps them for the
  following episodes of the same task (building a LIBERO env costs seconds).
- **Resumable.** Every finished episode is appended as one JSON line to ``episodes.jsonl`` in the output
  folder, flushed and synced; a rerun with the same folder skips the episodes found there, so a killed
  evaluation of hundreds of episodes loses at most the ones in flight. A torn last line is ignored.
- **Confidence intervals.** Success rates of tens of episodes differ by chance by more than most effects we
  look for; every rate is reported with its 95 % Wilson score interval, which stays inside [0, 1] and is
  sensible at 0 % and 100 % where the normal approximation collapses to a zero-width interval.
- **Videos** of a sample of episodes (evenly spread over the episode list, so every task is likely to get
  one) as mp4 through PyAV, each written atomically.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.storage import atomic_output

from .sim import EnvFactory, EpisodeSpec, Obs, PolicyFactory, SimEnv

EPISODES_FILE = "episodes.jsonl"
META_FILE = "meta.json"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
VIDEO_FPS = 10
Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass
class EpisodeResult:
    """What one episode came to; ``spl`` is None where the simulator has no path-length measure."""

    task: str
    index: int
    seed: int
    success: bool
    steps: int
    seconds: float
    spl: float | None = None
    video: str | None = None
    worker: int = 0  # process id that ran it (shows the episodes really spread over workers)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.task, self.index, self.seed)


# what runs one episode in a worker: run_episode or a function with its signature (a demo recorder, ...)
EpisodeFn = Callable[..., EpisodeResult]


def _key(spec: EpisodeSpec) -> tuple[str, int, int]:
    return (spec.task, spec.index, spec.seed)


# ---------------------------------------------------------------- one episode, in whichever process runs it

class _Cache:
    """The env and policy of the task a process ran last; a new task closes the old env first."""

    def __init__(self, make_env: EnvFactory, make_policy: PolicyFactory):
        self.make_env, self.make_policy = make_env, make_policy
        self.task: str | None = None
        self.env: SimEnv | None = None
        self.policy: Any = None

    def get(self, task: str) -> tuple[SimEnv, Any]:
        if task != self.task or self.env is None:
            self.close()
            self.env = self.make_env(task)
            self.policy = self.make_policy(self.env)
            self.task = task
        return self.env, self.policy

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.env, self.policy, self.task = None, None, None


_WORKER_CACHE: _Cache | None = None
_WORKER_EPISODE_FN: EpisodeFn | None = None


def _init_worker(make_env: EnvFactory, make_policy: PolicyFactory, episode_fn: EpisodeFn) -> None:
    from multiprocessing.util import Finalize

    global _WORKER_CACHE, _WORKER_EPISODE_FN
    _WORKER_CACHE = _Cache(make_env, make_policy)
    _WORKER_EPISODE_FN = episode_fn
    Finalize(None, _WORKER_CACHE.close, exitpriority=10)  # atexit does not run in pool workers


def _worker_episode(spec: EpisodeSpec, video_path: str | None) -> EpisodeResult:
    assert _WORKER_CACHE is not None and _WORKER_EPISODE_FN is not None
    return _WORKER_EPISODE_FN(*_WORKER_CACHE.get(spec.task), spec, video_path=video_path)


def _video_frame(obs: Obs, min_height: int = 256) -> np.ndarray | None:
    """Every upright RGB image of the observation side by side, scaled up by whole pixels to be watchable."""
    images = [v for v in obs.values() if isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.ndim == 3
              and v.shape[2] == 3]
    if not images:
        return None
    height = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    frame = np.concatenate(padded, axis=1)
    scale = max(1, min_height // height)
    return np.ascontiguousarray(frame.repeat(scale, 0).repeat(scale, 1)) if scale > 1 else frame


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: int = VIDEO_FPS) -> Path:
    """An mp4 of RGB frames, written atomically (a killed run leaves no half video)."""
    from capture.video import VideoWriter

    if not frames:
        raise D2EError("no frames to write", path=path)
    height, width = frames[0].shape[:2]
    with atomic_output(path, overwrite=True) as tmp, VideoWriter(
            tmp, width, height, container="mp4", overwrite=True, fps_hint=fps, crf=20) as writer:
        for k, frame in enumerate(frames):
            writer.write(frame, k * 1_000_000_000 // fps)
    return Path(path)


def run_episode(env: SimEnv, policy: Any, spec: EpisodeSpec, *, video_path: str | Path | None = None,
                trace: list[tuple[Obs, Any]] | None = None) -> EpisodeResult:
    """One episode of ``policy`` in ``env``, in this process; the building block of ``run_episodes``.

    With ``trace`` (a list) every step's ``(observation, action)`` is appended to it, the observation being
    the one the action was chosen from: what a demonstration stores.
    """
    start = time.perf_counter()
    obs = env.reset(spec)
    policy.reset(env.instruction)
    frames = []
    if video_path is not None and (frame := _video_frame(obs)) is not None:
        frames.append(frame)
    info: dict[str, Any] = {}
    steps = 0
    while steps < spec.max_steps:
        action = policy.act(obs)
        if trace is not None:
            trace.append((obs, action))
        obs, done, info = env.step(action)
        steps += 1
        if video_path is not None and (frame := _video_frame(obs)) is not None:
            frames.append(frame)
        if done:
            break
    success = bool(env.success())
    video = str(write_video(frames, video_path)) if frames else None
    spl = info.get("spl")
    return EpisodeResult(spec.task, spec.index, spec.seed, success, steps, time.perf_counter() - start,
                         None if spl is None else float(spl), video, os.getpid())


# ---------------------------------------------------------------- many episodes, resumable

def read_finished(out_dir: str | Path) -> list[EpisodeResult]:
    """Episodes already logged in ``out_dir/episodes.jsonl`` (a torn last line from a killed run is skipped)."""
    path = Path(out_dir) / EPISODES_FILE
    if not path.exists():
        return []
    results = []
    for line in path.read_text().splitlines():
        try:
            results.append(EpisodeResult(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return results


def _end_torn_line(out_dir: Path) -> None:
    """A run killed mid-write leaves a line without its newline; end it so the next line starts clean."""
    path = out_dir / EPISODES_FILE
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _append(out_dir: Path, result: EpisodeResult) -> None:
    with open(out_dir / EPISODES_FILE, "a") as f:
        f.write(json.dumps(asdict(result)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def video_sample(episodes: Sequence[EpisodeSpec], count: int) -> set[tuple[str, int, int]]:
    """The episodes that get a video: ``count`` of them evenly spread over the list."""
    if count <= 0 or not episodes:
        return set()
    positions = np.unique(np.linspace(0, len(episodes) - 1, min(count, len(episodes))).round().astype(int))
    return {_key(episodes[p]) for p in positions}


def _video_name(spec: EpisodeSpec) -> str:
    task = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.task)[:80]
    return f"{task}_{spec.index:04d}_s{spec.seed}.mp4"


def _check_picklable(**factories: Any) -> None:
    for name, factory in factories.items():
        try:
            pickle.dumps(factory)
        except Exception as exc:
            raise D2EError(f"{name} cannot be sent to a worker process ({exc})",
                           fix="pass a module-level function or a functools.partial of one, or use workers=1"
                           ) from exc


def run_episodes(make_env: EnvFactory, make_policy: PolicyFactory, episodes: Iterable[EpisodeSpec], *,
                 workers: int = 1, out_dir: str | Path | None = None, video_dir: str | Path | None = None,
                 videos: int = 0, progress: bool = True, episode_fn: EpisodeFn | None = None
                 ) -> list[EpisodeResult]:
    """Run every episode (in ``workers`` spawned processes when > 1) and return results in episode order.

    ``make_env(task)`` and ``make_policy(env)`` run inside each worker. With ``out_dir`` each finished
    episode is logged to ``out_dir/episodes.jsonl`` and episodes already logged there are not run again.
    ``videos`` episodes (evenly spread) are recorded to ``video_dir`` (default ``out_dir/videos``).
    ``episode_fn`` replaces ``run_episode`` (same signature), e.g. to also store each episode as a demo.
    """
    from tqdm import tqdm

    episode_fn = episode_fn or run_episode
    episodes = list(episodes)
    keys = [_key(e) for e in episodes]
    if len(set(keys)) != len(keys):
        raise D2EError("the episode list repeats a (task, index, seed)", fix="give every episode its own index")
    done: dict[tuple[str, int, int], EpisodeResult] = {}
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _end_torn_line(out)
        wanted = set(keys)
        done = {r.key: r for r in read_finished(out) if r.key in wanted}
    if videos > 0 and video_dir is None:
        if out is None:
            raise D2EError("videos need a folder", fix="pass out_dir or video_dir")
        video_dir = out / "videos"
    filmed = video_sample(episodes, videos)
    todo = [e for e in episodes if _key(e) not in done]
    jobs = [(e, str(Path(video_dir) / _video_name(e)) if video_dir is not None and _key(e) in filmed else None)
            for e in todo]
    bar = tqdm(total=len(episodes), initial=len(done), unit="episode", desc="episodes", disable=None if progress
               else True, dynamic_ncols=True)

    def finish(result: EpisodeResult) -> None:
        done[result.key] = result
        if out is not None:
            _append(out, result)
        bar.update(1)
        rate = sum(r.success for r in done.values()) / len(done)
        bar.set_postfix(success=f"{rate:.0%}")

    try:
        if workers > 1 and len(jobs) > 1:
            _check_picklable(make_env=make_env, make_policy=make_policy, episode_fn=episode_fn)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init_worker,
                                     initargs=(make_env, make_policy, episode_fn)) as pool:
                futures = [pool.submit(_worker_episode, spec, video) for spec, video in jobs]
                try:
                    for future in as_completed(futures):
                        finish(future.result())
                except BaseException:  # a failed episode or ^C: do not run the rest first
                    for future in futures:
                        future.cancel()
                    raise
        elif jobs:
            cache = _Cache(make_env, make_policy)
            try:
                for spec, video in jobs:
                    finish(episode_fn(*cache.get(spec.task), spec, video_path=video))
            finally:
                cache.close()
    finally:
        bar.close()
    return [done[k] for k in keys]


# ---------------------------------------------------------------- summaries

def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default); (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def _group(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    n = len(results)
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, n)
    spls = [r.spl for r in results if r.spl is not None]
    seconds = sum(r.seconds for r in results)
    return {"episodes": n, "successes": successes, "success_rate": successes / n if n else 0.0,
            "ci95": [low, high], "spl": float(np.mean(spls)) if spls else None,
            "mean_steps": float(np.mean([r.steps for r in results])) if n else 0.0,
            "seconds_per_episode": seconds / n if n else 0.0}


def summarize(results: Sequence[EpisodeResult], *, wall_seconds: float | None = None) -> dict[str, Any]:
    """Per-task and overall success rate with 95 % Wilson intervals, mean SPL where present, throughput.

    ``episodes_per_second`` is over ``wall_seconds`` when given (what the workers achieved together), else
    over the summed episode times (one worker's rate).
    """
    tasks = sorted({r.task for r in results})
    overall = _group(results)
    total = wall_seconds if wall_seconds else sum(r.seconds for r in results)
    overall["episodes_per_second"] = len(results) / total if total > 0 else 0.0
    return {"overall": overall, "tasks": {t: _group([r for r in results if r.task == t]) for t in tasks}}


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f}"


def render_markdown(summary: dict[str, Any], title: str = "Evaluation") -> str:
    """The summary as a Markdown table (one row per task and an overall row)."""
    has_spl = summary["overall"]["spl"] is not None
    head = "| task | episodes | success % | 95 % CI |" + (" SPL |" if has_spl else "") + " steps | s/episode |"
    lines = [f"# {title}", "", head, "|" + "---|" * (head.count("|") - 1)]
    rows = [*summary["tasks"].items(), ("**overall**", summary["overall"])]
    for task, g in rows:
        spl = (f" {g['spl']:.3f} |" if g["spl"] is not None else " - |") if has_spl else ""
        lines.append(f"| {task} | {g['episodes']} | {_percent(g['success_rate'])} | "
                     f"{_percent(g['ci95'][0])}-{_percent(g['ci95'][1])} |{spl} {g['mean_steps']:.1f} | "
                     f"{g['seconds_per_episode']:.2f} |")
    lines += ["", f"{summary['overall']['episodes_per_second']:.2f} episodes/s."]
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | Path, results: Sequence[EpisodeResult], *, meta: dict[str, Any] | None = None,
                  wall_seconds: float | None = None, title: str = "Evaluation") -> dict[str, Any]:
    """``results.json`` (meta, summary, episodes) and ``results.md`` in ``out_dir``, atomically; returns the JSON."""
    out = Path(out_dir)
    summary = summarize(results, wall_seconds=wall_seconds)
    doc = {"meta": meta or {}, "summary": summary, "episodes": [asdict(r) for r in results]}
    with atomic_output(out / RESULTS_JSON, overwrite=True) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    with atomic_output(out / RESULTS_MD, overwrite=True) as tmp:
        tmp.write_text(render_markdown(summary, title))
    return doc


def overall_result(folder: str | Path) -> dict[str, Any] | None:
    """The overall row (episodes, successes, success rate, 95 % CI, ...) of the results an ``eval`` or
    ``generate-demos`` wrote in ``folder``; None when it holds none (yet)."""
    path = Path(folder) / RESULTS_JSON
    return json.loads(path.read_text())["summary"]["overall"] if path.exists() else None


def check_same_run(out_dir: str | Path, meta: dict[str, Any]) -> None:
    """Record ``meta`` in a new ``out_dir``; in a used one, refuse a different ``meta`` (resuming would mix runs)."""
    path = Path(out_dir) / META_FILE
    meta = json.loads(json.dumps(meta))  # as it reads back (tuples become lists)
    if path.exists():
        before = json.loads(path.read_text())
        if before != meta:
            changed = sorted(k for k in set(before) | set(meta) if before.get(k) != meta.get(k))
            raise D2EError(f"this folder holds another run ({', '.join(f'{k}: {before.get(k)!r}' for k in changed)})",
                           path=out_dir, fix="use a new output folder to evaluate something else")
        return
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")


def evaluate(make_env: EnvFactory, make_policy: PolicyFactory, episodes: Iterable[EpisodeSpec], out_dir: str | Path,
             *, workers: int = 1, videos: int = 0, meta: dict[str, Any] | None = None, progress: bool = True,
             title: str = "Evaluation") -> dict[str, Any]:
    """``run_episodes`` into ``out_dir`` (resumable) then ``write_results``: what the ``eval`` verbs call.

    ``meta`` says what is evaluated (policy, task, split, image size, ...): it is kept in ``out_dir/meta.json``
    and a rerun into the same folder must pass the same, so a resumed run never mixes two policies.
    """
    check_same_run(out_dir, meta or {})
    start = time.perf_counter()
    before = len(read_finished(out_dir))
    results = run_episodes(make_env, make_policy, episodes, workers=workers, out_dir=out_dir, videos=videos,
                           progress=progress)
    # throughput only when this call ran every episode (a resumed run's wall time covers only the rest)
    wall = time.perf_counter() - start if before == 0 else None
    return write_results(out_dir, results, meta=meta, wall_seconds=wall, title=title)
