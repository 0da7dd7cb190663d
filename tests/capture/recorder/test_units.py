"""Recorder logic that needs no X server: clock mapping, raw-event parsing, key names, hotkeys, pausing."""

from __future__ import annotations

import struct
from pathlib import Path

from capture.recorder.input_x11 import keysym_name, parse_raw_event
from capture.recorder.recorder import Recorder, RecorderConfig, parse_hotkey, segment_base
from capture.recorder.timebase import server_ms_to_ns
from capture.schema import KeyboardEvent, MouseEvent, WindowEvent


def test_server_time_maps_onto_monotonic_and_unwraps() -> None:
    now = 7_000_123_456_789
    assert server_ms_to_ns(7_000_100, now) == 7_000_100_500_000  # 23 ms ago, middle of the ms
    assert server_ms_to_ns(7_000_123, now) == 7_000_123_456_789  # this very ms: never after "now"
    wrapped_now = (1 << 32) * 1_000_000 + 5_000_000_000  # 49.7 days + 5 s
    assert server_ms_to_ns(4_000, wrapped_now) == wrapped_now - 1_000_000_000 + 500_000
    assert server_ms_to_ns(1_000, now) is None  # hours off: not our clock


def test_parse_xi2_raw_motion() -> None:
    # deviceid, time, detail, sourceid, valuators_len, flags, pad; mask bits 0 and 1; accel then raw FP3232
    body = struct.pack("=HIIHHI4x", 2, 1234, 0, 6, 1, 0) + struct.pack("=I", 0b11)
    body += struct.pack("=iIiI", 50, 0, 10, 0) + struct.pack("=iIiI", 25, 0, -5, 1 << 31)
    t_ms, detail, source, values = parse_raw_event(body)
    assert (t_ms, detail, source) == (1234, 0, 6)
    assert values == {0: 25.0, 1: -4.5}


def test_key_names_are_unshifted_and_platform_neutral() -> None:
    assert keysym_name(0x31, None) == "1"
    assert keysym_name(0x41, None) == "a"
    assert keysym_name(0xFFE3, "Control_L") == "ctrl"
    assert keysym_name(0xFFB5, "KP_5") == "num_5"
    assert keysym_name(0xFF0D, "Return") == "enter"
    assert keysym_name(0x20, None) == "space"
    assert parse_hotkey("Ctrl+Shift+F9") == frozenset({"ctrl", "shift", "f9"})


def test_segment_names() -> None:
    assert segment_base(Path("a/run.mcap"), None) == Path("a/run")
    assert segment_base(Path("a/run"), 3) == Path("a/run_003")


def _kb(t: int, action: str, key: str) -> KeyboardEvent:
    return KeyboardEvent(t, action, key, 0)


def test_pause_hotkey_and_window_rules_drop_events(tmp_path: Path) -> None:
    rec = Recorder(RecorderConfig(out=tmp_path / "x.mcap", exclude_window="secret", log=lambda _line: None))
    got = rec.events
    rec.on_window(WindowEvent(1, "notes", "editor"))
    rec.on_input(_kb(2, "press", "a"))
    rec.on_input(_kb(3, "press", "ctrl_r"))
    rec.on_input(_kb(4, "press", "shift"))
    rec.on_input(_kb(5, "press", "f9"))  # hotkey: pause
    assert rec.user_paused
    rec.on_input(_kb(6, "release", "a"))  # press is in the file, but we are paused: dropped
    rec.on_input(MouseEvent(7, "move", 1, 1))
    rec.on_input(_kb(8, "press", "f9"))  # hotkey again: resume
    rec.on_input(_kb(9, "release", "f9"))
    rec.on_input(_kb(10, "release", "a"))  # already released once while paused: only one release counts
    rec.on_window(WindowEvent(11, "Secret vault", "pw"))
    rec.on_input(_kb(12, "press", "b"))
    rec.on_window(WindowEvent(13, "notes", "editor"))
    rec.on_input(_kb(14, "release", "b"))  # its press was excluded
    items = []
    while not got.empty():
        items.append(got.get())
    keys = [(m.action, m.key) for m in items if isinstance(m, KeyboardEvent)]
    assert keys == [("press", "a"), ("release", "a")]  # the hotkey's modifiers are left out too
    titles = [m.title for m in items if isinstance(m, WindowEvent)]
    assert "Secret vault" not in titles and titles[-1] == "notes"
    assert not [m for m in items if isinstance(m, MouseEvent)]
    assert len(rec.pauses) == 2 and all(p[1] is not None for p in rec.pauses)


def test_window_regex_records_only_matching_windows(tmp_path: Path) -> None:
    rec = Recorder(RecorderConfig(out=tmp_path / "x.mcap", window="game", log=lambda _line: None))
    assert not rec.capturing  # nothing known to match yet
    rec.on_window(WindowEvent(1, "terminal", "xterm"))
    rec.on_input(_kb(2, "press", "a"))
    rec.on_window(WindowEvent(3, "My Game", "game.x86_64"))
    rec.on_input(_kb(4, "press", "b"))
    keys = []
    while not rec.events.empty():
        m = rec.events.get()
        keys += [m.key] if isinstance(m, KeyboardEvent) else []
    assert keys == ["b"] and rec.capturing


def test_free_disk_guard_refuses_to_start(tmp_path: Path) -> None:
    import pytest

    from capture.errors import D2EError

    rec = Recorder(RecorderConfig(out=tmp_path / "x.mcap", min_free_gb=1e9, log=lambda _line: None))
    with pytest.raises(D2EError, match="free"):
        rec.start()


def test_pynput_key_names() -> None:
    from types import SimpleNamespace

    from capture.recorder.input_pynput import key_name

    assert key_name(SimpleNamespace(name="ctrl_l")) == "ctrl"
    assert key_name(SimpleNamespace(name=None, char="A")) == "a"
    assert key_name(SimpleNamespace(name=None, char=None, vk=65307)) == "vk_65307"


def _drain(rec: Recorder) -> list:
    out = []
    while not rec.events.empty():
        out.append(rec.events.get())
    return out


def test_repeats_are_flagged_or_dropped_and_never_stored_without_their_press(tmp_path: Path) -> None:
    def run(mode: str) -> list[tuple[str, bool]]:
        rec = Recorder(RecorderConfig(out=tmp_path / "x.mcap", key_repeat=mode, log=lambda _line: None))
        rec.on_input(KeyboardEvent(1, "press", "w", 0x57, None, True))  # held since before: no press in the file
        rec.on_input(KeyboardEvent(2, "release", "w", 0x57))
        rec.on_input(KeyboardEvent(3, "press", "d", 0x44))
        for t in (4, 5, 6):
            rec.on_input(KeyboardEvent(t, "press", "d", 0x44, None, True))
        rec.on_input(KeyboardEvent(7, "release", "d", 0x44))
        assert rec.repeats == 3
        return [(m.action, m.repeat) for m in _drain(rec)]

    assert run("keep") == [("press", False), ("press", True), ("press", True), ("press", True), ("release", False)]
    assert run("drop") == [("press", False), ("release", False)]


def test_recorded_seconds_leave_pauses_out(tmp_path: Path) -> None:
    rec = Recorder(RecorderConfig(out=tmp_path / "x.mcap", log=lambda _line: None))
    rec.t_start, rec.t_stop = 10 * 10**9, 30 * 10**9
    rec.pauses = [[12 * 10**9, 15 * 10**9, "user"], [28 * 10**9, None, "user"]]  # the last one runs to the stop
    assert rec.recorded_seconds() == 15.0


def test_capture_queue_holds_half_a_second_within_its_memory_budget() -> None:
    from capture.recorder.recorder import queue_frames

    assert queue_frames(1280, 720, 30) == 15
    assert queue_frames(1920, 1080, 60) == 20  # 160 MB of 8 MB frames, not 30
    assert queue_frames(640, 480, 5) == 8
