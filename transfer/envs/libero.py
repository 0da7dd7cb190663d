"""LIBERO manipulation behind the shared ``SimEnv`` contract, rendering only what the policy looks at.

Why it is built this way:

- **Rendering is the cost.** On a CPU a step without cameras runs at tens per second, with two 128 px
  cameras at a handful; so the env renders exactly the cameras the policy uses, at the policy's size, and
  builds no renderer at all when it is asked for none (``cameras=()``: how the scripted expert plans).
  The offscreen buffer is the image's size without multisampling (robosuite allocates 640x480 with 4x
  MSAA, which cost half of each step on Mesa's CPU renderer: 154 -> 82 ms a step for two
  64 px cameras), and resets keep the loaded model (robosuite's hard reset rebuilds it, ~2 s a reset);
  the fixed init states and the seeded placements set the whole scene either way.
  Images are rendered when a policy reads them (``RenderedOnDemand``), not at every step: a policy that
  executes 4 actions of each chunk open loop looks at 2 of every 4 frames.
- **One flip.** LIBERO's renders (and the official HDF5 demos) are upside down (OpenGL's bottom-up rows);
  ``upright`` is the only place that turns them, used both here and when demos are loaded, so a policy
  sees the same orientation in training and in evaluation. It flips rows only, which gives the true camera
  image (OpenVLA's LIBERO code rotates by 180 degrees, i.e. also mirrors left-right).
- **Episodes as LIBERO evaluates them.** ``reset`` loads one of the benchmark's fixed init states
  (``EpisodeSpec.index``) or, with ``extra={"placement": "fresh"}``, keeps the placement LIBERO samples
  itself (what demonstrations use, so they never see an evaluation state); then ten settle steps with the
  gripper open, which do not count against the horizon. Every random draw of a reset comes from
  ``EpisodeSpec.seed`` (LIBERO samples from numpy's global generator; it is seeded, then restored), so the
  same spec gives the same scene in any process, with or without cameras.
- **Quiet.** robosuite's macro warning and LIBERO's prints never reach the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from capture.errors import D2EError, require

from ..sim import EpisodeSpec, Obs

# Steps LIBERO's evaluations allow per suite (OpenVLA / OpenVLA-OFT evaluation scripts).
HORIZONS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}
SUITES = tuple(HORIZONS)
SETTLE_STEPS = 10  # steps with the gripper open after a reset, while objects drop onto their supports
OPEN_GRIPPER = np.array([0, 0, 0, 0, 0, 0, -1.0])
FRESH = "fresh"  # EpisodeSpec.extra["placement"]: a new sampled placement instead of a fixed init state

# camera name on the command line -> (robosuite camera, observation key in policies and demo files)
CAMERAS = {"agentview": ("agentview", "agentview_rgb"), "wrist": ("robot0_eye_in_hand", "eye_in_hand_rgb")}
DEFAULT_CAMERAS = ("agentview", "wrist")


def upright(images: np.ndarray) -> np.ndarray:
    """LIBERO's raw camera images (one ``(H, W, 3)`` or a stack ``(N, H, W, 3)``) as the camera saw them.

    Rows come bottom-up from OpenGL; flipping them is its own inverse, so it also turns an upright image
    back into LIBERO's raw orientation (how demo files store them, as the official ones do).
    """
    return np.ascontiguousarray(np.flip(images, axis=-3))


def proprio_state(eef_pos: np.ndarray, eef_quat: np.ndarray, gripper_qpos: np.ndarray) -> np.ndarray:
    """The 8-D proprio vector OpenVLA-OFT feeds its policy: eef position, eef axis-angle, gripper fingers."""
    return np.concatenate([eef_pos, quat_to_axis_angle(eef_quat), gripper_qpos]).astype(np.float32)


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """robosuite's (x, y, z, w) quaternion as an axis-angle 3-vector (LIBERO's ``ee_ori``)."""
    q = np.asarray(quat, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-10:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


# ---------------------------------------------------------------- importing LIBERO quietly


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """LIBERO prints progress notes ('[info] Applying task order ...') on stdout: swallow them."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _import_libero() -> Any:
    """``libero.libero`` with headless rendering chosen and robosuite's warnings silenced."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # robosuite reads it when imported
    # robosuite warns on import that no private macro file exists; its console handler obeys this level
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # robosuite's own logger calls are deprecated
        require("robosuite", "libero")
        return require("libero.libero", "libero")


@cache
def benchmark(suite: str) -> Any:
    """The LIBERO benchmark object of a suite (task list, BDDL files, fixed init states)."""
    if suite not in HORIZONS:
        raise D2EError(f"unknown LIBERO suite {suite!r}", fix=f"use one of {', '.join(SUITES)}")
    _import_libero()
    from libero.libero import benchmark as libero_benchmark

    with quiet():
        return libero_benchmark.get_benchmark_dict()[suite]()


@dataclass(frozen=True)
class Task:
    """One LIBERO task: its suite, number in the suite, name and language instruction."""

    suite: str
    number: int
    name: str
    instruction: str

    @property
    def key(self) -> str:
        """The task's name in episode specs and result tables: ``suite/task_name``."""
        return f"{self.suite}/{self.name}"

    @property
    def horizon(self) -> int:
        return HORIZONS[self.suite]

    @property
    def bddl_file(self) -> str:
        return benchmark(self.suite).get_task_bddl_file_path(self.number)

    def init_states(self) -> np.ndarray:
        """The benchmark's fixed initial states of this task (50 per task in the four suites)."""
        return benchmark(self.suite).get_task_init_states(self.number)


def suite_tasks(suite: str) -> list[Task]:
    """Every task of a suite, in the benchmark's order."""
    bench = benchmark(suite)
    return [Task(suite, i, t.name, t.language) for i, t in enumerate(bench.tasks)]


def find_task(key: str) -> Task:
    """A task from ``suite/task_name`` or ``suite/number``."""
    suite, _, name = key.partition("/")
    tasks = suite_tasks(suite)
    for task in tasks:
        if name in (task.name, str(task.number)):
            return task
    raise D2EError(f"no task {name!r} in {suite}", fix=f"use a number 0-{len(tasks) - 1} or a task name")


def fresh_episode(task: Task, index: int, seed: int) -> EpisodeSpec:
    """An episode on a newly sampled placement (demonstrations), numbered ``index``."""
    return EpisodeSpec(task.key, index, seed, task.horizon, {"placement": FRESH})


def init_state_episodes(task: Task, count: int | None = None, seed: int = 0) -> list[EpisodeSpec]:
    """Episodes over the benchmark's first ``count`` fixed init states (all of them when None)."""
    total = len(task.init_states())
    count = total if count is None else count
    if not 0 < count <= total:
        raise D2EError(f"{task.key} has {total} init states, asked for {count}", fix=f"use 1-{total}")
    return [EpisodeSpec(task.key, k, seed + k, task.horizon) for k in range(count)]


# ---------------------------------------------------------------- the environment


class LiberoEnv:
    """One LIBERO task as a ``SimEnv``; ``cameras=()`` builds it without any renderer (planning).

    Observations: the chosen cameras' images upright, ``uint8 (image_size, image_size, 3)``, under
    ``agentview_rgb`` / ``eye_in_hand_rgb``, and ``state`` (``proprio_state``). ``raw`` is the robosuite
    environment (privileged simulator state, for scripted experts) and ``raw_obs`` its last observation.
    """

    def __init__(self, task: Task | str, *, cameras: Sequence[str] = DEFAULT_CAMERAS, image_size: int = 128):
        self.task = find_task(task) if isinstance(task, str) else task
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise D2EError(f"unknown camera {unknown[0]!r}", fix=f"use {' and/or '.join(CAMERAS)}")
        if image_size < 8:
            raise D2EError(f"image size {image_size} is too small", fix="use e.g. 128 or 224")
        self.cameras = tuple(cameras)
        self.image_size = image_size
        self.instruction = self.task.instruction
        _import_libero()
        from libero.libero.envs.env_wrapper import ControlEnv

        render = bool(self.cameras)
        with quiet():
            self._env = ControlEnv(
                bddl_file_name=self.task.bddl_file, use_camera_obs=render, has_offscreen_renderer=render,
                camera_names=[CAMERAS[c][0] for c in self.cameras] or ["agentview"],
                camera_heights=image_size, camera_widths=image_size,
                # the caller enforces the horizon; robosuite must never end an episode on its own
                horizon=10_000, ignore_done=True, hard_reset=False)
        if render:
            self._size_offscreen_buffer()
            for camera in self.cameras:  # rendered on demand instead (``render``)
                self.raw.modify_observable(f"{CAMERAS[camera][0]}_image", "enabled", False)
        self.steps = 0  # steps since construction: which step an on-demand observation belongs to
        self._init_states: np.ndarray | None = None
        self._twin: LiberoEnv | None = None
        self.raw_obs: dict[str, Any] = {}
        self.episode: EpisodeSpec | None = None  # the spec of the last reset

    def _size_offscreen_buffer(self) -> None:
        """The render context rebuilt with a buffer of the image's size and no multisampling (half the render time).

        This reaches into robosuite's render context (private names of the robosuite the ``[libero]`` extra
        pins); where another robosuite lacks them the default window-sized, multisampled buffer stays (slower)."""
        sim = self.raw.sim
        context = getattr(sim, "_render_context_offscreen", None)
        model = getattr(sim.model, "_model", None)
        if not all(hasattr(obj, name) for obj, name in ((context, "_set_mujoco_context_and_buffers"),
                                                         (context, "gl_ctx"), (context, "con"), (model, "vis"))):
            return
        vis = model.vis
        vis.quality.offsamples = 0
        vis.global_.offwidth = vis.global_.offheight = self.image_size
        context.gl_ctx.make_current()
        context.con.free()
        context._set_mujoco_context_and_buffers()

    @property
    def raw(self) -> Any:
        """The robosuite environment (``.sim``, ``.objects_dict``, ``.object_sites_dict``, ...)."""
        return self._env.env

    def reset(self, episode: EpisodeSpec) -> Obs:
        """The episode's initial scene after the settle steps; deterministic in ``episode``."""
        fresh = episode.extra.get("placement") == FRESH
        self.episode = episode
        saved = np.random.get_state()
        np.random.seed(episode.seed % 2**32)
        try:
            with quiet():
                for robot in self.raw.robots:  # the one state a kept model carries over from the last episode
                    robot.gripper.current_action[:] = 0
                self._env.reset()
                if not fresh:
                    self._env.set_init_state(self._init_state(episode.index))
        finally:
            np.random.set_state(saved)
        # the solver's warm start is not part of a saved state: clear it so a replay starts identically
        self.raw.sim.data.qacc_warmstart[:] = 0
        for _ in range(SETTLE_STEPS):
            self.raw_obs = self._env.step(OPEN_GRIPPER)[0]
        self.steps += 1
        return self.observation()

    def _init_state(self, index: int) -> np.ndarray:
        if self._init_states is None:
            self._init_states = self.task.init_states()
        if not 0 <= index < len(self._init_states):
            raise D2EError(f"{self.task.key} has no init state {index}", fix=f"use 0-{len(self._init_states) - 1}")
        return self._init_states[index]

    def step(self, action: np.ndarray | int) -> tuple[Obs, bool, dict[str, Any]]:
        """One control step (7-D OSC_POSE delta, gripper -1 open / +1 closed); done on success."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,):
            raise D2EError(f"LIBERO takes 7-D actions, got shape {action.shape}")
        self.raw_obs = self._env.step(np.clip(action, -1.0, 1.0))[0]
        self.steps += 1
        success = self.success()
        return self.observation(), success, {"success": success}

    def observation(self) -> Obs:
        """The policy's view of the last step: upright camera images (rendered when read) and the proprio state."""
        raw = self.raw_obs
        state = proprio_state(raw["robot0_eef_pos"], raw["robot0_eef_quat"], raw["robot0_gripper_qpos"])
        return RenderedOnDemand(self, state)  # type: ignore[return-value]

    def render(self, camera: str) -> np.ndarray:
        """``camera``'s (``agentview``/``wrist``) image of the current step in LIBERO's raw orientation."""
        if camera not in self.cameras:
            raise D2EError(f"this env renders no {camera!r} camera", fix=f"build it with cameras={camera!r}")
        return self.raw.sim.render(camera_name=CAMERAS[camera][0], width=self.image_size, height=self.image_size)

    def sim_state(self) -> np.ndarray:
        """The flattened MuJoCo state (time, qpos, qvel), as the ``states`` of LIBERO's demo files."""
        return np.asarray(self._env.get_sim_state(), dtype=np.float64)

    def success(self) -> bool:
        return bool(self._env.check_success())

    def planning_twin(self) -> LiberoEnv:
        """A camera-less copy of this env (built once, closed with it): where experts plan, 5-10x faster.

        A spec reset in both gives the same scene, and MuJoCo is deterministic, so actions planned in the
        twin replay identically here.
        """
        if not self.cameras:
            return self
        if self._twin is None:
            self._twin = LiberoEnv(self.task, cameras=())
        return self._twin

    def close(self) -> None:
        if self._twin is not None:
            self._twin.close()
            self._twin = None
        if self._env is not None:
            self._env.close()  # frees the EGL context now (at interpreter exit it fails noisily)
            self._env = None


class RenderedOnDemand(Mapping[str, np.ndarray]):
    """One step's observation whose images are rendered (once) when first read, which must be before the
    env steps again: reading one later raises, rather than showing a later scene."""

    def __init__(self, env: LiberoEnv, state: np.ndarray):
        self._env, self._step = env, env.steps
        self._keys = {CAMERAS[c][1]: c for c in env.cameras}
        self._values: dict[str, np.ndarray] = {"state": state}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._values:
            if key not in self._keys:
                raise KeyError(key)
            if self._env.steps != self._step:
                raise D2EError(f"the {key} image of a LIBERO observation was read after the env stepped on",
                               fix="read (or copy) an observation's images before the next step")
            self._values[key] = upright(self._env.render(self._keys[key]))
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._keys, "state"])

    def __len__(self) -> int:
        return len(self._keys) + 1


def demo_policy_obs(obs: dict[str, np.ndarray], cameras: Sequence[str] = DEFAULT_CAMERAS) -> dict[str, np.ndarray]:
    """A demo's stored observations (official LIBERO files or ours, all steps) as a policy sees them.

    Images are turned upright by ``upright`` (the same flip as in evaluation) and ``state`` is built from
    ``ee_pos``, ``ee_ori`` and ``gripper_states`` as ``LiberoEnv`` builds it.
    """
    out = {}
    for camera in cameras:
        key = CAMERAS[camera][1]
        if key not in obs:
            raise D2EError(f"the demo has no obs/{key}", fix=f"observations present: {sorted(obs)}")
        out[key] = upright(obs[key])
    missing = [k for k in ("ee_pos", "ee_ori", "gripper_states") if k not in obs]
    if missing:
        raise D2EError(f"the demo has no obs/{missing[0]}", fix="LIBERO demos store ee_pos, ee_ori, gripper_states")
    out["state"] = np.concatenate([obs["ee_pos"], obs["ee_ori"], obs["gripper_states"]], axis=-1).astype(np.float32)
    return out


def make_env(task: str, *, cameras: Sequence[str] = DEFAULT_CAMERAS, image_size: int = 128) -> LiberoEnv:
    """``EnvFactory`` for ``transfer.evaluate`` (bind ``cameras``/``image_size`` with functools.partial)."""
    return LiberoEnv(task, cameras=cameras, image_size=image_size)
