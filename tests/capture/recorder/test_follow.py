"""Letterboxing a followed window into the recording's fixed frame size."""

from __future__ import annotations

import numpy as np

from capture.recorder.follow import clip_to_screen, fit, letterbox
from capture.recorder.grab import Region


def test_fit_keeps_the_aspect_and_centres() -> None:
    assert fit(320, 240, 320, 240) == (0, 0, 320, 240)
    assert fit(640, 240, 320, 240) == (0, 60, 320, 120)  # wider: bars above and below
    assert fit(100, 200, 320, 240) == (100, 0, 120, 240)  # taller and smaller: scaled up, bars at the sides


def test_letterbox_scales_into_black_bars() -> None:
    img = np.zeros((100, 400, 4), np.uint8)
    img[..., 2] = 200  # red in BGRA
    out = letterbox(img, 200, 200)
    assert out.shape == (200, 200, 4)
    assert out[:70, :, :3].max() == 0 and out[130:, :, :3].max() == 0  # bars
    assert abs(int(out[100, 100, 2]) - 200) <= 2 and out[100, 100, 0] == 0  # the picture in the middle
    assert letterbox(img, 400, 100) is img  # same size: untouched, no copy


def test_clip_to_screen() -> None:
    assert clip_to_screen((-10, 20, 100, 50), 640, 480) == Region(0, 20, 90, 50)
    assert clip_to_screen((600, 400, 100, 100), 640, 480) == Region(600, 400, 40, 80)
    assert clip_to_screen((700, 0, 100, 100), 640, 480) is None
