"""Hotkey filtering without an X server: modifiers of a hotkey never reach the recording, others do."""

from __future__ import annotations

from capture.recorder.hotkeys import HotkeyFilter, parse_hotkey
from capture.schema import KeyboardEvent


def _kb(t: int, action: str, key: str, repeat: bool = False) -> KeyboardEvent:
    return KeyboardEvent(t, action, key, 0, None, repeat)


def _run(events: list[KeyboardEvent]) -> tuple[list[tuple[int, str, str]], list[str]]:
    f = HotkeyFilter({parse_hotkey("ctrl+shift+f9"): "toggle", parse_hotkey("ctrl+shift+f10"): "stop"})
    passed, actions = [], []
    for e in events:
        out, action = f.feed(e)
        passed += [(m.t_ns, m.action, m.key) for m in out]
        actions += [action] if action else []
    return passed, actions


def test_hotkey_and_its_modifiers_are_left_out_with_their_repeats_and_releases() -> None:
    passed, actions = _run([_kb(1, "press", "ctrl"), _kb(2, "press", "shift_r"), _kb(3, "press", "f9"),
                            _kb(4, "press", "f9", repeat=True), _kb(5, "release", "f9"), _kb(6, "release", "shift_r"),
                            _kb(7, "release", "ctrl"), _kb(8, "press", "a"), _kb(9, "release", "a")])
    assert actions == ["toggle"] and passed == [(8, "press", "a"), (9, "release", "a")]


def test_held_back_modifiers_come_through_in_order_with_their_own_times() -> None:
    passed, actions = _run([_kb(1, "press", "ctrl"), _kb(2, "press", "c"), _kb(3, "release", "c"),
                            _kb(4, "release", "ctrl"), _kb(5, "press", "shift"), _kb(6, "release", "shift")])
    assert actions == []
    assert passed == [(1, "press", "ctrl"), (2, "press", "c"), (3, "release", "c"), (4, "release", "ctrl"),
                      (5, "press", "shift"), (6, "release", "shift")]


def test_modifiers_must_match_exactly_and_alt_is_never_held_back() -> None:
    passed, actions = _run([_kb(1, "press", "alt"), _kb(2, "press", "ctrl"), _kb(3, "press", "shift"),
                            _kb(4, "press", "f9"), _kb(5, "release", "f9")])
    assert actions == []  # ctrl+alt+shift+f9 is not ctrl+shift+f9 (nor does the X grab fire on it)
    assert [k for _t, _a, k in passed] == ["alt", "ctrl", "shift", "f9", "f9"]


def test_a_hotkey_with_a_recorded_modifier_leaves_that_modifier_balanced() -> None:
    # ctrl went into the file (a key came between), shift was held back: only shift is swallowed
    passed, actions = _run([_kb(1, "press", "ctrl"), _kb(2, "press", "a"), _kb(3, "release", "a"),
                            _kb(4, "press", "shift"), _kb(5, "press", "f10"), _kb(6, "release", "f10"),
                            _kb(7, "release", "shift"), _kb(8, "release", "ctrl")])
    assert actions == ["stop"]
    assert passed == [(1, "press", "ctrl"), (2, "press", "a"), (3, "release", "a"), (8, "release", "ctrl")]


def test_without_hotkeys_nothing_is_held_back() -> None:
    f = HotkeyFilter({})
    assert f.feed(_kb(1, "press", "ctrl")) == ([_kb(1, "press", "ctrl")], None)
