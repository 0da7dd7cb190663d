"""Orchestration: threads, bounded queues, pause rules, segments, drop counting, clean stop.

Why this shape (DESIGN 2, a prototype that kept up on two cores): one process with threads, because
PyAV and XShm release the GIL for the heavy parts; the grab thread ticks on absolute monotonic deadlines
and skips late ticks (counted as dropped) instead of drifting; grabs go through a bounded queue (half a
second) to a converter thread (BGRA -> YUV, overlapping the encoder's work on the previous frame) and on
to the encoder, and when the queue is full the frame is dropped and counted into the next
``ScreenFrame``'s ``dropped_before`` (never silently); input callbacks do one queue put. Events are
never dropped: their queue is unbounded (they are tiny) and a single writer thread owns the MCAP file.

Under CPU pressure (issue 19: 87 % of frames dropped at 720p30 with two busy processes, because the
encoder at nice 10 got almost no CPU), capture comes first: the grab thread asks for a higher priority
(granted where the user may raise it), the encoder runs at normal priority and, when its queue grows,
steps down to a faster preset and then to a lower frame rate (``adapt``), and the recorder warns as soon
as it drops frames. Pauses are cut out of the video (no frozen frame; the screen topic's capture times
show the gap), so a paused recording plays back as what was recorded.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import D2EError, require
from ..schema import KEY_PRESS, KeyboardEvent, RecordingMeta, ScreenFrame, WindowEvent
from .adapt import EncoderPressure, Step
from .follow import clip_to_screen, letterbox
from .grab import Region, ScreenGrabber, list_screens, resolve_region
from .hotkeys import HotkeyFilter, parse_hotkey

__all__ = ["Recorder", "RecorderConfig", "choose_preset", "parse_hotkey", "segment_base"]

_END = object()


@dataclass
class _Rotate:
    segment: int


def _log(line: str) -> None:
    print(f"d2e record: {line}", file=sys.stderr, flush=True)


@dataclass
class RecorderConfig:
    """Everything ``d2e record`` can be told; defaults are what a user gets without options."""

    out: Path
    monitor: int = 1
    region: Region | None = None
    fps: float = 20.0
    size: tuple[int, int] | None = None
    codec: str = "auto"
    preset: str | None = None  # None: chosen from the pixel rate so software x264 keeps up
    crf: int = 23
    gop_seconds: float = 2.0
    window: str | None = None
    follow: bool = False  # capture the --window's client area wherever it is (needs window)
    window_wait: float = 10.0  # seconds to wait at start for a window matching --window
    exclude_window: str | None = None
    duration: float | None = None
    segment_minutes: float | None = None
    min_free_gb: float = 1.0
    hotkey_pause: str | None = "ctrl+shift+f9"
    hotkey_stop: str | None = "ctrl+shift+f10"
    control: bool = True
    control_name: str = "d2e-record"
    raw_mouse: bool = True
    with_cursor: bool = True
    overwrite: bool = False
    queue_frames: int | None = None  # None: half a second of frames within QUEUE_BYTES, at least 8
    chroma: str = "420"  # "444": full colour resolution (yuv444p) for desktop text
    adapt: bool = True  # step the preset down, then the frame rate, when the encoder falls behind
    key_repeat: str = "keep"  # "keep": stored with repeat=True; "drop": left out
    warn_drop_pct: float = 1.0  # log a warning when more frames than this are dropped in 2 s
    sample_dir: Path | None = None  # debug/bench: save every ``sample_every``-th grabbed frame as .npy
    sample_every: int = 0
    log: Callable[[str], None] = _log


def segment_base(out: Path, segment: int | None) -> Path:
    """``run.mcap`` -> ``run`` (no segments) or ``run_003`` (segment 3)."""
    base = out.with_suffix("") if out.suffix in (".mcap", ".mkv") else out
    return base if segment is None else base.with_name(f"{base.name}_{segment:03d}")


QUEUE_BYTES = 160 * 2**20  # what the grabbed (BGRA) frames waiting for the encoder may hold


def queue_frames(width: int, height: int, fps: float) -> int:
    """Capture queue length: half a second of frames (room for the encoder to step down before the
    queue overflows), at least 8, within ``QUEUE_BYTES`` (8 MB per 1080p frame)."""
    return max(8, min(round(fps / 2), QUEUE_BYTES // (width * height * 4)))


def choose_preset(width: int, height: int, fps: float) -> str:
    """x264 preset that keeps up live on ~1 core (DESIGN 2: veryfast 38 fps at 1080p, ultrafast 124)."""
    return "veryfast" if width * height * fps <= 1280 * 720 * 30 else "ultrafast"


class Recorder:
    """One recording session. ``start()``, then ``wait()`` (or ``stop()``), then read ``summary``."""

    def __init__(self, config: RecorderConfig):
        self.cfg = config
        self.log = config.log
        if config.follow and not config.window:
            raise D2EError("--follow needs --window PATTERN (the window to follow)")
        if config.key_repeat not in ("keep", "drop"):
            raise D2EError(f"--key-repeat {config.key_repeat!r}", fix="use keep or drop")
        if config.chroma not in ("420", "444"):
            raise D2EError(f"--chroma {config.chroma!r}", fix="use 420 or 444")
        self.frames: queue.Queue[Any] = queue.Queue()  # grabs; bounded in start(), once the frame size is known
        self.converted: queue.Queue[Any] = queue.Queue(maxsize=2)  # converted frames waiting for the encoder
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.stop_reason: str | None = None
        self.user_paused = False
        self.window_blocked = bool(config.window)
        self.follow_lost = False  # --follow: the window is gone or off screen
        self.window_re = re.compile(config.window, re.I) if config.window else None
        self.exclude_re = re.compile(config.exclude_window, re.I) if config.exclude_window else None
        hotkeys: dict[frozenset[str], str] = {}
        if config.hotkey_pause:
            hotkeys[parse_hotkey(config.hotkey_pause)] = "toggle"
        if config.hotkey_stop:
            hotkeys[parse_hotkey(config.hotkey_stop)] = "stop"
        self.hotkeys = HotkeyFilter(hotkeys)
        self._recorded_down: set[str] = set()  # keys whose press is in the file
        self._lock = threading.Lock()
        self.current_window: WindowEvent | None = None
        # statistics (read by status)
        self.frames_written = 0
        self.dropped_total = 0
        self.dropped_late = 0  # ticks the grab thread missed
        self.dropped_full = 0  # grabs refused by the encoder's full queue
        self.events_written = 0
        self.repeats = 0  # auto-repeat presses stored (flagged) or, with key_repeat="drop", left out
        self.reordered = 0
        self.pauses: list[list[Any]] = []
        self._captured_once = False
        self._opening = False  # start() is reading the initial window state
        self._recent_frames: collections.deque[int] = collections.deque(maxlen=256)
        self._recent_events: collections.deque[int] = collections.deque(maxlen=4096)
        self.segment = 0
        self.paths: list[Path] = []
        self.planned: Path | None = None
        self.t_start = 0
        self.t_stop = 0
        self.period_ns = round(1e9 / config.fps) if config.fps > 0 else 0
        self.video_cut_ns = 0  # paused time taken out of the video's timeline
        self.pressure: EncoderPressure | None = None
        self.input: Any = None
        self.watcher: Any = None
        self.grabs: Any = None
        self.control: Any = None
        self.follow_window: WindowEvent | None = None
        self.follow_region: Region | None = None
        self.grab_nice = 0
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.summary: dict[str, Any] = {}

    # -- state ---------------------------------------------------------------------------------------
    @property
    def capturing(self) -> bool:
        return not self.user_paused and not self.window_blocked and not self.follow_lost

    def _set_state(self, *, user: bool | None = None, window: bool | None = None, lost: bool | None = None,
                   why: str = "") -> None:
        with self._lock:
            before = self.capturing
            changing = time.monotonic_ns()  # a resume ends here: no frame grabbed before this is kept
            if user is not None:
                self.user_paused = user
            if window is not None:
                self.window_blocked = window
            if lost is not None:
                self.follow_lost = lost
            after = self.capturing
            changed = time.monotonic_ns()  # a pause starts here: later grabs see the flag (see _grab_loop)
        if before == after or self._opening:  # the state at start is not a pause or a resume
            return
        now = changing if after else changed
        if not after:
            self.pauses.append([now, None, why])
            self.log(f"paused ({why}): nothing is captured")
        else:
            if self.pauses and self.pauses[-1][1] is None:
                self.pauses[-1][1] = now
            self.log(f"recording{' again' if self._captured_once else ''} ({why})")
            self._captured_once = True
            if window is None and self.current_window is not None and self._window_allowed(self.current_window):
                w = self.current_window
                self.events.put(WindowEvent(now, w.title, w.app, w.pid, w.rect, w.window_id))

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.t_stop = time.monotonic_ns()
        self._stop.set()

    def pause(self, why: str = "paused by user") -> None:
        self._set_state(user=True, why=why)

    def resume(self, why: str = "resumed by user") -> None:
        self._set_state(user=False, why=why)

    # -- inputs --------------------------------------------------------------------------------------
    def _on_hotkey(self, action: str) -> None:
        if action == "stop":
            self.log("stop hotkey pressed")
            self.request_stop("hotkey")
        elif self.user_paused:
            self.resume("pause hotkey")
        else:
            self.pause("pause hotkey")

    def on_input(self, msg: Any) -> None:
        """Listener-thread entry: hotkeys first (they work while paused), then the pause rules."""
        if not isinstance(msg, KeyboardEvent):
            if self.capturing:
                self.events.put(msg)
            return
        passed, action = self.hotkeys.feed(msg)
        if action is not None:
            self._on_hotkey(action)
        for key in passed:
            self._keyboard(key)

    def _keyboard(self, msg: KeyboardEvent) -> None:
        if not self.capturing:
            return
        if msg.action == KEY_PRESS:
            if msg.repeat:
                if msg.key not in self._recorded_down:
                    return  # a repeat is only stored between its key's press and release
                self.repeats += 1
                if self.cfg.key_repeat == "drop":
                    return
            self._recorded_down.add(msg.key)
        elif msg.key in self._recorded_down:
            self._recorded_down.discard(msg.key)
        else:
            return  # release of a press made while paused: its press is not in the file
        self.events.put(msg)

    def _window_allowed(self, w: WindowEvent) -> bool:
        text = f"{w.title}\n{w.app}"
        if self.exclude_re is not None and self.exclude_re.search(text):
            return False
        return self.window_re is None or bool(self.window_re.search(text))

    def on_window(self, w: WindowEvent) -> None:
        self.current_window = w
        allowed = self._window_allowed(w)
        why = f"window {w.title!r} " + ("allowed" if allowed else "excluded" if self.exclude_re is not None and
                                        self.exclude_re.search(f"{w.title}\n{w.app}") else "not --window")
        self._set_state(window=not allowed, why=why)
        if allowed and self.capturing:
            self.events.put(w)

    # -- threads -------------------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by stop(), and the recording is stopped
                self._errors.append(exc)
                self.log(f"{name} failed: {exc!r}")
                self.request_stop(f"error in {name}: {exc}")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _raise_grab_priority(self) -> None:
        """Ask for nice -5 for the grab thread: granted to root or with CAP_SYS_NICE / an RLIMIT_NICE."""
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -5)
            self.grab_nice = -5

    def _follow_region(self, windows: Any) -> Region | None:
        """Where the followed window shows now (clipped to the screen); a window event when that changed."""
        w = self.follow_window
        assert w is not None and self.window_re is not None
        rect = windows.client_rect(windows.window(w.window_id))
        if rect is None:  # closed or hidden: another window matching the pattern takes over
            found = windows.find(self.window_re, time.monotonic_ns())
            if found is not None:
                self.log(f"following window {found.title!r} (id {found.window_id:#x}) now")
                w = self.follow_window = found
                rect = found.rect
        region = clip_to_screen(rect, *windows.screen_size()) if rect is not None else None
        if region is None:
            if not self.follow_lost:
                self._set_state(lost=True, why=f"window {w.title!r} is closed, hidden or off screen")
            return None
        if self.follow_lost:
            self._set_state(lost=False, why=f"window {w.title!r} is shown again")
        if region != self.follow_region:
            self.follow_region = region
            if self.capturing:  # the rect the video shows now (the window's client area, clipped to the screen)
                self.events.put(WindowEvent(time.monotonic_ns(), w.title, w.app, w.pid, region.as_tuple(),
                                            w.window_id))
        return region

    def _grab_loop(self) -> None:
        self._raise_grab_priority()
        grabber = ScreenGrabber(self.region, with_cursor=self.cfg.with_cursor)
        grabber.open()
        windows = None
        if self.cfg.follow:
            from .window_x11 import X11Windows

            windows = X11Windows()
        deadline = time.monotonic_ns()
        pending_drops = 0
        gap = False  # frames were skipped on purpose (pause): the encoder cuts that time out of the video
        try:
            while not self._stop.is_set():
                period = self.period_ns
                now = time.monotonic_ns()
                if now < deadline:
                    if self._stop.wait((deadline - now) / 1e9):
                        break
                    now = time.monotonic_ns()
                late = (now - deadline) // period
                if late > 0:  # missed ticks: skip them (counted), never run behind
                    deadline += late * period
                    if self.capturing:
                        pending_drops += late
                        self.dropped_late += late
                        self.dropped_total += late
                deadline += period
                if windows is not None:
                    region = self._follow_region(windows)
                    if region is not None:
                        grabber.set_region(region)
                if not self.capturing:
                    pending_drops, gap = 0, True
                    continue
                image, t = grabber.grab()
                if not self.capturing:  # paused during the grab: the frame may show what a pause hides
                    pending_drops, gap = 0, True
                    continue
                try:
                    self.frames.put_nowait((image, t, pending_drops, gap))
                    pending_drops, gap = 0, False
                except queue.Full:
                    pending_drops += 1
                    self.dropped_full += 1
                    self.dropped_total += 1
        finally:
            grabber.close()
            if windows is not None:
                windows.close()
            self.frames.put(None)

    def _open_video(self, segment: int | None) -> Any:
        from ..video import VideoWriter

        path = segment_base(self.cfg.out, segment).with_suffix(".mkv")
        return VideoWriter(path, self.out_w, self.out_h, codec=self.codec_family, crf=self.cfg.crf,
                           preset=self.preset, gop_seconds=self.cfg.gop_seconds, fps_hint=self.cfg.fps,
                           overwrite=self.cfg.overwrite, pix_fmt=self.pix_fmt)

    def _take_step(self, step: Step, video: Any) -> None:
        if step.preset is not None:
            if not video.set_preset(step.preset):
                return
            self.preset = step.preset
            self.log(f"preset -> {step.preset} ({step.why})")
        elif step.fps is not None:
            self.period_ns = round(1e9 / step.fps)
            self.log(f"frame rate -> {step.fps:g} fps ({step.why})")
        self.events.put(step)

    def _convert_loop(self) -> None:
        """BGRA grabs -> encoder frames (letterboxed when following). A thread of its own: swscale runs
        without the GIL, so converting one frame overlaps encoding the previous one (1080p: ~5 ms each)."""
        av = require("av", "record")
        keep_image = bool(self.cfg.sample_every and self.cfg.sample_dir)
        try:
            while True:
                item = self.frames.get()
                if item is None:
                    break
                image, t, dropped, gap = item
                if self.cfg.follow:
                    image = letterbox(image, self.out_w, self.out_h)
                frame = av.VideoFrame.from_numpy_buffer(image, format="bgra")
                frame = frame.reformat(width=self.out_w, height=self.out_h, format=self.pix_fmt)
                self.converted.put((frame, t, dropped, gap, image if keep_image else None))
        finally:
            self.converted.put(None)

    def _encode_loop(self) -> None:
        seg = 0 if self.cfg.segment_minutes else None
        seg_ns = round(self.cfg.segment_minutes * 60e9) if self.cfg.segment_minutes else None
        video = self._video0 = self._open_video(seg)
        self.pressure = EncoderPressure(self.preset, self.cfg.fps, self.frames.maxsize,
                                        presets_switchable=self.cfg.adapt and video.encoder == "libx264")
        if not self.cfg.adapt:
            self.pressure.divisors = []
        seg_end = None
        index = 0
        sample_n = 0
        last_t: int | None = None
        try:
            while True:
                item = self.converted.get()
                if item is None:
                    break
                frame, t, dropped, gap, image = item
                if gap and last_t is not None:  # a pause: the video continues as if it had not happened
                    self.video_cut_ns += max(0, t - last_t - self.period_ns)
                last_t = t
                if seg_ns is not None:
                    if seg_end is None:
                        seg_end = t + seg_ns
                    elif t >= seg_end:
                        video.close()
                        seg = (seg or 0) + 1
                        seg_end += seg_ns
                        video = self._open_video(seg)
                        index = 0
                        self.events.put(_Rotate(seg))
                pts = video.write(frame, t - self.video_cut_ns)
                if image is not None and index % self.cfg.sample_every == 0 and self.cfg.sample_dir:
                    np.save(self.cfg.sample_dir / f"frame_{sample_n:05d}_{pts}.npy", image)
                    sample_n += 1
                self.events.put(ScreenFrame(t, pts, self.out_w, self.out_h, index, dropped))
                index += 1
                self._recent_frames.append(t)
                step = self.pressure.observe(t, self.frames.qsize(), self.dropped_total)
                if step is not None:
                    self._take_step(step, video)
        finally:
            video.close()
            self.events.put(_END)

    def _open_writer(self, segment: int | None) -> Any:
        from ..format import RecordingWriter

        path = segment_base(self.cfg.out, segment).with_suffix(".mcap")
        self.meta.video = {**self.meta.video, "file": path.with_suffix(".mkv").name, "preset": self.preset}
        self.meta.fps = round(1e9 / self.period_ns, 3)  # a later segment starts at what the encoder stepped to
        if segment is not None:
            self.meta.extra["segment"] = segment
        self.meta.wall_start_ns = 0  # stamped afresh per file
        writer = RecordingWriter(path, self.meta, overwrite=self.cfg.overwrite)
        self.paths.append(path)
        return writer

    def _end_info(self, at_start: dict[str, int], steps: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "stopped_by": self.stop_reason or "stop",
            "dropped_frames": self.dropped_total - at_start["dropped"],
            "dropped_late": self.dropped_late - at_start["late"],
            "dropped_queue_full": self.dropped_full - at_start["full"],
            "encoder_steps": steps,
            "pauses_ns": [list(p) for p in self.pauses],
            "video_cut_ns": self.video_cut_ns,
            "grab_nice": self.grab_nice,
            "recorded_s": round(self.recorded_seconds(), 3),
            "key_repeats": self.repeats,
            "hotkey_events_dropped": self.hotkeys.dropped,
            "events_reordered": self.reordered,
            "event_clock": {"server_time": self.input.clock.server_stamps if self.input else 0,
                            "callback_time_fallbacks": self.input.clock.fallbacks if self.input else 0},
        }

    def _counters(self) -> dict[str, int]:
        return {"dropped": self.dropped_total, "late": self.dropped_late, "full": self.dropped_full}

    def _write_loop(self) -> None:
        seg = 0 if self.cfg.segment_minutes else None
        writer = self._open_writer(seg)
        at_start = self._counters()
        steps: list[dict[str, Any]] = []
        last_t: dict[str, int] = {}
        idle_since = time.monotonic()
        try:
            while True:
                try:
                    item = self.events.get(timeout=0.5)
                except queue.Empty:
                    if time.monotonic() - idle_since > 1.0:
                        writer.flush()  # idle (paused): still hand buffered events to the OS
                        idle_since = time.monotonic()
                    continue
                if item is _END:
                    break
                if isinstance(item, Step):
                    steps.append(item.as_dict())
                    continue
                if isinstance(item, _Rotate):
                    writer.update_end_info(**self._end_info(at_start, steps))
                    writer.close()
                    at_start, steps = self._counters(), []
                    last_t.clear()
                    writer = self._open_writer(item.segment)
                    self.segment = item.segment
                    if self.current_window is not None and self.capturing:
                        w = self.current_window
                        writer.write(WindowEvent(time.monotonic_ns(), w.title, w.app, w.pid, w.rect, w.window_id))
                    continue
                topic = item.TOPIC
                prev = last_t.get(topic)
                if prev is not None and item.t_ns < prev:  # mixed clock sources: keep each topic in order
                    item.t_ns = prev
                    self.reordered += 1
                last_t[topic] = item.t_ns
                writer.write(item)
                if not isinstance(item, ScreenFrame):
                    self.events_written += 1
                    self._recent_events.append(item.t_ns)
                else:
                    self.frames_written += 1
                idle_since = time.monotonic()
        finally:
            writer.update_end_info(**self._end_info(at_start, steps))
            writer.close()

    # -- lifecycle -----------------------------------------------------------------------------------
    def _build_meta(self) -> RecordingMeta:
        screens = list_screens()[1:]
        settings: dict[str, Any] = {}
        if sys.platform.startswith("linux") and os.environ.get("DISPLAY"):
            from .input_x11 import x11_settings

            settings = x11_settings()
        return RecordingMeta(
            source="recorder",
            screens=screens,
            capture_region=self.region.as_dict(),
            dpi=settings.get("dpi"),
            key_repeat={**settings.get("key_repeat", {}), "stored": self.cfg.key_repeat},
            pointer=settings.get("pointer", {}),
            video={"codec": self.encoder, "width": self.out_w, "height": self.out_h, "pix_fmt": self.pix_fmt,
                   "preset": self.preset, "crf": self.cfg.crf, "gop_seconds": self.cfg.gop_seconds,
                   "scaled_from": [self.region.width, self.region.height],
                   "pauses_cut": True, "letterboxed": self.cfg.follow},
            fps=self.cfg.fps,
            extra={"display": os.environ.get("DISPLAY", ""), "raw_mouse": False, "event_time": "x_server",
                   "window_filter": self.cfg.window, "exclude_window": self.cfg.exclude_window,
                   "follow": self.cfg.follow,
                   "hotkeys": {"pause": self.cfg.hotkey_pause, "stop": self.cfg.hotkey_stop},
                   "segment_minutes": self.cfg.segment_minutes, "cursor": self.cfg.with_cursor,
                   "adapt": self.cfg.adapt},
        )

    def _check_disk(self) -> None:
        folder = self.cfg.out.parent if str(self.cfg.out.parent) else Path(".")
        free = shutil.disk_usage(folder).free
        if free < self.cfg.min_free_gb * 1e9:
            raise D2EError(f"only {free / 1e9:.1f} GB free (< --min-free-gb {self.cfg.min_free_gb})", path=folder)

    def _find_window(self) -> WindowEvent:
        """Wait up to ``window_wait`` s for a shown window matching ``--window``; refuse to start without one."""
        from .window_x11 import X11Windows, list_window_titles

        assert self.window_re is not None
        windows = X11Windows()
        try:
            deadline = time.monotonic() + self.cfg.window_wait
            while True:
                found = windows.find(self.window_re, time.monotonic_ns())
                if found is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        finally:
            windows.close()
        if found is None:
            titles = list_window_titles()
            raise D2EError(f"no window matches --window {self.cfg.window!r} after {self.cfg.window_wait:g} s "
                           f"(shown windows: {', '.join(repr(t) for t in titles[:8]) or 'none'})",
                           fix="start the game first, or match part of its title (a case-insensitive regex)")
        return found

    def start(self) -> None:
        """Open both files and start every thread; returns once keys are being captured."""
        from ..video import ENCODERS, choose_encoder

        cfg = self.cfg
        if cfg.fps <= 0 or cfg.fps > 240:
            raise D2EError(f"--fps {cfg.fps} is out of range", fix="use 1 to 240")
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        self._check_disk()
        for seg in ((0,) if cfg.segment_minutes else (None,)):
            for suffix in (".mcap", ".mkv"):
                path = segment_base(cfg.out, seg).with_suffix(suffix)
                if path.exists() and not cfg.overwrite:
                    raise D2EError("output already exists", path=path, fix="choose another name or pass --force")
        x11 = sys.platform.startswith("linux") and bool(os.environ.get("DISPLAY"))
        if cfg.window and not x11:
            raise D2EError("--window needs X11 window tracking", fix="leave it out on this platform")
        if cfg.control:  # refuse before anything is recorded or opened if another recorder runs
            from .control import ControlServer

            self.control = ControlServer(self.handle_command, cfg.control_name)
            self.control.check_free()
        if cfg.window:
            found = self._find_window()
            self.log(f"window {found.title!r} (id {found.window_id:#x}) matches --window {cfg.window!r} at "
                     f"{found.rect[2]}x{found.rect[3]}+{found.rect[0]}+{found.rect[1]}")
            if cfg.follow:
                self.follow_window = found
                screens = list_screens()[0]
                region = clip_to_screen(found.rect, screens["x"] + screens["width"], screens["y"] + screens["height"])
                if region is None:
                    raise D2EError(f"window {found.title!r} is off screen", fix="move it onto the screen")
                self.follow_region = region
        self.region = self.follow_region if cfg.follow else resolve_region(cfg.monitor, cfg.region)
        w, h = cfg.size or (self.region.width, self.region.height)
        self.out_w, self.out_h = w - w % 2, h - h % 2
        self.codec_family = "h264" if cfg.codec == "auto" else cfg.codec
        if self.codec_family not in ENCODERS:
            raise D2EError(f"unknown codec {cfg.codec!r}", fix="use auto, h264, hevc or av1")
        self.encoder = choose_encoder(self.codec_family, self.out_w, self.out_h)
        self.preset = cfg.preset or choose_preset(self.out_w, self.out_h, cfg.fps)
        self.pix_fmt = "yuv444p" if cfg.chroma == "444" else "yuv420p"
        self.frames = queue.Queue(maxsize=cfg.queue_frames or queue_frames(self.region.width, self.region.height,
                                                                            cfg.fps))
        self.meta = self._build_meta()
        self.planned = segment_base(cfg.out, 0 if cfg.segment_minutes else None).with_suffix(".mcap")

        if x11:
            from .input_x11 import X11Input
            from .window_x11 import X11WindowWatcher

            self.input = X11Input(self.on_input, raw=cfg.raw_mouse)
            self.watcher = X11WindowWatcher(self.on_window)
            self._opening = True
            try:
                self.watcher.start()
            finally:
                self._opening = False
            self._grab_hotkeys()
        else:
            from .input_pynput import PynputInput

            self.input = PynputInput(self.on_input)
            self.meta.extra["event_time"] = "callback"
            self.log("not X11: event times are callback times, no raw mouse, no window events")
        if self.watcher is not None and not self.watcher.supported:
            msg = "the window manager does not publish _NET_ACTIVE_WINDOW: no window events"
            if cfg.window:
                msg += f"; --window {cfg.window!r} stays paused until a matching window is reported"
            self.log(msg)
        self.t_start = time.monotonic_ns()
        self._captured_once = self.capturing
        if self.window_blocked:
            self.pauses.append([self.t_start, None, f"waiting for focus on a window matching --window {cfg.window!r}"])
            self.log(f"paused until a window matching --window {cfg.window!r} has focus")
        self.input.start()
        self.meta.extra["raw_mouse"] = self.input.raw_available
        if not self.input.raw_available and cfg.raw_mouse:
            self.log(f"raw mouse motion unavailable ({self.input.raw_error}); recording absolute positions only")
        self._spawn(self._write_loop, "d2e-writer")
        self._spawn(self._encode_loop, "d2e-encoder")
        self._spawn(self._convert_loop, "d2e-convert")
        self._spawn(self._grab_loop, "d2e-grab")
        if self.control is not None:  # last: `record --background` says "recording" once the socket answers,
            self.control.start()       # so input must be captured by then (events were lost in that gap)
        self.log(f"capturing keyboard and mouse input now (pause: {cfg.hotkey_pause}, stop: {cfg.hotkey_stop})")
        what = f"window {cfg.window!r} (following it)" if cfg.follow else "screen"
        self.log(f"{what} {self.region.width}x{self.region.height}+{self.region.x}+{self.region.y} -> "
                 f"{self.out_w}x{self.out_h} @ {cfg.fps:g} fps, {self.encoder} {self.preset} {self.pix_fmt}, "
                 f"into {self.planned} + .mkv")

    def _grab_hotkeys(self) -> None:
        """Take the hotkeys away from the focused application (an X passive grab per hotkey)."""
        combos = [c for c in (self.cfg.hotkey_pause, self.cfg.hotkey_stop) if c]
        if not combos:
            return
        from .hotkeys_x11 import X11HotkeyGrab

        self.grabs = X11HotkeyGrab([parse_hotkey(c) for c in combos])
        try:
            self.grabs.start()
        except Exception as exc:  # noqa: BLE001 - hotkeys still work through RECORD, only not hidden
            self.grabs.failed.append(f"all ({exc})")
        for problem in self.grabs.failed:
            self.log(f"hotkey not grabbed: {problem}; the focused application receives it too")
        self.meta.extra["hotkeys_grabbed"] = not self.grabs.failed

    def _watch_drops(self, last: list[int], warned_at: list[float]) -> None:
        """Every 2 s: warn when more than ``warn_drop_pct`` % of the ticks were dropped (at most every 10 s)."""
        frames, dropped = self.frames_written, self.dropped_total
        new_frames, new_drops = frames - last[0], dropped - last[1]
        late, full = self.dropped_late - last[2], self.dropped_full - last[3]
        last[:] = [frames, dropped, self.dropped_late, self.dropped_full]
        ticks = new_frames + new_drops
        if not new_drops or 100 * new_drops / max(1, ticks) <= self.cfg.warn_drop_pct:
            return
        if time.monotonic() - warned_at[0] < 10.0:
            return
        first = warned_at[0] == 0.0
        warned_at[0] = time.monotonic()
        total = self.frames_written + self.dropped_total
        self.log(f"{'started dropping' if first else 'dropping'} frames: {new_drops} of {ticks} in the last 2 s "
                 f"({late} grabs late, {full} refused by the busy encoder; {self.dropped_total} of {total} so far, "
                 f"{100 * self.dropped_total / max(1, total):.1f} %). The CPU is short: close other programs, "
                 f"or record with a lower --fps or --size")

    def wait(self) -> None:
        """Block until a stop is requested (duration, signal, hotkey, control, low disk, error), then stop."""
        deadline = self.t_start + round(self.cfg.duration * 1e9) if self.cfg.duration else None
        next_disk = next_drops = time.monotonic() + 2.0
        last_drops = [0, 0, 0, 0]
        warned_at = [0.0]
        while not self._stop.is_set():
            timeout = 0.2
            if deadline is not None:
                left = (deadline - time.monotonic_ns()) / 1e9
                if left <= 0:
                    self.request_stop("duration")
                    break
                timeout = min(timeout, left)
            self._stop.wait(timeout)
            if time.monotonic() >= next_drops:
                next_drops = time.monotonic() + 2.0
                self._watch_drops(last_drops, warned_at)
            if time.monotonic() >= next_disk:
                next_disk = time.monotonic() + 2.0
                try:
                    self._check_disk()
                except D2EError as exc:
                    self.log(f"stopping: {exc.line()}")
                    self.request_stop("low_disk")
        self.stop()

    def recorded_seconds(self) -> float:
        """Seconds between start and stop during which the recorder was capturing (pauses left out)."""
        if not self.t_start:
            return 0.0
        end = self.t_stop or time.monotonic_ns()
        paused = sum(min(p[1] or end, end) - max(p[0], self.t_start) for p in self.pauses if p[0] < end)
        return max(0.0, (end - self.t_start - paused) / 1e9)

    def stop(self) -> dict[str, Any]:
        """Stop capturing, drain the queues, finish both files. Safe to call twice."""
        if self._done.is_set():
            return self.summary
        self.request_stop(self.stop_reason or "stop")
        if self.pauses and self.pauses[-1][1] is None:
            self.pauses[-1][1] = self.t_stop
        self.hotkeys.discard_pending()
        for part in (self.input, self.watcher, self.grabs):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        for thread in self._threads:
            thread.join(timeout=60)
        if self.control is not None:
            self.control.close()
        self._done.set()
        if not self._threads:  # refused at start: nothing was recorded, so there is nothing to report
            return self.summary
        self.summary = {**self.status(), "files": [str(p) for p in self.paths]}
        total = self.frames_written + self.dropped_total
        self.log(f"stopped ({self.stop_reason}): {self.frames_written} frames in {self.recorded_seconds():.1f} s "
                 f"recorded, {self.dropped_total} dropped ({100 * self.dropped_total / max(1, total):.1f} %), "
                 f"{self.events_written} events -> {', '.join(str(p) for p in self.paths)}")
        if self._errors:
            raise D2EError(f"recording stopped by an error: {self._errors[0]!r}")
        return self.summary

    # -- control -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = time.monotonic_ns()
        frames = [t for t in self._recent_frames if now - t < 2_000_000_000]
        events = [t for t in self._recent_events if now - t < 2_000_000_000]
        size = 0
        for p in self.paths:
            for suffix in (".mcap", ".mkv"):
                with contextlib.suppress(OSError):
                    size += p.with_suffix(suffix).stat().st_size
        total = self.frames_written + self.dropped_total
        end = self.t_stop or now
        output = self.paths[-1] if self.paths else self.planned
        return {
            "ok": True, "pid": os.getpid(),
            "state": "stopping" if self._stop.is_set() else "recording" if self.capturing else "paused",
            "paused_reason": None if self.capturing else (self.pauses[-1][2] if self.pauses else ""),
            "seconds": round(self.recorded_seconds(), 1),
            "wall_seconds": round((end - self.t_start) / 1e9, 1) if self.t_start else 0.0,
            "fps": round(len(frames) / 2.0, 1), "frames": self.frames_written, "dropped": self.dropped_total,
            "dropped_pct": round(100 * self.dropped_total / total, 2) if total else 0.0,
            "preset": getattr(self, "preset", None),
            "target_fps": round(1e9 / self.period_ns, 3) if self.period_ns else None,
            "events": self.events_written, "events_per_s": round(len(events) / 2.0, 1), "key_repeats": self.repeats,
            "bytes": size, "segment": self.segment, "output": str(output) if output else None,
        }

    def handle_command(self, cmd: str) -> dict[str, Any]:
        if cmd == "pause":
            self.pause("paused by 'd2e record pause'")
        elif cmd == "resume":
            self.resume("resumed by 'd2e record resume'")
        elif cmd == "stop":
            self.request_stop("control")
        elif cmd != "status":
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return self.status()
