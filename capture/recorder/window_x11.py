"""Active-window tracking on X11 from ``_NET_ACTIVE_WINDOW`` property events (no polling).

OWA polls the active window once per second, so a focus change can be stamped up to a second late; the
window manager instead announces it on the root window, and the PropertyNotify carries the server time
of the change. We also watch the active window itself, so a title change (a game switching level, a
browser switching tab) is an event too. ``X11Windows`` also finds a window by title for ``--window`` and
tells where its client area is for ``--follow``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

from ..errors import require
from ..schema import WindowEvent
from .input_x11 import _poll_display
from .timebase import EventClock


class X11Windows:
    """One X connection and the questions we ask about windows: title, class, pid, where, which match.

    Used by the focus watcher (its own thread) and by ``--follow`` (the grab thread); python-xlib
    connections are not shared between threads, so each makes its own.
    """

    def __init__(self, display: str | None = None):
        xdisplay = require("Xlib.display", "record")
        self._x = require("Xlib.X", "record")
        self._xerror = require("Xlib.error", "record")
        self.display = xdisplay.Display(display)
        self.root = self.display.screen().root
        atom = self.display.intern_atom
        self.A_ACTIVE = atom("_NET_ACTIVE_WINDOW")
        self.A_CLIENTS = atom("_NET_CLIENT_LIST")
        self.A_NAME = atom("_NET_WM_NAME")
        self.A_UTF8 = atom("UTF8_STRING")
        self.A_PID = atom("_NET_WM_PID")
        self.A_WM_NAME = require("Xlib.Xatom", "record").WM_NAME

    def window(self, window_id: int) -> Any:
        return self.display.create_resource_object("window", window_id)

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
            rect = self.client_rect(window) or rect
        except self._xerror.XError:
            pass  # the window vanished between the event and our questions
        return WindowEvent(t_ns, title, app, pid, rect, int(window.id))

    def client_rect(self, window: Any) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the window's client area in root coordinates; None when gone or not shown."""
        try:
            if window.get_attributes().map_state != self._x.IsViewable:
                return None
            geom = window.get_geometry()
            pos = window.translate_coords(self.root, 0, 0)
        except self._xerror.XError:
            return None
        return (-pos.x, -pos.y, geom.width, geom.height)

    def _candidates(self) -> list[Any]:
        """Client windows, bottom to top: the window manager's list, else the root's children and theirs."""
        prop = self.root.get_full_property(self.A_CLIENTS, self._x.AnyPropertyType)
        if prop and len(prop.value):
            return [self.window(int(w)) for w in prop.value]
        out = []
        for child in self.root.query_tree().children:
            out.append(child)
            with contextlib.suppress(self._xerror.XError):
                out.extend(child.query_tree().children)  # a reparenting WM's frame holds the client
        return out

    def find(self, pattern: re.Pattern[str], t_ns: int = 0) -> WindowEvent | None:
        """The topmost shown window whose title or class matches ``pattern``."""
        for window in reversed(self._candidates()):
            try:
                if window.get_attributes().map_state != self._x.IsViewable:
                    continue
            except self._xerror.XError:
                continue
            w = self.describe(window, t_ns)
            if (w.title or w.app) and pattern.search(f"{w.title}\n{w.app}") and w.rect[2] > 0:
                return w
        return None

    def screen_size(self) -> tuple[int, int]:
        geom = self.root.get_geometry()
        return geom.width, geom.height

    def close(self) -> None:
        self.display.close()


def list_window_titles(display: str | None = None) -> list[str]:
    """Titles of the shown windows (for the message when ``--window`` matches none of them)."""
    windows = X11Windows(display)
    try:
        titles = []
        for window in windows._candidates():
            with contextlib.suppress(Exception):
                if window.get_attributes().map_state == windows._x.IsViewable:
                    w = windows.describe(window, 0)
                    if w.title:
                        titles.append(w.title)
        return sorted(set(titles))
    finally:
        windows.close()


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
        self._x = require("Xlib.X", "record")
        self._xerror = require("Xlib.error", "record")
        self.windows = X11Windows(self.display_name)
        self.display, self.root = self.windows.display, self.windows.root
        supported = self.root.get_full_property(self.display.intern_atom("_NET_SUPPORTED"), self._x.AnyPropertyType)
        self.supported = bool(supported and self.windows.A_ACTIVE in supported.value)
        self.root.change_attributes(event_mask=self._x.PropertyChangeMask)
        self.display.flush()
        self._refresh(None)
        self._thread = threading.Thread(target=self._loop, name="d2e-window", daemon=True)
        self._thread.start()

    def _active_window(self) -> Any:
        prop = self.root.get_full_property(self.windows.A_ACTIVE, self._x.AnyPropertyType)
        if not prop or not len(prop.value) or not prop.value[0]:
            return None
        return self.windows.window(int(prop.value[0]))

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
        event = self.windows.describe(window, t)
        if self.current is not None and (event.title, event.window_id, event.rect) == \
                (self.current.title, self.current.window_id, self.current.rect):
            return
        self.current = event
        self.on_window(event)

    def _loop(self) -> None:
        w = self.windows

        def handle(event: Any) -> None:
            if event.type != self._x.PropertyNotify:
                return
            on_root = event.window == self.root and event.atom == w.A_ACTIVE
            on_active = self._watched is not None and event.window == self._watched and \
                event.atom in (w.A_NAME, w.A_WM_NAME)
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
