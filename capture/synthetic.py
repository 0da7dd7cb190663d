"""Synthetic but realistic recordings, for the demo, the tests and the format benchmark.

The event mix follows what a player produces: keyboard bursts with chords, 1 kHz raw mouse motion
during sweeps, clicks, scroll, occasional focus changes, and a moving-pattern video whose frame times
jitter like a real capture loop. Everything derives from a seed, so runs are repeatable.

``python -m capture.synthetic --live PATH`` writes a recording in real time until killed; the crash
tests SIGKILL it and check what ``recover`` gets back. It prints ``<events written> <frames>
<monotonic ns>`` after every frame so the parent knows what had been handed to the writer when.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .format import RecordingWriter
from .keys import vk_for
from .schema import (
    BUTTON_FLAGS,
    RI_WHEEL,
    WHEEL_DELTA,
    KeyboardEvent,
    MouseEvent,
    RawMouseEvent,
    RecordingMeta,
    ScreenFrame,
    WindowEvent,
)
from .video import VideoWriter

GAME_KEYS = ["w", "a", "s", "d", "space", "shift", "ctrl", "e", "q", "r", "1", "2", "3", "tab", "esc"]


def synthetic_events(n: int, *, seed: int = 0, start_ns: int = 1_000_000_000,
                     screen: tuple[int, int] = (1920, 1080)) -> list:
    """``n`` time-ordered input events: ~80 % raw mouse at 1 kHz, the rest keys, moves, clicks, scroll."""
    return sorted(itertools.islice(iter_synthetic_events(seed=seed, start_ns=start_ns, screen=screen), n),
                  key=lambda m: m.t_ns)


def iter_synthetic_events(*, seed: int = 0, start_ns: int = 1_000_000_000,
                          screen: tuple[int, int] = (1920, 1080)) -> Iterator:
    """An endless stream of such events, in time order within each topic."""
    rng = random.Random(seed)
    t = start_ns
    x, y = screen[0] // 2, screen[1] // 2
    held: set[str] = set()
    while True:
        out: list = []
        mode = rng.random()
        if mode < 0.6:  # a mouse sweep: 1 kHz raw deltas with matching absolute moves every 8 ms
            length = rng.randint(50, 400)
            vx, vy = rng.gauss(0, 6), rng.gauss(0, 3)
            for i in range(length):
                t += 1_000_000 + rng.randint(-50_000, 50_000)
                dx, dy = round(vx + rng.gauss(0, 1)), round(vy + rng.gauss(0, 1))
                out.append(RawMouseEvent(t, dx, dy))
                x, y = min(max(x + dx, 0), screen[0] - 1), min(max(y + dy, 0), screen[1] - 1)
                if i % 8 == 0:
                    out.append(MouseEvent(t + 20_000, "move", x, y))
        elif mode < 0.85:  # a key burst, sometimes a chord
            for _ in range(rng.randint(1, 6)):
                t += rng.randint(30, 250) * 1_000_000
                key = rng.choice(GAME_KEYS)
                if key in held:
                    held.discard(key)
                    out.append(KeyboardEvent(t, "release", key, vk_for(key), rng.randint(1, 120)))
                else:
                    held.add(key)
                    out.append(KeyboardEvent(t, "press", key, vk_for(key), rng.randint(1, 120)))
        elif mode < 0.95:  # click (button events in both topics, as a recorder sees them)
            button = rng.choice(["left", "left", "left", "right", "middle"])
            down, up = BUTTON_FLAGS[button]
            t += rng.randint(20, 300) * 1_000_000
            out += [MouseEvent(t, "press", x, y, button), RawMouseEvent(t + 10_000, 0, 0, down)]
            t += rng.randint(60, 200) * 1_000_000
            out += [MouseEvent(t, "release", x, y, button), RawMouseEvent(t + 10_000, 0, 0, up)]
        elif mode < 0.99:
            t += rng.randint(50, 400) * 1_000_000
            clicks = rng.choice([-2, -1, 1, 2])
            out += [MouseEvent(t, "scroll", x, y, None, 0, clicks),
                    RawMouseEvent(t + 10_000, 0, 0, RI_WHEEL, clicks * WHEEL_DELTA)]
        else:
            t += rng.randint(100, 1000) * 1_000_000
            out.append(WindowEvent(t, rng.choice(["Game", "Browser", "Terminal"]), "app", 1000, (0, 0, *screen), 7))
        yield from out


def pattern_frame(i: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A frame with moving bars and a frame counter block: cheap to make, non-trivial to encode. The seed
    shifts the bars, so recordings made with different seeds have different videos."""
    img = np.empty((height, width, 3), np.uint8)
    xs = (np.arange(width) + 4 * i + 37 * seed) % 256
    ys = (np.arange(height)[:, None] + 2 * i) % 256
    img[..., 0] = xs[None, :]
    img[..., 1] = ys
    img[..., 2] = (xs[None, :] ^ ys) & 0xFF
    img[:16, :16] = (i * 7) % 256
    return img


def frame_times(seconds: float, fps: float, start_ns: int, seed: int = 0) -> Iterator[int]:
    """Capture times on an fps grid with up to 2 ms jitter, as a real grab loop produces."""
    rng = random.Random(seed + 1)
    period = 1e9 / fps
    for i in range(int(seconds * fps)):
        yield start_ns + round(i * period) + rng.randint(0, 2_000_000)


def write_synthetic_recording(path: str | Path, *, seconds: float = 5.0, fps: float = 20.0,
                              size: tuple[int, int] = (320, 240), seed: int = 0,
                              events_per_second: int = 400, overwrite: bool = False) -> Path:
    """A complete recording (``.mcap`` + ``.mkv``) with events and video that agree in time."""
    path = Path(path)
    start = 1_000_000_000
    n_events = int(seconds * events_per_second)
    events = [e for e in synthetic_events(n_events, seed=seed, start_ns=start, screen=size)
              if e.t_ns < start + seconds * 1e9]
    width, height = size
    meta = RecordingMeta(source="synthetic", screens=[{"x": 0, "y": 0, "width": width, "height": height}],
                         capture_region={"x": 0, "y": 0, "width": width, "height": height},
                         video={"file": path.with_suffix(".mkv").name, "codec": "h264"}, fps=fps,
                         monotonic_start_ns=start, wall_start_ns=time.time_ns(), extra={"seed": seed})
    with VideoWriter(path.with_suffix(".mkv"), width, height, start_ns=start, fps_hint=fps,
                     overwrite=overwrite) as video:
        meta.video["encoder"] = video.encoder
        with RecordingWriter(path, meta, overwrite=overwrite) as writer:
            _interleave(writer, video, events, frame_times(seconds, fps, start, seed), width, height, seed)
            video.close()  # before the recording, so that it stores the finished video's fingerprint
    return path


def _interleave(writer: RecordingWriter, video: VideoWriter, events: list, times: Iterator[int],
                width: int, height: int, seed: int) -> None:
    pending = iter(events)
    nxt = next(pending, None)
    for i, t in enumerate(times):
        while nxt is not None and nxt.t_ns <= t:
            writer.write(nxt)
            nxt = next(pending, None)
        pts = video.write(pattern_frame(i, width, height, seed), t)
        writer.write(ScreenFrame(t, pts, video.width, video.height, index=i))
    while nxt is not None:
        writer.write(nxt)
        nxt = next(pending, None)


def live(path: str, fps: float = 20.0, size: tuple[int, int] = (160, 120), seconds: float = 60.0) -> None:
    """Write events and frames in real time until killed, reporting what was flushed and when."""
    width, height = size
    start = time.monotonic_ns()
    meta = RecordingMeta(source="synthetic-live", fps=fps, video={"file": Path(path).with_suffix(".mkv").name})
    events = iter_synthetic_events(seed=1, start_ns=start, screen=size)
    written = frames = 0
    period = 1e9 / fps
    with RecordingWriter(path, meta, overwrite=True) as writer, \
            VideoWriter(Path(path).with_suffix(".mkv"), width, height, start_ns=start, overwrite=True) as video:
        nxt = next(events)
        for i in range(int(seconds * fps)):
            deadline = start + round(i * period)
            while (now := time.monotonic_ns()) < deadline:
                time.sleep(min(0.005, (deadline - now) / 1e9))
            while nxt.t_ns <= deadline:
                writer.write(nxt)
                written += 1
                nxt = next(events)
            pts = video.write(pattern_frame(i, width, height), deadline)
            writer.write(ScreenFrame(deadline, pts, width, height, index=i))
            frames += 1
            print(written, frames, time.monotonic_ns(), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--live", action="store_true", help="write in real time until killed")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.live:
        live(args.path, seconds=args.seconds)
    else:
        write_synthetic_recording(args.path, seconds=args.seconds, overwrite=True)


if __name__ == "__main__":
    main(sys.argv[1:])
