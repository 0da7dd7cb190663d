"""A sample recording made, inspected, validated, crashed with SIGKILL, recovered and round-tripped through
OWAMcap: the recording-format part of ``d2e demo``, runnable on a fresh machine with no data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def step(title: str) -> None:
    """A stage heading in the demo's output."""
    print(f"\n== {title}", flush=True)


def run_format_demo(out: Path, seconds: float = 10.0) -> dict[str, object]:
    from .convert import to_native, to_owamcap
    from .format import RecordingReader
    from .inspect import info, render_info, validate
    from .recover import recover
    from .synthetic import write_synthetic_recording

    step(f"writing a {seconds:.0f} s sample recording (synthetic desktop input + 320x240 video)")
    sample = write_synthetic_recording(out / "sample.mcap", seconds=seconds, overwrite=True)
    print(render_info(info(str(sample))))

    step("validating it")
    report = validate(str(sample))
    print(f"{sample}: {'OK' if report.ok else 'INVALID'} ({report.checked})")
    for p in report.problems:
        print("  " + p.line())

    step("crash test: a live writer killed with SIGKILL after 3 s of video, then recovered")
    live = out / "live.mcap"
    for stale in (live, live.with_suffix(".mkv"), out / "live.recovered.mcap", out / "live.recovered.mkv"):
        stale.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "capture.synthetic", "--live", str(live)],
                            stdout=subprocess.PIPE, text=True)
    written_frames, deadline = 0, time.monotonic() + 60
    while written_frames < 60 and time.monotonic() < deadline:  # 3 s of video, however slowly it started
        line = proc.stdout.readline().split() if proc.stdout else []
        if len(line) < 3:
            break
        written_frames = int(line[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rec = recover(live, overwrite=True)
    print(f"the writer had produced {written_frames} frames; recovered {rec.counts.get('screen', 0)} frames and "
          f"{sum(v for k, v in rec.counts.items() if k != 'screen')} events into {rec.output}")
    rec_ok = validate(rec.output).ok
    print(f"recovered recording validates: {rec_ok}")

    step("OWAMcap round trip")
    owa = out / "sample_owa.mcap"
    back = out / "sample_back.mcap"
    to_owamcap(str(sample), str(owa), overwrite=True)
    to_native(str(owa), str(back), overwrite=True)
    with RecordingReader(sample) as a, RecordingReader(back) as b:
        same = list(a.iter()) == list(b.iter())
    print(f"{owa.name}: {owa.stat().st_size} bytes (OWAMcap, JSON per event) vs {sample.stat().st_size} bytes "
          f"native; round trip lossless: {same}")
    return {"sample_ok": report.ok, "recovered_ok": rec_ok, "owamcap_lossless": same}
