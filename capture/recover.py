"""Crash recovery: turn a recording whose writer died into a finished, valid one.

The MCAP side keeps every complete (CRC-checked) chunk; the writer closes chunks every second, so a
SIGKILL loses at most about a second. The MKV side is remuxed packet by packet (no re-encoding) until
the first damaged packet. Screen records whose frame did not reach the video are dropped, so the result
validates. The damaged originals are never modified: the output is written beside them (temp file +
rename), and only then reported.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import av

from .errors import D2EError
from .format import RecordingReader, RecordingWriter
from .format.reader import UnfinishedRecordingWarning
from .progress import progress
from .schema import ScreenFrame
from .storage import atomic_output, local_path


@dataclass
class RecoveryReport:
    """What came back: events per topic, frames kept and dropped, and where each file was cut."""

    output: str
    counts: dict[str, int] = field(default_factory=dict)
    mcap_bytes_kept: int = 0
    mcap_bytes_total: int = 0
    was_finished: bool = False
    video_output: str | None = None
    video_packets: int = 0
    screen_records_dropped: int = 0
    video_missing: str | None = None
    no_frames: bool = False  # an empty recording: no screen records, so no video to recover


def remux_video(src: str | os.PathLike, dst: str | os.PathLike) -> list[int]:
    """Copy the readable packets of ``src`` into a fresh MKV; returns the pts (ns) of copied frames."""
    kept: list[int] = []
    try:
        source = av.open(str(src), "r")
    except av.error.FFmpegError as exc:
        raise D2EError(f"video cannot be opened at all ({exc})", path=src,
                       fix="the video is lost; recover the events with --no-video") from exc
    with source, av.open(str(dst), "w", format="matroska") as out:
        in_stream = source.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        tb = in_stream.time_base
        demux = source.demux(in_stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError:
                break  # the damaged tail
            if packet.size == 0 or packet.pts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)
            kept.append(round(packet.pts * tb * 1_000_000_000))
    return sorted(kept)


def recover(src: str | os.PathLike, dst: str | os.PathLike | None = None, *, video: bool = True,
            overwrite: bool = False) -> RecoveryReport:
    """Rebuild ``src`` (a crashed ``.mcap``, and its ``.mkv``) into ``dst`` (default ``NAME.recovered.mcap``)."""
    src_path = local_path(src)
    dst_path = Path(dst) if dst is not None else src_path.with_name(src_path.stem + ".recovered.mcap")
    if dst_path.resolve() == src_path.resolve():
        raise D2EError("output would overwrite the damaged original", path=dst_path, fix="choose another -o")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnfinishedRecordingWarning)
        reader = RecordingReader(src_path, allow_unfinished=True)
    report = RecoveryReport(output=str(dst_path), was_finished=reader.finished,
                            mcap_bytes_total=reader.size,
                            mcap_bytes_kept=reader.truncated_at if reader.truncated_at is not None else reader.size)
    with reader:
        meta = reader.meta
        video_src = Path(reader.video_path)
        frame_pts: set[int] | None = None
        report.no_frames = not reader.counts().get("screen")
        if report.no_frames:
            pass  # the video holds nothing (or is a header that FFmpeg cannot open): nothing to remux
        elif video and video_src.exists():
            video_dst = dst_path.with_suffix(".mkv")
            with atomic_output(video_dst, overwrite=overwrite) as tmp:
                frame_pts = set(remux_video(video_src, tmp))
            report.video_output, report.video_packets = str(video_dst), len(frame_pts)
            meta.video = {**meta.video, "file": video_dst.name}
        elif video:
            report.video_missing = str(video_src)
        meta.extra = {**meta.extra, "recovered_from": str(src_path)}
        with atomic_output(dst_path, overwrite=overwrite) as tmp, \
                RecordingWriter(tmp, meta, overwrite=True) as writer:
            for msg in progress(reader.iter(), desc="recovering"):
                if isinstance(msg, ScreenFrame) and frame_pts is not None and msg.uri is None \
                        and msg.pts_ns not in frame_pts:
                    report.screen_records_dropped += 1
                    continue
                writer.write(msg)
            writer.update_end_info(recovered=True, source_bytes_kept=report.mcap_bytes_kept,
                                   source_bytes_total=report.mcap_bytes_total,
                                   source_end_info=reader.end_info or None)
            report.counts = writer.counts
    return report
