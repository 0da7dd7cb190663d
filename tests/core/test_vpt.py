"""VPT export: per-tick actions from the same rule as the training labels, and one frame per tick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from capture.format import RecordingReader
from capture.schema import RI_LEFT_DOWN, RI_LEFT_UP, KeyboardEvent, MouseEvent, RawMouseEvent
from core.ticks import tick_labels
from core.vpt import tick_actions

MS = 1_000_000


def test_tick_actions_by_hand() -> None:
    events = [KeyboardEvent(-30 * MS, "press", "w", 0x57), KeyboardEvent(120 * MS, "release", "w", 0x57),
              KeyboardEvent(160 * MS, "press", "shift", 0xA0), KeyboardEvent(170 * MS, "release", "shift", 0xA0),
              RawMouseEvent(10 * MS, 3, -1), RawMouseEvent(40 * MS, 2, 0), RawMouseEvent(60 * MS, 0, 0, RI_LEFT_DOWN),
              RawMouseEvent(140 * MS, 0, 0, RI_LEFT_UP), MouseEvent(20 * MS, "move", 5, 6),
              MouseEvent(110 * MS, "scroll", 5, 6, None, 0, -2)]
    ticks = tick_actions(events, 0, 4)
    assert [t["keyboard"]["keys"] for t in ticks] == [["key.keyboard.w"], ["key.keyboard.w"], ["key.keyboard.w"],
                                                      ["key.keyboard.left.shift"]]
    assert [t["keyboard"]["newKeys"] for t in ticks] == [[], [], [], ["key.keyboard.left.shift"]]
    assert [t["mouse"]["buttons"] for t in ticks] == [[], [0], [0], []]
    assert [t["mouse"]["newButtons"] for t in ticks] == [[], [0], [], []]
    assert [(t["mouse"]["dx"], t["mouse"]["dy"]) for t in ticks] == [(5, -1), (0, 0), (0, 0), (0, 0)]
    assert [(t["mouse"]["x"], t["mouse"]["y"]) for t in ticks] == [(5, 6)] * 4  # where the pointer ends each tick
    assert [t["mouse"]["scroll"] for t in ticks] == [0, 0, -2, 0]
    keys, _buttons, _mouse = tick_labels(events, 0, 4, [0x57, 0xA0])  # the training labels say the same
    assert [[bool(k) for k in row] for row in keys] == [[True, False], [True, False], [True, False], [False, True]]


def test_export_vpt_command(sample_recording: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "d2e.cli", "export-vpt", str(sample_recording), "-o",
                          str(tmp_path / "v.mp4")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ticks = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    from capture.video import VideoReader

    with VideoReader(tmp_path / "v.mp4") as v:
        assert v.info().frames == len(ticks) == 60
    with RecordingReader(sample_recording) as r:
        raw = list(r.iter(topics=["mouse/raw"]))
        start = next(iter(r.iter(topics=["screen"]))).t_ns
    total_dx = sum(m.dx for m in raw if start <= m.t_ns < start + 60 * 50_000_000)
    assert sum(t["mouse"]["dx"] for t in ticks) == total_dx
    assert all(k.startswith("key.keyboard.") for t in ticks for k in t["keyboard"]["keys"])
