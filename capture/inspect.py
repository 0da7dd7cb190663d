"""What is in a recording (``info``) and what is wrong with it (``validate``).

``validate`` collects every problem instead of stopping at the first, each with the file and the
position (topic, index, time or byte) so a user can find it; ``severity`` separates what makes the
data wrong (error) from what is merely unusual (warning).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import D2EError
from .format import RecordingReader
from .format.reader import UnfinishedRecordingWarning
from .schema import (
    MOUSE_BUTTONS,
    GameState,
    KeyboardEvent,
    LabelConfidence,
    MouseEvent,
    RawMouseEvent,
    ScreenFrame,
    WindowEvent,
)
from .storage import exists, file_size
from .video import VideoReader


@dataclass
class Problem:
    path: str
    where: str
    message: str
    severity: str = "error"

    def line(self) -> str:
        return f"{self.path}: {self.where}: {self.severity}: {self.message}"


@dataclass
class Report:
    path: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def add(self, where: str, message: str, severity: str = "error", path: str | None = None) -> None:
        self.problems.append(Problem(path or self.path, where, message, severity))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "checked": self.checked,
                "problems": [asdict(p) for p in self.problems]}


def _open(path: str) -> tuple[RecordingReader, bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnfinishedRecordingWarning)
        reader = RecordingReader(path)
    return reader, any(issubclass(w.category, UnfinishedRecordingWarning) for w in caught)


def info(path: str, *, video: bool = True) -> dict[str, Any]:
    """Duration, topics, counts, rates, sizes, metadata and video stream facts, as a JSON-able dict."""
    reader, _ = _open(path)
    with reader:
        counts = reader.counts()
        first, last = reader.time_range()
        duration = max(0.0, (last - first) / 1e9)
        out: dict[str, Any] = {
            "path": path, "format": "owamcap" if reader.is_owamcap else "d2e", "finished": reader.finished,
            "size_bytes": reader.size, "duration_s": round(duration, 3),
            "start_ns": first, "end_ns": last,
            "topics": {t: {"count": n, "per_second": round(n / duration, 2) if duration else None}
                       for t, n in sorted(counts.items())},
            "meta": reader.meta.to_dict(), "end": reader.end_info,
        }
        if not reader.finished:
            out["readable_bytes"] = reader.truncated_at
        vpath = reader.video_path
    if video and exists(vpath):
        with VideoReader(vpath) as v:
            vi = v.info()
        out["video"] = {"path": vpath, "size_bytes": file_size(vpath), **asdict(vi),
                        "fps": round(vi.frames / vi.duration_s, 3) if vi.duration_s else None}
    elif video:
        out["video"] = {"path": vpath, "missing": True}
    return out


def render_info(data: dict[str, Any]) -> str:
    """The human-readable form of ``info``."""
    meta = data["meta"]
    lines = [
        f"{data['path']}  ({data['format']}, {data['size_bytes'] / 1e6:.2f} MB"
        + ("" if data["finished"] else f", UNFINISHED: readable up to byte {data.get('readable_bytes')}") + ")",
        f"  duration   {data['duration_s']:.3f} s",
        f"  source     {meta.get('source')}   recorder {meta.get('recorder_version')}   os {meta.get('os')}",
    ]
    if meta.get("capture_region"):
        r = meta["capture_region"]
        lines.append(f"  region     {r.get('width')}x{r.get('height')} at ({r.get('x')}, {r.get('y')})"
                     + (f"   dpi {meta['dpi']}" if meta.get("dpi") else ""))
    lines.append("  topics")
    for topic, t in data["topics"].items():
        rate = f"{t['per_second']:.1f}/s" if t["per_second"] is not None else "-"
        lines.append(f"    {topic:<12} {t['count']:>9}  {rate:>10}")
    video = data.get("video")
    if video and not video.get("missing"):
        lines.append(f"  video      {video['path']}  {video['codec']} {video['width']}x{video['height']} "
                     f"{video['frames']} frames, {video['keyframes']} keyframes, {video['fps']} fps avg, "
                     f"{video['size_bytes'] / 1e6:.2f} MB")
    elif video:
        lines.append(f"  video      MISSING: {video['path']}")
    dropped = data.get("end", {}).get("dropped_frames")
    if dropped is not None:
        lines.append(f"  dropped    {dropped} frames")
    return "\n".join(lines)


_CHECKS = {
    KeyboardEvent: lambda m: None if m.action in ("press", "release") and 0 <= m.vk <= 255 and m.key
    else f"bad keyboard event (action={m.action!r}, vk={m.vk}, key={m.key!r})",
    MouseEvent: lambda m: None if m.action in ("move", "press", "release", "scroll")
    and (m.button is None or m.button in MOUSE_BUTTONS or m.button == "unknown")
    and (m.action not in ("press", "release") or m.button is not None)
    else f"bad mouse event (action={m.action!r}, button={m.button!r})",
    RawMouseEvent: lambda m: None if 0 <= m.button_flags <= 0xFFF else f"button_flags {m.button_flags:#x} > 0xFFF",
    WindowEvent: lambda m: None if len(m.rect) == 4 else f"rect {m.rect!r} is not (x, y, w, h)",
    LabelConfidence: lambda m: None if 0.0 <= m.confidence <= 1.0 else f"confidence {m.confidence} not in [0, 1]",
    GameState: lambda m: None if isinstance(m.values, list) and all(isinstance(v, (int, float)) for v in m.values)
    else "state values are not a list of numbers",
    ScreenFrame: lambda m: None if m.width > 0 and m.height > 0 and m.pts_ns >= 0
    else f"bad frame record (size {m.width}x{m.height}, pts {m.pts_ns})",
}


def validate(path: str, *, video: bool = True, decode_check: bool = True) -> Report:
    """Check schema, per-topic time order, frame/pts consistency and declared vs decoded frame size."""
    report = Report(path)
    try:
        reader, unfinished = _open(path)
    except D2EError as exc:
        report.add(exc.where or "file", exc.problem + (f" ({exc.fix})" if exc.fix else ""))
        return report
    frames: list[ScreenFrame] = []
    with reader:
        if unfinished:
            lost = reader.size - (reader.truncated_at or 0)
            report.add(f"byte {reader.truncated_at}",
                       f"recording was not finished; {lost} bytes unreadable (run: d2e recover {path})")
        last_t: dict[str, int] = {}
        index: dict[str, int] = {}
        state_names = (reader.meta.extra or {}).get("state_names")
        for msg in reader.iter():
            topic = msg.TOPIC
            i = index.get(topic, 0)
            index[topic] = i + 1
            where = f"{topic}[{i}] t={msg.t_ns}"
            bad = _CHECKS[type(msg)](msg)
            if bad:
                report.add(where, bad)
            elif isinstance(msg, GameState) and state_names is not None and len(msg.values) != len(state_names):
                report.add(where, f"{len(msg.values)} state values but {len(state_names)} state_names in the metadata")
            if msg.t_ns < last_t.get(topic, -(2**63)):
                report.add(where, f"time goes backwards by {(last_t[topic] - msg.t_ns) / 1e6:.3f} ms")
            last_t[topic] = msg.t_ns
            if isinstance(msg, ScreenFrame):
                frames.append(msg)
        report.checked = dict(index)
        for prev, cur in zip(frames, frames[1:]):
            if cur.pts_ns <= prev.pts_ns and cur.uri == prev.uri:
                report.add(f"screen[{cur.index}] t={cur.t_ns}",
                           f"pts {cur.pts_ns} does not increase (previous {prev.pts_ns})")
        vpath = reader.video_path
    if video and frames and all(f.uri is None for f in frames):
        _check_video(report, vpath, frames, decode_check)
    return report


def _check_video(report: Report, vpath: str, frames: list[ScreenFrame], decode_check: bool) -> None:
    if not exists(vpath):
        report.add("video", f"video file {vpath} is missing ({len(frames)} screen records refer to it)")
        return
    try:
        with VideoReader(vpath) as v:
            pts = v.packet_pts_ns()
            vinfo = v.info(count=False)
            decoded = None
            if decode_check and pts:
                decoded = v.frame_obj_at(pts[0])
    except D2EError as exc:
        report.add("video", exc.problem, path=vpath)
        return
    video_pts = set(pts)
    missing = [f for f in frames if f.pts_ns not in video_pts]
    for f in missing[:20]:
        report.add(f"screen[{f.index}] t={f.t_ns}", f"no video frame at pts {f.pts_ns / 1e9:.3f}s")
    if len(missing) > 20:
        report.add("screen", f"... and {len(missing) - 20} more screen records without a video frame")
    extra = len(video_pts) - (len(frames) - len(missing))
    if extra > 0:
        report.add("video", f"{extra} video frames have no screen record", "warning", path=vpath)
    declared = {(f.width, f.height) for f in frames}
    actual = (decoded.width, decoded.height) if decoded is not None else (vinfo.width, vinfo.height)
    for w, h in sorted(declared):
        if (w, h) != actual:
            report.add("screen", f"declared frame size {w}x{h} but the video decodes as {actual[0]}x{actual[1]}")
    report.checked["video_frames"] = len(video_pts)
