"""Frames at model size: the resize rule, and any gameplay video put on the 20 Hz grid.

One resize (FFmpeg's area scaler, square, with the aspect handling the model was trained with) serves the
training windows and the pseudo-labeler, and videos of any container, codec, size or frame rate are
resampled with the grid's frame rule (``core.grid``), so labeling sees frames exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from capture.errors import D2EError
from capture.storage import expand_inputs, is_url, open_read

from ..grid import TICK_NS, nearer_is_next

ASPECTS = ("stretch", "pad", "crop")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".flv", ".mov", ".avi", ".m4v", ".ts")


def fit_frame(frame: Any, size: int, aspect: str = "stretch", scaler: Any = None) -> np.ndarray:
    """An av.VideoFrame -> (size, size, 3) uint8: ``stretch`` (D2E: aspect not kept), ``pad`` (letterbox) or
    ``crop`` (centre crop).

    Pass one ``av.video.reformatter.VideoReformatter`` per stream as ``scaler``: it keeps the scaling
    context, which makes a resize ~8x cheaper than building one per frame."""
    from av.video.reformatter import VideoReformatter

    scaler = scaler or VideoReformatter()

    def scaled(width: int, height: int) -> np.ndarray:
        return scaler.reformat(frame, width, height, "rgb24", interpolation="AREA").to_ndarray()

    if aspect == "stretch":
        return scaled(size, size)
    w, h = frame.width, frame.height
    if aspect == "crop":
        scale = size / min(w, h)
        img = scaled(max(size, round(w * scale)), max(size, round(h * scale)))
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        return img[y:y + size, x:x + size]
    scale = size / max(w, h)
    img = scaled(max(2, round(w * scale) // 2 * 2), max(2, round(h * scale) // 2 * 2))
    out = np.zeros((size, size, 3), np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def discover_videos(inputs: list[str], pattern: str | None = None) -> list[str]:
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
    """Stream facts, or a ``D2EError`` saying why the file cannot be read."""
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


def grid_frames(path: str, size: int, aspect: str = "stretch", *, start_s: float = 0.0, end_s: float | None = None,
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(grid time ns from the video start, source pts ns, RGB ``size x size`` frame) on the 20 Hz grid.

    Each grid point takes the frame the grid's rule picks (the nearest in time), only frames actually used
    are resized, and the source pts of every model frame is kept for the labels. Decodes forward once; a
    corrupt packet mid-stream raises ``av.error.FFmpegError`` to the caller.
    """
    from av.video.reformatter import VideoReformatter

    source = open_read(path) if is_url(path) else path
    scaler = VideoReformatter()
    with av.open(source) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = round((stream.start_time or 0) * tb * 1e9)
        if start_s > 0:
            c.seek(int(start_s / tb) + (stream.start_time or 0), stream=stream, backward=True)
        next_t = round(start_s * 1e9)
        end_ns = None if end_s is None else round(end_s * 1e9)
        current: tuple[int, Any] | None = None  # (time from the video start, frame)
        for frame in c.decode(stream):
            if frame.pts is None:
                continue
            rel = round(frame.pts * tb * 1e9) - origin
            while current is not None and next_t < rel:
                if end_ns is not None and next_t >= end_ns:
                    return
                shown = (rel, frame) if nearer_is_next(current[0], rel, next_t) else current
                yield next_t, shown[0] + origin, fit_frame(shown[1], size, aspect, scaler)
                next_t += TICK_NS
            current = (rel, frame)
        last_ok = current is not None and next_t - current[0] <= TICK_NS // 2
        if current is not None and last_ok and (end_ns is None or next_t < end_ns):
            yield next_t, current[0] + origin, fit_frame(current[1], size, aspect, scaler)
