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
from .schema import ScreenFrame
from .storage import atomic_output
from .video import VideoReader, VideoWriter


@dataclass
class TrimResult:
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
    """Write events and frames with ``start_ns <= t < end_ns`` (absolute recording times) to ``dst``."""
    if end_ns <= start_ns:
        raise D2EError(f"empty range: end ({end_ns}) is not after start ({start_ns})", fix="check --start/--end")
    dst_path = Path(dst)
    with RecordingReader(src) as reader:
        meta = reader.meta
        frames = list(reader.iter(topics=["screen"]))
        in_range = [f for f in frames if start_ns <= f.t_ns < end_ns and f.uri is None]
        snapped = False
        kept_pts: set[int] = set()
        if in_range:
            video_src = reader.video_path
            video_dst = dst_path.with_suffix(".mkv")
            with VideoReader(video_src) as v:
                keyframes = v.keyframe_pts_ns()
            first_pts = in_range[0].pts_ns
            if not reencode:
                kf = max((k for k in keyframes if k <= first_pts), default=first_pts)
                if kf != first_pts:
                    snapped = True
                    start_ns = min(f.t_ns for f in frames if f.pts_ns >= kf)
                    in_range = [f for f in frames if start_ns <= f.t_ns < end_ns and f.uri is None]
                hi = in_range[-1].pts_ns + 1
                with atomic_output(video_dst, overwrite=overwrite) as tmp:
                    kept_pts = _copy_packets(video_src, tmp, in_range[0].pts_ns, hi)
            else:
                with VideoReader(video_src) as v, atomic_output(video_dst, overwrite=overwrite) as tmp, \
                        VideoWriter(tmp, in_range[0].width, in_range[0].height, start_ns=0, overwrite=True,
                                    codec=meta.video.get("codec", "h264") or "h264", fps_hint=meta.fps or 20) as w:
                    for f in in_range:
                        kept_pts.add(w.write(v.frame_at(f.pts_ns), f.pts_ns))
            meta.video = {**meta.video, "file": video_dst.name}
        meta.extra = {**meta.extra, "trimmed_from": src, "trim_range_ns": [start_ns, end_ns]}
        with atomic_output(dst_path, overwrite=overwrite) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
            for msg in progress(reader.iter(start_ns=start_ns, end_ns=end_ns), desc="trimming"):
                if isinstance(msg, ScreenFrame) and msg.uri is None and msg.pts_ns not in kept_pts:
                    continue
                writer.write(msg)
            counts = writer.counts
    return TrimResult(str(dst_path), start_ns, end_ns, counts, len(kept_pts), snapped)
