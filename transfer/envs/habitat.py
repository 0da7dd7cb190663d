"""habitat-sim adapter: PointNav and ObjectNav episodes on a user's own scenes, behind the ``[habitat]`` extra.

habitat-sim is the simulator most navigation results are reported in, but it ships through conda only
(no PyPI wheel for Python 3.11 on Linux), so it cannot be the default: MiniWorld is. This adapter gives
habitat the same ``NavEnv`` face as ``transfer.envs.miniworld`` (4 actions with ``DONE``, ``rgb`` +
GPS/compass ``state``, SPL from the navmesh's geodesic distance), so the planner expert, the evaluation
harness and a learned policy run on it unchanged. It is importable without habitat-sim; building an env
without it raises a ``D2EError`` that says how to install it.

Episodes (``EpisodeSpec.extra``; everything missing is drawn from the seed):

- ``pointnav``: ``start`` [x, y, z], ``start_heading`` (radians about +y), ``goal`` [x, y, z]; drawn: two
  navigable points 1-30 m apart along the navmesh on one floor. Success: ``DONE`` within 0.2 m (geodesic)
  of the goal. Also observed: ``goal`` = float32 [distance, angle] to the goal in the agent's frame
  (habitat's pointgoal-with-GPS-compass sensor), since a PointNav goal is not visible.
- ``objectnav``: ``category`` (e.g. "chair"; drawn from the scene's semantic objects when absent); the goal
  points are the navmesh points nearest to each object of the category. Success: ``DONE`` within 1 m
  (geodesic) of one of them. The instruction is "go to the chair".

The motion defaults (15 degree turns, 0.15 m steps, camera 1.5 m high with a 60 degree field of view, a
square image) are MiniWorld's, so one action head transfers between the two simulators; habitat's
challenge settings (0.25 m, 30 degrees) are one argument away. Scenes without a ``.navmesh`` file get one
computed at load time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError

from ..sim import Action, EpisodeSpec, Obs
from .nav import NavAction, NavEpisode, Pose, relative_state
from .navgrid import NavMap

INSTALL_FIX = ("habitat-sim ships through conda, not PyPI: conda create -n habitat python=3.9 cmake=3.14.0 && "
               "conda install -n habitat habitat-sim headless -c conda-forge -c aihabitat "
               "(see github.com/facebookresearch/habitat-sim#installation), then pip install -e '.[nav]' there")
SUCCESS_DISTANCE = {"pointnav": 0.2, "objectnav": 1.0}
ACTIONS = {NavAction.TURN_LEFT: "turn_left", NavAction.TURN_RIGHT: "turn_right", NavAction.FORWARD: "move_forward"}


def import_habitat_sim() -> Any:
    """habitat_sim, or a ``D2EError`` that says how to get it."""
    try:
        import habitat_sim
    except ImportError as exc:
        raise D2EError(f"the habitat adapter needs habitat-sim, which is not installed ({exc})", fix=INSTALL_FIX
                       ) from exc
    return habitat_sim


def heading_to_yaw(forward: np.ndarray) -> float:
    """Our yaw (``transfer.envs.nav.Pose``: heading (cos yaw, -sin yaw) in x, z) from habitat's forward vector."""
    return math.atan2(-float(forward[2]), float(forward[0]))


class HabitatNav:
    """A habitat-sim scene as a ``transfer.envs.nav.NavEnv``; ``task`` is ``pointnav`` or ``objectnav``."""

    def __init__(self, task: str = "pointnav", *, scene: str | Path, dataset_config: str | Path | None = None,
                 image_size: int = 64, turn_degrees: float = 15.0, forward_metres: float = 0.15,
                 camera_height: float = 1.5, hfov: float = 60.0, agent_radius: float = 0.1,
                 success_distance: float | None = None, gpu_device_id: int = 0, cell: float = 0.05):
        if task not in SUCCESS_DISTANCE:
            raise D2EError(f"unknown habitat task {task!r}", fix=f"choose one of {', '.join(SUCCESS_DISTANCE)}")
        hs = import_habitat_sim()
        import importlib

        self._quat = importlib.import_module("habitat_sim.utils.common")  # quat_from_angle_axis, quat_rotate_vector
        if not Path(scene).exists():
            raise D2EError("scene file not found", path=scene, fix="pass a .glb/.ply/.obj scene of your dataset")
        self.hs, self.task, self.scene, self.cell = hs, task, str(scene), cell
        self.turn_degrees, self.forward_metres = float(turn_degrees), float(forward_metres)
        self.success_distance = success_distance if success_distance is not None else SUCCESS_DISTANCE[task]
        backend = hs.SimulatorConfiguration()
        backend.scene_id = self.scene
        if dataset_config is not None:
            backend.scene_dataset_config_file = str(dataset_config)
        backend.enable_physics = False
        backend.gpu_device_id = gpu_device_id
        rgb = hs.CameraSensorSpec()
        rgb.uuid, rgb.sensor_type = "rgb", hs.SensorType.COLOR
        rgb.resolution = [image_size, image_size]
        rgb.position = [0.0, camera_height, 0.0]
        rgb.hfov = hfov
        agent = hs.agent.AgentConfiguration()
        agent.radius = agent_radius
        agent.sensor_specifications = [rgb]
        agent.action_space = {
            "move_forward": hs.agent.ActionSpec("move_forward", hs.agent.ActuationSpec(amount=self.forward_metres)),
            "turn_left": hs.agent.ActionSpec("turn_left", hs.agent.ActuationSpec(amount=self.turn_degrees)),
            "turn_right": hs.agent.ActionSpec("turn_right", hs.agent.ActuationSpec(amount=self.turn_degrees)),
        }
        self.sim = hs.Simulator(hs.Configuration(backend, [agent]))
        if not self.sim.pathfinder.is_loaded:  # no .navmesh beside the scene: compute one for this agent
            settings = hs.NavMeshSettings()
            settings.set_defaults()
            settings.agent_radius = agent_radius
            self.sim.recompute_navmesh(self.sim.pathfinder, settings)
        if not self.sim.pathfinder.is_loaded:
            self.sim.close()
            raise D2EError("no navigable area found in the scene", path=scene, fix="check the scene's up axis/scale")
        self.agent = self.sim.initialize_agent(0)
        self.instruction = ""
        self.episode: EpisodeSpec | None = None
        self.goals = np.zeros((0, 3), np.float32)
        self._image = np.zeros((image_size, image_size, 3), np.uint8)
        self._start = Pose(0.0, 0.0, 0.0)
        self._start_y = 0.0
        self._path: list[tuple[float, float]] = []
        self._book = NavEpisode(0.0, self._start)
        self._map: NavMap | None = None

    # ---- episodes

    def _geodesic(self, start: np.ndarray, ends: np.ndarray) -> tuple[float, list[np.ndarray]]:
        path = self.hs.MultiGoalShortestPath()
        path.requested_start = np.asarray(start, np.float32)
        path.requested_ends = [np.asarray(e, np.float32) for e in ends]
        if not self.sim.pathfinder.find_path(path):
            return math.inf, []
        return float(path.geodesic_distance), list(path.points)

    def _draw_pointnav(self) -> tuple[np.ndarray, np.ndarray]:
        """Two navigable points 1-30 m apart along the navmesh, on one floor (the pathfinder is seeded)."""
        finder = self.sim.pathfinder
        for _ in range(500):
            start = np.asarray(finder.get_random_navigable_point())
            goal = np.asarray(finder.get_random_navigable_point())
            distance, _ = self._geodesic(start, goal[None])
            if 1.0 <= distance <= 30.0 and abs(start[1] - goal[1]) < 0.5:
                return start, goal
        raise D2EError("no start/goal pair 1-30 m apart on one floor in 500 draws", path=self.scene,
                       fix="give the episode's start and goal in EpisodeSpec.extra")

    def _object_goals(self, category: str | None, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        objects = [o for o in self.sim.semantic_scene.objects if o is not None and o.category is not None]
        names = sorted({o.category.name() for o in objects})
        if not names:
            raise D2EError("the scene has no semantic objects for ObjectNav", path=self.scene,
                           fix="load it with its semantic annotations (dataset_config), or use pointnav")
        category = category or str(rng.choice(names))
        snapped = [np.asarray(self.sim.pathfinder.snap_point(o.aabb.center)) for o in objects
                   if o.category.name() == category]
        goals = np.array([p for p in snapped if np.isfinite(p).all()], np.float32)
        if len(goals) == 0:
            raise D2EError(f"no navigable point near any {category!r}", path=self.scene,
                           fix=f"categories in this scene: {', '.join(names[:20])}")
        return category, goals

    def reset(self, episode: EpisodeSpec) -> Obs:
        extra = episode.extra or {}
        rng = np.random.default_rng(episode.seed)
        self.sim.seed(int(episode.seed))
        self.sim.pathfinder.seed(int(episode.seed))
        if self.task == "pointnav":
            if "start" in extra and "goal" in extra:
                start, goal = np.asarray(extra["start"], np.float32), np.asarray(extra["goal"], np.float32)
            else:
                start, goal = self._draw_pointnav()
            self.goals = goal[None].astype(np.float32)
            self.instruction = "go to the goal point"
        else:
            category, self.goals = self._object_goals(extra.get("category"), rng)
            start = np.asarray(extra["start"], np.float32) if "start" in extra else \
                np.asarray(self.sim.pathfinder.get_random_navigable_point())
            self.instruction = f"go to the {category.replace('_', ' ')}"
        heading = float(extra.get("start_heading", rng.uniform(-math.pi, math.pi)))
        state = self.hs.AgentState()
        state.position = start
        state.rotation = self._quat.quat_from_angle_axis(heading, np.array([0.0, 1.0, 0.0]))
        self.agent.set_state(state)
        self.episode, self._map = episode, None
        self._start_y = float(start[1])
        self._image = self._rgb(self.sim.get_sensor_observations())
        self._start = self.pose()
        length, points = self._geodesic(start, self.goals)
        if not math.isfinite(length):
            raise D2EError("the goal cannot be reached from the start", path=self.scene, where=f"seed {episode.seed}")
        self._path = [(float(p[0]), float(p[2])) for p in points]
        self._book = NavEpisode(length, self._start)
        return self._obs()

    def step(self, action: Action) -> tuple[Obs, bool, dict[str, Any]]:
        move = self._book.take(action, self.at_goal)
        if move is not None:
            self._image = self._rgb(self.sim.step(ACTIONS[move]))
            self._book.moved(move, self.pose())
        return self._obs(), self._book.ended, {"instruction": self.instruction,
                                               "distance_to_goal": self.geodesic_distance(), **self._book.info()}

    def success(self) -> bool:
        return self._book.success

    def close(self) -> None:
        self.sim.close()

    # ---- NavEnv

    def pose(self) -> Pose:
        state = self.agent.get_state()
        forward = self._quat.quat_rotate_vector(state.rotation, np.array([0.0, 0.0, -1.0]))
        return Pose(float(state.position[0]), float(state.position[2]), heading_to_yaw(forward))

    def geodesic_distance(self) -> float:
        return self._geodesic(self.agent.get_state().position, self.goals)[0]

    def at_goal(self) -> bool:
        return self.geodesic_distance() <= self.success_distance

    def shortest_path(self) -> list[tuple[float, float]]:
        return list(self._path)

    def nav_map(self) -> NavMap:
        """The navmesh sliced at the start's floor (``get_topdown_view``; the navmesh already keeps the agent's
        radius from obstacles); goal cells lie within the success distance of a goal point, less a cell."""
        if self._map is None:
            free = np.asarray(self.sim.pathfinder.get_topdown_view(self.cell, self._start_y), bool)
            lower, _upper = self.sim.pathfinder.get_bounds()
            navmap = NavMap(free, np.zeros_like(free), (float(lower[0]), float(lower[2])), self.cell)
            zs, xs = navmap.centers()
            reach = max(self.success_distance - self.cell, self.cell)
            for gx, _, gz in self.goals:
                navmap.goal |= free & ((xs - gx) ** 2 + (zs - gz) ** 2 <= reach * reach)
            self._map = navmap
        return self._map

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "scene": self.scene, "layout": Path(self.scene).stem,
                "instruction": self.instruction, "goals": self.goals.round(3).tolist()[:20],
                "start": [round(self._start.x, 3), round(self._start.z, 3), round(self._start.yaw, 4)],
                "shortest_path_length": self._book.shortest}

    def _rgb(self, observations: dict[str, Any]) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(observations["rgb"])[..., :3], dtype=np.uint8)

    def _obs(self) -> Obs:
        obs = {"rgb": self._image, "state": relative_state(self._start, self.pose())}
        if self.task == "pointnav":
            pose = self.pose()
            gx, _, gz = self.goals[0]
            obs["goal"] = np.array([math.hypot(gx - pose.x, gz - pose.z), pose.bearing_to(gx, gz)], np.float32)
        return obs
