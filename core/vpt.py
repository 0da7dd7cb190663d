"""Export to OpenAI VPT's layout: ``NAME.mp4`` at 20 fps (one frame per tick) + ``NAME.jsonl``, one action a tick.

VPT's actions are per-tick labels, so they come from the same rule as our training labels (``core.ticks``):
a key is in ``keys`` for every tick in which it is down at any moment, and in ``newKeys`` for the tick it
went down in; the same for mouse buttons. Mouse ``dx``/``dy`` are the tick's summed raw (device) motion when
the recording has any, else differences of pointer positions; ``x``/``y`` the pointer at the end of the tick.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.format import RecordingReader
from capture.progress import progress
from capture.schema import KeyboardEvent, MouseEvent, RawMouseEvent, ScreenFrame
from capture.storage import atomic_output, local_path
from capture.video import VideoReader, VideoWriter

from .grid import BUTTONS, TICK_NS, frame_at, grid_length, grid_times
from .ticks import EventTable

_VPT_KEYS = {"shift": "left.shift", "shift_r": "right.shift", "ctrl": "left.control", "ctrl_r": "right.control",
             "alt": "left.alt", "alt_r": "right.alt", "esc": "escape", "cmd": "left.win", "cmd_r": "right.win",
             "page_up": "page.up", "page_down": "page.down", "caps_lock": "caps.lock"}


def vpt_key(name: str) -> str:
    return "key.keyboard." + _VPT_KEYS.get(name, name)


def tick_actions(messages: list[Any], start_ns: int, n_ticks: int) -> list[dict[str, Any]]:
    """VPT-style actions for ``n_ticks`` ticks from ``start_ns``."""
    table = EventTable(messages)
    names = {e.vk: e.key for e in messages if isinstance(e, KeyboardEvent)}
    vks = sorted(names)
    keys, buttons, raw = table.ticks(start_ns, n_ticks, vks)
    new_keys: list[list[str]] = [[] for _ in range(n_ticks)]
    new_buttons: list[list[int]] = [[] for _ in range(n_ticks)]
    for vk, down, _up in table.key_iv.tolist():
        if start_ns <= down < start_ns + n_ticks * TICK_NS:
            new_keys[(down - start_ns) // TICK_NS].append(vpt_key(names[vk]))
    for b, down, _up in table.btn_iv.tolist():
        if start_ns <= down < start_ns + n_ticks * TICK_NS:
            new_buttons[(down - start_ns) // TICK_NS].append(b)
    has_raw = any(isinstance(m, RawMouseEvent) and (m.dx or m.dy) for m in messages)
    motion = raw.astype(np.int64) if has_raw else np.zeros((n_ticks, 2), np.int64)
    scroll = np.zeros(n_ticks, np.int64)
    position = np.zeros((n_ticks, 2), np.int64)
    x = y = None
    i = 0
    for m in sorted((m for m in messages if isinstance(m, MouseEvent)), key=lambda m: m.t_ns):
        k = (m.t_ns - start_ns) // TICK_NS
        while i < min(k, n_ticks):
            position[i] = (x or 0, y or 0)
            i += 1
        if 0 <= k < n_ticks:
            if m.action == "move" and not has_raw and x is not None:
                motion[k] += (m.x - x, m.y - y)
            elif m.action == "scroll":
                scroll[k] += m.dy
        x, y = m.x, m.y
    position[i:] = (x or 0, y or 0)
    out = []
    for i in range(n_ticks):
        held_buttons = [b for b in range(len(BUTTONS)) if buttons[i, b]]
        out.append({
            "tick": i, "t_ns": start_ns + i * TICK_NS,
            "mouse": {"x": int(position[i, 0]), "y": int(position[i, 1]), "dx": int(motion[i, 0]),
                      "dy": int(motion[i, 1]), "scroll": int(scroll[i]), "buttons": held_buttons,
                      "newButtons": new_buttons[i]},
            "keyboard": {"keys": sorted(vpt_key(names[vk]) for j, vk in enumerate(vks) if keys[i, j]),
                         "newKeys": new_keys[i], "chars": ""},
        })
    return out


def to_vpt(src: str, dst_mp4: str, *, overwrite: bool = False) -> dict[str, Any]:
    """Write ``dst_mp4`` (one frame per tick: the frame shown at it) and the ``.jsonl`` beside it."""
    dst = local_path(dst_mp4).with_suffix(".mp4")
    jsonl = dst.with_suffix(".jsonl")
    with RecordingReader(src) as reader:
        messages = list(reader.iter())
        frames = [m for m in messages if isinstance(m, ScreenFrame)]
        if not frames:
            raise D2EError("recording has no screen frames to export", path=src)
        start = frames[0].t_ns
        n_ticks = grid_length(start, frames[-1].t_ns)
        actions = tick_actions([m for m in messages if not isinstance(m, ScreenFrame)], start, n_ticks)
        video = VideoReader(reader.video_path)
    shown = frame_at(np.array([f.t_ns for f in frames], np.int64), grid_times(start, n_ticks))
    with video, atomic_output(dst, overwrite=overwrite) as tmp_mp4, \
            atomic_output(jsonl, overwrite=overwrite) as tmp_jsonl:
        writer = VideoWriter(tmp_mp4, frames[0].width, frames[0].height, fps_hint=1e9 / TICK_NS, start_ns=0,
                             overwrite=True, container="mp4")
        with writer, open(tmp_jsonl, "w") as out:
            for i, action in enumerate(progress(actions, desc="to VPT", unit="tick")):
                writer.write(video.frame_at(frames[shown[i]].pts_ns), i * TICK_NS)
                out.write(json.dumps(action) + "\n")
    return {"mp4": str(dst), "jsonl": str(jsonl), "ticks": len(actions)}

