"""``--window PATTERN --follow``: keep the video on one window's client area while it moves and resizes.

The grab thread asks the X server where the window is before every grab instead of waiting for
ConfigureNotify events: a reparenting window manager moves its frame, not the client, so the client is
never told about a move, while the question (two round trips, well under a millisecond locally) is always
right. The video keeps one size for the whole recording (decoders and models want that), so a window of
another size is scaled to fit and centred on black (letterboxed); every new rect is logged in the window
topic, which is how a reader maps video pixels back to the screen (``fit`` gives the placement).
"""

from __future__ import annotations

import numpy as np

from .grab import Region


def fit(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a ``src_w`` x ``src_h`` picture scaled to fit ``out_w`` x ``out_h``, centred."""
    scale = min(out_w / src_w, out_h / src_h)
    w = min(out_w, max(1, round(src_w * scale)))
    h = min(out_h, max(1, round(src_h * scale)))
    return (out_w - w) // 2, (out_h - h) // 2, w, h


def letterbox(image: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """A BGRA ``(H, W, 4)`` image scaled to fit ``out_w`` x ``out_h`` and centred on black."""
    import av

    h0, w0 = image.shape[:2]
    if (w0, h0) == (out_w, out_h):
        return image
    x, y, w, h = fit(w0, h0, out_w, out_h)
    frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="bgra")
    scaled = frame.reformat(width=w, height=h, format="bgra").to_ndarray()
    canvas = np.zeros((out_h, out_w, 4), np.uint8)
    canvas[y:y + h, x:x + w] = scaled
    return canvas


def clip_to_screen(rect: tuple[int, int, int, int], screen_w: int, screen_h: int) -> Region | None:
    """The visible part of ``rect`` (x, y, w, h) on a ``screen_w`` x ``screen_h`` root; None when off screen
    (the X server refuses to copy pixels outside the root window)."""
    x, y, w, h = rect
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(screen_w, x + w), min(screen_h, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return Region(x0, y0, x1 - x0, y1 - y0)
