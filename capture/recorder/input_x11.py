"""Keyboard, mouse and raw mouse input on X11, stamped with the X server's event time.

Keyboard/mouse come through pynput's X RECORD listeners, but we take over their per-event hook
(``_handle_message``) instead of pynput's callbacks: the hook sees the X event itself, so we get the
server timestamp (DESIGN 2: callbacks lag it by a median 34 ms) and the keycode, and we name keys from
the keycode's unshifted keysym, so ``shift+1`` is stored as ``shift`` then ``1`` (VK 0x31), never ``!``.
RECORD sees the server's key auto-repeat as further KeyPress events without releases (measured under
Xvfb: holding Right 1.2 s gave 15 presses, 1 release), so a press of a keycode already down is flagged
``repeat``; the keys held at start are read from the server so their repeats are flagged too.

Raw mouse motion comes from XInput2 ``XI_RawMotion`` on its own connection: it keeps working when a
game grabs the pointer or the pointer sits at the screen edge, where absolute positions stop changing.
python-xlib subscribes to raw events but does not decode them, so ``parse_raw_event`` does.
"""

from __future__ import annotations

import contextlib
import select
import struct
import threading
from collections.abc import Callable
from typing import Any

from ..errors import require
from ..keys import canonical_key_name, vk_for
from ..schema import (
    BUTTON_FLAGS,
    KEY_PRESS,
    KEY_RELEASE,
    MOUSE_MOVE,
    MOUSE_PRESS,
    MOUSE_RELEASE,
    MOUSE_SCROLL,
    RI_HWHEEL,
    RI_WHEEL,
    WHEEL_DELTA,
    KeyboardEvent,
    MouseEvent,
    RawMouseEvent,
)
from .timebase import EventClock

Emit = Callable[[Any], None]

X_BUTTONS = {1: "left", 2: "middle", 3: "right", 8: "x1", 9: "x2"}
# X scroll "buttons" -> (dx, dy) clicks, as pynput reports them
X_SCROLL = {4: (0, 1), 5: (0, -1), 6: (-1, 0), 7: (1, 0)}
# X keysym names that differ from our canonical names (keys.py follows pynput's names)
_KEYSYM_NAMES = {
    "return": "enter", "escape": "esc", "backspace": "backspace", "shift_l": "shift", "shift_r": "shift_r",
    "control_l": "ctrl", "control_r": "ctrl_r", "alt_l": "alt", "alt_r": "alt_r", "meta_l": "alt",
    "meta_r": "alt_r", "super_l": "cmd", "super_r": "cmd_r", "iso_level3_shift": "alt_r", "prior": "page_up",
    "next": "page_down", "print": "print_screen", "kp_enter": "enter", "kp_add": "num_add",
    "kp_subtract": "num_subtract", "kp_multiply": "num_multiply", "kp_divide": "num_divide",
    "kp_decimal": "num_decimal", "kp_delete": "num_decimal", "kp_separator": "num_decimal",
    "audiomute": "media_volume_mute", "audiolowervolume": "media_volume_down",
    "audioraisevolume": "media_volume_up", "audionext": "media_next", "audioprev": "media_previous",
    "audioplay": "media_play_pause",
}
_KEYSYM_NAMES.update({f"kp_{i}": f"num_{i}" for i in range(10)})


def keysym_name(keysym: int, xk_name: str | None) -> str:
    """Canonical key name of an unshifted X keysym (Latin-1 keysyms are their character)."""
    if 0x20 < keysym < 0x100:
        return canonical_key_name(chr(keysym))
    if keysym == 0x20:
        return "space"
    name = (xk_name or f"keysym_{keysym:x}").lower()
    return canonical_key_name(_KEYSYM_NAMES.get(name, name))


def keysym_names(xk: Any) -> dict[int, str]:
    """keysym -> X name (``Control_L``, ``F9``, ``KP_1``) from python-xlib's tables; first name wins."""
    names: dict[int, str] = {}
    for attr, value in vars(xk).items():
        if attr.startswith("XK_") and isinstance(value, int):
            names.setdefault(value, attr[3:])
    return names


def parse_raw_event(data: bytes) -> tuple[int, int, int, dict[int, float]]:
    """Decode the body of an XI2 raw event (after the 10-byte generic header).

    Returns (server time ms, detail, sourceid, {valuator number: raw (unaccelerated) value}).
    Layout (XI2proto, xXIRawEvent): deviceid u16, time u32, detail u32, sourceid u16, valuators_len u16,
    flags u32, pad 4; then the valuator mask (valuators_len * 4 bytes), then one FP3232 per set bit for
    the accelerated values, then the same count for the raw values.
    """
    _dev, t_ms, detail, source, mask_len, _flags = struct.unpack_from("=HIIHHI", data, 0)
    off = 22
    mask = int.from_bytes(data[off:off + mask_len * 4], "little")
    off += mask_len * 4
    axes = [i for i in range(mask_len * 32) if mask >> i & 1]
    raw_off = off + 8 * len(axes)
    values = {}
    for n, axis in enumerate(axes):
        integral, frac = struct.unpack_from("=iI", data, raw_off + 8 * n)
        values[axis] = integral + frac / 4294967296.0
    return t_ms, detail, source, values


def _poll_display(display: Any, stop: threading.Event, handle: Callable[[Any], None]) -> None:
    """Event loop for a python-xlib connection that wakes every 0.2 s to notice ``stop``."""
    fd = display.fileno()
    while not stop.is_set():
        if not display.pending_events():
            readable, _, _ = select.select([fd], [], [], 0.2)
            if not readable:
                continue
        while display.pending_events() and not stop.is_set():
            handle(display.next_event())


class X11Input:
    """Keyboard + mouse (pynput RECORD) + raw mouse (XInput2) listeners feeding ``emit``.

    ``emit`` is called from listener threads with one schema message each and must be cheap (one queue
    put). ``raw_available`` says whether XInput2 raw motion is being recorded.
    """

    def __init__(self, emit: Emit, *, display: str | None = None, raw: bool = True):
        self.emit = emit
        self.display_name = display
        self.clock = EventClock()
        self.want_raw = raw
        self.raw_available = False
        self.raw_error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Any] = []
        self.keys_down: set[int] = set()  # keycodes held, to tell auto-repeat from a new press

    # -- keyboard and mouse through pynput's RECORD plumbing -------------------------------------
    def _make_listeners(self) -> list[Any]:
        keyboard = require("pynput.keyboard", "record")
        mouse = require("pynput.mouse", "record")
        xk = require("Xlib.XK", "record")
        x = require("Xlib.X", "record")
        xk_names = keysym_names(xk)
        owner = self
        down = owner.keys_down

        class _Keys(keyboard.Listener):  # type: ignore[misc,name-defined]
            def _handle_message(self, display: Any, event: Any, injected: bool = False) -> None:
                keysym = display.keycode_to_keysym(event.detail, 0)
                name = keysym_name(keysym, xk_names.get(keysym))
                press = event.type == x.KeyPress
                # X auto-repeat, as RECORD sees it, is a second KeyPress with no KeyRelease in between
                repeat = press and event.detail in down
                if press:
                    down.add(event.detail)
                else:
                    down.discard(event.detail)
                owner.emit(KeyboardEvent(owner.clock.stamp(event.time), KEY_PRESS if press else KEY_RELEASE, name,
                                         vk_for(name), max(0, event.detail - 8), repeat))

            def _handle(self, display: Any, event: Any) -> None:  # pynput < 1.8 name of the hook
                self._handle_message(display, event, False)

        class _Mouse(mouse.Listener):  # type: ignore[misc,name-defined]
            def _handle_message(self, display: Any, event: Any, injected: bool = False) -> None:
                t = owner.clock.stamp(event.time)
                px, py = event.root_x, event.root_y
                if event.type == x.ButtonPress:
                    if event.detail in X_SCROLL:
                        dx, dy = X_SCROLL[event.detail]
                        owner.emit(MouseEvent(t, MOUSE_SCROLL, px, py, None, dx, dy))
                    else:
                        owner.emit(MouseEvent(t, MOUSE_PRESS, px, py, X_BUTTONS.get(event.detail,
                                                                                    f"button{event.detail}")))
                elif event.type == x.ButtonRelease:
                    if event.detail not in X_SCROLL:
                        owner.emit(MouseEvent(t, MOUSE_RELEASE, px, py, X_BUTTONS.get(event.detail,
                                                                                      f"button{event.detail}")))
                else:
                    owner.emit(MouseEvent(t, MOUSE_MOVE, px, py))

            def _handle(self, display: Any, event: Any) -> None:
                self._handle_message(display, event, False)

        return [_Keys(), _Mouse()]

    # -- raw mouse through XInput2 ------------------------------------------------------------------
    def _raw_loop(self, display: Any, opcode: int) -> None:
        rem = [0.0, 0.0]

        def handle(event: Any) -> None:
            if getattr(event, "extension", None) != opcode or event.evtype not in (15, 16, 17):
                return
            t_ms, detail, _src, values = parse_raw_event(bytes(event.data))
            t = self.clock.stamp(t_ms)
            if event.evtype == 17:  # RawMotion: relative counts on valuators 0 and 1
                if 0 not in values and 1 not in values:
                    return  # scroll-only valuators: the wheel is reported as raw buttons 4-7
                rem[0] += values.get(0, 0.0)
                rem[1] += values.get(1, 0.0)
                dx, dy = int(rem[0]), int(rem[1])
                rem[0] -= dx
                rem[1] -= dy
                self.emit(RawMouseEvent(t, dx, dy))
                return
            press = event.evtype == 15
            if detail in X_SCROLL:
                if press:
                    sx, sy = X_SCROLL[detail]
                    flag, delta = (RI_WHEEL, sy * WHEEL_DELTA) if sy else (RI_HWHEEL, sx * WHEEL_DELTA)
                    self.emit(RawMouseEvent(t, 0, 0, flag, delta))
                return
            button = X_BUTTONS.get(detail)
            if button is not None:
                self.emit(RawMouseEvent(t, 0, 0, BUTTON_FLAGS[button][0 if press else 1]))

        try:
            _poll_display(display, self._stop, handle)
        finally:
            display.close()

    def _start_raw(self) -> None:
        xdisplay = require("Xlib.display", "record")
        xinput = require("Xlib.ext.xinput", "record")
        try:
            display = xdisplay.Display(self.display_name)
            info = display.query_extension("XInputExtension")
            if not info.present:
                raise RuntimeError("the X server has no XInput extension")
            # Announce XI 2.2: a 2.0 client gets no raw events while another client holds a grab (an
            # implicit one after any button press, or a game's pointer grab), so releases would vanish.
            version = xinput.XIQueryVersion(display=display.display, opcode=info.major_opcode,
                                            major_version=2, minor_version=2)
            if (version.major_version, version.minor_version) < (2, 0):
                raise RuntimeError(f"XInput {version.major_version}.{version.minor_version} < 2.0")
            mask = xinput.RawMotionMask | xinput.RawButtonPressMask | xinput.RawButtonReleaseMask
            display.screen().root.xinput_select_events([(xinput.AllMasterDevices, mask)])
            display.flush()
        except Exception as exc:  # noqa: BLE001 - any failure means: record without raw mouse
            self.raw_error = str(exc)
            return
        self.raw_available = True
        thread = threading.Thread(target=self._raw_loop, args=(display, info.major_opcode), name="d2e-raw-mouse",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def _seed_keys_down(self) -> None:
        """Keys already held when recording starts: their auto-repeats must not look like new presses."""
        xdisplay = require("Xlib.display", "record")
        with contextlib.suppress(Exception):
            d = xdisplay.Display(self.display_name)
            try:
                keymap = d.query_keymap()
            finally:
                d.close()
            self.keys_down.update(8 * i + bit for i, byte in enumerate(keymap) for bit in range(8) if byte >> bit & 1)

    def start(self) -> None:
        self._seed_keys_down()
        self._listeners = self._make_listeners()
        for listener in self._listeners:
            listener.start()
        for listener in self._listeners:
            listener.wait()
        if self.want_raw:
            self._start_raw()

    def stop(self) -> None:
        self._stop.set()
        for listener in self._listeners:
            listener.stop()
        for listener in self._listeners:
            listener.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)


def x11_settings(display: str | None = None) -> dict[str, Any]:
    """DPI, key-repeat and pointer-acceleration settings of the X server, stored in the recording's
    metadata so a loader never has to guess how raw input relates to what the user felt (DESIGN 3.5)."""
    out: dict[str, Any] = {}
    try:
        xdisplay = require("Xlib.display", "record")
        d = xdisplay.Display(display)
    except Exception:  # noqa: BLE001 - settings are best effort
        return out
    try:
        screen = d.screen()
        if screen.width_in_mms:
            out["dpi"] = round(screen.width_in_pixels * 25.4 / screen.width_in_mms, 1)
        kb = d.get_keyboard_control()
        out["key_repeat"] = {"enabled": bool(kb.global_auto_repeat)}
        with contextlib.suppress(Exception):
            xkb_repeat = _xset_repeat()
            if xkb_repeat:
                out["key_repeat"].update(xkb_repeat)
        ptr = d.get_pointer_control()
        out["pointer"] = {"accel_numerator": ptr.accel_num, "accel_denominator": ptr.accel_denom,
                          "threshold": ptr.threshold}
    finally:
        d.close()
    return out


def _xset_repeat() -> dict[str, int]:
    """Repeat delay/rate via ``xset q`` when installed (python-xlib has no XKB controls request)."""
    import re
    import shutil
    import subprocess

    if not shutil.which("xset"):
        return {}
    text = subprocess.run(["xset", "q"], capture_output=True, text=True, timeout=2).stdout
    m = re.search(r"auto repeat delay:\s*(\d+)\s+repeat rate:\s*(\d+)", text)
    return {"delay_ms": int(m.group(1)), "rate_hz": int(m.group(2))} if m else {}
