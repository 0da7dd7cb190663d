"""Recorder benchmark on a private Xvfb: the figures issue 3 asks for, per resolution and frame rate.

For each case it starts Xvfb at the case's size, fills the screen with the colour app (a moving bar and
a changing text line in the top half; the background colour changes on every key press), runs
``d2e record`` as a separate process for ``--seconds`` while pressing a key every ~300 ms and moving the
mouse through XTEST, then reads the recording back and prints:

- achieved fps (frames / their time span) and dropped frames (% of ticks),
- recorder CPU in cores (user+sys of the recorder process / wall time) and the X server's CPU beside it
  (serving XShm grabs costs the server, as it would on a real desktop),
- MB/min of NAME.mcap + NAME.mkv, and compression = raw BGRA bytes of the recorded frames / mkv bytes,
- PSNR of the video against frames the recorder grabbed (every 2 s, saved before encoding): luma and
  full RGB (yuv420p halves colour resolution, so RGB is lower on sharp coloured edges),
- key-to-frame lag: capture time of the first frame showing a key's colour minus the key's timestamp
  (p50/p95/max). It includes the app's own repaint time; "sync err" is how far the lag falls outside
  [0, one frame period], i.e. the part that a correct shared clock cannot explain (0 = consistent).
- the encoder preset the recorder started with and the one it ended with (it steps down to faster presets,
  then to a lower frame rate, when its encoder falls behind), and where drops came from: "late" ticks
  the grab thread missed, "full" frames refused by the encoder's full queue.

``--load N`` runs N busy processes (one pure-Python spin loop each, normal priority) for the whole case,
so the recorder, the X server and the app compete with N saturated cores' worth of other work. Every
grab is a round trip to the X server, so a starved X server shows as "late" drops however well the
recorder itself is served; ``--x-nice -5`` runs the X server at the grab thread's priority to show that. A case
``WxH@FPS:444`` records with full chroma (``--chroma 444``: yuv444p), which keeps coloured text sharp.

    python bench/recorder.py                  # 60 s per case (about 4 minutes)
    python bench/recorder.py --seconds 15 --cases 1280x720@30
    python bench/recorder.py --seconds 30 --load 2 --cases 1280x720@30 1920x1080@30:444
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = ROOT / "tests" / "capture" / "recorder" / "colour_app.py"
CASES = ("1280x720@30", "1920x1080@30", "1280x720@60")


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256


def _drive(display: str, w: int, h: int, seconds: float, stop_at: float) -> int:
    """Key presses every ~300 ms and mouse moves in between, through XTEST (no process per event)."""
    from Xlib import X
    from Xlib.display import Display
    from Xlib.ext import xtest

    d = Display(display)
    keys = [d.keysym_to_keycode(ord(c)) for c in "qwertyuiop"]
    presses = 0
    t_next = time.monotonic()
    i = 0
    while time.monotonic() < stop_at:
        for _ in range(6):  # mouse motion in the top half (keeps the cursor off the sampled corner)
            i += 1
            xtest.fake_input(d, X.MotionNotify, x=(w // 4 + 9 * i) % (w // 2) + w // 4, y=h // 4 + i % 50)
            d.sync()
            time.sleep(0.04)
        code = keys[presses % len(keys)]
        xtest.fake_input(d, X.KeyPress, code)
        d.sync()
        time.sleep(0.03)
        xtest.fake_input(d, X.KeyRelease, code)
        d.sync()
        presses += 1
        t_next += 0.25 + 0.1 * ((presses * 0.618) % 1)  # not a multiple of the frame period
        time.sleep(max(0.0, t_next - time.monotonic()))
    d.close()
    return presses


def _busy(n: int) -> list[subprocess.Popen]:
    """N processes that each keep one core busy (what other programs on a loaded machine do)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_case(case: str, seconds: float, work: Path, load: int = 0, record_args: tuple[str, ...] = (),
             x_nice: int = 0) -> dict:
    from capture.format import RecordingReader
    from capture.video import VideoReader
    from tests.capture.recorder.colour_app import RGB

    case_main, _, chroma = case.partition(":")
    size, fps_text = case_main.split("@")
    w, h = (int(v) for v in size.split("x"))
    fps = float(fps_text)
    extra = ("--chroma", chroma) if chroma else ()
    # -noreset: Xvfb otherwise resets when its last client leaves and refuses whoever connects meanwhile
    nice = ["nice", "-n", str(x_nice)] if x_nice else []
    xvfb = subprocess.Popen([*nice, "Xvfb", "-displayfd", "1", "-screen", "0", f"{w}x{h}x24", "-nolisten", "tcp",
                             "-noreset"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = f":{xvfb.stdout.readline().strip()}" if xvfb.stdout else ""
    tag = case.replace("@", "_").replace(":", "_") + f"_load{load}"
    runtime = work / f"rt-{tag}"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "DISPLAY": display, "XDG_RUNTIME_DIR": str(runtime)}
    app = subprocess.Popen([sys.executable, str(APP), "--geometry", f"{w}x{h}+0+0", "--animate"], env=env,
                           stdout=subprocess.PIPE, text=True)
    assert app.stdout is not None and app.stdout.readline().startswith("ready")
    out = work / f"{tag}.mcap"
    samples = work / f"samples-{tag}"
    samples.mkdir()
    log = out.with_suffix(".log")
    busy = _busy(load)
    try:
        with log.open("w") as logf:
            rec = subprocess.Popen(
                [sys.executable, "-m", "d2e.cli", "record", str(out), "--fps", str(fps), "--duration", str(seconds),
                 "--hotkey-pause", "", "--hotkey-stop", "", "--sample-frames", str(samples),
                 "--sample-every", str(int(fps * 2)), *extra, *record_args], env=env, cwd=ROOT, stderr=logf,
                stdout=subprocess.DEVNULL)
            while "capturing keyboard" not in log.read_text():
                if rec.poll() is not None:
                    raise RuntimeError(log.read_text())
                time.sleep(0.05)
            x0, t0 = _ticks(xvfb.pid), time.monotonic()
            _drive(display, w, h, seconds, t0 + seconds - 0.5)
            _pid, _status, usage = os.wait4(rec.pid, 0)
            wall = time.monotonic() - t0
            xcpu = (_ticks(xvfb.pid) - x0) / os.sysconf("SC_CLK_TCK") / wall
    finally:
        for proc in (*busy, app, xvfb):
            proc.terminate()
            proc.wait()
    cpu = (usage.ru_utime + usage.ru_stime) / wall  # includes start-up and the final flush

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with RecordingReader(out) as r:
            frames = list(r.iter(topics=["screen"]))
            presses = [e for e in r.iter(topics=["keyboard"])
                       if e.action == "press" and not getattr(e, "repeat", False)]
            end, video_meta = r.end_info, r.meta.video
            dropped = int(end.get("dropped_frames", 0))
    span = (frames[-1].t_ns - frames[0].t_ns) / 1e9
    mkv = out.with_suffix(".mkv").stat().st_size
    total = out.stat().st_size + mkv
    sample_files = sorted(samples.glob("*.npy"))
    wanted = {int(p.stem.split("_")[2]): p for p in sample_files}
    psnr_y, psnr_rgb, colours = [], [], []
    corner = (w - 24, h - 24)
    with VideoReader(out.with_suffix(".mkv"), threads=1) as v:
        for pts, frame in v.iter_frames():
            rgb = frame.to_ndarray(format="rgb24")
            patch = rgb[corner[1] - 3:corner[1] + 4, corner[0] - 3:corner[0] + 4].reshape(-1, 3).mean(axis=0)
            colours.append((pts, int(np.argmin([np.abs(patch - np.array(c)).sum() for c in RGB]))))
            if pts in wanted:
                grabbed = np.load(wanted[pts])[..., 2::-1][:h - h % 2, :w - w % 2]
                psnr_rgb.append(_psnr(grabbed, rgb))
                psnr_y.append(_psnr(_luma(grabbed), _luma(rgb)))
    t_of = {f.pts_ns: f.t_ns for f in frames}
    seq = [(t_of[p], c) for p, c in colours if p in t_of]
    period = 1e9 / fps
    lags, errs = [], []
    for ev in presses:
        before = [i for i, (t, _) in enumerate(seq) if t < ev.t_ns - 100e6]
        if not before:
            continue
        i0 = before[-1]
        first = next((t for t, c in seq[i0 + 1:] if c != seq[i0][1]), None)
        if first is None:
            continue
        lag = (first - ev.t_ns) / 1e6
        lags.append(lag)
        errs.append(max(0.0, -lag, lag - period / 1e6))
    steps = end.get("encoder_steps", [])
    final_preset = next((s["preset"] for s in reversed(steps) if "preset" in s), video_meta.get("preset"))
    final_fps = next((s["fps"] for s in reversed(steps) if "fps" in s), fps)
    return {
        "case": case, "load": load, "fps": len(frames) / span if span else 0.0,
        "dropped_pct": 100 * dropped / (len(frames) + dropped), "cpu": cpu, "xcpu": xcpu,
        "late": end.get("dropped_late", "-"), "full": end.get("dropped_queue_full", "-"),
        "preset": f"{video_meta.get('preset')}" + (f" -> {final_preset}" if final_preset != video_meta.get("preset")
                                                   else "") + (f" @{final_fps:g}" if final_fps != fps else ""),
        "mb_min": total / 1e6 / (span / 60), "compression": len(frames) * w * h * 4 / mkv,
        "psnr_y": float(np.mean(psnr_y)) if psnr_y else float("nan"),
        "psnr_rgb": float(np.mean(psnr_rgb)) if psnr_rgb else float("nan"),
        "lag_p50": float(np.percentile(lags, 50)), "lag_p95": float(np.percentile(lags, 95)),
        "lag_max": float(max(lags)), "err_p95": float(np.percentile(errs, 95)), "err_max": float(max(errs)),
        "keys": len(lags), "samples": len(psnr_y),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="recording length per case (default 60)")
    ap.add_argument("--cases", nargs="+", default=list(CASES),
                    help="WxH@FPS cases, :444 for full chroma (default: the three)")
    ap.add_argument("--load", type=int, nargs="+", default=[0],
                    help="busy processes competing with the recorder; several values run each case per value")
    ap.add_argument("--record-args", default="", help="extra 'd2e record' options, e.g. '--preset ultrafast'")
    ap.add_argument("--x-nice", type=int, default=0,
                    help="run the X server at this nice value (the grab waits for it: -5 shows what a starved "
                         "X server costs; negative values need root)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="d2e-bench-rec-") as tmp:
        for load in args.load:
            for case in args.cases:
                rows.append(run_case(case, args.seconds, Path(tmp), load, tuple(args.record_args.split()),
                                     args.x_nice))
                print(f"done {case} load {load}", file=sys.stderr, flush=True)
    print(f"\nrecorder benchmark: {args.seconds:g} s per case, Xvfb (nice {args.x_nice}), libx264 (preset chosen by "
          f"the recorder), {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}\n")
    head = ("case", "load", "fps", "drop %", "late/full", "preset", "cores", "X cores", "MB/min", "compr.",
            "PSNR-Y", "PSNR-RGB", "lag p50", "lag p95", "lag max", "sync err p95", "sync err max", "keys")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['case']} | {r['load']} | {r['fps']:.1f} | {r['dropped_pct']:.2f} | {r['late']}/{r['full']} | "
              f"{r['preset']} | {r['cpu']:.2f} | {r['xcpu']:.2f} | "
              f"{r['mb_min']:.1f} | {r['compression']:.0f}x | {r['psnr_y']:.1f} | {r['psnr_rgb']:.1f} | "
              f"{r['lag_p50']:.1f} ms | {r['lag_p95']:.1f} ms | {r['lag_max']:.1f} ms | {r['err_p95']:.1f} ms | "
              f"{r['err_max']:.1f} ms | {r['keys']} |")


if __name__ == "__main__":
    main()
