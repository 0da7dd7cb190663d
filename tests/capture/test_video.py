"""PyAV video writer/reader: exact pts, frame-exact seeks, variable frame rate, containers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.errors import D2EError
from capture.video import VideoReader, VideoWriter, choose_encoder


def _frame(i: int) -> np.ndarray:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :, 0] = (i * 9) % 256
    return img


def test_variable_frame_rate_pts_and_exact_seek(tmp_path: Path) -> None:
    times = [0, 50, 101, 149, 400, 420, 1000, 1001, 1002, 2500]  # ms, with a gap and a burst
    path = tmp_path / "v.mkv"
    with VideoWriter(path, 64, 48, gop_seconds=0.5) as w:
        pts = [w.write(_frame(i), t * 1_000_000) for i, t in enumerate(times)]
    assert pts == [t * 1_000_000 for t in times]
    with VideoReader(path) as r:
        assert r.packet_pts_ns() == pts
        for i in [9, 0, 6, 3, 7]:  # out of order: forces seeks backwards
            got = r.frame_at(pts[i])
            assert abs(int(got[..., 0].mean()) - (i * 9) % 256) <= 3


def test_same_millisecond_frames_get_distinct_pts(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "b.mkv", 64, 48) as w:
        pts = [w.write(_frame(i), 5_000_000 + i * 100) for i in range(3)]
    assert pts == [0, 1_000_000, 2_000_000]


def test_odd_sizes_are_cropped_to_even(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "o.mkv", 65, 49) as w:
        w.write(np.zeros((49, 65, 4), np.uint8), 0)
    with VideoReader(tmp_path / "o.mkv") as r:
        info = r.info()
    assert (info.width, info.height, info.frames) == (64, 48, 1)


def test_mp4_container_by_suffix(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "w.mp4", 64, 48) as w:
        for i in range(5):
            w.write(_frame(i), i * 50_000_000)
    with VideoReader(tmp_path / "w.mp4") as r:
        assert r.info().frames == 5


def test_software_fallback_and_unknown_codec() -> None:
    assert choose_encoder("h264") in ("h264_nvenc", "libx264", "libopenh264")
    with pytest.raises(D2EError, match="no usable encoder"):
        choose_encoder("not-a-codec")


def test_missing_and_non_video_files(tmp_path: Path) -> None:
    with pytest.raises(D2EError, match="video file is missing"):
        VideoReader(tmp_path / "none.mkv")
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(D2EError, match="cannot open video"):
        VideoReader(bad)
