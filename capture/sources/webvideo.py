"""A recording's video as a "web video": what a pseudo-labeler finds on the internet.

The copy has no events and may be rescaled, re-encoded at another bitrate and resampled to another
frame rate; the ground truth stays beside it (``NAME.truth.mcap``, a copy of the recording's events with
times on the web video's clock) so pseudo-labels can be scored with ``d2e idm eval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..convert import shift_events
from ..format import RecordingReader
from ..storage import atomic_output
from ..video import VideoReader, VideoWriter


@dataclass
class WebVideo:
    video: str
    truth: str
    frames: int
    width: int
    height: int
    fps: float


def export_web_video(recording: str | Path, out: str | Path, *, width: int | None = None, height: int | None = None,
                     fps: float | None = None, bitrate: int | None = None, codec: str = "h264",
                     overwrite: bool = False) -> WebVideo:
    """Write ``out`` (.mp4/.webm/.mkv) from the recording's video, and ``<out stem>.truth.mcap`` beside it.

    The web video's time 0 is the recording's first frame; ``fps`` resamples on that clock (each output
    frame shows the latest recorded frame at its time), ``width``/``height`` rescale (one given: keep the
    aspect).
    """
    out = Path(out)
    truth = out.with_name(out.stem + ".truth.mcap")
    with RecordingReader(recording) as reader:
        frames = [m for m in reader.iter(topics=["screen"]) if m.uri is None]
        video_path = reader.video_path
        fps = fps or reader.meta.fps or 20.0
    if not frames:
        from ..errors import D2EError

        raise D2EError("recording has no video frames", path=recording)
    t0 = frames[0].t_ns
    src_w, src_h = frames[0].width, frames[0].height
    if width and not height:
        height = round(src_h * width / src_w)
    elif height and not width:
        width = round(src_w * height / src_h)
    width, height = width or src_w, height or src_h
    period = round(1e9 / fps)
    n_out = int((frames[-1].t_ns - t0) // period) + 1
    with VideoReader(video_path) as src, atomic_output(out, overwrite=overwrite) as tmp:
        container = {".mp4": "mp4", ".webm": "webm", ".mkv": "matroska"}.get(out.suffix.lower(), "mp4")
        with VideoWriter(tmp, width, height, codec="av1" if container == "webm" and codec == "h264" else codec,
                         fps_hint=fps, start_ns=0, overwrite=True, bitrate=bitrate, container=container) as w:
            j = 0
            for i in range(n_out):
                t = t0 + i * period
                while j + 1 < len(frames) and frames[j + 1].t_ns <= t:
                    j += 1
                frame = src.frame_obj_at(frames[j].pts_ns)
                image = frame.to_ndarray(width=w.width, height=w.height, format="rgb24")
                w.write(image, i * period)
    # ground truth on the web video's clock (time 0 = first frame); its frames are the web video's now
    shift_events(recording, truth, -t0, overwrite=overwrite, video_file=out.name)
    return WebVideo(str(out), str(truth), n_out, width - width % 2, height - height % 2, fps)

