"""Keyboard and mouse through pynput's public callbacks: the fallback for platforms other than X11.

Where we have no hook on the OS event (macOS, Windows here), events are stamped with the monotonic
time at the callback, there is no raw mouse motion and no window tracking; the recorder says so in its
log and in the file's metadata (``extra.event_time = "callback"``, ``extra.raw_mouse = false``).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import require
from ..keys import canonical_key_name, vk_for
from ..schema import (
    KEY_PRESS,
    KEY_RELEASE,
    MOUSE_MOVE,
    MOUSE_PRESS,
    MOUSE_RELEASE,
    MOUSE_SCROLL,
    KeyboardEvent,
    MouseEvent,
)
from .input_x11 import Emit
from .timebase import EventClock

_BUTTONS = {"left": "left", "right": "right", "middle": "middle", "x1": "x1", "x2": "x2", "button8": "x1",
            "button9": "x2"}


def key_name(key: Any) -> str:
    """Canonical name of a pynput key: ``Key.ctrl_l`` -> ``ctrl``, ``KeyCode(char='A')`` -> ``a``."""
    name = getattr(key, "name", None)
    if name:
        return canonical_key_name(name)
    char = getattr(key, "char", None)
    if char and char.isprintable():
        return canonical_key_name(char)
    return f"vk_{getattr(key, 'vk', 0) or 0}"


class PynputInput:
    """Same interface as ``X11Input`` (``start``/``stop``/``clock``/``raw_available``), callback-timed."""

    def __init__(self, emit: Emit, **_: Any):
        self.emit = emit
        self.clock = EventClock()
        self.raw_available = False
        self.raw_error = "raw mouse input is implemented for X11 only"
        self._listeners: list[Any] = []
        self._down: set[str] = set()

    def _key(self, action: str) -> Any:
        def callback(key: Any, *_: Any) -> None:
            name = key_name(key)
            repeat = action == KEY_PRESS and name in self._down  # OS auto-repeat: a press without a release
            (self._down.add if action == KEY_PRESS else self._down.discard)(name)
            self.emit(KeyboardEvent(time.monotonic_ns(), action, name, vk_for(name) or getattr(key, "vk", 0) or 0,
                                    None, repeat))
            self.clock.fallbacks += 1
        return callback

    def _move(self, x: int, y: int, *_: Any) -> None:
        self.emit(MouseEvent(time.monotonic_ns(), MOUSE_MOVE, int(x), int(y)))

    def _click(self, x: int, y: int, button: Any, pressed: bool, *_: Any) -> None:
        name = _BUTTONS.get(getattr(button, "name", ""), getattr(button, "name", str(button)))
        self.emit(MouseEvent(time.monotonic_ns(), MOUSE_PRESS if pressed else MOUSE_RELEASE, int(x), int(y), name))

    def _scroll(self, x: int, y: int, dx: int, dy: int, *_: Any) -> None:
        self.emit(MouseEvent(time.monotonic_ns(), MOUSE_SCROLL, int(x), int(y), None, int(dx), int(dy)))

    def start(self) -> None:
        keyboard = require("pynput.keyboard", "record")
        mouse = require("pynput.mouse", "record")
        self._listeners = [
            keyboard.Listener(on_press=self._key(KEY_PRESS), on_release=self._key(KEY_RELEASE)),
            mouse.Listener(on_move=self._move, on_click=self._click, on_scroll=self._scroll),
        ]
        for listener in self._listeners:
            listener.start()
        for listener in self._listeners:
            listener.wait()

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()
        for listener in self._listeners:
            listener.join(timeout=2)
