"""Crash safety for real: a writer process is SIGKILLed, then recovered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from capture.format import RecordingReader
from capture.inspect import validate
from capture.recover import recover


def test_sigkill_then_recover_keeps_all_but_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "live.mcap"
    proc = subprocess.Popen([sys.executable, "-m", "capture.synthetic", "--live", str(path)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    progress: list[tuple[int, int, int]] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events, frames, t = map(int, line.split())
        progress.append((events, frames, t))
        if frames >= 70:  # 3.5 s of recording
            break
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic_ns()
    proc.wait()
    assert progress, "the writer produced nothing"
    # What the writer had been given more than ~1.1 s before the kill must come back.
    safe = [p for p in progress if p[2] <= killed_at - 1_100_000_000]
    need_events, need_frames = (safe[-1][0], safe[-1][1]) if safe else (0, 0)

    report = recover(path)
    assert not report.was_finished
    got_frames = report.counts.get("screen", 0)
    got_events = sum(n for t, n in report.counts.items() if t != "screen")
    assert need_frames <= got_frames <= progress[-1][1]
    assert need_events <= got_events <= progress[-1][0]
    assert need_frames >= 40  # the test really exercised a cut, not an empty file
    assert validate(report.output).ok
    with RecordingReader(report.output) as r:
        assert r.finished and r.end_info["recovered"] is True
    assert path.exists() and path.with_suffix(".mkv").exists()  # originals untouched
