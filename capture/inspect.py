"""What is in a recording (``info``) and what is wrong with it (``validate``).

``validate`` collects every problem instead of stopping at the first, each with the file and the
position (topic, index, time or byte) so a user can find it; ``severity`` separates what makes the
data wrong (error) from what is merely unusual (warning).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import D2EError
from .format import RecordingReader
from .format.reader import DamagedRecordingWarning, UnfinishedRecordingWarning
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
from .storage import exists, file_size, is_url
from .video import VideoReader, video_mismatch


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


DROP_WARN_PCT = 1.0  # validate warns above this share of dropped frames


def frame_stats(frames: list[ScreenFrame], end_info: dict[str, Any]) -> dict[str, Any]:
    """Frames, dropped frames (% of the ticks) and the longest gap between two frames, pauses left out.

    Drops come from the recorder's end record, or from the frames' ``dropped_before`` when the file was
    not finished (a crash); the gap is what a model would see as a frozen screen.
    """
    dropped = max(sum(f.dropped_before for f in frames), int(end_info.get("dropped_frames") or 0))
    ticks = len(frames) + dropped
    pauses = [(a, b) for a, b, *_ in end_info.get("pauses_ns") or [] if b is not None]
    longest, at = 0, None
    for prev, cur in zip(frames, frames[1:]):
        gap = cur.t_ns - prev.t_ns - sum(max(0, min(b, cur.t_ns) - max(a, prev.t_ns)) for a, b in pauses)
        if gap > longest:
            longest, at = gap, prev.t_ns
    return {"frames": len(frames), "dropped": dropped, "dropped_pct": round(100 * dropped / ticks, 3) if ticks else 0.0,
            "longest_gap_ms": round(longest / 1e6, 1),
            "longest_gap_at_s": round((at - frames[0].t_ns) / 1e9, 3) if at is not None else None}


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
        if not is_url(path):  # checking every chunk's CRC reads the whole file: local files only
            out["damaged"] = _damage_summary(reader)
        if counts.get("screen"):
            out["frames"] = frame_stats(list(reader.iter(topics=["screen"])), reader.end_info)
        vpath = reader.find_video()
    if video and not counts.get("screen") and not exists(vpath):
        out["video"] = {"path": vpath, "none": True}  # nothing was captured: an empty recording has no video
    elif video and exists(vpath):
        try:
            with VideoReader(vpath) as v:
                vi = v.info()
        except D2EError as exc:  # a damaged video is a fact about the recording, not a reason to show nothing
            out["video"] = {"path": vpath, "damaged": exc.problem}
            return out
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
    if video and video.get("damaged"):
        lines.append(f"  video      DAMAGED: {video['path']}: {video['damaged']}")
    elif video and video.get("none"):
        lines.append("  video      none (no frames were recorded)")
    elif video and not video.get("missing"):
        lines.append(f"  video      {video['path']}  {video['codec']} {video['width']}x{video['height']} "
                     f"{video['pix_fmt']} {video['frames']} frames, {video['keyframes']} keyframes, "
                     f"{video['fps']} fps avg, {video['size_bytes'] / 1e6:.2f} MB")
    elif video:
        lines.append(f"  video      MISSING: {video['path']}")
    frames = data.get("frames")
    if frames:
        at = frames["longest_gap_at_s"]
        lines.append(f"  dropped    {frames['dropped']} frames ({frames['dropped_pct']:.2f} %)   longest gap "
                     f"{frames['longest_gap_ms']:.0f} ms" + (f" at {at:.1f} s" if at is not None else "")
                     + ("   (pauses are not gaps)" if data.get("end", {}).get("pauses_ns") else ""))
    steps = data.get("end", {}).get("encoder_steps")
    if steps:
        lines.append("  encoder    stepped to " + ", ".join(
            f"preset {s['preset']}" if "preset" in s else f"{s.get('fps'):g} fps" for s in steps)
            + " (CPU pressure; --json: end.encoder_steps says when and why)")
    lines += _render_damage(data)
    return "\n".join(lines)


def _damage_summary(reader: RecordingReader) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedRecordingWarning)
        return [part.describe() for part in reader.verify()]


def _render_damage(data: dict[str, Any]) -> list[str]:
    damaged = data.get("damaged") or []
    if not damaged:
        return []
    return [f"  DAMAGED    {len(damaged)} part(s) fail their checks; the counts above are what was written, "
            f"not what is readable (run: d2e validate {data['path']})"] + [f"    {d}" for d in damaged[:10]]


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


def validate(path: str, *, video: bool = True, decode_check: bool = True, max_drop_pct: float | None = None) -> Report:
    """Check schema, per-topic time order, frame/pts consistency and declared vs decoded frame size.

    Dropped frames above ``DROP_WARN_PCT`` are a warning, above ``max_drop_pct`` (when given) an error.
    """
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
        _check_integrity(report, reader)
        last_t: dict[str, int] = {}
        index: dict[str, int] = {}
        state_names = (reader.meta.extra or {}).get("state_names")
        for msg in _events(report, reader):
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
        _check_counts(report, reader, index)
        for prev, cur in zip(frames, frames[1:]):
            if cur.pts_ns <= prev.pts_ns and cur.uri == prev.uri:
                report.add(f"screen[{cur.index}] t={cur.t_ns}",
                           f"pts {cur.pts_ns} does not increase (previous {prev.pts_ns})")
        vpath = reader.find_video()
        _check_drops(report, frame_stats(frames, reader.end_info) if frames else None, max_drop_pct)
    if video and frames and all(f.uri is None for f in frames):
        _check_video(report, vpath, frames, decode_check)
        _check_fingerprint(report, vpath, reader.video_fingerprint)
    return report


def _events(report: Report, reader: RecordingReader) -> Iterator[Any]:
    """The reader's events; damage was reported by ``_check_integrity``, a decoding failure ends the walk."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedRecordingWarning)
        try:
            yield from reader.iter()
        except D2EError as exc:
            report.add(exc.where or "file", exc.problem + (f" ({exc.fix})" if exc.fix else ""))


def _check_integrity(report: Report, reader: RecordingReader) -> None:
    """Every damaged part (chunk CRCs, summary, metadata, data section) with its byte offset and time
    range, and the MCAP messages per topic that remain readable against the summary's statistics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedRecordingWarning)
        damaged = reader.verify(data_section=True)
    first = reader.start_ns if damaged else 0
    for part in damaged:
        when = ""
        if part.start_ns is not None and part.end_ns is not None:
            when = f" (events from {(part.start_ns - first) / 1e9:.3f} s to {(part.end_ns - first) / 1e9:.3f} s)"
        span = f"bytes {part.offset}-{part.end_offset}" if part.end_offset is not None else f"byte {part.offset}"
        report.add(f"{part.kind} at {span}", f"damaged: {part.problem}{when}")
    stored = reader.stored_message_counts()
    if stored is None:
        return
    readable = reader.readable_messages
    for topic in sorted(set(stored) | set(readable)):
        if stored.get(topic, 0) != readable.get(topic, 0):
            report.add(f"topic {topic}", f"{readable.get(topic, 0)} of the {stored.get(topic, 0)} MCAP messages "
                       "that the summary's statistics count are readable")


def _check_counts(report: Report, reader: RecordingReader, read: dict[str, int]) -> None:
    """Events read per topic against the counts the writer stored when it finished."""
    stored = reader.end_info.get("counts")
    if not isinstance(stored, dict) or reader.is_owamcap:
        return
    for topic in sorted(set(stored) | set(read)):
        if stored.get(topic, 0) != read.get(topic, 0):
            report.add(f"topic {topic}", f"read {read.get(topic, 0)} events, the file's end record says "
                       f"{stored.get(topic, 0)}")


def _check_fingerprint(report: Report, vpath: str, stored: dict[str, Any] | None) -> None:
    """Is the video the one this recording was made with? (Recordings from before fingerprints pass.)"""
    if not stored or not exists(vpath):
        return
    try:
        with VideoReader(vpath, threads=1) as v:
            problem = video_mismatch(stored, v.fingerprint())
    except D2EError:
        return  # _check_video reported why it cannot be read
    if problem:
        report.add("video", f"does not match this recording's video ({problem}): another recording's video, "
                   "or damaged", path=vpath)


def _check_drops(report: Report, stats: dict[str, Any] | None, max_drop_pct: float | None) -> None:
    if not stats or not stats["dropped"]:
        return
    pct = stats["dropped_pct"]
    line = (f"{stats['dropped']} of {stats['frames'] + stats['dropped']} frames dropped ({pct:.2f} %), longest gap "
            f"{stats['longest_gap_ms']:.0f} ms")
    if max_drop_pct is not None and pct > max_drop_pct:
        report.add("screen", f"{line}: above --max-drop-pct {max_drop_pct:g}")
    elif pct > DROP_WARN_PCT:
        report.add("screen", f"{line}: the recorder was short of CPU", "warning")


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
