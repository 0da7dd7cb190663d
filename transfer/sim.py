"""The one contract between simulators and policies, so a policy written once runs in every simulator.

LIBERO (manipulation) and navigation (MiniWorld, habitat-sim) both implement ``SimEnv``; scripted experts,
random baselines and the learned policy all implement ``Policy``; ``transfer.evaluate`` runs any pair of
them. Keeping it this small is the point: the learned policy sees only what a real robot would (the
instruction and observation dicts), and every simulator-specific detail stays behind ``reset``/``step``.

Conventions every implementation follows:

- Observations are a dict of numpy arrays: images upright ``uint8 (H, W, 3)`` at the policy's size, named
  by camera (``agentview_rgb``, ``eye_in_hand_rgb`` in LIBERO; ``rgb`` in navigation), plus a
  proprioception/pose vector ``state`` (float32).
- ``step`` returns ``(obs, done, info)``; ``done`` means the episode ended (success, the agent's own stop
  decision, or a simulator failure), not the step limit, which the caller enforces with
  ``EpisodeSpec.max_steps``. ``info`` holds JSON-safe scalars; ``info["spl"]`` (navigation) is the
  episode's success weighted by path length so far (0 until success), so the caller can read it from the
  last step whatever ended the episode.
- ``reset(spec)`` is deterministic in ``spec``: the same spec gives the same initial state and, with a
  deterministic policy, the same trajectory in any process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Obs = dict[str, np.ndarray]
Action = np.ndarray | int


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode of an evaluation or demo set: which task, which of its episodes, and its seed.

    ``index`` numbers the episodes of a task (LIBERO: the init-state index; navigation: the layout
    number); ``seed`` drives every random choice of the episode; ``max_steps`` is the step limit;
    ``extra`` carries simulator-specific choices (JSON-safe), e.g. a habitat episode's scene and goal.
    """

    task: str
    index: int
    seed: int
    max_steps: int
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SimEnv(Protocol):
    """A simulator with one task loaded; ``instruction`` is the task's language instruction."""

    instruction: str

    def reset(self, episode: EpisodeSpec) -> Obs: ...

    def step(self, action: Action) -> tuple[Obs, bool, dict[str, Any]]: ...

    def success(self) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class Policy(Protocol):
    """Maps observations to actions; ``reset`` starts a new episode with its instruction."""

    def reset(self, instruction: str) -> None: ...

    def act(self, obs: Obs) -> Action: ...


# Factories that worker processes call (they must pickle: a module-level function or a functools.partial of
# one). ``EnvFactory(task)`` builds the simulator for one task. ``PolicyFactory(env)`` gets the env it will
# act in, so a privileged expert can read simulator state; a learned policy ignores the argument.
EnvFactory = Callable[[str], SimEnv]
PolicyFactory = Callable[[SimEnv], Policy]
