"""The desktop recorder (``d2e record``): screen + keyboard + mouse + raw mouse + window, one clock.

Threads in one process (DESIGN 2: what kept up on two cores): a grab thread on absolute deadlines, an
encoder thread at nice 10, a writer thread for the MCAP, and the input/window listeners, which do one
queue put per event. Platform layers (``input_x11``, ``window_x11``) sit behind small interfaces so
macOS/Windows can run with mss + pynput alone (no raw mouse, no window events) and say so.

Nothing here imports mss/pynput/python-xlib at import time: they come from the ``[record]`` extra and
are loaded with ``capture.errors.require`` when a recording starts.
"""

from __future__ import annotations

from .recorder import Recorder, RecorderConfig

__all__ = ["Recorder", "RecorderConfig"]
