"""LIBERO evaluation: the benchmark's fixed init states as episodes, and the policies ``eval`` can run.

Episodes are the benchmark's own: task ``t`` of a suite, init state ``k`` (the first ``--init-states K`` of
the 50 each task has), the suite's horizon, as LIBERO's evaluations run them; demonstrations never use
these states (``transfer.demos.libero_generate`` samples fresh placements).

``libero_policy`` is the one place a policy name becomes a factory ``(env) -> Policy`` built inside each
worker; a learned policy is added there as one more name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError

from .sim import EpisodeSpec, PolicyFactory

POLICIES = ("expert", "replay", "random")


class RandomPolicy:
    """Uniform random 7-D actions, seeded by the episode: the floor any policy must clear."""

    def __init__(self, env: Any):
        self.env = env
        self.rng = np.random.default_rng(0)

    def reset(self, instruction: str) -> None:
        self.rng = np.random.default_rng(self.env.episode.seed)

    def act(self, obs: Any = None) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, 7)


def libero_policy(name: str) -> PolicyFactory:
    """The factory for ``--policy NAME``.

    ``expert``: the scripted expert, closed loop on privileged state; ``replay``: the expert's plan made
    without cameras, replayed blind (how demos are recorded); ``random``: uniform random actions.
    """
    if name == "expert":
        from .demos.libero_expert import LiberoExpert

        return LiberoExpert
    if name == "replay":
        from .demos.libero_expert import ReplayPolicy

        return ReplayPolicy
    if name == "random":
        return RandomPolicy
    raise D2EError(f"unknown LIBERO policy {name!r}", fix=f"choose one of {', '.join(POLICIES)}")


def libero_episodes(suite: str, tasks: Sequence[int] | None = None, init_states: int | None = None, seed: int = 0
                    ) -> list[EpisodeSpec]:
    """The evaluation episodes: each selected task over its first ``init_states`` fixed init states (all)."""
    from .demos.libero_generate import select_tasks
    from .envs.libero import init_state_episodes

    return [spec for task in select_tasks(suite, tasks) for spec in init_state_episodes(task, init_states, seed)]


def evaluate_libero(suite: str, out: str | Path, *, policy: str = "expert", model: str | None = None,
                    tasks: Sequence[int] | None = None, init_states: int | None = None, workers: int = 1,
                    videos: int = 0, image_size: int = 128, cameras: Sequence[str] = ("agentview", "wrist"),
                    seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Success rate per task and for the suite (95 % Wilson intervals) of a policy (or a fine-tuned ``model``
    run, rendered at its own image size with its own cameras); resumable in ``out``."""
    from .envs.libero import CAMERAS, make_env
    from .evaluate import evaluate

    if model is not None:
        from .learned import learned_policy_factory, load_policy_model

        cfg = load_policy_model(model).cfg
        keys = {key: name for name, (_cam, key) in CAMERAS.items()}
        policy, image_size, cameras = f"model {model}", cfg.image_size, [keys[c] for c in cfg.cameras]
        make_policy = learned_policy_factory(model)
    else:
        make_policy = libero_policy(policy)
    specs = libero_episodes(suite, tasks, init_states, seed)
    meta = {"simulator": "libero", "suite": suite, "policy": policy, "image_size": image_size,
            "cameras": list(cameras), "init_states": init_states, "seed": seed,
            "tasks": sorted({s.task for s in specs})}
    return evaluate(functools.partial(make_env, cameras=tuple(cameras), image_size=image_size), make_policy, specs,
                    out, workers=workers, videos=videos, meta=meta, progress=progress,
                    title=f"{policy} on {suite} (fixed init states)")
