"""Which keyboard events belong to a recorder hotkey, so that none of them reaches the recording.

A hotkey such as ctrl+shift+F9 is only known to be one when its last key arrives, but its modifiers were
pressed before. Recording them and dropping only F9 left ctrl and shift in the file: pressed before a
pause, released after it, pressed and never released at the stop hotkey (issue 19). So modifier presses
that could still start a hotkey are held back, with their own timestamps, until the next keyboard event
decides: the hotkey's key swallows them (and later their releases), anything else lets them through first,
in order. Nothing is delayed that a model would see differently, since events keep their times; only
the moment they are handed to the writer moves.

The match is exact on modifiers (ctrl+shift+F9 does not fire on ctrl+alt+shift+F9), as the X server's
passive grab (``hotkeys_x11``) is, so the recorder acts exactly when the application does not see the key.
"""

from __future__ import annotations

from ..errors import D2EError
from ..keys import canonical_key_name
from ..schema import KEY_PRESS, KeyboardEvent

MODIFIERS = ("ctrl", "shift", "alt", "cmd")


def fold(name: str) -> str:
    """Left and right modifiers are the same key for hotkeys: ``ctrl_r`` -> ``ctrl``."""
    return name[:-2] if name.endswith("_r") and name[:-2] in MODIFIERS else name


def parse_hotkey(text: str) -> frozenset[str]:
    """``ctrl+shift+f9`` -> {"ctrl", "shift", "f9"} (left/right modifiers are the same key here)."""
    names = [canonical_key_name(p.strip()) for p in text.split("+") if p.strip()]
    if not names:
        raise D2EError(f"empty hotkey {text!r}", fix="write it like ctrl+shift+f9")
    return frozenset(fold(n) for n in names)


def split_hotkey(combo: frozenset[str]) -> tuple[frozenset[str], str]:
    """(modifiers, key) of a parsed hotkey; exactly one of its names must be a non-modifier key."""
    mods = frozenset(n for n in combo if n in MODIFIERS)
    keys = sorted(combo - mods)
    if len(keys) != 1:
        raise D2EError(f"hotkey {'+'.join(sorted(combo))!r} needs exactly one non-modifier key",
                       fix="write it like ctrl+shift+f9")
    return mods, keys[0]


class HotkeyFilter:
    """Feed it every keyboard event in order; it returns the events to record and the action fired.

    ``hotkeys`` maps a parsed hotkey to the action name the caller handles ("toggle", "stop").
    ``dropped`` counts the events kept out of the recording (hotkey keys, their modifiers, repeats).
    """

    def __init__(self, hotkeys: dict[frozenset[str], str]):
        self.actions = {split_hotkey(combo): action for combo, action in hotkeys.items()}
        self._mod_sets = [mods for mods, _key in self.actions]
        self.held_mods: set[str] = set()
        self.pending: list[KeyboardEvent] = []
        self.swallowed: set[str] = set()  # keys whose repeats and release are dropped too
        self.dropped = 0

    def _could_start_hotkey(self) -> bool:
        return any(self.held_mods <= mods for mods in self._mod_sets)

    def feed(self, msg: KeyboardEvent) -> tuple[list[KeyboardEvent], str | None]:
        name = fold(msg.key)
        if msg.action == KEY_PRESS:
            if name in self.swallowed and msg.repeat:  # auto-repeat of a held hotkey key
                self.dropped += 1
                return [], None
            if name in MODIFIERS:
                self.held_mods.add(name)
                if self.actions and self._could_start_hotkey():
                    self.pending.append(msg)
                    return [], None
                return self._flush(msg), None
            action = None if msg.repeat else self.actions.get((frozenset(self.held_mods), name))
            if action is not None:
                self.swallowed |= {name, *(fold(e.key) for e in self.pending)}
                self.dropped += 1 + len(self.pending)
                self.pending = []
                return [], action
            return self._flush(msg), None
        self.held_mods.discard(name)
        if name in self.swallowed:
            self.swallowed.discard(name)
            self.dropped += 1
            return [], None
        return self._flush(msg), None

    def _flush(self, msg: KeyboardEvent) -> list[KeyboardEvent]:
        out, self.pending = [*self.pending, msg], []
        return out

    def discard_pending(self) -> int:
        """At the end of a recording: modifiers still held back were never followed by a key; drop them."""
        n, self.pending = len(self.pending), []
        return n
