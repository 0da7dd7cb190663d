"""Recorder hotkeys grabbed at the X server, so the focused application never receives them.

Watching the keyboard (X RECORD) is not enough for a hotkey: the game still gets the key (SuperTux and
Pingus toggled their FPS overlay on ctrl+shift+F10 in the issue-19 trials). A passive grab
(``XGrabKey`` on the root window) makes the server deliver the key to us instead. A grab matches the
modifier state exactly, so we grab every combination of the hotkey's modifiers with the lock modifiers
(CapsLock, NumLock, ScrollLock) that a user may have on. RECORD still reports the grabbed keys, which is
how the recorder both acts on them and leaves them out of the file (``Recorder.on_input``).

What a grab cannot hide: the modifiers pressed before the hotkey's key reach the application (they are
ordinary keys until the last key arrives), and while the key is held the keyboard belongs to us, so a
modifier released before the hotkey's key is not seen by the application either.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

from ..errors import require
from .hotkeys import split_hotkey
from .input_x11 import _poll_display

# canonical modifier name -> X modifier mask bit (core protocol values)
MODIFIER_MASKS = {"ctrl": 1 << 2, "shift": 1 << 0, "alt": 1 << 3, "cmd": 1 << 6}
LOCK_MASK = 1 << 1
_X_KEY_NAMES = {"esc": "Escape", "enter": "Return", "page_up": "Prior", "page_down": "Next",
                "print_screen": "Print", "space": "space", "backspace": "BackSpace", "tab": "Tab",
                "pause": "Pause", "insert": "Insert", "delete": "Delete", "home": "Home", "end": "End"}


def x_keysym_name(name: str) -> str:
    """The X keysym name of a canonical key name (``f9`` -> ``F9``, ``esc`` -> ``Escape``)."""
    if name in _X_KEY_NAMES:
        return _X_KEY_NAMES[name]
    if len(name) > 1 and name[0] == "f" and name[1:].isdigit():
        return name.upper()
    return name


def lock_masks(display: Any) -> list[int]:
    """Every combination of the lock modifiers this server has (Caps always; NumLock/ScrollLock if mapped)."""
    xk = require("Xlib.XK", "record")
    locks = [LOCK_MASK]
    for sym in ("Num_Lock", "Scroll_Lock"):
        code = display.keysym_to_keycode(xk.string_to_keysym(sym))
        for index, codes in enumerate(display.get_modifier_mapping()):
            if code and code in codes and index > 2:  # Mod1..Mod5 only; Shift/Lock/Control are not locks
                locks.append(1 << index)
    return sorted({sum(c) for n in range(len(locks) + 1) for c in itertools.combinations(locks, n)})


class X11HotkeyGrab:
    """Grabs each hotkey on the root window for the recorder's lifetime; ``failed`` lists refused ones.

    A grab is refused (BadAccess) when another client (a desktop's own shortcut) already holds the same
    combination; the recorder then still acts on the hotkey through RECORD, but the application sees it.
    """

    def __init__(self, combos: Iterable[frozenset[str]], *, display: str | None = None):
        self.combos = list(combos)
        self.display_name = display
        self.failed: list[str] = []
        self.grabbed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._display: Any = None

    def start(self) -> None:
        xdisplay = require("Xlib.display", "record")
        x = require("Xlib.X", "record")
        xk = require("Xlib.XK", "record")
        d = self._display = xdisplay.Display(self.display_name)
        root = d.screen().root
        locks = lock_masks(d)
        for combo in self.combos:
            mods, key = split_hotkey(combo)
            code = d.keysym_to_keycode(xk.string_to_keysym(x_keysym_name(key)))
            if not code:
                self.failed.append(f"{'+'.join(sorted(combo))} (no key {key!r} on this keyboard)")
                continue
            mask = sum(MODIFIER_MASKS[m] for m in mods)
            errors: list[Any] = []
            on_error = errors.append  # BadAccess: another client holds this combination
            for lock in locks:
                root.grab_key(code, mask | lock, False, x.GrabModeAsync, x.GrabModeAsync,
                              onerror=lambda err, *_, on_error=on_error: on_error(err))
            d.sync()
            if errors:
                self.failed.append(f"{'+'.join(sorted(combo))} (already grabbed by another program)")
                for lock in locks:
                    root.ungrab_key(code, mask | lock)
            else:
                self.grabbed += 1
        d.sync()
        # The grabbed keys arrive on this connection; read them so they do not pile up in its buffer.
        self._thread = threading.Thread(target=_poll_display, args=(d, self._stop, lambda _event: None),
                                        name="d2e-hotkeys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._display is not None:
            self._display.close()  # the server drops a client's grabs with its connection
            self._display = None
