"""Crash recovery: turn a recording whose writer died, or whose file was damaged, into a finished one.

The MCAP side keeps every intact (CRC-checked) chunk: the writer closes chunks every second, so a
SIGKILL loses at most about a second, and a damaged chunk costs only its own events, because the reader
finds the intact chunks after it. A damaged summary, footer or trailing bytes cost nothing: the data
section is read on its own. The MKV side is remuxed packet by packet (no re-encoding) until the first
damaged packet. Screen records whose frame did not reach the video are dropped, so the result validates.

Inputs are never written: outputs that would land on the damaged ``.mcap`` or on its video (whatever
``-o`` says, ``--force`` included) are refused. The ``.mcap`` and ``.mkv`` are written to temp files and
renamed together at the end, so a failure leaves no half pair and a rerun simply starts again.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from .errors import D2EError
from .format import RecordingReader, RecordingWriter
from .format.reader import DamagedRecordingWarning, UnfinishedRecordingWarning
from .progress import progress
from .schema import RecordingMeta, ScreenFrame
from .storage import atomic_outputs, local_path, same_file
from .video import VideoReader, video_fingerprint, video_mismatch


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
    damaged: list[str] = field(default_factory=list)
    no_frames: bool = False  # an empty recording: no screen records, so no video to recover


def remux_video(src: str | os.PathLike, dst: str | os.PathLike) -> list[int]:
    """Copy the readable packets of ``src`` into a fresh MKV; returns the pts (ns) of copied frames."""
    kept: list[int] = []
    try:
        source = av.open(str(src), "r")
    except av.error.FFmpegError as exc:
        raise D2EError(f"video cannot be opened at all ({exc.strerror or exc})", path=src,
                       fix="the video is lost; recover the events with --no-video") from exc
    with source:
        if not source.streams.video:
            raise D2EError("the video file has no video stream", path=src,
                           fix="recover the events with --no-video")
        in_stream = source.streams.video[0]
        try:
            out = av.open(str(dst), "w", format="matroska")
            out_stream = out.add_stream_from_template(in_stream)
        except (av.error.FFmpegError, ValueError) as exc:
            raise D2EError(f"the video's stream cannot be copied ({exc})", path=src,
                           fix="recover the events with --no-video") from exc
        with out:
            tb = in_stream.time_base
            demux = source.demux(in_stream)
            while True:
                try:
                    packet = next(demux)
                    if packet.size == 0 or packet.pts is None:
                        continue
                    packet.stream = out_stream
                    out.mux(packet)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    break  # the damaged tail (or a packet the muxer refuses): keep what came before
                kept.append(round(packet.pts * tb * 1_000_000_000))
    return sorted(kept)


def _outputs(src: Path, dst: str | os.PathLike | None, inputs: list[str]) -> tuple[Path, Path]:
    """The output pair, refused when it is not a .mcap name or would land on any input."""
    dst_path = Path(dst) if dst is not None else src.with_name(src.stem + ".recovered.mcap")
    if dst_path.suffix != ".mcap":
        raise D2EError(f"-o must name a .mcap file (its video is written beside it), got {dst_path.name!r}",
                       path=dst_path, fix="for example: -o fixed.mcap")
    video_dst = dst_path.with_suffix(".mkv")
    for out in (dst_path, video_dst):
        for given in inputs:
            if same_file(out, given):
                raise D2EError(f"output would overwrite the input {given}", path=out,
                               fix="choose another -o; recover never writes over what it reads")
    return dst_path, video_dst


def _open_damaged(src: Path) -> RecordingReader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnfinishedRecordingWarning)
        warnings.simplefilter("ignore", DamagedRecordingWarning)
        return RecordingReader(src, allow_unfinished=True, salvage=True)


def _check_own_video(reader: RecordingReader, video: str) -> None:
    """Refuse to pair the events with another recording's video (a cut copy of its own one is fine)."""
    try:
        with VideoReader(video, threads=1) as v:
            problem = video_mismatch(reader.video_fingerprint, v.fingerprint(count=False))
    except D2EError:
        return  # unreadable: remux_video says so
    if problem:
        raise D2EError(f"the video {video} does not match this recording's ({problem}): it is another recording's "
                       "video, or it is damaged", path=reader.path,
                       fix="put its own video beside it, or recover the events alone with --no-video")


def recover(src: str | os.PathLike, dst: str | os.PathLike | None = None, *, video: bool = True,
            overwrite: bool = False) -> RecoveryReport:
    """Rebuild ``src`` (a crashed or damaged ``.mcap``, and its ``.mkv``) into ``dst`` (default
    ``NAME.recovered.mcap`` + ``.mkv``)."""
    src_path = local_path(src)
    reader = _open_damaged(src_path)
    with reader:
        video_src = reader.find_video()
        dst_path, video_dst = _outputs(src_path, dst, [str(src_path), video_src])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedRecordingWarning)
            damage = reader.verify()  # before reading: every damaged part, so the report lists them all
        report = RecoveryReport(output=str(dst_path), was_finished=reader.finished and not damage,
                                mcap_bytes_total=reader.size,
                                mcap_bytes_kept=reader.truncated_at if reader.truncated_at is not None
                                else reader.size, damaged=[part.describe() for part in damage])
        # an empty recording has no frames, so no video (or a header FFmpeg cannot open): nothing to remux
        report.no_frames = not reader.counts().get("screen")
        use_video = video and not report.no_frames and os.path.exists(video_src)
        if video and not report.no_frames and not use_video:
            report.video_missing = str(video_src)
        if use_video:
            _check_own_video(reader, video_src)
        meta = reader.meta
        meta.extra = {**meta.extra, "recovered_from": str(src_path)}
        outputs = [dst_path, video_dst] if use_video else [dst_path]
        with atomic_outputs(outputs, overwrite=overwrite) as temps:
            frame_pts: set[int] | None = None
            if use_video:
                frame_pts = set(remux_video(video_src, temps[1]))
                report.video_output, report.video_packets = str(video_dst), len(frame_pts)
                meta.video = {**meta.video, "file": video_dst.name}
            fingerprint = video_fingerprint(temps[1]) if use_video else None
            _write_events(reader, temps[0], meta, frame_pts, fingerprint, report)
    return report


def _write_events(reader: RecordingReader, tmp: Path, meta: RecordingMeta, frame_pts: set[int] | None,
                  fingerprint: dict[str, Any] | None, report: RecoveryReport) -> None:
    with RecordingWriter(tmp, meta, overwrite=True) as writer, warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedRecordingWarning)  # listed in report.damaged already
        for msg in progress(reader.iter(), desc="recovering"):
            if isinstance(msg, ScreenFrame) and frame_pts is not None and msg.uri is None \
                    and msg.pts_ns not in frame_pts:
                report.screen_records_dropped += 1
                continue
            writer.write(msg)
        writer.update_end_info(recovered=True, source_bytes_kept=report.mcap_bytes_kept,
                               source_bytes_total=report.mcap_bytes_total,
                               source_end_info=reader.end_info or None, source_damage=report.damaged or None,
                               **({"video_fingerprint": fingerprint} if fingerprint else {}))
        report.counts = writer.counts
