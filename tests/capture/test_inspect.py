"""info and validate on what a recorder leaves behind: dropped frames, gaps, pauses, empty recordings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from capture.format import RecordingWriter
from capture.inspect import frame_stats, info, render_info, validate
from capture.recover import recover
from capture.schema import KeyboardEvent, RecordingMeta, ScreenFrame

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000


def _frames(n: int, drops: dict[int, int], pause: tuple[int, int] | None = None) -> list[ScreenFrame]:
    """n frames every 50 ms, ``drops[i]`` frames skipped before frame i (they shift it later), and no
    frames inside ``pause`` (a time range in ms)."""
    out, t = [], 0
    for i in range(n):
        t += 50 * (1 + drops.get(i, 0))
        while pause and pause[0] <= t < pause[1]:
            t += 50
        out.append(ScreenFrame(t * MS, t * MS, 64, 48, i, drops.get(i, 0)))
    return out


def _write(path: Path, frames: list[ScreenFrame], **end: object) -> Path:
    with RecordingWriter(path, RecordingMeta(source="recorder")) as w:
        w.write_all(frames)
        w.update_end_info(**end)
    return path


def test_drop_rate_and_longest_gap_leave_pauses_out() -> None:
    frames = _frames(100, {10: 1, 50: 3}, pause=(2000, 3000))
    stats = frame_stats(frames, {"dropped_frames": 4, "pauses_ns": [[2000 * MS, 3000 * MS, "paused"]]})
    assert stats["dropped"] == 4 and stats["dropped_pct"] == round(100 * 4 / 104, 3)
    assert stats["longest_gap_ms"] == 200.0  # three frames dropped before frame 50; the 1 s pause is no gap
    assert stats["longest_gap_at_s"] == round((frames[49].t_ns - frames[0].t_ns) / 1e9, 3)
    # a crashed file has no end record: the frames' own counts still tell
    assert frame_stats(frames, {})["dropped"] == 4


def test_validate_warns_above_one_percent_and_fails_above_the_threshold(tmp_path: Path) -> None:
    few = _write(tmp_path / "few.mcap", _frames(200, {5: 1}), dropped_frames=1)  # 0.5 %
    many = _write(tmp_path / "many.mcap", _frames(100, {5: 2, 60: 2}), dropped_frames=4)  # 3.8 %
    assert validate(str(few), video=False).problems == []
    report = validate(str(many), video=False)
    assert report.ok and [p.severity for p in report.problems] == ["warning"]
    assert "4 of 104 frames dropped (3.85 %)" in report.problems[0].message
    strict = validate(str(many), video=False, max_drop_pct=2)
    assert not strict.ok and "above --max-drop-pct 2" in strict.problems[0].message
    cli = subprocess.run([sys.executable, "-m", "d2e.cli", "validate", str(many), "--no-video", "--max-drop-pct", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and "INVALID" in cli.stdout, cli.stdout + cli.stderr
    shown = render_info(info(str(many), video=False))
    assert "dropped    4 frames (3.85 %)   longest gap 150 ms at 0.2 s" in shown, shown


def test_an_empty_recording_is_valid_for_every_command(tmp_path: Path) -> None:
    path = tmp_path / "empty.mcap"
    with RecordingWriter(path, RecordingMeta(source="recorder", video={"file": "empty.mkv"})) as w:
        w.update_end_info(dropped_frames=0)  # what a recorder that was paused throughout leaves: no .mkv
    data = info(str(path))
    assert data["video"]["none"] and "frames" not in data
    assert "video      none (no frames were recorded)" in render_info(data)
    assert validate(str(path)).ok and validate(str(path)).problems == []
    rec = recover(path)
    assert rec.no_frames and rec.video_missing is None and rec.video_output is None
    assert validate(rec.output).ok
    cli = subprocess.run([sys.executable, "-m", "d2e.cli", "validate", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 0 and "OK (an empty recording" in cli.stdout, cli.stdout + cli.stderr


def test_events_without_frames_are_not_a_missing_video(tmp_path: Path) -> None:
    path = tmp_path / "keys.mcap"
    with RecordingWriter(path, RecordingMeta(source="recorder")) as w:
        w.write(KeyboardEvent(5, "press", "a", 0x41))
    assert validate(str(path)).ok and info(str(path))["video"].get("none")
