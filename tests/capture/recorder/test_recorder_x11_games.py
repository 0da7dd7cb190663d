"""The recorder as a player uses it with a game (issue 19), under a private Xvfb driven by xdotool.

What they prove: a held key's auto-repeat reaches the file flagged, never as new presses; the pause and
stop hotkeys reach neither the focused application (an X passive grab) nor the recording, modifiers
included, and leave no dangling press; pauses are cut out of the video; ``--window --follow`` keeps the
video on a window that moves and resizes (letterboxed, each rect in the window topic); a ``--window``
that matches nothing stops before writing anything; a recording that never captured is a valid empty
recording for info, validate and recover; dropping frames is reported while it happens and by validate.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from capture.format import RecordingReader
from capture.video import VideoReader

from .colour_app import RGB
from .conftest import App, RecorderProc, XServer
from .test_recorder_x11 import _assert_valid, _keys, _palette_index, _read

pytestmark = pytest.mark.x11


def _end_info(path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with RecordingReader(path) as r:
            return r.end_info


def test_held_key_repeats_are_flagged_not_new_presses(xserver: XServer, tmp_path: Path) -> None:
    if shutil.which("xset") is None:
        pytest.skip("xset is not installed (apt-get install x11-xserver-utils)")
    subprocess.run(["xset", "r", "on", "r", "rate", "250", "30"], env=xserver.env, check=True, timeout=10)
    out = tmp_path / "repeat.mcap"
    rec = RecorderProc(xserver, out, "--fps", "10")
    xserver.xdo("mousemove", 600, 450)
    xserver.xdo("keydown", "Right")
    time.sleep(1.0)  # 250 ms delay, then 30 repeats/s: about 22 repeats
    xserver.xdo("keyup", "Right", "key", "a")
    assert rec.stop() == 0, rec.text()
    _assert_valid(out)
    kb = _read(out, "keyboard")
    right = [(e.action, e.repeat) for e in kb if e.key == "right"]
    assert right[0] == ("press", False) and right[-1] == ("release", False)
    assert set(right[1:-1]) == {("press", True)} and len(right) - 2 >= 12, right
    assert [(e.action, e.repeat) for e in kb if e.key == "a"] == [("press", False), ("release", False)]
    with RecordingReader(out) as r:
        assert r.meta.key_repeat == {"enabled": True, "delay_ms": 250, "rate_hz": 30, "stored": "keep"}
        assert r.end_info["key_repeats"] == len(right) - 2


def test_hotkeys_are_grabbed_invisible_and_pauses_are_cut(xserver: XServer, tmp_path: Path) -> None:
    app = App(xserver, "--geometry", "320x240+0+0", "--log-keys")
    out = tmp_path / "hotkeys.mcap"
    x = xserver.xdo
    try:
        rec = RecorderProc(xserver, out, "--fps", "20")
        x("mousemove", 100, 100)  # no window manager: keys go to the window under the pointer
        x("key", "a")
        x("keydown", "ctrl", "keydown", "shift", "key", "F9", "keyup", "shift", "keyup", "ctrl")  # pause
        time.sleep(0.8)
        x("key", "b")
        x("keydown", "shift", "keydown", "ctrl", "key", "F9", "keyup", "ctrl", "keyup", "shift")  # resume
        x("key", "c", "F9")  # F9 without its modifiers is no hotkey: everyone gets it
        time.sleep(0.4)
        x("keydown", "ctrl", "keydown", "shift", "key", "F10")  # stop, with the modifiers still held
        rc = rec.proc.wait(timeout=30)
        x("keyup", "shift", "keyup", "ctrl")
    finally:
        received = app.close()
    rec.stop()
    assert rc == 0 and "stop hotkey pressed" in rec.text(), rec.text()
    presses = [line.split()[-1] for line in received.splitlines() if line.startswith("key press")]
    assert presses.count("F9") == 1 and "F10" not in presses, presses  # the application never saw a hotkey
    assert {"a", "b", "c", "Control_L", "Shift_L"} <= set(presses)  # (modifiers are plain keys until F9/F10)
    _assert_valid(out)
    assert _keys(out) == [("press", "a"), ("release", "a"), ("press", "c"), ("release", "c"), ("press", "f9"),
                          ("release", "f9")]  # no ctrl or shift, nothing while paused, no dangling press
    frames = _read(out, "screen")
    t_steps = [b.t_ns - a.t_ns for a, b in zip(frames, frames[1:])]
    pts_steps = [b.pts_ns - a.pts_ns for a, b in zip(frames, frames[1:])]
    assert max(t_steps) > 700e6  # the screen topic shows the pause
    assert max(pts_steps) < 3 * 50e6  # the video does not: no frozen frame for the paused time
    end = _end_info(out)
    assert end["video_cut_ns"] > 700e6 and end["hotkey_events_dropped"] >= 8
    assert abs(end["recorded_s"] - (frames[-1].t_ns - frames[0].t_ns - end["video_cut_ns"]) / 1e9) < 0.5


def test_follow_keeps_a_moving_and_resizing_window_in_view(xserver: XServer, tmp_path: Path) -> None:
    app = App(xserver, "--geometry", "200x150+40+30", "--title", "Follow Me")
    out = tmp_path / "follow.mcap"
    x = xserver.xdo
    try:
        xserver.set_active_window(app.window_id)
        x("mousemove", 100, 100)
        x("key", "a")  # the app turns PALETTE[1] (red)
        rec = RecorderProc(xserver, out, "--fps", "20", "--window", "follow me", "--follow", "--no-cursor")
        time.sleep(0.5)
        x("windowmove", app.window_id, 300, 200)
        time.sleep(0.6)
        x("windowsize", app.window_id, 300, 150)  # twice as wide as the video: letterboxed
        time.sleep(0.6)
        assert rec.stop() == 0, rec.text()
    finally:
        app.close()
    _assert_valid(out)
    rects = [w.rect for w in _read(out, "window")]
    assert rects[0] == (40, 30, 200, 150) and (300, 200, 200, 150) in rects and rects[-1] == (300, 200, 300, 150)
    frames = _read(out, "screen")
    assert {(f.width, f.height) for f in frames} == {(200, 150)}
    moved = next(w.t_ns for w in _read(out, "window") if w.rect == (300, 200, 200, 150))
    with VideoReader(out.with_suffix(".mkv"), threads=1) as v:
        pictures = [(pts, f.to_ndarray(format="rgb24")) for pts, f in v.iter_frames()]
    centre = [_palette_index(img[70:80, 95:105].reshape(-1, 3).mean(axis=0)) for _pts, img in pictures]
    assert centre.count(1) >= len(centre) - 2, centre  # the app, before and after it moved (a frame may lag)
    assert any(f.t_ns > moved + 100e6 for f in frames)
    last = pictures[-1][1]
    assert last[:20].max() < 30 and last[-20:].max() < 30  # 300x150 in 200x150: bars above and below
    assert np.abs(last[60:90, 20:180].reshape(-1, 3).mean(axis=0) - RGB[1]).sum() < 40


def test_no_matching_window_writes_nothing_and_an_empty_recording_is_valid(xserver: XServer, tmp_path: Path) -> None:
    game = App(xserver, "--geometry", "200x150+0+0", "--title", "Some Game")
    editor = App(xserver, "--geometry", "200x150+300+0", "--title", "Editor")
    try:
        xserver.set_active_window(editor.window_id)
        refused = xserver.d2e("record", str(tmp_path / "nomatch.mcap"), "--window", "no such game",
                              "--window-timeout", "1")
        assert refused.returncode == 2, refused.stderr
        assert "no window matches --window 'no such game' after 1 s" in refused.stderr
        assert "'Some Game'" in refused.stderr  # it lists what is there
        assert not list(tmp_path.glob("nomatch*"))
        # the game exists but never has focus: nothing is captured, and that is a valid recording
        empty = tmp_path / "empty.mcap"
        done = xserver.d2e("record", str(empty), "--window", "some game", "--duration", "1.5", "--json")
    finally:
        game.close()
        editor.close()
    assert done.returncode == 0, done.stderr
    assert "paused until a window matching --window 'some game' has focus" in done.stderr
    assert "recording again" not in done.stderr and "-> None" not in done.stdout
    assert empty.exists() and not empty.with_suffix(".mkv").exists()
    shown = xserver.d2e("info", str(empty))
    assert shown.returncode == 0 and "video      none (no frames were recorded)" in shown.stdout, shown.stdout
    checked = xserver.d2e("validate", str(empty))
    assert checked.returncode == 0 and "OK (an empty recording" in checked.stdout, checked.stdout
    recovered = xserver.d2e("recover", str(empty))
    assert recovered.returncode == 0 and "no frames were recorded" in recovered.stdout, recovered.stdout
    assert xserver.d2e("validate", str(tmp_path / "empty.recovered.mcap")).returncode == 0


def test_dropping_frames_is_reported_while_recording_and_by_validate(xserver: XServer, tmp_path: Path) -> None:
    app = App(xserver, "--geometry", "640x480+0+0", "--animate")
    out = tmp_path / "drops.mcap"
    try:  # x264's slowest preset cannot encode 30 fps of moving 640x480 here; --no-adapt keeps it
        rec = RecorderProc(xserver, out, "--fps", "30", "--preset", "placebo", "--no-adapt", "--duration", "5")
        assert rec.proc.wait(timeout=120) == 0, rec.text()
    finally:
        app.close()
    rec.stop()
    assert "d2e record: started dropping frames:" in rec.text(), rec.text()
    end = _end_info(out)
    assert end["dropped_frames"] > 0 and end["dropped_queue_full"] > 0 and end["encoder_steps"] == []
    warned = xserver.d2e("validate", str(out), "--no-video")
    assert warned.returncode == 0 and "warning:" in warned.stdout and "frames dropped" in warned.stdout
    assert xserver.d2e("validate", str(out), "--no-video", "--max-drop-pct", "1").returncode == 1
    assert "dropped  " in xserver.d2e("info", str(out), "--no-video").stdout
