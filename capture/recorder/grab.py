"""Screen grabbing with mss (XShm on X11: ~770 grabs/s at 1080p here, DESIGN 2).

mss connections are per thread, so ``ScreenGrabber.open`` must run in the grab thread. Each grab is
stamped with the monotonic midpoint of the call: XShm copies the framebuffer while the call runs, so
the midpoint is the best single estimate of when the pixels were current.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import D2EError, require


@dataclass
class Region:
    """A rectangle in root-window (virtual screen) pixels."""

    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)


def parse_region(text: str) -> Region:
    """``x,y,w,h`` -> Region."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise D2EError(f"bad region {text!r}", fix="write it as x,y,width,height, e.g. 0,0,1280,720") from exc
    if w <= 0 or h <= 0:
        raise D2EError(f"region {text!r} is empty")
    return Region(x, y, w, h)


def list_screens() -> list[dict[str, int]]:
    """Every monitor as {x, y, width, height}; index 0 is the whole virtual screen (mss's convention)."""
    mss = require("mss", "record")
    with mss.mss() as sct:
        return [{"x": m["left"], "y": m["top"], "width": m["width"], "height": m["height"]} for m in sct.monitors]


def resolve_region(monitor: int, region: Region | None) -> Region:
    """The capture rectangle from ``--monitor``/``--region``, checked against the real screens."""
    screens = list_screens()
    if not 0 <= monitor < len(screens):
        raise D2EError(f"no monitor {monitor}", fix=f"choose 0 (all) to {len(screens) - 1}")
    if region is None:
        s = screens[monitor]
        return Region(s["x"], s["y"], s["width"], s["height"])
    return region


class ScreenGrabber:
    """Grabs one region as a (H, W, 4) BGRA uint8 array, with the cursor drawn in (as the player saw it)."""

    def __init__(self, region: Region, *, with_cursor: bool = True):
        self.with_cursor = with_cursor
        self._sct: Any = None
        self.set_region(region)

    def set_region(self, region: Region) -> None:
        """Grab another rectangle from the next grab on (``--follow`` moves it with the window)."""
        self.region = region
        self._box = {"left": region.x, "top": region.y, "width": region.width, "height": region.height}

    def open(self) -> None:
        mss = require("mss", "record")
        try:
            self._sct = mss.mss(with_cursor=self.with_cursor)
        except TypeError:  # older mss without the keyword
            self._sct = mss.mss()

    def grab(self) -> tuple[np.ndarray, int]:
        t0 = time.monotonic_ns()
        shot = self._sct.grab(self._box)
        t1 = time.monotonic_ns()
        image = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return image, (t0 + t1) // 2

    def close(self) -> None:
        if self._sct is not None:
            self._sct.close()
            self._sct = None
