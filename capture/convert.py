"""Conversions: native d2e <-> OWAMcap, and export to OpenAI VPT's layout (mp4 + one JSON line per tick).

Videos are referenced, not copied, when converting between MCAP flavours: the output's media
reference is the source video's path relative to the output's folder. Every output is written to a
temp file and renamed, so an interrupted conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import D2EError
from .format import RecordingReader, RecordingWriter
from .format.owamcap import write_owamcap
from .progress import progress
from .schema import KeyboardEvent, MouseEvent, RawMouseEvent, ScreenFrame
from .storage import atomic_output, local_path
from .video import VideoReader, VideoWriter

TICK_NS = 50_000_000  # VPT's (and D2E's metric) 20 Hz grid


def _relative_video(video: str, out_dir: Path) -> str:
    if "://" in video:
        return video
    return os.path.relpath(os.path.abspath(video), os.path.abspath(out_dir))


def to_owamcap(src: str, dst: str, *, overwrite: bool = False) -> dict[str, int]:
    """Write ``src`` as OWAMcap (one JSON message per event) that OWA's own reader decodes."""
    with RecordingReader(src) as reader:
        if reader.is_owamcap:
            raise D2EError("already an OWAMcap file", path=src, fix="use --to d2e to convert it to the native format")
        uri = _relative_video(reader.video_path, local_path(dst).parent)
        meta = reader.meta
        meta.video = {**meta.video, "file": uri}
        if reader.video_fingerprint:  # OWAMcap has no end record: the fingerprint travels in the metadata
            meta.video["fingerprint"] = reader.video_fingerprint
        with atomic_output(dst, overwrite=overwrite) as tmp:
            total = sum(reader.counts().values())
            return write_owamcap(progress(reader.iter(), total=total, desc="to OWAMcap"), meta, tmp, uri)


def to_native(src: str, dst: str, *, overwrite: bool = False) -> dict[str, int]:
    """Write any readable recording (OWAMcap included) in the native format."""
    out_dir = local_path(dst).parent
    with RecordingReader(src) as reader:
        meta = reader.meta
        src_dir = os.path.dirname(os.path.abspath(src)) if "://" not in src else None
        uris: set[str | None] = set()

        def rebased(messages: Iterator[Any]) -> Iterator[Any]:
            for msg in messages:
                if isinstance(msg, ScreenFrame) and msg.uri is not None and src_dir is not None \
                        and "://" not in msg.uri and not os.path.isabs(msg.uri):
                    msg.uri = _relative_video(os.path.join(src_dir, msg.uri), out_dir)
                if isinstance(msg, ScreenFrame):
                    uris.add(msg.uri)
                yield msg

        total = sum(reader.counts().values())
        messages = list(rebased(progress(reader.iter(), total=total, desc="reading")))
        if len(uris) == 1 and None not in uris:
            (single,) = uris
            meta.video = {**meta.video, "file": single}
            for msg in messages:
                if isinstance(msg, ScreenFrame):
                    msg.uri = None
        elif None in uris:  # frames in the recording's own video: keep pointing at it from the new folder
            meta.video = {**meta.video, "file": _relative_video(reader.video_path, out_dir)}
        with atomic_output(dst, overwrite=overwrite) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
            writer.write_all(messages)
            return writer.counts


def shift_events(src: str | Path, dst: str | Path, offset_ns: int, *, overwrite: bool = False,
                 video_file: str | None = None) -> dict[str, int]:
    """Copy the input events of ``src`` (not its frame records) with every time moved by ``offset_ns``."""
    import dataclasses

    with RecordingReader(src) as reader:
        meta = reader.meta
        meta.monotonic_start_ns += offset_ns
        meta.video = {"file": video_file} if video_file else {}
        meta.extra = {**meta.extra, "shifted_from": str(src), "shift_ns": offset_ns}
        with atomic_output(dst, overwrite=overwrite) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
            writer.write_all(dataclasses.replace(m, t_ns=m.t_ns + offset_ns) for m in reader.iter()
                             if not isinstance(m, ScreenFrame))
            return writer.counts


_VPT_KEYS = {"shift": "left.shift", "shift_r": "right.shift", "ctrl": "left.control", "ctrl_r": "right.control",
             "alt": "left.alt", "alt_r": "right.alt", "esc": "escape", "cmd": "left.win", "cmd_r": "right.win",
             "page_up": "page.up", "page_down": "page.down", "caps_lock": "caps.lock"}
_VPT_BUTTONS = {"left": 0, "right": 1, "middle": 2, "x1": 3, "x2": 4}


def vpt_key(name: str) -> str:
    return "key.keyboard." + _VPT_KEYS.get(name, name)


def tick_actions(messages: list[Any], start_ns: int, n_ticks: int, tick_ns: int = TICK_NS) -> list[dict[str, Any]]:
    """VPT-style actions per tick: held/new keys and buttons, position, mouse dx/dy and scroll.

    Mouse deltas are summed raw (device) motion when the recording has any, else differences of
    absolute positions; a key pressed and released inside one tick still shows in ``newKeys``.
    """
    has_raw = any(isinstance(m, RawMouseEvent) and (m.dx or m.dy) for m in messages)
    ticks = [{"keys": set(), "newKeys": [], "buttons": set(), "newButtons": [], "dx": 0, "dy": 0, "scroll": 0}
             for _ in range(n_ticks)]
    keys: set[str] = set()
    buttons: set[int] = set()
    x = y = None
    pos_at_tick: list[tuple[int | None, int | None]] = [(None, None)] * n_ticks
    i = 0
    for msg in messages:
        k = (msg.t_ns - start_ns) // tick_ns
        while i < min(k, n_ticks):
            ticks[i]["keys"], ticks[i]["buttons"] = set(keys), set(buttons)
            pos_at_tick[i] = (x, y)
            i += 1
        if k < 0 or k >= n_ticks:
            if k >= n_ticks:
                break
            target = None
        else:
            target = ticks[k]
        if isinstance(msg, KeyboardEvent):
            if msg.action == "press":
                if msg.key not in keys and target is not None:
                    target["newKeys"].append(vpt_key(msg.key))
                keys.add(msg.key)
            else:
                keys.discard(msg.key)
        elif isinstance(msg, MouseEvent):
            if msg.action == "move" and not has_raw and x is not None and target is not None:
                target["dx"] += msg.x - x
                target["dy"] += msg.y - y
            if msg.action == "press" and msg.button in _VPT_BUTTONS:
                if target is not None:
                    target["newButtons"].append(_VPT_BUTTONS[msg.button])
                buttons.add(_VPT_BUTTONS[msg.button])
            elif msg.action == "release" and msg.button in _VPT_BUTTONS:
                buttons.discard(_VPT_BUTTONS[msg.button])
            elif msg.action == "scroll" and target is not None:
                target["scroll"] += msg.dy
            x, y = msg.x, msg.y
        elif isinstance(msg, RawMouseEvent) and has_raw and target is not None:
            target["dx"] += msg.dx
            target["dy"] += msg.dy
    while i < n_ticks:
        ticks[i]["keys"], ticks[i]["buttons"] = set(keys), set(buttons)
        pos_at_tick[i] = (x, y)
        i += 1
    out = []
    for i, t in enumerate(ticks):
        # A key tapped within the tick counts as held for it, as VPT's labels do.
        held = sorted({vpt_key(k) for k in t["keys"]} | set(t["newKeys"]))
        px, py = pos_at_tick[i]
        out.append({
            "tick": i, "t_ns": start_ns + i * tick_ns,
            "mouse": {"x": px or 0, "y": py or 0, "dx": t["dx"], "dy": t["dy"], "scroll": t["scroll"],
                      "buttons": sorted(t["buttons"] | set(t["newButtons"])), "newButtons": t["newButtons"]},
            "keyboard": {"keys": held, "newKeys": t["newKeys"], "chars": ""},
        })
    return out


def to_vpt(src: str, dst_mp4: str, *, overwrite: bool = False, fps: float = 20.0) -> dict[str, Any]:
    """VPT layout: ``NAME.mp4`` at 20 fps (one frame per tick: the latest captured frame) + ``NAME.jsonl``."""
    dst = local_path(dst_mp4).with_suffix(".mp4")
    jsonl = dst.with_suffix(".jsonl")
    tick_ns = round(1e9 / fps)
    with RecordingReader(src) as reader:
        messages = list(reader.iter())
        frames = [m for m in messages if isinstance(m, ScreenFrame)]
        if not frames:
            raise D2EError("recording has no screen frames to export", path=src)
        start = frames[0].t_ns
        n_ticks = (frames[-1].t_ns - start) // tick_ns + 1
        actions = tick_actions([m for m in messages if not isinstance(m, ScreenFrame)], start, n_ticks, tick_ns)
        video = VideoReader(reader.video_path)
    with video, atomic_output(dst, overwrite=overwrite) as tmp_mp4, \
            atomic_output(jsonl, overwrite=overwrite) as tmp_jsonl:
        writer = VideoWriter(tmp_mp4, frames[0].width, frames[0].height, fps_hint=fps, start_ns=0,
                             overwrite=True, container="mp4")
        j = 0
        with writer, open(tmp_jsonl, "w") as out:
            for i, action in enumerate(progress(actions, desc="to VPT", unit="tick")):
                tick_end = start + (i + 1) * tick_ns
                while j + 1 < len(frames) and frames[j + 1].t_ns < tick_end:
                    j += 1
                writer.write(video.frame_at(frames[j].pts_ns), i * tick_ns)
                out.write(json.dumps(action) + "\n")
    return {"mp4": str(dst), "jsonl": str(jsonl), "ticks": len(actions)}
