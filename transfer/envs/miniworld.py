"""MiniWorld navigation tasks: the default navigation simulator, because it installs from PyPI and renders
real 3-D rooms headless on a CPU (hundreds of steps per second at 64-128 px).

Tasks (``TASKS``; every random choice comes from the episode seed, so a seed is a layout, a target and a
start, identical in every process):

- ``goal-object``: "go to the red box" in a multi-room layout drawn per episode (three rooms, four rooms or
  a 3x3 maze, door positions and wall texture varying) with the target and 5 distractors of distinct
  (colour, kind) pairs over boxes, balls and keys; two distractors are deliberately close to the target
  (same colour other kind, same kind other colour), so the instruction must be read, not just "go to the
  nearest object". Objects stand only in rooms (distractors against a wall in the small maze rooms), never
  in the doorways between them, and objects and start are drawn again until the target can be reached from a
  start at least 2 m (geodesic) from it.
- ``fourrooms`` and ``maze``: MiniWorld's FourRooms and MazeS3 geometry with its red box.

Success is ObjectNav's (see ``transfer.envs.nav``): the agent says ``DONE`` while ``near()`` the target
(within target radius + agent radius + 1.1 steps, about 1.1 m of a box's centre). Two occupancy grids are
built per episode from the room outlines, the collision segments and the objects (0.1 m cells): one keeps
a 0.15 m safety margin beyond the agent's 0.4 m radius (the expert plans on it, and every episode must be
solvable on it), one keeps none: its string-pulled shortest path is the geodesic L of SPL and of
``distance_to_goal``, so the expert's own SPL is honestly a little below 1.

Pitfalls handled here: pyglet must be put in headless (EGL) mode before ``miniworld`` is imported;
subclass attributes must exist before ``MiniWorldEnv.__init__`` because it calls ``reset``; ``Key`` and
``Ball`` carry no colour attribute (we keep colour and kind beside each entity); shared room edges make
``point_inside`` false on both sides (we give it a tolerance).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from capture.errors import D2EError, require

from ..sim import Action, EpisodeSpec, Obs
from .nav import NavEpisode, Pose, relative_state
from .navgrid import NavMap, inflate, path_length

pyglet = require("pyglet", "nav")
pyglet.options["headless"] = True  # render through EGL without a display; must precede the miniworld import
require("miniworld", "nav")
from miniworld.entity import Ball, Box, Entity, Key  # noqa: E402
from miniworld.miniworld import MiniWorldEnv  # noqa: E402
from miniworld.params import DEFAULT_PARAMS  # noqa: E402

COLOURS = ("blue", "green", "grey", "purple", "red", "yellow")  # MiniWorld's COLOR_NAMES
KINDS = ("box", "ball", "key")
WALL_TEXTURES = ("brick_wall", "concrete", "drywall", "marble", "stucco", "wood_planks")
MIN_START_DISTANCE = 2.0  # metres of shortest path between the start and the goal region
# one action's motion: MiniWorld's defaults, fixed because domain randomisation stays off
TURN_DEGREES = float(DEFAULT_PARAMS.sample(None, "turn_step"))
FORWARD_METRES = float(DEFAULT_PARAMS.sample(None, "forward_step"))


@dataclass(frozen=True)
class NavTask:
    """One navigation task: which layouts it draws from, how many distractors, its step limit."""

    name: str
    layouts: tuple[str, ...]
    distractors: int
    max_steps: int
    box_size: float
    jitter: bool  # doors and wall texture drawn per episode
    description: str


TASKS: dict[str, NavTask] = {
    "goal-object": NavTask("goal-object", ("three_rooms", "four_rooms", "maze"), 5, 500, 0.7, True,
                           "go to the named object among 5 distractors; three rooms, four rooms or a 3x3 maze"),
    "fourrooms": NavTask("fourrooms", ("four_rooms",), 0, 300, 0.8, False,
                         "MiniWorld FourRooms: go to the red box"),
    "maze": NavTask("maze", ("maze",), 0, 300, 0.8, False, "MiniWorld MazeS3 (3x3 rooms): go to the red box"),
}


def nav_task(name: str) -> NavTask:
    if name not in TASKS:
        raise D2EError(f"unknown navigation task {name!r}", fix=f"choose one of {', '.join(TASKS)}")
    return TASKS[name]


# ---------------------------------------------------------------- layouts: each returns the rooms objects stand in

def _door(world: NavWorld, centre: float, width: float, low: float, high: float) -> tuple[float, float]:
    """A door of ``width`` around ``centre``, moved at random within [low, high] when the task jitters."""
    if world.task.jitter:
        centre = float(world.np_random.uniform(low + width / 2, high - width / 2))
    return centre - width / 2, centre + width / 2


def _three_rooms(world: NavWorld, tex: str) -> list[Any]:
    top = world.add_rect_room(min_x=-7, max_x=7, min_z=0.5, max_z=7, wall_tex=tex)
    left = world.add_rect_room(min_x=-7, max_x=-1, min_z=-7, max_z=-0.5, wall_tex=tex)
    right = world.add_rect_room(min_x=1, max_x=7, min_z=-7, max_z=-0.5, wall_tex=tex)
    a, b = _door(world, -4, 2.5, -6.5, -1.5)
    world.connect_rooms(top, left, min_x=a, max_x=b)
    a, b = _door(world, 4, 2.5, 1.5, 6.5)
    world.connect_rooms(top, right, min_x=a, max_x=b)
    return [top, left, right]


def _four_rooms(world: NavWorld, tex: str) -> list[Any]:
    rooms = [world.add_rect_room(min_x=-7, max_x=-1, min_z=1, max_z=7, wall_tex=tex),
             world.add_rect_room(min_x=1, max_x=7, min_z=1, max_z=7, wall_tex=tex),
             world.add_rect_room(min_x=1, max_x=7, min_z=-7, max_z=-1, wall_tex=tex),
             world.add_rect_room(min_x=-7, max_x=-1, min_z=-7, max_z=-1, wall_tex=tex)]
    a, b = _door(world, 4, 2, 1.5, 6.5)
    world.connect_rooms(rooms[0], rooms[1], min_z=a, max_z=b, max_y=2.2)
    a, b = _door(world, 4, 2, 1.5, 6.5)
    world.connect_rooms(rooms[1], rooms[2], min_x=a, max_x=b, max_y=2.2)
    a, b = _door(world, -4, 2, -6.5, -1.5)
    world.connect_rooms(rooms[2], rooms[3], min_z=a, max_z=b, max_y=2.2)
    a, b = _door(world, -4, 2, -6.5, -1.5)
    world.connect_rooms(rooms[3], rooms[0], min_x=a, max_x=b, max_y=2.2)
    return rooms


def _maze(world: NavWorld, tex: str, size: int = 3, room: float = 3.0, gap: float = 0.25) -> list[Any]:
    """MiniWorld's MazeS3: a size x size grid of rooms joined by a random spanning tree (backtracking)."""
    grid = [[world.add_rect_room(min_x=i * (room + gap), max_x=i * (room + gap) + room, min_z=j * (room + gap),
                                 max_z=j * (room + gap) + room, wall_tex=tex if world.task.jitter else "brick_wall")
             for i in range(size)] for j in range(size)]
    visited: set[tuple[int, int]] = set()

    def visit(i: int, j: int) -> None:
        visited.add((i, j))
        for k in world.np_random.permutation(4):
            dj, di = ((0, 1), (0, -1), (-1, 0), (1, 0))[k]
            ni, nj = i + di, j + dj
            if 0 <= ni < size and 0 <= nj < size and (ni, nj) not in visited:
                here, there = grid[j][i], grid[nj][ni]
                if di == 0:
                    world.connect_rooms(here, there, min_x=here.min_x, max_x=here.max_x)
                else:
                    world.connect_rooms(here, there, min_z=here.min_z, max_z=here.max_z)
                visit(ni, nj)

    visit(0, 0)
    return [r for row in grid for r in row]


LAYOUTS = {"three_rooms": _three_rooms, "four_rooms": _four_rooms, "maze": _maze}


# ---------------------------------------------------------------- the occupancy grid

def _inside_rooms(rooms: list[Any], xs: np.ndarray, zs: np.ndarray, tolerance: float) -> np.ndarray:
    """Points inside any room's outline, within ``tolerance`` of it (shared edges stay connected)."""
    inside = np.zeros(xs.shape, bool)
    for room in rooms:
        ok = np.ones(xs.shape, bool)
        for (ox, _, oz), (nx, _, nz) in zip(room.outline, room.edge_norms):
            ok &= (xs - ox) * nx + (zs - oz) * nz > -tolerance
        inside |= ok
    return inside


def _wall_cells(segs: np.ndarray, origin: tuple[float, float], cell: float, shape: tuple[int, int]) -> np.ndarray:
    """The cells the collision segments pass through (sampled every quarter cell)."""
    walls = np.zeros(shape, bool)
    for (ax, _, az), (bx, _, bz) in segs:
        n = max(2, int(math.ceil(math.hypot(bx - ax, bz - az) / (cell / 4))) + 1)
        t = np.linspace(0, 1, n)
        i = np.floor((az + t * (bz - az) - origin[1]) / cell).astype(int)
        j = np.floor((ax + t * (bx - ax) - origin[0]) / cell).astype(int)
        keep = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1])
        walls[i[keep], j[keep]] = True
    return walls


def near_radius(world: MiniWorldEnv, target: Entity) -> float:
    """Distance from the target's centre within which ``near(target)`` holds (MiniWorld's own rule)."""
    return target.radius + world.agent.radius + 1.1 * world.params.get_max("forward_step")


def build_nav_map(world: MiniWorldEnv, target: Entity, *, cell: float = 0.1, margin: float = 0.15) -> NavMap:
    """Occupancy grid of a generated MiniWorld world: free where the agent (radius 0.4) keeps ``margin``
    from every wall and every object; goal where ``near(target)`` holds with a cell to spare (the agent is
    never more than 0.71 cells from its cell's centre, so standing in a goal cell is being near), away from
    walls and the other objects."""
    pad = 0.5
    min_x, max_x = min(r.min_x for r in world.rooms) - pad, max(r.max_x for r in world.rooms) + pad
    min_z, max_z = min(r.min_z for r in world.rooms) - pad, max(r.max_z for r in world.rooms) + pad
    shape = (int(math.ceil((max_z - min_z) / cell)), int(math.ceil((max_x - min_x) / cell)))
    navmap = NavMap(np.zeros(shape, bool), np.zeros(shape, bool), (min_x, min_z), cell, snap=margin + 2 * cell)
    zs, xs = navmap.centers()
    obstacle = ~_inside_rooms(world.rooms, xs, zs, tolerance=cell) | _wall_cells(world.wall_segs, (min_x, min_z),
                                                                                  cell, shape)
    standable = inflate(obstacle, cell, world.agent.radius + margin)
    for ent in world.entities:
        if ent is world.agent or ent is target:
            continue
        standable &= (xs - ent.pos[0]) ** 2 + (zs - ent.pos[2]) ** 2 > (ent.radius + world.agent.radius + margin) ** 2
    d2 = (xs - target.pos[0]) ** 2 + (zs - target.pos[2]) ** 2
    navmap.goal = standable & (d2 < (near_radius(world, target) - cell) ** 2)
    navmap.free = standable & (d2 > (target.radius + world.agent.radius + margin) ** 2)
    return navmap


# ---------------------------------------------------------------- the MiniWorld world

class NavWorld(MiniWorldEnv):
    """A ``MiniWorldEnv`` that builds one of ``TASKS``' layouts with its target and distractors per seed."""

    def __init__(self, task: NavTask, image_size: int, *, cell: float = 0.1, margin: float = 0.15):
        # everything _gen_world reads must exist before MiniWorldEnv.__init__, which calls reset()
        self.task, self.cell, self.margin = task, cell, margin
        self.layout = ""
        self.objects: list[tuple[Entity, str, str]] = []
        self.target: Entity | None = None
        self.instruction = ""
        self.navmap: NavMap | None = None  # with the safety margin: what the expert plans on
        self.geomap: NavMap | None = None  # without it: the geodesic for SPL and distance to goal
        self.tries = 0
        # MiniWorld prints its multisampling fallback on stdout; keep stdout for our own output
        with contextlib.redirect_stdout(io.StringIO()):
            MiniWorldEnv.__init__(self, max_episode_steps=2**31 - 1, obs_width=image_size, obs_height=image_size)

    def _object(self, colour: str, kind: str) -> Entity:
        if kind == "box":
            return Box(color=colour, size=self.task.box_size)
        return Ball(color=colour, size=0.6) if kind == "ball" else Key(color=colour)

    def _choose_objects(self) -> list[tuple[str, str]]:
        """The target first, then distractors: one of its colour, one of its kind, the rest any other pair."""
        rng = self.np_random
        if self.task.distractors == 0:
            return [("red", "box")]
        pairs = [(c, k) for c in COLOURS for k in KINDS]
        colour, kind = pairs[rng.integers(len(pairs))]
        close = [(colour, rng.choice([k for k in KINDS if k != kind])),
                 (rng.choice([c for c in COLOURS if c != colour]), kind)]
        rest = [p for p in pairs if p != (colour, kind) and p not in close]
        others = [rest[k] for k in rng.choice(len(rest), self.task.distractors - 2, replace=False)]
        return [(colour, kind), *[(str(c), str(k)) for c, k in close], *others]

    def _place_object(self, ent: Entity, room: Any, *, target: bool) -> Entity:
        """Anywhere in a large room; a distractor in a small (maze) room stands against one of its walls, where
        it cannot block the way through (anywhere if 100 wall spots are taken). The target may block nothing."""
        if target or min(room.max_x - room.min_x, room.max_z - room.min_z) > 4:
            return self.place_entity(ent, room=room)
        if len(self.wall_segs) == 0:
            self._gen_static_data()  # collision segments (place_entity makes them on first use; we test first)
        rng = self.np_random
        for _ in range(100):
            off = ent.radius + rng.uniform(0.0, 0.3)  # from touching the wall to 0.3 m off it
            x, z = rng.uniform(room.min_x + off, room.max_x - off), rng.uniform(room.min_z + off, room.max_z - off)
            x, z = [(room.min_x + off, z), (room.max_x - off, z), (x, room.min_z + off), (x, room.max_z - off)][
                int(rng.integers(4))]
            pos = np.array([x, 0.0, z])
            if room.point_inside(pos) and not self.intersect(ent, pos, ent.radius):
                return self.place_entity(ent, pos=pos)
        return self.place_entity(ent, room=room)

    def _gen_world(self) -> None:
        rng = self.np_random
        self.layout = self.task.layouts[rng.integers(len(self.task.layouts))]
        tex = str(rng.choice(WALL_TEXTURES)) if self.task.jitter else "concrete"
        rooms = LAYOUTS[self.layout](self, tex)
        p = np.array([r.area for r in rooms], float)
        p /= p.sum()
        for self.tries in range(1, 201):  # noqa: B007 - kept for diagnostics
            self.entities = []
            self.objects = []
            for k, (colour, kind) in enumerate(self._choose_objects()):
                ent = self._place_object(self._object(colour, kind), rooms[rng.choice(len(rooms), p=p)], target=k == 0)
                self.objects.append((ent, colour, kind))
            self.target = self.objects[0][0]
            self.place_agent(room=rooms[rng.choice(len(rooms), p=p)])
            self.navmap = build_nav_map(self, self.target, cell=self.cell, margin=self.margin)
            if not math.isfinite(self.navmap.geodesic_distance(self.agent.pos[0], self.agent.pos[2])):
                continue  # the planner (with its margin) could not get there
            self.geomap = build_nav_map(self, self.target, cell=self.cell, margin=0.0)
            if MIN_START_DISTANCE <= self.geomap.geodesic_distance(self.agent.pos[0], self.agent.pos[2]) < math.inf:
                break
        else:
            raise RuntimeError(f"no solvable placement in 200 tries ({self.task.name}, {self.layout})")
        colour, kind = self.objects[0][1:]
        self.instruction = f"go to the {colour} {kind}"


# ---------------------------------------------------------------- the SimEnv

class MiniWorldNav:
    """A MiniWorld navigation task as a ``transfer.envs.nav.NavEnv`` (and so a ``transfer.sim.SimEnv``)."""

    def __init__(self, task: str = "goal-object", image_size: int = 64, *, cell: float = 0.1, margin: float = 0.15):
        if not 16 <= image_size <= 1024:
            raise D2EError(f"image size {image_size} is out of range", fix="use 16-1024 pixels, e.g. 64")
        self.task = nav_task(task)
        self.world = NavWorld(self.task, image_size, cell=cell, margin=margin)
        self.turn_degrees, self.forward_metres = TURN_DEGREES, FORWARD_METRES
        self.instruction = ""
        self.episode: EpisodeSpec | None = None
        self._image = np.zeros((image_size, image_size, 3), np.uint8)
        self._start = Pose(0.0, 0.0, 0.0)
        self._path: list[tuple[float, float]] = []
        self._book = NavEpisode(0.0, self._start)

    # ---- SimEnv

    def reset(self, episode: EpisodeSpec) -> Obs:
        self._image, _ = self.world.reset(seed=int(episode.seed))
        self.episode = episode
        self.instruction = self.world.instruction
        self._start = self.pose()
        assert self.world.geomap is not None
        self._path = self.world.geomap.shortest_path(self._start.x, self._start.z)
        self._book = NavEpisode(path_length(self._path), self._start)
        return self._obs()

    def step(self, action: Action) -> tuple[Obs, bool, dict[str, Any]]:
        move = self._book.take(action, self.at_goal)
        if move is not None:
            self._image, *_ = self.world.step(int(move))
            self._book.moved(move, self.pose())
        return self._obs(), self._book.ended, {"instruction": self.instruction, "layout": self.world.layout,
                                               "distance_to_goal": self.geodesic_distance(), **self._book.info()}

    def success(self) -> bool:
        return self._book.success

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.world.close()

    # ---- NavEnv

    def pose(self) -> Pose:
        agent = self.world.agent
        return Pose(float(agent.pos[0]), float(agent.pos[2]), float(agent.dir))

    def at_goal(self) -> bool:
        return bool(self.world.near(self.world.target))

    def nav_map(self) -> NavMap:
        assert self.world.navmap is not None
        return self.world.navmap

    def shortest_path(self) -> list[tuple[float, float]]:
        return list(self._path)

    def geodesic_distance(self) -> float:
        pose = self.pose()
        assert self.world.geomap is not None
        return 0.0 if self.at_goal() else self.world.geomap.geodesic_distance(pose.x, pose.z)

    # ---- what demos and results record about an episode

    def describe(self) -> dict[str, Any]:
        """The episode's layout and objects (JSON-safe), for demo attributes and debugging."""
        return {"task": self.task.name, "layout": self.world.layout, "instruction": self.instruction,
                "objects": [{"colour": c, "kind": k, "x": round(float(e.pos[0]), 3), "z": round(float(e.pos[2]), 3)}
                            for e, c, k in self.world.objects],
                "start": [round(self._start.x, 3), round(self._start.z, 3), round(self._start.yaw, 4)],
                "shortest_path_length": self._book.shortest}

    def _obs(self) -> Obs:
        return {"rgb": self._image, "state": relative_state(self._start, self.pose())}
