"""Navigation demonstrations: the planner expert's successful episodes, in the one demo layout.

Episodes run through the evaluation harness (``transfer.evaluate``: worker processes, a JSON line per
finished episode, so a killed run resumes where it stopped); each successful episode is written at once
to its own small file in ``OUT/TASK/.episodes/``, and when all have run they are gathered into one file
per instruction (``go_to_the_red_box_demo.hdf5``), LIBERO's unit of one language task per file, after
which the per-episode files are removed. ``results.json``/``results.md`` report the expert's success rate
(95 % Wilson interval) and SPL; their presence marks the task finished, so a rerun skips it.

Seeds: demos and the "seen" evaluation split use seeds below ``UNSEEN_SEED_BASE``; the "unseen" split
starts there (``transfer.nav_eval``), so no evaluation layout can leak into the demos.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError

from ..envs.nav import ACTION_NAMES, NavAction
from ..evaluate import RESULTS_JSON, EpisodeResult, check_same_run, run_episode, run_episodes, write_results
from ..sim import EpisodeSpec
from .store import Demo, DemoWriter, open_demos, read_demos

UNSEEN_SEED_BASE = 1_000_000
CACHE_DIR = ".episodes"


def demo_file_name(instruction: str) -> str:
    """``go to the red box`` -> ``go_to_the_red_box_demo.hdf5`` (LIBERO's naming)."""
    return re.sub(r"[^a-z0-9]+", "_", instruction.lower()).strip("_") + "_demo.hdf5"


def record_demo(env: Any, policy: Any, spec: EpisodeSpec, *, video_path: str | None = None, cache_dir: str
                ) -> EpisodeResult:
    """One expert episode (``transfer.evaluate.EpisodeFn``); a success is stored as ``cache_dir/s<seed>.hdf5``."""
    trace: list[tuple[dict[str, np.ndarray], Any]] = []
    result = run_episode(env, policy, spec, video_path=video_path, trace=trace)
    if result.success:
        described = env.describe()
        n = len(trace)
        rewards = np.zeros(n, np.float32)
        rewards[-1] = 1.0
        dones = np.zeros(n, np.uint8)
        dones[-1] = 1
        demo = Demo("", np.array([int(a) for _, a in trace], np.int64),
                    {key: np.stack([obs[key] for obs, _ in trace]) for key in trace[0][0]},
                    {"seed": spec.seed, "index": spec.index, "layout": described["layout"], "spl": result.spl,
                     "shortest_path_length": described["shortest_path_length"], "instruction": env.instruction,
                     "objects": described["objects"], "start": described["start"]},
                    rewards=rewards, dones=dones)
        with DemoWriter(Path(cache_dir) / f"s{spec.seed}.hdf5", env_args={}, instruction=env.instruction,
                        overwrite=True) as writer:
            writer.add(demo)
    return result


def gather(cache: Path, out: Path, env_args: dict[str, Any]) -> dict[str, int]:
    """The per-episode files of ``cache`` as one demo file per instruction in ``out``; demos per file."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in cache.glob("s*.hdf5"):
        groups.setdefault(open_demos(path).instruction, []).append((int(path.stem[1:]), path))
    counts = {}
    for instruction, members in sorted(groups.items()):
        name = demo_file_name(instruction)
        with DemoWriter(out / name, env_args=env_args, instruction=instruction, overwrite=True) as writer:
            for _seed, path in sorted(members):
                for demo in read_demos(path):
                    writer.add(demo)
        counts[name] = len(members)
    return counts


def generate_demos(task: str, out: str | Path, *, episodes: int, seed: int = 0, image_size: int = 64,
                   workers: int = 1, max_steps: int | None = None, progress: bool = True, force: bool = False
                   ) -> dict[str, Any]:
    """Run the expert on seeds ``seed .. seed + episodes - 1`` of a MiniWorld task and keep its successes in
    ``out/task/``; returns the report (also ``results.json``). A finished task is not run again."""
    from ..envs.miniworld import FORWARD_METRES, TURN_DEGREES, MiniWorldNav, nav_task
    from .nav_expert import NavExpert

    spec = nav_task(task)
    if episodes < 1:
        raise D2EError(f"--episodes must be at least 1, got {episodes}")
    if seed < 0 or seed + episodes > UNSEEN_SEED_BASE:
        raise D2EError(f"demo seeds {seed}..{seed + episodes - 1} reach into the unseen evaluation range "
                       f"(from {UNSEEN_SEED_BASE})", fix=f"use seeds below {UNSEEN_SEED_BASE}")
    folder = Path(out) / task
    max_steps = max_steps or spec.max_steps
    meta = {"task": task, "policy": "expert", "episodes": episodes, "seed": seed, "image_size": image_size,
            "max_steps": max_steps}
    if force and folder.exists():
        shutil.rmtree(folder)
    if (folder / RESULTS_JSON).exists():
        check_same_run(folder, meta)
        return json.loads((folder / RESULTS_JSON).read_text())
    check_same_run(folder, meta)
    cache = folder / CACHE_DIR
    specs = [EpisodeSpec(task, i, seed + i, max_steps) for i in range(episodes)]
    results = run_episodes(functools.partial(MiniWorldNav, image_size=image_size), NavExpert, specs,
                           workers=workers, out_dir=folder, progress=progress,
                           episode_fn=functools.partial(record_demo, cache_dir=str(cache)))
    env_args = {"simulator": "miniworld", "task": task, "image_size": image_size, "actions": ACTION_NAMES,
                "done_action": int(NavAction.DONE), "obs": {"rgb": "upright uint8 (H, W, 3)",
                                                            "state": "float32 [forward, left, cos, sin]"},
                "seeds": [seed, seed + episodes], "max_steps": max_steps, "turn_degrees": TURN_DEGREES,
                "forward_metres": FORWARD_METRES}
    files = gather(cache, folder, env_args) if cache.exists() else {}
    doc = write_results(folder, results, meta={**meta, "demo_files": files, "env_args": env_args},
                        title=f"Expert demonstrations: {task}")
    shutil.rmtree(cache, ignore_errors=True)
    return doc
