"""``d2e record``: record the desktop, or control a running recording (status/pause/resume/stop).

``OUT`` and the verbs share one positional so both ``d2e record run.mcap`` and ``d2e record stop`` read
naturally; a recording literally named ``stop`` is written as ``./stop``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import D2EError

VERBS = ("status", "pause", "resume", "stop")

EPILOG = """examples:
  d2e record run.mcap                         # whole first monitor at 20 fps until Ctrl-C
  d2e record run --region 0,0,1280,720 --fps 60 --duration 300
  d2e record game --window SuperTux --follow  # just the game's window, wherever it moves; paused while
                                              # another window has focus
  d2e record game --background --window Game  # only while a window titled *Game* has focus
  d2e record notes --chroma 444               # desktop work: full colour resolution keeps text sharp
  d2e record status | pause | resume | stop   # control the background recording

hotkeys: ctrl+shift+f9 pause/resume, ctrl+shift+f10 stop. They are grabbed at the X server, so neither the
  focused application nor the recording sees them (the application does see the ctrl/shift presses).
--region coordinates: run 'xwininfo' and click the window; use "Absolute upper-left X/Y" and "Width"/
  "Height" as X,Y,WIDTH,HEIGHT (or let --window TITLE --follow find and track the window for you).
key auto-repeat: a held key repeats as extra presses; they are stored flagged repeat=true, so that what
  counts presses can skip them (--key-repeat drop leaves them out of the file).
pauses are cut out of the video (no frozen frames); the screen topic's capture times show the gap.
when the CPU is short the encoder steps down to a faster preset, then to a lower frame rate (--no-adapt:
  never); the recorder says so, and warns as soon as frames are dropped.
"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: write it as WIDTHxHEIGHT, e.g. 1280x720") from exc
    return w, h


def add_parser(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="OUT|status|pause|resume|stop",
                   help="recording to write (NAME.mcap + NAME.mkv), or a command for the running recorder")
    p.add_argument("--monitor", type=int, default=1, help="monitor number (0 = all monitors; default 1)")
    p.add_argument("--region", metavar="X,Y,W,H",
                   help="a rectangle in screen pixels instead of a whole monitor (xwininfo shows a window's)")
    p.add_argument("--fps", type=float, default=20.0, help="frames per second (default 20)")
    p.add_argument("--size", type=_size, help="scale the video to WIDTHxHEIGHT (e.g. 1280x720)")
    p.add_argument("--codec", default="auto", choices=("auto", "h264", "hevc", "av1"),
                   help="video codec; auto = hardware H.264 if usable, else libx264 (default)")
    p.add_argument("--preset", help="encoder preset (default: chosen so that software x264 keeps up)")
    p.add_argument("--crf", type=int, default=23, help="constant quality (lower = better, default 23)")
    p.add_argument("--chroma", choices=("420", "444"), default="420",
                   help="420: half colour resolution (default, games); 444: full (desktop text; H.264 "
                        "High 4:4:4, which FFmpeg/PyAV decode but browsers do not)")
    p.add_argument("--no-adapt", action="store_true",
                   help="keep the preset and frame rate even when the encoder falls behind (frames are dropped)")
    p.add_argument("--key-repeat", choices=("keep", "drop"), default="keep",
                   help="auto-repeat presses of a held key: keep them flagged repeat=true (default) or drop them")
    p.add_argument("--window", metavar="REGEX",
                   help="record only while the focused window's title/class matches (case-insensitive); "
                        "refuses to start when no window matches within --window-timeout")
    p.add_argument("--follow", action="store_true",
                   help="with --window: capture that window's client area, following moves and resizes "
                        "(letterboxed into a fixed video size; each rect is logged in the window topic)")
    p.add_argument("--window-timeout", type=float, default=10.0, metavar="S",
                   help="how long to wait at start for a window matching --window (default 10)")
    p.add_argument("--exclude-window", metavar="REGEX", help="capture nothing while a matching window has focus")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--segment-minutes", type=float, metavar="N", help="start a new numbered file pair every N minutes")
    p.add_argument("--min-free-gb", type=float, default=1.0, help="stop cleanly below this free space (default 1)")
    p.add_argument("--background", action="store_true", help="detach; control it with d2e record status|stop")
    p.add_argument("--hotkey-pause", default="ctrl+shift+f9", help="pause/resume hotkey ('' to disable)")
    p.add_argument("--hotkey-stop", default="ctrl+shift+f10", help="stop hotkey ('' to disable)")
    p.add_argument("--no-raw-mouse", action="store_true", help="do not record XInput2 raw mouse motion")
    p.add_argument("--no-cursor", action="store_true", help="leave the mouse cursor out of the video")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--json", action="store_true", help="status and summaries as JSON")
    p.add_argument("--sample-frames", type=Path, help=argparse.SUPPRESS)  # bench: dump grabbed frames here
    p.add_argument("--sample-every", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def _print_status(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(info))
        return
    if not info.get("ok", False):
        print(f"error: {info.get('error')}")
        return
    reason = f" ({info['paused_reason']})" if info.get("paused_reason") else ""
    print(f"{info['state']}{reason}  pid {info['pid']}  {info['seconds']:.0f} s  {info['fps']:.1f} fps  "
          f"{info['frames']} frames  {info['dropped']} dropped ({info['dropped_pct']:.2f} %)  "
          f"{info['events_per_s']:.0f} events/s  {info['bytes'] / 1e6:.1f} MB  -> {info['output']}")


def _control(args: argparse.Namespace) -> int:
    from .control import send

    info = send(args.target)
    _print_status(info, args.json)
    if args.target == "stop" and info.get("ok"):
        pid = info.get("pid")
        for _ in range(300):  # wait until the recorder has finished its files
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, TypeError):
                break
            time.sleep(0.1)
        print("stopped")
    return 0 if info.get("ok") else 1


def _background(args: argparse.Namespace) -> int:
    from .control import send, socket_path

    argv = [a for a in sys.argv[1:] if a != "--background"]
    if not argv or argv[0] != "record":
        argv = ["record", *argv]
    log = Path(str(args.target).removesuffix(".mcap") + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    proc = subprocess.Popen([sys.executable, "-m", "d2e.cli", *argv], stdin=subprocess.DEVNULL, stdout=fd,
                            stderr=fd, start_new_session=True)
    os.close(fd)
    for _ in range(150):
        if proc.poll() is not None:
            raise D2EError(f"the recorder exited at start (status {proc.returncode})", path=log,
                           fix="see the log for the reason")
        if socket_path().exists():
            try:
                _print_status(send("status"), args.json)
                print(f"recording in the background (pid {proc.pid}, log {log}); stop it with: d2e record stop")
                return 0
            except D2EError:
                pass
        time.sleep(0.1)
    raise D2EError("the background recorder did not come up within 15 s", path=log)


def run(args: argparse.Namespace) -> int:
    if args.target in VERBS:
        return _control(args)
    if args.background:
        return _background(args)
    from .grab import parse_region
    from .recorder import Recorder, RecorderConfig

    if "DISPLAY" not in os.environ and sys.platform.startswith("linux"):
        raise D2EError("no X display (DISPLAY is not set)", fix="run it inside your X session, or under xvfb-run")
    cfg = RecorderConfig(
        out=Path(args.target), monitor=args.monitor, region=parse_region(args.region) if args.region else None,
        fps=args.fps, size=args.size, codec=args.codec, preset=args.preset, crf=args.crf, window=args.window,
        follow=args.follow, window_wait=args.window_timeout, chroma=args.chroma, adapt=not args.no_adapt,
        key_repeat=args.key_repeat, exclude_window=args.exclude_window, duration=args.duration,
        segment_minutes=args.segment_minutes,
        min_free_gb=args.min_free_gb, hotkey_pause=args.hotkey_pause or None,
        hotkey_stop=args.hotkey_stop or None, raw_mouse=not args.no_raw_mouse, with_cursor=not args.no_cursor,
        overwrite=args.force, sample_dir=args.sample_frames, sample_every=args.sample_every,
    )
    recorder = Recorder(cfg)

    def on_signal(signum: int, _frame: Any) -> None:
        recorder.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        recorder.start()
    except BaseException:
        recorder.stop()
        raise
    recorder.wait()
    if args.json:
        print(json.dumps(recorder.summary))
    return 0
