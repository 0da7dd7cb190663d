"""A scripted LIBERO expert that reads the simulator's state, so demonstrations need no download.

The official LIBERO demos cannot be fetched here, so demonstrations come from this expert: it knows where
every object is (privileged state) and drives the same 7-D OSC_POSE deltas a policy outputs. What makes
it succeed (measured; see docs/libero_expert.md):

- **A clipped proportional law on the grip site** (``gripper0_grip_site``): position gain ~10 (a 10 cm
  error asks for the controller's full 5 cm step), orientation from the axis-angle error to "pointing
  down, turned by yaw"; the gripper is -1 (open) or +1 (closed).
- **Object extents from collision geoms.** A body's position is neither its centre nor its bottom; the
  boxes of its collision geoms are. Every obstacle is a geom box, so an open drawer is not mistaken for
  the closed cabinet around it.
- **Grasps chosen for the hand, not the object alone**: across a box's short side, bowls at the rim,
  tall objects 5 cm below the top; among candidates the one whose hand footprint (about 0.21 m along the
  fingers) keeps clear of neighbours.
- **Phases with checks**: above -> descend -> close -> lift (regrasp when the object did not rise) ->
  carry (aiming the object, not the hand, using the measured hand-to-object offset) -> lower onto the
  target's top -> release -> retreat; a failed placement starts over from the object's new pose.
- **Goals from the task itself**: the BDDL goal (``In``/``On`` predicates over ``obj_of_interest``, the
  container's ``*_contain_region`` site, ``Open``/``Close``/``Turnon``) becomes a list of skills: pick and
  place; drawers pulled open facing their handle and pushed shut; stove knobs pinched and turned.
  ``expert_gap`` names goals it has no skill for (a microwave's hinged door).

The pure parts (rotations, the control law, footprints, grasp choice) are functions of arrays, tested
without a simulator; ``LiberoExpert`` is a ``transfer.sim.Policy`` that reads ``env.raw``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GRIP_SITE = "gripper0_grip_site"
# the grip site's rotation at yaw 0: fingers close along world y, the hand points straight down
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
POS_GAIN = 10.0  # action per metre of position error (the controller moves 0.05 m at action 1)
ROT_SCALE = 0.5  # radians of rotation at action 1 (the OSC_POSE controller's output limit)
OPEN, CLOSED = -1.0, 1.0
# The open Panda hand around its grip site (measured from its collision geoms): pads 7.6 cm apart, the
# fingers' outer faces 6.8 cm and tips 1.4 cm below the site; the hand's body 21 x 6 cm from 2.2 cm up.
MAX_OPENING = 0.072  # widest object side the fingers close around with some margin
FINGER_HALF_SPAN = 0.068
FINGER_HALF_WIDTH = 0.011
FINGER_BELOW = 0.014
PALM_ABOVE = 0.022
HAND_HALF_LENGTH = 0.105
HAND_HALF_WIDTH = 0.031
RIM_DEPTHS = (0.022, 0.012)  # how far below a rim the grip site closes: deep holds better, shallow clears more
CARRY_CLEARANCE = 0.04  # between a carried object's bottom and the obstacles it passes over
COMFORTABLE_REACH = 0.74  # horizontal distance from the robot's base the hand reaches pointing down


# ---------------------------------------------------------------- rotations and the control law


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def down_rotation(yaw: float) -> np.ndarray:
    """The grip site's rotation pointing down with the finger axis turned by ``yaw`` about world z."""
    return yaw_matrix(yaw) @ DOWN


def facing_rotation(approach: Sequence[float], fingers: Sequence[float]) -> np.ndarray:
    """The grip site's rotation pointing along ``approach`` with the fingers closing along ``fingers``."""
    z = np.asarray(approach, dtype=float) / np.linalg.norm(approach)
    x = np.asarray(fingers, dtype=float) - (np.asarray(fingers, dtype=float) @ z) * z
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def finger_axis(yaw: float) -> np.ndarray:
    """The horizontal direction the fingers close along at ``yaw``."""
    return down_rotation(yaw)[:2, 0]


def yaw_for_axis(direction: Sequence[float]) -> float:
    """The yaw in [-pi/2, pi/2) whose finger axis is parallel to ``direction`` (the hand is symmetric)."""
    yaw = math.atan2(direction[1], direction[0]) - math.pi / 2
    return (yaw + math.pi / 2) % math.pi - math.pi / 2


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Axis-angle (world frame) of the rotation taking ``current`` to ``target``: OSC_POSE's delta."""
    r = target @ current.T
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(cos)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    norm = np.linalg.norm(axis)
    if angle < 1e-6:
        return np.zeros(3)
    if norm < 1e-6:  # a half turn: the axis is the column of r + I with the largest norm
        m = r + np.eye(3)
        axis = m[:, int(np.argmax(np.linalg.norm(m, axis=0)))]
        norm = np.linalg.norm(axis)
    return axis / norm * angle


def servo(pos: np.ndarray, rot: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray, gripper: float,
          *, speed: float = 1.0, bias: np.ndarray | None = None) -> np.ndarray:
    """The 7-D action moving the grip site toward a pose: clipped proportional on position and rotation.

    ``speed`` (0-1] caps the translation part, for the slow final centimetres of a descent; ``bias`` is
    added to the position target (the integral of the remaining error, see ``Integrator``).
    """
    goal = np.asarray(target_pos, dtype=float) + (0.0 if bias is None else bias)
    move = np.clip(POS_GAIN * (goal - pos), -speed, speed)
    turn = np.clip(rotation_error(target_rot, rot) / ROT_SCALE, -1.0, 1.0)
    return np.concatenate([move, turn, [gripper]])


@dataclass
class Integrator:
    """The integral of the last centimetres of position error, so the hand does not stop short.

    A proportional law alone leaves a few millimetres when the arm carries a load or brushes something
    (the controller's pull fades with the error); the integral only grows near the target (no wind-up
    during long moves) and is bounded.
    """

    gain: float = 0.3
    near: float = 0.03
    limit: float = 0.02
    value: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def update(self, pos: np.ndarray, target: Sequence[float]) -> np.ndarray:
        error = np.asarray(target, dtype=float) - pos
        if np.linalg.norm(error) < self.near:
            self.value = np.clip(self.value + self.gain * error, -self.limit, self.limit)
        return self.value

    def clear(self) -> None:
        self.value = np.zeros(3)


# ---------------------------------------------------------------- shapes, footprints and grasps


@dataclass(frozen=True)
class Box:
    """A box in the world, possibly turned (a collision geom's extent): centre, rotation, half sides.

    Turned boxes matter: the walls of a cabinet turned by 26 degrees have axis-aligned bounds several
    times thicker than the walls, which would close an open drawer to every grasp.
    """

    center: np.ndarray
    rot: np.ndarray
    half: np.ndarray

    @staticmethod
    def aligned(lo: Sequence[float], hi: Sequence[float]) -> Box:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        return Box((lo + hi) / 2, np.eye(3), (hi - lo) / 2)

    def corners(self) -> np.ndarray:
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
        return (signs * self.half) @ self.rot.T + self.center

    @property
    def lo(self) -> np.ndarray:
        return self.corners().min(axis=0)

    @property
    def hi(self) -> np.ndarray:
        return self.corners().max(axis=0)

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Which points lie inside the box grown by ``margin``."""
        local = (np.asarray(points) - self.center) @ self.rot
        return np.all(np.abs(local) < self.half + margin, axis=1)


@dataclass(frozen=True)
class Footprint:
    """An object's smallest horizontal rectangle (centre, yaw of its first side, half sides) and z range."""

    center: np.ndarray
    yaw: float
    half: np.ndarray
    bottom: float
    top: float

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([c, s]), np.array([-s, c])

    @property
    def height(self) -> float:
        return self.top - self.bottom


def footprint(points: np.ndarray, step_degrees: float = 2.0) -> Footprint:
    """The minimum-area rectangle around points' xy (searched over yaw), with their z range."""
    xy = np.asarray(points)[:, :2]
    best = None
    for yaw in np.radians(np.arange(0.0, 90.0, step_degrees)):
        c, s = math.cos(yaw), math.sin(yaw)
        u, v = xy @ np.array([c, s]), xy @ np.array([-s, c])
        area = np.ptp(u) * np.ptp(v)
        if best is None or area < best[0] - 1e-12:
            best = (area, yaw, u, v)
    _, yaw, u, v = best
    c, s = math.cos(yaw), math.sin(yaw)
    mid_u, mid_v = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    center = mid_u * np.array([c, s]) + mid_v * np.array([-s, c])
    z = np.asarray(points)[:, 2]
    return Footprint(center, float(yaw), np.array([np.ptp(u) / 2, np.ptp(v) / 2]), float(z.min()), float(z.max()))


@dataclass(frozen=True)
class Grasp:
    """Where the grip site closes (world position) and the hand's yaw there."""

    pos: np.ndarray
    yaw: float
    kind: str


def _center_grasps(shape: Footprint) -> list[Grasp]:
    """Grasps at the centre, fingers across each side that fits between them (tall: 5 cm below the top)."""
    u, v = shape.axes
    tall = shape.height > 0.10
    z = shape.top - 0.05 if tall else max(shape.bottom + FINGER_BELOW - 0.002, shape.top - 0.03)
    candidates = []
    for width, axis in ((2 * shape.half[0], u), (2 * shape.half[1], v)):
        if width <= MAX_OPENING:
            candidates.append(Grasp(np.array([*shape.center, z]), yaw_for_axis(axis), "center"))
    if len(candidates) == 2:  # round or square: the diagonals work too
        for axis in (u + v, u - v):
            candidates.append(Grasp(np.array([*shape.center, z]), yaw_for_axis(axis), "center"))
    return candidates


def grasp_candidates(shape: Footprint, parts: Sequence[Box] = ()) -> list[Grasp]:
    """Ways to hold an object of this footprint: across a short side, or at the rim of a wide one.

    Objects narrower than the open fingers are held at their centre (tall ones 5 cm below the top, low
    ones just above their support). Wider ones (bowls) are held by the rim wall: at each of the object's
    collision ``parts`` that reaches within 1 cm of its top (all around an upright bowl, only the high
    side of a tilted one), fingers across the wall.
    """
    candidates = _center_grasps(shape)
    if candidates or not parts:
        return candidates
    for part in parts:
        if part.hi[2] < shape.top - 0.01:
            continue
        point = part.center[:2]
        radial = point - shape.center
        if np.linalg.norm(radial) < 0.02:
            continue
        for depth in RIM_DEPTHS:
            candidates.append(Grasp(np.array([*point, part.hi[2] - depth]), yaw_for_axis(radial), "rim"))
    return candidates


def hand_samples(grasp: Grasp, spacing: float = 0.01) -> np.ndarray:
    """Points filling the open hand at a grasp (fingers and the body above them), for clearance checks."""
    axis = finger_axis(grasp.yaw)
    across = np.array([-axis[1], axis[0]])
    points = []
    for half_length, half_width, z0, z1 in ((FINGER_HALF_SPAN, FINGER_HALF_WIDTH, -FINGER_BELOW, PALM_ABOVE),
                                            (HAND_HALF_LENGTH, HAND_HALF_WIDTH, PALM_ABOVE, PALM_ABOVE + 0.1)):
        for a in np.arange(-half_length, half_length + 1e-9, spacing):
            for b in np.arange(-half_width, half_width + 1e-9, spacing):
                for z in np.arange(z0, z1 + 1e-9, 0.02):
                    xy = grasp.pos[:2] + a * axis + b * across
                    points.append([xy[0], xy[1], grasp.pos[2] + z])
    return np.array(points)


def collisions(points: np.ndarray, obstacles: Iterable[Box], margin: float = 0.005) -> int:
    """How many points fall inside any obstacle box grown by ``margin``."""
    inside = np.zeros(len(points), dtype=bool)
    for box in obstacles:
        inside |= box.contains(points, margin)
    return int(inside.sum())


def choose_grasp(candidates: Sequence[Grasp], obstacles: Sequence[Box], current_yaw: float = 0.0,
                 base: np.ndarray | None = None, moves: Sequence[np.ndarray] = ()) -> Grasp:
    """The candidate whose hand collides least with the obstacles; ties go to the smallest turn of the
    wrist plus the distance from the robot's ``base``, strongly penalised beyond a comfortable reach.

    ``moves`` are the xy shifts the object will make while held (to its target): the hand must reach the
    grasp point moved by each of them too, so a rim grasp on the far side of a bowl is avoided when the
    bowl goes to the edge of the workspace.
    """
    def cost(grasp: Grasp) -> tuple[int, float]:
        turn = abs((grasp.yaw - current_yaw + math.pi / 2) % math.pi - math.pi / 2)
        far = 0.0 if base is None else max(float(np.linalg.norm(grasp.pos[:2] + shift - base[:2]))
                                           for shift in [np.zeros(2), *moves])
        return collisions(hand_samples(grasp), obstacles), turn + far + 60 * max(0.0, far - COMFORTABLE_REACH)
    return min(candidates, key=cost)


# ---------------------------------------------------------------- the simulator side


def _body_tree(model: Any, root: int) -> list[int]:
    children = {root}
    for body in range(root + 1, model.nbody):
        if model.body_parentid[body] in children:
            children.add(body)
    return sorted(children)


def geom_box(model: Any, data: Any, geom: int) -> Box:
    """The world box around one geom (its local bounding box turned by the geom's orientation)."""
    center, half = model.geom_aabb[geom][:3], model.geom_aabb[geom][3:]
    rot = data.geom_xmat[geom].reshape(3, 3)
    return Box(data.geom_xpos[geom] + rot @ center, rot.copy(), half.copy())


def _is_collider(model: Any, geom: int) -> bool:
    return bool(model.geom_contype[geom] or model.geom_conaffinity[geom])


class Scene:
    """Privileged reads of a LIBERO scene: object footprints, obstacle boxes, the hand's pose."""

    def __init__(self, raw_env: Any):
        self.env = raw_env
        self.model = raw_env.sim.model._model
        self.data = raw_env.sim.data._data
        model = self.model
        self.robot_geoms = set()
        self.body_geoms: dict[str, list[int]] = {}
        for name, obj in {**raw_env.fixtures_dict, **raw_env.objects_dict}.items():
            bodies = set(_body_tree(model, model.body(obj.root_body).id))
            self.body_geoms[name] = [g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies
                                     and _is_collider(model, g)]
        for g in range(model.ngeom):
            body = model.body(model.geom_bodyid[g]).name
            if body.startswith(("robot0_", "gripper0_", "mount0_")):
                self.robot_geoms.add(g)
        self.base = np.array(self.data.body("robot0_base").xpos)

    # -- the hand
    def hand(self) -> tuple[np.ndarray, np.ndarray]:
        site = self.data.site(GRIP_SITE)
        return np.array(site.xpos), np.array(site.xmat).reshape(3, 3)

    # -- objects
    def points(self, name: str) -> np.ndarray:
        return np.concatenate([part.corners() for part in self.parts(name)])

    def parts(self, name: str) -> list[Box]:
        """The world boxes of an object's collision geoms."""
        return [geom_box(self.model, self.data, g) for g in self.body_geoms[name]]

    def moving(self, name: str) -> bool:
        """Whether the object still moves (faster than 1 cm/s or 0.1 rad/s)."""
        joints = [self.model.joint(j) for j in self.env.get_object(name).joints]
        free = [j for j in joints if j.type[0] == 0]  # mjJNT_FREE: a loose object, not a fixture's hinge
        if not free:
            return False
        address = free[0].dofadr[0]
        velocity = self.data.qvel[address:address + 6]
        return bool(np.linalg.norm(velocity[:3]) > 0.01 or np.linalg.norm(velocity[3:]) > 0.1)

    def shape(self, name: str) -> Footprint:
        return footprint(self.points(name))

    def box(self, name: str) -> Box:
        """The axis-aligned world box around a whole object."""
        points = self.points(name)
        return Box.aligned(points.min(axis=0), points.max(axis=0))

    def body_pos(self, name: str) -> np.ndarray:
        return np.array(self.data.body(self.env.get_object(name).root_body).xpos)

    def site_pos(self, name: str) -> np.ndarray:
        return np.array(self.data.site(name).xpos)

    def obstacles(self, exclude: Iterable[str] = ()) -> list[Box]:
        """Collision-geom boxes of every object and fixture except ``exclude`` (the held object)."""
        skip = set(exclude)
        return [geom_box(self.model, self.data, g) for name, geoms in self.body_geoms.items() if name not in skip
                for g in geoms]

    def holds(self, name: str) -> bool:
        """Both fingers touch the object (the grasp closed on it)."""
        geoms = set(self.body_geoms[name])
        touching = set()
        for contact in self.data.contact[: self.data.ncon]:
            for mine, other in ((contact.geom1, contact.geom2), (contact.geom2, contact.geom1)):
                if other in geoms and mine in self.robot_geoms:
                    touching.add(self.model.body(self.model.geom_bodyid[mine]).name)
        return any("finger_joint1" in b or "leftfinger" in b for b in touching) and any(
            "finger_joint2" in b or "rightfinger" in b for b in touching)

    def predicate(self, goal: Sequence[str]) -> bool:
        return bool(self.env._eval_predicate(list(goal)))


# ---------------------------------------------------------------- skills


@dataclass
class Placement:
    """Where a held object goes: its body's xy target, the height it is released from, what to clear."""

    xy: np.ndarray
    support_z: float  # the surface the object's bottom comes down to
    rim_z: float  # the fingertips stay above this (a container's rim)


class Skill:
    """One step of a task's plan; ``act`` returns an action, or None when the skill is finished."""

    name = "skill"

    def act(self, scene: Scene) -> np.ndarray | None:
        raise NotImplementedError


@dataclass
class _Phase:
    name: str
    steps: int = 0


@dataclass(kw_only=True)
class PhasedSkill(Skill):
    """A skill run as named phases, each with a step budget; ``goal`` is the predicate that ends it."""

    goal: list[str]
    attempts: int = 3
    phase: _Phase = field(default_factory=lambda: _Phase("plan"))
    tries: int = 0
    heights: list[float] = field(default_factory=list)
    integral: Integrator = field(default_factory=Integrator)

    def _go(self, phase: str) -> None:
        self.phase = _Phase(phase)
        self.heights = []
        self.integral.clear()

    def _servo(self, pos: np.ndarray, rot: np.ndarray, target: Sequence[float], target_rot: np.ndarray,
               gripper: float, *, speed: float = 1.0) -> np.ndarray:
        return servo(pos, rot, target, target_rot, gripper, speed=speed, bias=self.integral.update(pos, target))

    def _stalled(self, z: float, steps: int = 6, by: float = 0.002) -> bool:
        """Whether the hand stopped going down: it moved less than ``by`` over the last ``steps`` steps."""
        self.heights.append(z)
        return len(self.heights) > steps and self.heights[-steps] - z < by

    def done(self, scene: Scene) -> bool:
        return scene.predicate(self.goal)

    def _check(self, scene: Scene, pos: np.ndarray, rot: np.ndarray, target_rot: np.ndarray, *, wait: int
               ) -> np.ndarray | None:
        """The last phase: finished once the goal holds; after ``wait`` steps without it, start over."""
        if self.done(scene):
            return None
        if self.phase.steps > wait:
            self._go("plan")
        return self._servo(pos, rot, pos, target_rot, OPEN)


@dataclass(kw_only=True)
class PickPlace(PhasedSkill):
    """Pick ``obj`` up and put it where ``goal`` (an ``In``/``On`` predicate) holds."""

    obj: str
    grasp: Grasp | None = None
    hang: float = 0.0
    lift_from: float = 0.0
    carry_z: float = 0.0
    clear_top: float = 0.0
    name: str = "pick-place"

    def placement(self, scene: Scene) -> Placement:
        relation, _, target = self.goal
        if target in scene.env.object_sites_dict:
            site = scene.env.object_sites_dict[target]
            center = scene.site_pos(target)
            half = np.abs(np.array(scene.data.site(target).xmat).reshape(3, 3) @ np.asarray(site.size, float))
            parent = site.parent_name
            rim = scene.box(parent).hi[2] if parent in scene.body_geoms else center[2]
            if relation == "in":
                return Placement(center[:2], float(center[2] - half[2]), float(rim))
            return Placement(center[:2], float(center[2] + half[2]), float(center[2] + half[2]))
        box = scene.box(target)
        return Placement(scene.body_pos(target)[:2], float(box.hi[2]), float(box.hi[2]))

    def act(self, scene: Scene) -> np.ndarray | None:
        pos, rot = scene.hand()
        phase = self.phase
        phase.steps += 1
        if phase.name == "plan":
            if self.done(scene):
                return None
            if self.tries >= self.attempts:
                return None
            if scene.moving(self.obj) and phase.steps < 20:  # plan on the object's resting pose
                return self._servo(pos, rot, pos, down_rotation(yaw_for_axis(rot[:2, 0])), OPEN)
            self.tries += 1
            shape = scene.shape(self.obj)
            current_yaw = yaw_for_axis(rot[:2, 0])
            candidates = grasp_candidates(shape, scene.parts(self.obj))
            if not candidates:
                return None
            move = self.placement(scene).xy - scene.body_pos(self.obj)[:2]
            self.grasp = choose_grasp(candidates, scene.obstacles(exclude=[self.obj]), current_yaw, scene.base,
                                      [move])
            self._go("above")
            phase = self.phase
        grasp = self.grasp
        assert grasp is not None
        target_rot = down_rotation(grasp.yaw)
        if phase.name == "above":
            above = grasp.pos + [0, 0, 0.10]
            above[2] = max(above[2], pos[2] if np.linalg.norm(pos[:2] - grasp.pos[:2]) > 0.05 else above[2])
            if np.linalg.norm(above - pos) < 0.015 and np.linalg.norm(rotation_error(target_rot, rot)) < 0.1 \
                    or phase.steps > 60:
                self._go("descend")
            return self._servo(pos, rot, above, target_rot, OPEN)
        if phase.name == "descend":
            if np.linalg.norm(grasp.pos - pos) < 0.006 or phase.steps > 40:
                self._go("close")
            return self._servo(pos, rot, grasp.pos, target_rot, OPEN, speed=0.6)
        if phase.name == "close":
            if phase.steps >= 12:
                self.lift_from = scene.shape(self.obj).bottom
                self.hang = pos[2] - self.lift_from
                self._go("lift")
            return self._servo(pos, rot, grasp.pos, target_rot, CLOSED)
        place = self.placement(scene)
        if phase.name == "lift":
            bottom = scene.shape(self.obj).bottom
            lift_z = grasp.pos[2] + 0.06
            if phase.steps > 8 and pos[2] > grasp.pos[2] + 0.03 and bottom - self.lift_from < 0.015 \
                    and not scene.holds(self.obj):
                self._go("regrasp")  # the object stayed on the table: open and plan again
            elif pos[2] > lift_z - 0.01 or phase.steps > 30:
                self.hang = pos[2] - bottom
                self.clear_top = self._obstacle_top(scene, place)
                self.carry_z = self.clear_top + self.hang + CARRY_CLEARANCE
                self._go("carry")
            return self._servo(pos, rot, [pos[0], pos[1], lift_z], target_rot, CLOSED)
        if phase.name == "regrasp":
            if phase.steps > 10:
                self._go("plan")
            return self._servo(pos, rot, pos + [0, 0, 0.01], target_rot, OPEN)
        bottom = scene.shape(self.obj).bottom
        if phase.name in ("carry", "lower") and pos[2] - bottom > self.hang + 0.03 and not scene.holds(self.obj):
            self._go("regrasp")  # the object slipped out of the hand: open and plan again
            return self._servo(pos, rot, pos, target_rot, OPEN)
        offset = scene.body_pos(self.obj)[:2] - pos[:2]
        hand_xy = place.xy - offset
        if phase.name == "carry":
            # an object held by its rim tilts and hangs lower on the way: rise with it, never sink
            self.carry_z = max(self.carry_z, self.clear_top + pos[2] - bottom + CARRY_CLEARANCE)
            target = np.array([*hand_xy, self.carry_z])
            if np.linalg.norm(target[:2] - pos[:2]) < 0.015 and abs(target[2] - pos[2]) < 0.03 or phase.steps > 80:
                self._go("lower")
            speed = 0.7
            if pos[2] < self.carry_z - 0.02:
                target[:2] = pos[:2]  # rise first, then travel
                speed = 0.45 if self.grasp.kind == "rim" else 0.7  # a bowl held by its rim slips when jerked up
            return self._servo(pos, rot, target, target_rot, CLOSED, speed=speed)
        if phase.name == "lower":
            release_z = max(place.support_z + 0.01 + self.hang, place.rim_z + FINGER_BELOW + 0.02)
            target = np.array([*hand_xy, release_z])
            stalled = self._stalled(float(pos[2]))  # the object already rests on something
            if abs(pos[2] - release_z) < 0.008 or stalled or phase.steps > 50:
                self._go("release")
            return self._servo(pos, rot, target, target_rot, CLOSED, speed=0.5)
        if phase.name == "release":
            if phase.steps >= 8:
                self._go("retreat")
            return self._servo(pos, rot, pos, target_rot, OPEN)
        if phase.name == "retreat":
            if phase.steps >= 12:
                self._go("check")
            return self._servo(pos, rot, [pos[0], pos[1], self.carry_z], target_rot, OPEN)
        if phase.name == "check":
            return self._check(scene, pos, rot, target_rot, wait=15)
        raise AssertionError(phase.name)

    def _obstacle_top(self, scene: Scene, place: Placement) -> float:
        """The top of everything between here and the target that the held object must pass over."""
        start = scene.body_pos(self.obj)[:2]
        reach = float(max(scene.shape(self.obj).half)) + 0.04
        top = place.rim_z
        for box in scene.obstacles(exclude=[self.obj]):
            if _segment_hits_box(start, place.xy, box, reach):
                top = max(top, float(box.hi[2]))
        return top


@dataclass
class Joint:
    """An articulation as the expert sees it: where it is, which way it moves, and the moving part's boxes."""

    name: str
    kind: str  # "slide" (a drawer) or "hinge" (a knob, a door)
    anchor: np.ndarray
    axis: np.ndarray
    qpos: float
    parts: list[Box]


def joint_state(scene: Scene, joint: str) -> Joint:
    model, data = scene.model, scene.data
    j = model.joint(joint)
    body = int(j.bodyid[0])
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body and _is_collider(model, g)]
    kind = {2: "slide", 3: "hinge"}.get(int(j.type[0]), "other")
    return Joint(joint, kind, np.array(data.xanchor[j.id]), np.array(data.xaxis[j.id]),
                 float(data.qpos[j.qposadr[0]]), [geom_box(model, data, g) for g in geoms])


def _joints_of(scene: Scene, name: str) -> tuple[list[str], Any]:
    """The joints a goal's argument moves (a drawer's region site or a fixture) and the fixture owning them."""
    env = scene.env
    if name in env.object_sites_dict:
        site = env.object_sites_dict[name]
        return list(site.joints or []), env.get_object(site.parent_name)
    obj = env.get_object(name)
    return list(obj.joints), obj


def _ranges(fixture: Any, key: str) -> list[float]:
    return list(fixture.object_properties["articulation"][f"default_{key}_ranges"])


@dataclass(kw_only=True)
class Articulate(PhasedSkill):
    """Open or close a drawer (pull on its handle / push its front) or turn a stove's knob on.

    ``goal`` is ``[open|close, region site]`` or ``[turnon, stove]``. Drawers: the direction that opens is
    read from the fixture's own open and close ranges; the handle is the moving part that sticks out
    furthest that way. Knobs: pinched across at their axis and turned by the wrist.
    """

    name: str = "articulate"
    start: np.ndarray | None = None
    yaw: float = 0.0
    pull: np.ndarray | None = None
    facing: np.ndarray | None = None  # the hand's rotation while it works (None: pointing down at ``yaw``)

    def _joint(self, scene: Scene) -> tuple[Joint, Any]:
        joints, fixture = _joints_of(scene, self.goal[1])
        return joint_state(scene, joints[0]), fixture

    def _plan(self, scene: Scene, rot: np.ndarray) -> None:
        joint, fixture = self._joint(scene)
        self.facing = None
        if self.goal[0] == "turnon":
            shape = footprint(np.concatenate([p.corners() for p in joint.parts]))
            short = shape.axes[0] if shape.half[0] < shape.half[1] else shape.axes[1]
            self.yaw = yaw_for_axis(short)
            self.start = np.array([*joint.anchor[:2], shape.top - 0.018])
            return
        open_sign = np.sign(np.mean(_ranges(fixture, "open")) - np.mean(_ranges(fixture, "close")))
        opening = joint.axis * open_sign
        opening[2] = 0.0
        opening /= np.linalg.norm(opening)
        handle = max(joint.parts, key=lambda b: float(b.center @ opening))  # the bar sticking out furthest
        self.yaw = yaw_for_axis(opening)
        if self.goal[0] == "open":  # face the drawer, fingers above and below the bar, then pull
            candidates = [facing_rotation(-opening, [0, 0, 1]), facing_rotation(-opening, [0, 0, -1])]
            self.facing = min(candidates, key=lambda r: float(np.linalg.norm(rotation_error(r, rot))))
            self.start = handle.center + 0.004 * opening
            self.pull = opening
        else:  # fingertips pointing down against the handle's front, the hand along the drawer's face, push
            self.yaw = yaw_for_axis([-opening[1], opening[0]])
            ahead = max(float(c @ opening) for c in handle.corners()) - float(handle.center @ opening) + 0.03
            self.start = np.array([*(handle.center[:2] + ahead * opening[:2]), handle.center[2] + FINGER_BELOW - 0.004])
            self.pull = -opening

    def act(self, scene: Scene) -> np.ndarray | None:
        pos, rot = scene.hand()
        phase = self.phase
        phase.steps += 1
        if phase.name == "plan":
            if self.done(scene) or self.tries >= self.attempts:
                return None
            self.tries += 1
            self._plan(scene, rot)
            self._go("above")
            phase = self.phase
        assert self.start is not None
        target_rot = down_rotation(self.yaw) if self.facing is None else self.facing
        facing = self.facing is not None
        grip = CLOSED if self.goal[0] == "close" else OPEN
        if phase.name == "above":  # above the start, or in front of the handle and a little higher
            above = self.start + ([0, 0, 0.08] if not facing else 0.12 * self.pull + [0, 0, 0.03])
            if np.linalg.norm(above - pos) < 0.015 and np.linalg.norm(rotation_error(target_rot, rot)) < 0.1 \
                    or phase.steps > 80:
                self._go("descend")
            return self._servo(pos, rot, above, target_rot, grip)
        if phase.name == "descend":
            stalled = not facing and self._stalled(float(pos[2]))
            if np.linalg.norm(self.start - pos) < 0.006 or stalled or phase.steps > 40:
                self._go("move" if self.goal[0] == "close" else "close")
            return self._servo(pos, rot, self.start, target_rot, grip, speed=0.5)
        if phase.name == "close":
            if phase.steps >= 10:
                self._go("move")
            return self._servo(pos, rot, self.start, target_rot, CLOSED)
        if phase.name == "move":
            if self.done(scene) and phase.steps > 3 or phase.steps > 60:
                self._go("release")
            if self.goal[0] == "turnon":
                sign = 1.0 if self._joint(scene)[0].axis[2] > 0 else -1.0
                turned = down_rotation(self.yaw + sign * min(1.2, 0.08 * phase.steps))
                return self._servo(pos, rot, self.start, turned, CLOSED)
            assert self.pull is not None
            return self._servo(pos, rot, self.start + self.pull * min(0.25, 0.012 * phase.steps), target_rot,
                               CLOSED)
        if phase.name == "release":
            if phase.steps >= 6:
                self._go("retreat")
            return self._servo(pos, rot, pos, rot, OPEN)
        if phase.name == "retreat":  # back off the handle, then up
            if phase.steps >= 12:
                self._go("check")
            away = pos + (0.05 * self.pull if facing and phase.steps < 6 else [0, 0, 0.05])
            return self._servo(pos, rot, away, rot, OPEN)
        if phase.name == "check":
            return self._check(scene, pos, rot, rot, wait=5)
        raise AssertionError(phase.name)


def _segment_hits_box(a: np.ndarray, b: np.ndarray, box: Box, radius: float) -> bool:
    """Whether a disc of ``radius`` swept from ``a`` to ``b`` (xy) comes into the box's footprint.

    A box the disc already touches at ``a`` counts only if the sweep gets closer to it: the object rises
    straight up from where it stands, so what stood beside it is in the way only when moved toward.
    """
    def distance(t: float) -> float:
        p = a + t * (b - a)
        return float(np.linalg.norm(p - np.clip(p, box.lo[:2], box.hi[:2])))

    start = distance(0.0)
    return any(d < radius and (start >= radius or d < start - 0.005)
               for d in (distance(t) for t in np.linspace(0.05, 1.0, 20)))


ORDER = {"open": 0, "in": 1, "on": 1, "close": 2, "turnon": 3}  # open first, close after placing, knobs last


def goal_skills(goal_state: Sequence[Sequence[str]]) -> list[Skill]:
    """A BDDL goal (a conjunction of predicates) as skills, in an order that works.

    Drawers open before anything goes in and close after; ``In`` a drawer region opens it first. Raises
    ``NotImplementedError`` naming the first predicate no skill achieves.
    """
    skills: list[Skill] = []
    goals = sorted((list(g) for g in goal_state), key=lambda g: ORDER.get(g[0].lower(), 9))
    for goal in goals:
        relation = goal[0].lower()
        if relation in ("in", "on") and len(goal) == 3:
            if relation == "in" and "_cabinet_" in goal[2] and goal[2].endswith("_region"):
                skills.append(Articulate(goal=["open", goal[2]]))  # a drawer: open it first
            skills.append(PickPlace(obj=goal[1], goal=[relation, goal[1], goal[2]]))
        elif len(goal) == 2 and (relation in ("open", "close") and "_cabinet_" in goal[1]
                                 or relation == "turnon" and "stove" in goal[1]):
            skills.append(Articulate(goal=[relation, goal[1]]))
        else:
            raise NotImplementedError(f"no expert skill for the goal ({' '.join(goal)})")
    return skills


def expert_gap(task: Any) -> str | None:
    """Why the expert cannot do a ``transfer.envs.libero.Task`` (None when it can); reads only its BDDL file."""
    from libero.libero.envs import bddl_utils

    try:
        goal_skills(bddl_utils.robosuite_parse_problem(task.bddl_file)["goal_state"])
    except NotImplementedError as exc:
        return str(exc)
    return None


class LiberoExpert:
    """The scripted expert as a ``transfer.sim.Policy``: it reads the simulator through ``env.raw``."""

    def __init__(self, env: Any):
        self.env = env
        self.skills: list[Skill] = []
        self.scene: Scene | None = None
        self.gap: str | None = None  # why the expert cannot do this task (it then holds still: a failure)

    def reset(self, instruction: str) -> None:
        self.scene = Scene(self.env.raw)  # a reset may rebuild the simulator: read it afresh
        try:
            self.skills, self.gap = goal_skills(self.env.raw.parsed_problem["goal_state"]), None
        except NotImplementedError as exc:
            self.skills, self.gap = [], str(exc)

    def act(self, obs: Any = None) -> np.ndarray:
        assert self.scene is not None, "reset() first"
        while self.skills:
            action = self.skills[0].act(self.scene)
            if action is not None:
                return action
            self.skills.pop(0)
        pos, rot = self.scene.hand()
        return servo(pos, rot, pos, rot, OPEN)  # nothing left to do: hold still


@dataclass
class Plan:
    """The expert's actions for one episode, found without cameras, and whether they reached the goal."""

    actions: np.ndarray
    success: bool
    seconds: float
    gap: str | None = None  # why there is no plan (a goal the expert has no skill for)

    @property
    def steps(self) -> int:
        return len(self.actions)


def plan_episode(env: Any, spec: Any) -> Plan:
    """Run the expert in ``env`` (best camera-less: ``LiberoEnv.planning_twin``) until success or the limit."""
    start = time.perf_counter()
    env.reset(spec)
    expert = LiberoExpert(env)
    expert.reset(env.instruction)
    if expert.gap is not None:
        return Plan(np.zeros((0, 7)), False, time.perf_counter() - start, expert.gap)
    actions = []
    done = False
    while len(actions) < spec.max_steps and not done:
        actions.append(expert.act())
        _, done, _ = env.step(actions[-1])
    return Plan(np.array(actions, dtype=np.float64).reshape(-1, 7), bool(done), time.perf_counter() - start)


class ReplayPolicy:
    """The expert's plan for the current episode, made in the env's camera-less twin, replayed blind.

    What demonstrations are made of (plan fast without rendering, replay with the cameras on), as a
    ``Policy``: evaluating it shows the replay reaches what the plan reached.
    """

    def __init__(self, env: Any):
        self.env = env
        self.plan: Plan | None = None
        self.step = 0

    def reset(self, instruction: str) -> None:
        self.plan = plan_episode(self.env.planning_twin(), self.env.episode)
        self.step = 0

    def act(self, obs: Any = None) -> np.ndarray:
        assert self.plan is not None, "reset() first"
        self.step += 1
        if self.step <= self.plan.steps:
            return self.plan.actions[self.step - 1]
        return np.array([0, 0, 0, 0, 0, 0, OPEN])  # the plan is over: stay, gripper open

