"""The navigation side of ``transfer.sim``: the few things a navigation simulator adds to ``SimEnv``.

MiniWorld (``transfer.envs.miniworld``, the default) and habitat-sim (``transfer.envs.habitat``) implement
``NavEnv``; the planner expert, SPL and the evaluation only use what is declared here.

**Actions** are discrete: turn left, turn right, move forward, and ``DONE``. ``DONE`` is the agent's own
decision that it has arrived, as the STOP action of habitat's PointNav/ObjectNav: an episode succeeds
only when the agent says ``DONE`` within the success distance of the goal, and ``DONE`` anywhere else
ends the episode as a failure. We chose it over a camera pitch because (1) MiniWorld's level camera
(1.5 m high, 60 degree field of view) cannot see the floor within ~2.6 m, so small targets drop out of
view just before the goal and walking into the goal by luck must not count as finding it; (2) it is the
action habitat's episodes already have, so one 4-way action head serves both simulators; (3) a pitch would
add a camera state the policy has to track and a second image distribution. The price: ``DONE`` appears once
per demo, so the policy's stop decision is the rare class it must learn.

**Observations**: ``rgb`` (upright uint8 (H, W, 3)) and ``state``, float32 ``[forward, left, cos, sin]``:
the agent's displacement (metres) and heading change since the episode began, in the start pose's frame
(habitat's GPS + compass sensors), so it carries no information about where in the world the layout is.

**SPL** (Anderson et al. 2018): success x L / max(P, L), with L the shortest path length from the start
to the success region and P the length the agent actually walked. ``NavEpisode`` computes it once for
all simulators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from capture.errors import D2EError

from ..sim import Action, EpisodeSpec, Obs, SimEnv
from .navgrid import NavMap


class NavAction(IntEnum):
    """Discrete navigation actions (the first three numbered as MiniWorld's own)."""

    TURN_LEFT = 0
    TURN_RIGHT = 1
    FORWARD = 2
    DONE = 3


ACTION_NAMES = [a.name.lower() for a in NavAction]


def as_nav_action(action: Action) -> NavAction:
    """A policy's output (int, numpy scalar or one-element array) as a ``NavAction``; a clear error otherwise."""
    value = np.asarray(action)
    flat = value.reshape(-1)
    if value.size != 1 or value.dtype.kind not in "iuf" or flat[0] != np.round(flat[0]) \
            or int(flat[0]) not in NavAction._value2member_map_:
        raise D2EError(f"a navigation action is one integer 0-3 ({', '.join(ACTION_NAMES)}), got {action!r}")
    code = int(flat[0])
    return NavAction(code)


@dataclass(frozen=True)
class Pose:
    """Where the agent is: ground-plane position (x, z) in metres and heading ``yaw`` in radians, with
    the heading vector ``(cos yaw, -sin yaw)`` in (x, z) (MiniWorld's convention; turning left adds to yaw)."""

    x: float
    z: float
    yaw: float

    def bearing_to(self, x: float, z: float) -> float:
        """Signed angle (radians, left positive) from the heading to the direction of a point."""
        target = math.atan2(-(z - self.z), x - self.x)
        return (target - self.yaw + math.pi) % (2 * math.pi) - math.pi


def relative_state(start: Pose, now: Pose) -> np.ndarray:
    """GPS + compass: displacement and heading change since ``start``, in ``start``'s frame."""
    dx, dz = now.x - start.x, now.z - start.z
    fwd = (math.cos(start.yaw), -math.sin(start.yaw))
    left = (-math.sin(start.yaw), -math.cos(start.yaw))
    turn = now.yaw - start.yaw
    return np.array([dx * fwd[0] + dz * fwd[1], dx * left[0] + dz * left[1], math.cos(turn), math.sin(turn)],
                    np.float32)


class NavEpisode:
    """One episode's bookkeeping, the same in every simulator: ``DONE`` ends it and is judged there, the
    walked path length, blocked forward steps and SPL."""

    def __init__(self, shortest: float, start: Pose):
        self.shortest, self.walked, self.last = shortest, 0.0, start
        self.ended = self.success = False
        self.collisions = 0

    def take(self, action: Action, at_goal: Callable[[], bool]) -> NavAction | None:
        """The motion to simulate for a policy's action, or None for ``DONE`` (which ends the episode)."""
        move = as_nav_action(action)
        if self.ended:
            raise D2EError("the episode has ended (DONE was chosen)", fix="call reset() for the next episode")
        if move == NavAction.DONE:
            self.success, self.ended = at_goal(), True
            return None
        return move

    def moved(self, move: NavAction, pose: Pose) -> None:
        """Record where a simulated motion left the agent."""
        step = math.hypot(pose.x - self.last.x, pose.z - self.last.z)
        if move == NavAction.FORWARD and step == 0.0:
            self.collisions += 1
        self.walked += step
        self.last = pose

    def spl(self) -> float:
        if not self.success:
            return 0.0
        return self.shortest / max(self.walked, self.shortest) if self.shortest > 0 else 1.0

    def info(self) -> dict[str, Any]:
        return {"success": self.success, "spl": self.spl(), "path_length": self.walked,
                "shortest_path_length": self.shortest, "collisions": self.collisions}


@runtime_checkable
class NavEnv(SimEnv, Protocol):
    """A navigation simulator: ``SimEnv`` plus what experts and SPL need (privileged; not for policies)."""

    turn_degrees: float  # one turn action
    forward_metres: float  # one forward action
    episode: EpisodeSpec | None  # the episode in progress

    def pose(self) -> Pose: ...

    def at_goal(self) -> bool:
        """Whether ``DONE`` now would succeed."""
        ...

    def nav_map(self) -> NavMap:
        """The occupancy grid of this episode, its goal region marked."""
        ...

    def shortest_path(self) -> list[tuple[float, float]]:
        """World waypoints of the shortest path from the episode's start to the goal region."""
        ...

    def geodesic_distance(self) -> float:
        """Shortest-path distance (metres) from the agent to the goal region now."""
        ...


class RandomNavPolicy:
    """The chance baseline: uniform turns and forward moves, ``DONE`` with probability ``p_done`` a step;
    seeded from the episode, so a rerun repeats it."""

    def __init__(self, env: NavEnv, p_done: float = 0.01):
        self.env, self.p_done = env, p_done
        self.rng = np.random.default_rng(0)

    def reset(self, instruction: str) -> None:
        seed = self.env.episode.seed if self.env.episode is not None else 0
        self.rng = np.random.default_rng([seed, 1])

    def act(self, obs: Obs) -> int:
        if self.rng.random() < self.p_done:
            return int(NavAction.DONE)
        return int(self.rng.integers(0, 3))
