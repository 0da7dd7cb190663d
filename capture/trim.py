"""Cut a time range out of a recording.

Two ways to cut the video: stream copy (default; fast and lossless, but a copied video must start on a
keyframe, so the range's start moves back to the keyframe before it and the events follow it), or
re-encode (exact range, costs an encode). Frame pts are kept, so screen records stay valid unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from .errors import D2EError
from .format import RecordingReader, RecordingWriter
from .progress import progress
from .schema import RecordingMeta, ScreenFrame
from .storage import atomic_outputs
from .video import VideoReader, VideoWriter, video_fingerprint


@dataclass
class TrimResult:
    """What was written; ``start_ns``/``end_ns`` are its first and last message's times."""

    output: str
    start_ns: int
    end_ns: int
    counts: dict[str, int]
    frames: int
    snapped_to_keyframe: bool


def _copy_packets(src: str, dst: Path, lo_pts_ns: int, hi_pts_ns: int) -> set[int]:
    kept: set[int] = set()
    with av.open(src, "r") as source, av.open(str(dst), "w", format="matroska") as out:
        stream = source.streams.video[0]
        out_stream = out.add_stream_from_template(stream)
        tb = stream.time_base
        source.seek(int(lo_pts_ns / 1e9 / tb), stream=stream, backward=True, any_frame=False)
        for packet in source.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            t = round(packet.pts * tb * 1_000_000_000)
            if t < lo_pts_ns:
                continue
            if t >= hi_pts_ns:
                break
            packet.stream = out_stream
            out.mux(packet)
            kept.add(t)
    return kept


def trim(src: str, dst: str, start_ns: int, end_ns: int, *, reencode: bool = False,
         overwrite: bool = False) -> TrimResult:
    """Write events and frames with ``start_ns <= t < end_ns`` (absolute recording times) to ``dst``.

    The result reports the span actually written (from its first to its last message, after a stream
    copy moved the start back to a keyframe). A range with nothing in it is refused, and nothing is
    written: the ``.mcap`` and ``.mkv`` appear together or not at all."""
    if end_ns <= start_ns:
        raise D2EError(f"empty range: end ({end_ns}) is not after start ({start_ns})", fix="check --start/--end")
    dst_path = Path(dst)
    if dst_path.suffix != ".mcap":
        raise D2EError(f"-o must name a .mcap file (its video is written beside it), got {dst_path.name!r}",
                       path=dst_path, fix="for example: -o clip.mcap")
    with RecordingReader(src) as reader:
        meta = reader.meta
        frames = list(reader.iter(topics=["screen"]))
        in_range = [f for f in frames if start_ns <= f.t_ns < end_ns and f.uri is None]
        video_dst = dst_path.with_suffix(".mkv")
        with atomic_outputs([dst_path, video_dst] if in_range else [dst_path], overwrite=overwrite) as temps:
            kept_pts: set[int] = set()
            snapped = False
            if in_range:
                video_src = reader.video_path
                start_ns, snapped, kept_pts = _cut_video(video_src, temps[1], frames, in_range, start_ns, end_ns,
                                                         reencode, meta)
                meta.video = {**meta.video, "file": video_dst.name}
            meta.extra = {**meta.extra, "trimmed_from": src, "trim_range_ns": [start_ns, end_ns]}
            first = last = None
            with RecordingWriter(temps[0], meta, overwrite=True) as writer:
                for msg in progress(reader.iter(start_ns=start_ns, end_ns=end_ns), desc="trimming"):
                    if isinstance(msg, ScreenFrame) and msg.uri is None and msg.pts_ns not in kept_pts:
                        continue
                    writer.write(msg)
                    first = msg.t_ns if first is None else first
                    last = msg.t_ns
                if first is None:
                    raise D2EError("nothing to keep: the range holds no events and no frames", path=src,
                                   fix="choose --start/--end inside the recording (d2e info shows its span)")
                if in_range:
                    writer.update_end_info(video_fingerprint=video_fingerprint(temps[1]))
                counts = writer.counts
    return TrimResult(str(dst_path), first, last, counts, len(kept_pts), snapped)


def _cut_video(video_src: str, tmp: Path, frames: list[ScreenFrame], in_range: list[ScreenFrame], start_ns: int,
               end_ns: int, reencode: bool, meta: RecordingMeta) -> tuple[int, bool, set[int]]:
    """Write the range's frames to ``tmp``: (start, moved back to a keyframe?, pts kept)."""
    snapped = False
    with VideoReader(video_src) as v:
        if reencode:
            with VideoWriter(tmp, in_range[0].width, in_range[0].height, start_ns=0, overwrite=True,
                             codec=meta.video.get("codec", "h264") or "h264", fps_hint=meta.fps or 20) as w:
                return start_ns, False, {w.write(v.frame_at(f.pts_ns), f.pts_ns) for f in in_range}
        keyframes = v.keyframe_pts_ns()
    first_pts = in_range[0].pts_ns
    kf = max((k for k in keyframes if k <= first_pts), default=first_pts)
    if kf != first_pts:
        snapped = True
        start_ns = min(f.t_ns for f in frames if f.pts_ns >= kf)
        in_range = [f for f in frames if start_ns <= f.t_ns < end_ns and f.uri is None]
    try:
        kept = _copy_packets(video_src, tmp, in_range[0].pts_ns, in_range[-1].pts_ns + 1)
    except av.error.FFmpegError as exc:
        raise D2EError(f"the video cannot be copied ({exc.strerror or exc})", path=video_src,
                       fix="try --reencode, or 'd2e recover' the recording first") from exc
    return start_ns, snapped, kept
