"""Gameplay videos as a pseudo-labeler sees them: discovered, probed, resampled to the model's rate.

Any container/codec PyAV reads, any size, frame rate or aspect. Frames are taken on the model's fixed
grid (20 Hz): for grid time ``t`` the frame shown at ``t`` (the last one whose pts <= t), so variable
frame rate sources map exactly and every model frame remembers the source pts it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from capture.dataset import fit_frame
from capture.errors import D2EError
from capture.storage import expand_inputs, is_url, open_read

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".flv", ".mov", ".avi", ".m4v", ".ts")


def discover(inputs: list[str], pattern: str | None = None) -> list[str]:
    """Videos from files, folders (recursive, by suffix, optionally a name glob), @lists and fsspec URLs."""
    return expand_inputs(inputs, VIDEO_SUFFIXES, pattern)


@dataclass
class VideoProbe:
    path: str
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str


def probe(path: str) -> VideoProbe:
    """Stream facts, or a ``D2EError`` saying why the file cannot be labeled."""
    try:
        source = open_read(path) if is_url(path) else path
        if not is_url(path) and Path(path).stat().st_size == 0:
            raise D2EError("zero-length file", path=path)
        with av.open(source) as c:
            if not c.streams.video:
                raise D2EError("no video stream (audio-only?)", path=path)
            s = c.streams.video[0]
            duration = float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6
            fps = float(s.average_rate or s.guessed_rate or 0)
            return VideoProbe(path, duration, s.codec_context.width, s.codec_context.height, fps,
                              s.codec_context.name)
    except D2EError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise D2EError(f"unreadable video ({exc})", path=path) from exc


def grid_frames(path: str, size: int, *, fps: float = 20.0, start_s: float = 0.0, end_s: float | None = None,
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(grid time ns from the video start, source pts ns, RGB ``size x size`` frame) on the model grid.

    Each grid point takes the source frame nearest to it in time, so capture jitter never shifts a frame
    by a whole grid step, and the source pts of every model frame is kept for the labels.
    Square resize (aspect not kept, as D2E's 448x448) by FFmpeg's scaler, only for frames actually used.
    Decodes forward once; a corrupt packet mid-stream raises ``av.error.FFmpegError`` to the caller.
    """
    period = round(1e9 / fps)
    source = open_read(path) if is_url(path) else path
    with av.open(source) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = round((stream.start_time or 0) * tb * 1e9)
        if start_s > 0:
            c.seek(int(start_s / tb) + (stream.start_time or 0), stream=stream, backward=True)
        next_t = round(start_s * 1e9)
        end_ns = None if end_s is None else round(end_s * 1e9)
        current: tuple[int, av.VideoFrame] | None = None

        from av.video.reformatter import VideoReformatter

        scaler = VideoReformatter()

        def emit(t: int, shown: tuple[int, av.VideoFrame]) -> tuple[int, int, np.ndarray]:
            return t, shown[0], fit_frame(shown[1], size, "stretch", scaler)

        for frame in c.decode(stream):
            if frame.pts is None:
                continue
            pts = round(frame.pts * tb * 1e9)
            rel = pts - origin
            while current is not None and next_t < rel:
                if end_ns is not None and next_t >= end_ns:
                    return
                # the frame nearest in time to the grid point (ties: the earlier one)
                nearer = (pts, frame) if rel - next_t < next_t - (current[0] - origin) else current
                yield emit(next_t, nearer)
                next_t += period
            current = (pts, frame)
        last_ok = current is not None and next_t - (current[0] - origin) <= period // 2
        if current is not None and last_ok and (end_ns is None or next_t < end_ns):
            yield emit(next_t, current)
