"""Navigation evaluation: fixed, seeded episode sets and the policies ``d2e transfer nav eval`` can run.

Splits (a seed is a whole episode: layout, objects, target and start):

- ``seen``: seeds ``0 .. N-1``, the seeds ``generate-demos`` uses by default (``--seed 0``), so these are
  the layouts (indeed the episodes) the demos were made from;
- ``unseen``: seeds ``1_000_000 .. 1_000_000 + N - 1``, a range demo generation refuses, so no layout of
  it can have been trained on.

``nav_policy`` is the one place a policy name becomes a factory; a learned policy is added there as one
more name (a factory ``(env) -> Policy``, built inside each worker).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from capture.errors import D2EError

from .demos.nav_generate import UNSEEN_SEED_BASE
from .sim import EpisodeSpec, PolicyFactory

SPLITS = {"seen": 0, "unseen": UNSEEN_SEED_BASE}
POLICIES = ("expert", "random")


def nav_episodes(task: str, split: str, episodes: int, max_steps: int | None = None) -> list[EpisodeSpec]:
    """The first ``episodes`` episodes of a split (the same list on every machine)."""
    from .envs.miniworld import nav_task

    if split not in SPLITS:
        raise D2EError(f"unknown split {split!r}", fix=f"choose one of {', '.join(SPLITS)}")
    if episodes < 1:
        raise D2EError(f"--episodes must be at least 1, got {episodes}")
    steps = max_steps or nav_task(task).max_steps
    return [EpisodeSpec(task, i, SPLITS[split] + i, steps, {"split": split}) for i in range(episodes)]


def nav_policy(name: str) -> PolicyFactory:
    """The factory for ``--policy NAME``: ``expert`` (the planner, privileged) or ``random`` (chance)."""
    if name == "expert":
        from .demos.nav_expert import NavExpert

        return NavExpert
    if name == "random":
        from .envs.nav import RandomNavPolicy

        return RandomNavPolicy
    raise D2EError(f"unknown navigation policy {name!r}", fix=f"choose one of {', '.join(POLICIES)}")


def evaluate_nav(task: str, split: str, episodes: int, out: str | Path, *, policy: str = "expert",
                 model: str | None = None, workers: int = 1, videos: int = 0, image_size: int = 64,
                 max_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Success rate (95 % Wilson interval) and SPL of a policy (or a fine-tuned ``model`` run, rendered at its
    own image size) on a split; resumable in ``out``."""
    from .envs.miniworld import MiniWorldNav
    from .evaluate import evaluate

    if model is not None:
        from .learned import learned_policy_factory, load_policy_model

        policy, image_size = f"model {model}", load_policy_model(model).cfg.image_size
        make_policy = learned_policy_factory(model)
    else:
        make_policy = nav_policy(policy)
    specs = nav_episodes(task, split, episodes, max_steps)
    meta = {"simulator": "miniworld", "task": task, "split": split, "policy": policy, "image_size": image_size,
            "max_steps": specs[0].max_steps, "first_seed": specs[0].seed}
    return evaluate(functools.partial(MiniWorldNav, image_size=image_size), make_policy, specs, out,
                    workers=workers, videos=videos, meta=meta, progress=progress,
                    title=f"{policy} on {task} ({split} layouts)")
