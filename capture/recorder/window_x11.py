"""Active-window tracking on X11 from ``_NET_ACTIVE_WINDOW`` property events (no polling).

OWA polls the active window once per second, so a focus change can be stamped up to a second late; the
window manager instead announces it on the root window, and the PropertyNotify carries the server time
of the change. We also watch the active window itself, so a title change (a game switching level, a
browser switching tab) is an event too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import require
from ..schema import WindowEvent
from .input_x11 import _poll_display
from .timebase import EventClock


class X11WindowWatcher:
    """Calls ``on_window(WindowEvent)`` for the current window at start and on every change.

    ``supported`` is False when the window manager does not publish ``_NET_ACTIVE_WINDOW`` (no window
    manager at all, as under bare Xvfb): then no window events exist until one appears.
    """

    def __init__(self, on_window: Callable[[WindowEvent], None], *, display: str | None = None):
        self.on_window = on_window
        self.display_name = display
        self.clock = EventClock()
        self.supported = False
        self.current: WindowEvent | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watched: Any = None

    def start(self) -> None:
        xdisplay = require("Xlib.display", "record")
        self._x = require("Xlib.X", "record")
        self._xerror = require("Xlib.error", "record")
        self.display = xdisplay.Display(self.display_name)
        self.root = self.display.screen().root
        atom = self.display.intern_atom
        self.A_ACTIVE = atom("_NET_ACTIVE_WINDOW")
        self.A_NAME = atom("_NET_WM_NAME")
        self.A_UTF8 = atom("UTF8_STRING")
        self.A_PID = atom("_NET_WM_PID")
        self.A_WM_NAME = require("Xlib.Xatom", "record").WM_NAME
        supported = self.root.get_full_property(atom("_NET_SUPPORTED"), self._x.AnyPropertyType)
        self.supported = bool(supported and self.A_ACTIVE in supported.value)
        self.root.change_attributes(event_mask=self._x.PropertyChangeMask)
        self.display.flush()
        self._refresh(None)
        self._thread = threading.Thread(target=self._loop, name="d2e-window", daemon=True)
        self._thread.start()

    def _active_window(self) -> Any:
        prop = self.root.get_full_property(self.A_ACTIVE, self._x.AnyPropertyType)
        if not prop or not len(prop.value) or not prop.value[0]:
            return None
        return self.display.create_resource_object("window", int(prop.value[0]))

    def describe(self, window: Any, t_ns: int) -> WindowEvent:
        """Title (``_NET_WM_NAME``, else ``WM_NAME``), WM_CLASS, pid and root geometry of ``window``."""
        title, app, pid, rect = "", "", None, (0, 0, 0, 0)
        try:
            prop = window.get_full_property(self.A_NAME, self.A_UTF8)
            if prop and prop.value:
                title = prop.value.decode("utf-8", "replace") if isinstance(prop.value, bytes) else str(prop.value)
            else:
                title = window.get_wm_name() or ""
                if isinstance(title, bytes):
                    title = title.decode("latin-1")
            cls = window.get_wm_class()
            app = cls[1] if cls else ""
            prop = window.get_full_property(self.A_PID, self._x.AnyPropertyType)
            pid = int(prop.value[0]) if prop and len(prop.value) else None
            geom = window.get_geometry()
            pos = window.translate_coords(self.root, 0, 0)
            rect = (-pos.x, -pos.y, geom.width, geom.height)
        except self._xerror.XError:
            pass  # the window vanished between the event and our questions
        return WindowEvent(t_ns, title, app, pid, rect, int(window.id))

    def _refresh(self, server_ms: int | None) -> None:
        window = self._active_window()
        t = self.clock.stamp(server_ms)
        if window is None:
            return
        if self._watched is None or self._watched.id != window.id:
            try:
                window.change_attributes(event_mask=self._x.PropertyChangeMask)
            except self._xerror.XError:
                return
            self._watched = window
        event = self.describe(window, t)
        if self.current is not None and (event.title, event.window_id, event.rect) == \
                (self.current.title, self.current.window_id, self.current.rect):
            return
        self.current = event
        self.on_window(event)

    def _loop(self) -> None:
        def handle(event: Any) -> None:
            if event.type != self._x.PropertyNotify:
                return
            on_root = event.window == self.root and event.atom == self.A_ACTIVE
            on_active = self._watched is not None and event.window == self._watched and \
                event.atom in (self.A_NAME, self.A_WM_NAME)
            if on_root or on_active:
                self._refresh(event.time)

        try:
            _poll_display(self.display, self._stop, handle)
        finally:
            self.display.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
