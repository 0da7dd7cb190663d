"""Turning a game played by a policy into a standard recording, exactly as a desktop recorder sees it.

The game advances at its native rate (ALE 60 Hz, ViZDoom 35 Hz) and the policy acts at every native
step, so key changes fall between video frames as they do for a person; the video is captured on the
recording's own grid (20 fps by default): at grid time ``g`` the frame on screen is the one produced by
the last native step at or before ``g``. Events carry the native step time in the recording's clock.

Inputs at step ``k`` (time ``k / rate``) affect the screen shown from step ``k + 1`` on, which is what
an IDM must learn: the action precedes its visible effect.

A game that exposes its privileged state (``GameEnv.state()``, optional) gets it recorded on the ``state``
topic at every native step, stamped with the step's time and taken before that step's input: state ``k + 1``
minus state ``k`` is what the input at step ``k`` did. Policies that play with intent read the same state
through ``observe(state)`` just before each ``step(t_ns)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..format import RecordingWriter
from ..keys import vk_for
from ..schema import BUTTON_FLAGS, GameState, KeyboardEvent, RawMouseEvent, RecordingMeta, ScreenFrame
from ..video import VideoWriter
from .policy import Intent, Policy


class GameEnv(Protocol):
    """A game with real rendering and a real input API, stepped one native frame at a time."""

    native_hz: float
    name: str

    def reset(self, seed: int) -> None: ...

    def screen(self) -> np.ndarray: ...  # RGB (H, W, 3) uint8 of the current frame

    def step(self, intent: Intent) -> bool: ...  # apply input for one native frame; True when an episode restarted

    def describe(self) -> dict[str, Any]: ...  # key map, settings: stored in the recording metadata

    # Optional: ``state() -> list[float]`` (privileged state now, e.g. RAM) with ``state_names`` naming its values.


@dataclass
class GenerationResult:
    path: str
    seconds: float
    steps: int
    frames: int
    events: int
    episodes: int
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.wall_s if self.wall_s else 0.0


def intent_events(prev: Intent, cur: Intent, t_ns: int) -> list[Any]:
    """The input events that turn ``prev`` into ``cur`` at ``t_ns`` (releases first, then presses)."""
    out: list[Any] = []
    for key in sorted(prev.keys - cur.keys):
        out.append(KeyboardEvent(t_ns, "release", key, vk_for(key)))
    for key in sorted(cur.keys - prev.keys):
        out.append(KeyboardEvent(t_ns, "press", key, vk_for(key)))
    flags = 0
    for b in prev.buttons - cur.buttons:
        flags |= BUTTON_FLAGS[b][1]
    for b in cur.buttons - prev.buttons:
        flags |= BUTTON_FLAGS[b][0]
    dx, dy = int(cur.dx), int(cur.dy)
    if dx or dy or flags:
        out.append(RawMouseEvent(t_ns, dx, dy, flags))
    return out


def record_game(env: GameEnv, policy: Policy, path: str | Path, *, seconds: float, seed: int = 0,
                fps: float = 20.0, source: str = "game", policy_name: str = "human-like", crf: int = 23,
                overwrite: bool = False, progress: Any = None, one_episode: bool = False) -> GenerationResult:
    """Play ``seconds`` of ``env`` with ``policy`` and write ``path`` (.mcap) + its .mkv.

    With ``one_episode`` the recording ends when the first episode does (``seconds`` is then a cap), so
    each file is one game from start to game over, as a person's recording of one round would be."""
    path = Path(path)
    env.reset(seed)
    policy.reset(seed)
    native_ns = 1e9 / env.native_hz
    grid_ns = round(1e9 / fps)
    n_steps = int(seconds * env.native_hz)
    first = env.screen()
    height, width = first.shape[:2]
    state_of = getattr(env, "state", None)
    observe = getattr(policy, "observe", None)
    state_extra = {"state_names": list(env.state_names)} if state_of is not None else {}
    meta = RecordingMeta(source=source, fps=fps, monotonic_start_ns=0, wall_start_ns=time.time_ns(),
                         screens=[{"x": 0, "y": 0, "width": width, "height": height}],
                         capture_region={"x": 0, "y": 0, "width": width, "height": height},
                         video={"file": path.with_suffix(".mkv").name, "codec": "h264"},
                         extra={"game": env.name, "policy": policy_name, "seed": seed, "native_hz": env.native_hz,
                                **env.describe(), **state_extra})
    t0 = time.perf_counter()
    frames = events = episodes = 0
    with VideoWriter(path.with_suffix(".mkv"), width, height, start_ns=0, fps_hint=fps, crf=crf,
                     overwrite=overwrite) as video:
        meta.video["encoder"] = video.encoder
        with RecordingWriter(path, meta, overwrite=overwrite) as writer:
            prev = Intent()
            next_grid = 0
            steps = 0
            for k in range(n_steps):
                t = round(k * native_ns)
                while next_grid <= t:  # the screen shown at grid time: the latest native frame
                    pts = video.write(env.screen(), next_grid)
                    writer.write(ScreenFrame(next_grid, pts, video.width, video.height, frames))
                    frames += 1
                    next_grid += grid_ns
                if state_of is not None:
                    state = state_of()
                    writer.write(GameState(t, state))
                    if observe is not None:
                        observe(state)
                cur = policy.step(t)
                new = intent_events(prev, cur, t)
                writer.write_all(new)
                events += len(new)
                prev = cur
                ended = env.step(cur)
                episodes += int(ended)
                steps = k + 1
                if progress is not None and k % 200 == 0:
                    progress(k / n_steps)
                if ended and one_episode:
                    break
            writer.update_end_info(steps=steps, episodes_restarted=episodes, **_score(env))
            video.close()  # before the recording, so that it stores the finished video's fingerprint
    return GenerationResult(str(path), steps / env.native_hz, steps, frames, events, episodes,
                            time.perf_counter() - t0)


def _score(env: GameEnv) -> dict[str, float]:
    """The game's own reward summed over the recording, where the game keeps one."""
    score = getattr(env, "score", None)
    return {} if score is None else {"score": float(score)}


def replay_intents(events: list[Any], native_hz: float, n_steps: int) -> list[Intent]:
    """Rebuild the per-step intents from a recording's events (the inverse of ``intent_events``)."""
    from ..keys import name_for

    native_ns = 1e9 / native_hz
    by_step: dict[int, list[Any]] = {}
    for e in events:
        k = round(e.t_ns / native_ns)
        by_step.setdefault(k, []).append(e)
    keys: set[str] = set()
    buttons: set[str] = set()
    out = []
    flag_to = {flag: (b, i) for b, flags in BUTTON_FLAGS.items() for i, flag in enumerate(flags)}
    for k in range(n_steps):
        dx = dy = 0
        for e in by_step.get(k, []):
            if isinstance(e, KeyboardEvent):
                (keys.add if e.action == "press" else keys.discard)(name_for(e.vk) if e.vk else e.key)
            elif isinstance(e, RawMouseEvent):
                dx, dy = dx + e.dx, dy + e.dy
                for flag, (b, is_up) in flag_to.items():
                    if e.button_flags & flag:
                        (buttons.discard if is_up else buttons.add)(b)
        out.append(Intent(frozenset(keys), frozenset(buttons), float(dx), float(dy)))
    return out
