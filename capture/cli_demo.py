"""``d2e demo``: the main job on embedded defaults, runnable on a fresh machine with no data.

It makes a sample recording, shows and validates it, kills a live writer with SIGKILL and recovers what
it had written, and round-trips the recording through OWAMcap. Later stages add their steps through
``DEMO_STEPS`` (module path, function name), each taking the demo folder and returning a summary line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO_STEPS: list[tuple[str, str]] = [("idm.demo", "run_idm_demo")]


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_format_demo(out: Path, seconds: float = 10.0) -> dict[str, object]:
    from .convert import to_native, to_owamcap
    from .format import RecordingReader
    from .inspect import info, render_info, validate
    from .recover import recover
    from .synthetic import write_synthetic_recording

    _step(f"writing a {seconds:.0f} s sample recording (synthetic desktop input + 320x240 video)")
    sample = write_synthetic_recording(out / "sample.mcap", seconds=seconds, overwrite=True)
    print(render_info(info(str(sample))))

    _step("validating it")
    report = validate(str(sample))
    print(f"{sample}: {'OK' if report.ok else 'INVALID'} ({report.checked})")
    for p in report.problems:
        print("  " + p.line())

    _step("crash test: a live writer killed with SIGKILL after 3 s, then recovered")
    live = out / "live.mcap"
    for stale in (live, live.with_suffix(".mkv"), out / "live.recovered.mcap", out / "live.recovered.mkv"):
        stale.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "capture.synthetic", "--live", str(live)],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(3.0)
    os.kill(proc.pid, signal.SIGKILL)
    lines = proc.stdout.read().split() if proc.stdout else []
    proc.wait()
    rec = recover(live, overwrite=True)
    written_frames = int(lines[-2]) if len(lines) >= 3 else 0
    print(f"the writer had produced {written_frames} frames; recovered {rec.counts.get('screen', 0)} frames and "
          f"{sum(v for k, v in rec.counts.items() if k != 'screen')} events into {rec.output}")
    rec_ok = validate(rec.output).ok
    print(f"recovered recording validates: {rec_ok}")

    _step("OWAMcap round trip")
    owa = out / "sample_owa.mcap"
    back = out / "sample_back.mcap"
    to_owamcap(str(sample), str(owa), overwrite=True)
    to_native(str(owa), str(back), overwrite=True)
    with RecordingReader(sample) as a, RecordingReader(back) as b:
        same = list(a.iter()) == list(b.iter())
    print(f"{owa.name}: {owa.stat().st_size} bytes (OWAMcap, JSON per event) vs {sample.stat().st_size} bytes "
          f"native; round trip lossless: {same}")
    return {"sample_ok": report.ok, "recovered_ok": rec_ok, "owamcap_lossless": same}


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="d2e-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"d2e demo: working in {out}")
    results = run_format_demo(out, seconds=args.seconds)
    for module, func in DEMO_STEPS:
        results.update(getattr(importlib.import_module(module), func)(out, quick=args.quick))
    _step("summary")
    for k, v in results.items():
        print(f"  {k}: {v}")
    ok = all(v is not False for v in results.values())
    print(f"\nd2e demo {'finished' if ok else 'FAILED'}; outputs in {out}")
    return 0 if ok else 1


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for the demo's outputs (default: a new temp folder)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the sample recording")
    p.add_argument("--quick", action="store_true", help="smallest settings for every stage (CI smoke)")
    p.set_defaults(func=cmd_demo)
    return p
