"""The navigation expert: plans on the simulator's known map and drives there with the policy's own actions.

It reads privileged state (the occupancy grid, its pose, whether it is at the goal) that a learned policy
never sees, and acts only through the 4 discrete actions, so its episodes are demonstrations a policy can
imitate step by step. How it drives:

- **Plan**: the environment's ``NavMap`` (walls inflated by the agent's radius and a margin, every
  non-target object an obstacle, the success ring as goal), Dijkstra from the ring, the path string pulled
  into straight segments (``transfer.envs.navgrid``).
- **Follow**: aim at the farthest waypoint in straight line of sight; turn while the heading error is more
  than 3/4 of a turn step (``TURN_TOLERANCE``; half a step made it zig-zag), else step forward.
- **Replan when blocked**: a forward step that does not move the agent (an obstacle missing from the map,
  or a corner grazed) marks the agent's centre as unwelcome within 0.5 m of the possible contact point
  ahead, on the expert's own copy of the map, and plans again; after repeated blocks it turns away.
- **Stop**: ``DONE`` as soon as ``DONE`` would succeed, so demos end with the decision the policy must learn.
"""

from __future__ import annotations

import math

from ..envs.nav import NavAction, NavEnv, Pose
from ..envs.navgrid import NavMap
from ..sim import Obs

WAYPOINT_REACHED = 0.25  # metres: closer than this, aim at the next waypoint
# A forward step that fails hit something within one step plus the agent radius (0.55 m) ahead; the agent's
# centre is kept this far from that point on the expert's map (it stays just outside, so it can back off)
BLOCK_AHEAD = 0.55
BLOCK_RADIUS = 0.5
STUCK_TURNS = 3  # turns away from an obstacle after this many blocked steps in a row
# Turn only when the heading error exceeds 3/4 of a turn step. At 1/2 (the smallest error a turn reduces)
# forward steps push the error back over the line and the expert zig-zags: measured over 30 episodes per
# task, 0.5 -> 0.75 took FourRooms from 88 to 64 steps and left/right reversals from 26 to 3 per episode,
# with the same success and SPL; imitation data without the zig-zag is easier to learn.
TURN_TOLERANCE = 0.75


class NavExpert:
    """Planner expert for any ``NavEnv`` (a ``transfer.sim.Policy``); built with the env it acts in."""

    def __init__(self, env: NavEnv):
        self.env = env
        self.replans = 0
        self._map: NavMap | None = None
        self._waypoints: list[tuple[float, float]] = []
        self._last: tuple[Pose, NavAction] | None = None
        self._blocked = 0
        self._escape = 0

    def reset(self, instruction: str) -> None:
        self._map, self._waypoints, self._last = None, [], None
        self._blocked = self._escape = 0
        self.replans = 0

    def act(self, obs: Obs) -> int:
        return int(self._decide())

    def _decide(self) -> NavAction:
        env = self.env
        if env.at_goal():
            return NavAction.DONE
        pose = env.pose()
        if self._map is None:
            self._map = env.nav_map()
            self._plan(pose)
        elif self._last is not None and self._last[1] == NavAction.FORWARD and \
                (pose.x, pose.z) == (self._last[0].x, self._last[0].z):
            self._on_blocked(pose)
        else:
            self._blocked = 0
        if self._escape > 0:
            self._escape -= 1
            return self._remember(pose, NavAction.TURN_LEFT)
        target = self._target(pose)
        if target is None:
            self._plan(pose)
            target = self._target(pose)
            if target is None:  # the goal is cut off on the expert's map: look around, plan again next step
                self._map = env.nav_map()
                return self._remember(pose, NavAction.TURN_LEFT)
        error = pose.bearing_to(*target)
        tolerance = math.radians(env.turn_degrees) * TURN_TOLERANCE
        if error > tolerance:
            action = NavAction.TURN_LEFT
        elif error < -tolerance:
            action = NavAction.TURN_RIGHT
        else:
            action = NavAction.FORWARD
        return self._remember(pose, action)

    def _remember(self, pose: Pose, action: NavAction) -> NavAction:
        self._last = (pose, action)
        return action

    def _plan(self, pose: Pose) -> None:
        assert self._map is not None
        self._waypoints = self._map.shortest_path(pose.x, pose.z)[1:]
        self.replans += 1

    def _on_blocked(self, pose: Pose) -> None:
        assert self._map is not None
        self._blocked += 1
        ahead = math.cos(pose.yaw), -math.sin(pose.yaw)
        self._map = self._map.blocked_copy(pose.x + ahead[0] * BLOCK_AHEAD, pose.z + ahead[1] * BLOCK_AHEAD,
                                           BLOCK_RADIUS)
        if self._blocked >= STUCK_TURNS:
            self._escape, self._blocked = 3, 0
        self._plan(pose)

    def _target(self, pose: Pose) -> tuple[float, float] | None:
        """The waypoint to aim at: drop those reached, skip ahead while the next one is in sight. The last one
        (where the path enters the goal region) is kept; once there, aim deeper into the region."""
        assert self._map is not None
        while len(self._waypoints) > 1 and math.hypot(self._waypoints[0][0] - pose.x,
                                                      self._waypoints[0][1] - pose.z) < WAYPOINT_REACHED:
            self._waypoints.pop(0)
        while len(self._waypoints) > 1 and self._map.line_of_sight((pose.x, pose.z), self._waypoints[1]):
            self._waypoints.pop(0)
        if not self._waypoints:
            return None
        last = self._waypoints[-1]
        if len(self._waypoints) == 1 and math.hypot(last[0] - pose.x, last[1] - pose.z) < WAYPOINT_REACHED:
            return self._goal_centre(last)
        return self._waypoints[0]

    def _goal_centre(self, near: tuple[float, float], radius: float = 1.5) -> tuple[float, float]:
        """The middle of the goal cells within ``radius`` of a point (a target's centre for a ring around it)."""
        assert self._map is not None
        zs, xs = self._map.centers()
        cells = self._map.goal & ((xs - near[0]) ** 2 + (zs - near[1]) ** 2 < radius * radius)
        if not cells.any():
            return near
        return float(xs[cells].mean()), float(zs[cells].mean())
