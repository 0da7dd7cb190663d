"""Training windows: ``T`` consecutive grid points of one recording with their frames and labels.

Grid point ``g`` shows the frame the grid's rule picks (``core.grid.frame_at``), decoded lazily by its pts
and resized to the model size. Labels come from the raw event times, in two forms:

- ``tokens``: D2E event tokens of the window with NEP-tau (``core.tokens``), for the event IDM and pretraining;
- ``keys``/``presses``/``buttons``/``mouse``: per-tick labels (``core.ticks``) for per-tick heads: keys down,
  keys that went down (onsets), buttons down, summed raw mouse motion.

Workers: each keeps its own open readers and video decoders (consecutive reads never seek twice); PyAV is
not fork-safe, so the loader spawns them (``core.data.loader``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from capture.format import RecordingReader
from capture.video import VideoReader

from ..config import DataConfig
from ..grid import TICK_NS, frame_at, grid_times, tau_ns
from ..inputs import confident, with_confidence
from ..ticks import EventTable
from ..tokens import Vocabulary, encode_window
from .frames import fit_frame
from .index import RecordingEntry

FRAMES, TIMES, TOKENS, KEYS, PRESSES, BUTTONS, MOUSE, RECORDING = (
    "frames", "times", "tokens", "keys", "presses", "buttons", "mouse", "recording")


class _Open:
    """What a worker keeps open for one recording: reader, decoder, its own scaler (a scaler rebuilds its
    context whenever the input size changes, so recordings must not share one), events, and the last
    resized frames (overlapping windows and frames shown for several ticks are resized once)."""

    def __init__(self, path: str, threads: int):
        self.reader = RecordingReader(path)
        # resized frames are kept here (below), so the decoder need not keep full-size ones
        self.video = VideoReader(self.reader.video_path, threads=threads, recent_frames=1)
        self.table: EventTable | None = None
        self.scaler: Any = None
        self.fitted: OrderedDict[int, np.ndarray] = OrderedDict()

    def close(self) -> None:
        self.video.close()
        self.reader.close()


class WindowDataset:
    """Map-style dataset of windows (a ``torch.utils.data.Dataset`` by duck typing: no torch import here).

    ``ds[i]`` is a dict: ``frames`` (T, S, S, 3) uint8, ``times`` (T,) int64 grid times, ``tokens`` (list of
    ids), ``keys`` and ``presses`` (T, K) bool over ``data.keys``, ``buttons`` (T, 5) bool, ``mouse`` (T, 2) float32,
    ``recording``. Windows start every ``stride`` grid points (default: ``data.frames``, no overlap).

    Each process keeps at most ``max_open`` recordings open (decoder, events), least recently used closed
    first: enough for block-shuffled batches, bounded for datasets of thousands of recordings.
    """

    def __init__(self, entries: Sequence[RecordingEntry], data: DataConfig, vocab: Vocabulary | None = None,
                 *, stride: int | None = None, span: tuple[float, float] = (0.0, 1.0), min_confidence: float = 0.0,
                 max_open: int = 16):
        """``span``: the part of each recording's grid the windows lie in, as fractions (e.g. ``(0, 0.85)`` to
        keep the tail of every recording out of training). ``min_confidence``: pseudo-labeled events a labeler
        was less sure of are left out (``core.inputs.confident``); ground truth has no confidences."""
        self.min_confidence = min_confidence
        self.entries = list(entries)
        self.data = data
        self.vocab = vocab or Vocabulary.default()
        self.max_open = max_open
        step = stride or data.frames
        self.windows: list[tuple[int, int]] = []
        for ri, e in enumerate(self.entries):
            lo, hi = span_of(e, span)
            self.windows += [(ri, start) for start in range(lo, hi - data.frames + 1, step)]
        self._open_recs: OrderedDict[int, _Open] = OrderedDict()

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self) -> dict[str, Any]:  # workers open their own files
        return {**self.__dict__, "_open_recs": OrderedDict()}

    def _open(self, ri: int) -> _Open:
        rec = self._open_recs.get(ri)
        if rec is None:
            while len(self._open_recs) >= max(1, self.max_open):
                self._open_recs.popitem(last=False)[1].close()
            # one decoder thread in DataLoader workers: the workers are the parallelism
            rec = self._open_recs[ri] = _Open(self.entries[ri].path, threads=1 if _in_worker() else 0)
        self._open_recs.move_to_end(ri)
        return rec

    def table(self, ri: int) -> EventTable:
        """Recording ``ri``'s events, read once per process (small next to its video: ~10 bytes each on disk)."""
        rec = self._open(ri)
        if rec.table is None:
            events = list(rec.reader.iter(topics=["keyboard", "mouse", "mouse/raw"]))
            if self.min_confidence > 0:
                scored = with_confidence(events, rec.reader.iter(topics=["label/confidence"]))
                events = [e for e, _c in confident(scored, self.min_confidence)]
            rec.table = EventTable(events)
        return rec.table

    def grid_frames(self, ri: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid times of ``n`` points from grid point ``start`` and, for each, the index of the frame shown."""
        e = self.entries[ri]
        times = grid_times(e.grid_start + start * TICK_NS, n)
        return times, frame_at(e.frame_t, times)

    def _frame(self, ri: int, k: int) -> np.ndarray:
        rec = self._open(ri)
        img = rec.fitted.get(k)
        if img is None:
            if rec.scaler is None:
                from av.video.reformatter import VideoReformatter

                rec.scaler = VideoReformatter()
            frame = rec.video.frame_obj_at(int(self.entries[ri].frame_pts[k]))
            img = rec.fitted[k] = fit_frame(frame, self.data.image_size, self.data.aspect, rec.scaler)
            if len(rec.fitted) > 2 * self.data.frames:
                rec.fitted.popitem(last=False)
        return img

    def frames(self, ri: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid times and the (n, S, S, 3) frames shown at them."""
        times, idx = self.grid_frames(ri, start, n)
        size = self.data.image_size
        out = np.empty((n, size, size, 3), np.uint8)
        for j, k in enumerate(idx.tolist()):
            out[j] = self._frame(ri, k)
        return times, out

    def __getitem__(self, i: int) -> dict[str, Any]:
        ri, start = self.windows[i]
        data = self.data
        times, frames = self.frames(ri, start, data.frames)
        tau = tau_ns(data.tau_ms)
        t0, t_end = int(times[0]), int(times[-1]) + TICK_NS
        table = self.table(ri)
        keys, buttons, mouse = table.ticks(t0, data.frames, data.keys)
        tokens = encode_window(table.between(t0 - tau, t_end), times.tolist(), tau, self.vocab,
                               merge_motion_ns=data.merge_motion_ms * 1_000_000)
        return {FRAMES: frames, TIMES: times, TOKENS: tokens, KEYS: keys, PRESSES: table.presses(t0, data.frames,
                                                                                                   data.keys),
                BUTTONS: buttons, MOUSE: mouse, RECORDING: ri}


def span_of(entry: RecordingEntry, span: tuple[float, float]) -> tuple[int, int]:
    """Grid points ``[lo, hi)`` of a recording that a fractional span covers."""
    return round(span[0] * entry.grid_len), round(span[1] * entry.grid_len)


def _in_worker() -> bool:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return False
    return get_worker_info() is not None
