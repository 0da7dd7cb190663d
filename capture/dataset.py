"""Training windows from recordings: frames on a fixed 20 Hz grid plus labels in two forms.

The index reads only the ``screen`` and ``keyboard`` topics (no video decoding), so a thousand
recordings index in seconds, local or remote (fsspec). A window is ``T`` consecutive grid points; grid
point ``g`` shows the frame on screen at ``g`` (the last one captured at or before it), decoded lazily
by its pts and resized to the model size. Labels come from the raw event times:

- ``tokens``: D2E event tokens of the window with NEP-tau (``capture.tokens``), for the event IDM and
  pretraining;
- ``keys``/``buttons``/``mouse``: dense per-50 ms-tick labels for a VPT-style model (a key counts as
  down in a tick if it was down at any time in it; mouse motion is summed raw dx/dy).

Workers: each keeps its own open readers and video decoders (consecutive reads never seek twice);
PyAV is not fork-safe, so ``GameDataModule`` spawns them (DESIGN 3.6).
"""

from __future__ import annotations

import os
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import D2EError
from .format import RecordingReader
from .schema import BUTTON_FLAGS, KeyboardEvent, RawMouseEvent, ScreenFrame
from .storage import expand_inputs
from .ticks import GRID_NS, down_intervals, held_per_tick
from .tokens import Vocabulary, as_raw_events, encode_window
from .video import VideoReader

BUTTON_NAMES = ("left", "right", "middle", "x1", "x2")
_FLAG_BUTTON = {flag: (i, is_up) for i, b in enumerate(BUTTON_NAMES) for is_up, flag in enumerate(BUTTON_FLAGS[b])}


@dataclass
class RecordingEntry:
    """One recording as the index knows it: no frames decoded, only times."""

    path: str
    game: str
    source: str
    frame_t: np.ndarray  # capture times (ns) of the video frames
    frame_pts: np.ndarray  # their pts (ns)
    vks: list[int] = field(default_factory=list)

    @property
    def grid_start(self) -> int:
        return int(self.frame_t[0])

    @property
    def grid_len(self) -> int:
        return int((self.frame_t[-1] - self.frame_t[0]) // GRID_NS) + 1


def find_recordings(inputs: Sequence[str]) -> list[str]:
    """Recording paths from files, folders (recursive), @lists and fsspec URLs; ``*.truth.mcap`` excluded."""
    return [p for p in expand_inputs(list(inputs), (".mcap",)) if not p.endswith(".truth.mcap")]


def game_of(meta_extra: dict[str, Any], source: str) -> str:
    return str(meta_extra.get("game") or meta_extra.get("scenario") or meta_extra.get("title") or source)


def index_recordings(paths: Sequence[str]) -> list[RecordingEntry]:
    """Read frame times and key codes of each recording (screen + keyboard topics only)."""
    entries = []
    for path in paths:
        with RecordingReader(path) as r:
            frames = [f for f in r.iter(topics=["screen"]) if isinstance(f, ScreenFrame) and f.uri is None]
            if len(frames) < 2:
                continue
            vks = sorted({k.vk for k in r.iter(topics=["keyboard"]) if isinstance(k, KeyboardEvent)})
            entries.append(RecordingEntry(path, game_of(r.meta.extra, r.meta.source), r.meta.source,
                                          np.array([f.t_ns for f in frames], np.int64),
                                          np.array([f.pts_ns for f in frames], np.int64), vks))
    if not entries:
        raise D2EError("no usable recordings (each needs a video with at least 2 frames)",
                       path=", ".join(paths[:3]) + ("..." if len(paths) > 3 else ""))
    return entries


def split_by_game(entries: Sequence[RecordingEntry], held_out: Sequence[str]) -> tuple[list, list]:
    """Leave-games-out: recordings of ``held_out`` games go to the second list."""
    known = {e.game for e in entries}
    missing = [g for g in held_out if g not in known]
    if missing:
        raise D2EError(f"held-out games {missing} are not in the data", fix=f"games present: {sorted(known)}")
    held = set(held_out)
    return [e for e in entries if e.game not in held], [e for e in entries if e.game in held]


def split_by_recording(entries: Sequence[RecordingEntry], val_fraction: float = 0.2,
                       seed: int = 0) -> tuple[list, list]:
    """A random split by whole recordings (never windows of one recording on both sides)."""
    order = list(entries)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction)) if len(order) > 1 else 0
    return order[n_val:], order[:n_val]


@dataclass
class WindowSpec:
    """How windows are cut and labelled.

    Attributes:
        frames: Grid points per window (T).
        stride: Grid points between window starts (default: T, no overlap).
        image_size: Square model input size in pixels.
        aspect: ``"stretch"`` (D2E: aspect not kept), ``"pad"`` (letterbox) or ``"crop"`` (centre crop).
        tau_ms: NEP-tau for the token labels.
        merge_motion_ms: Raw mouse motion summed over slots of this length in the token labels (0: every
            raw event its own token group); see ``capture.tokens.encode_window``.
        vks: Key codes of the dense key labels (default: every key seen in the training recordings).
    """

    frames: int = 8
    stride: int | None = None
    image_size: int = 128
    aspect: str = "stretch"
    tau_ms: int = 100
    merge_motion_ms: int = 0
    vks: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.aspect not in ("stretch", "pad", "crop"):
            raise D2EError(f"aspect must be stretch, pad or crop, got {self.aspect!r}")


class EventTable:
    """A recording's input events, prepared once so that each window's labels cost a few array lookups.

    Built per worker on the first window of a recording: the raw events in time order (pointer button and
    scroll events become raw flags when the file has no raw buttons, as in ``capture.tokens``), the raw
    mouse motion as arrays, and each key's and button's down intervals. Intervals make "held since before
    the window" exact however long ago the press was, and avoid re-walking thousands of 1 kHz mouse
    events before every window.
    """

    def __init__(self, events: Sequence[Any]):
        self.events = sorted(as_raw_events(events), key=lambda e: e.t_ns)
        self.t = np.fromiter((e.t_ns for e in self.events), np.int64, len(self.events))
        mouse = [e for e in self.events if isinstance(e, RawMouseEvent)]
        self.mouse_t = np.fromiter((e.t_ns for e in mouse), np.int64, len(mouse))
        self.mouse_d = np.array([(e.dx, e.dy) for e in mouse], np.float32).reshape(-1, 2)
        keys = ((e.t_ns, e.vk, e.action == "press") for e in self.events if isinstance(e, KeyboardEvent))
        buttons = ((e.t_ns, b, not is_up) for e in self.events if isinstance(e, RawMouseEvent) and e.button_flags
                   for flag, (b, is_up) in _FLAG_BUTTON.items() if e.button_flags & flag)
        self.key_iv = down_intervals(keys)
        self.btn_iv = down_intervals(buttons)

    def between(self, start_ns: int, end_ns: int) -> list[Any]:
        """The events with ``start_ns <= t < end_ns``."""
        lo, hi = np.searchsorted(self.t, [start_ns, end_ns])
        return self.events[lo:hi]

    def ticks(self, start_ns: int, n: int, vks: Sequence[int],
              tick_ns: int = GRID_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense labels of ``n`` ticks from ``start_ns``: keys (n, K) and buttons (n, 5) down at any time in
        a tick (the tick of a release included), mouse (n, 2) summed raw motion."""
        end_ns = start_ns + n * tick_ns
        keys = held_per_tick(self.key_iv, vks, start_ns, n, tick_ns)
        buttons = held_per_tick(self.btn_iv, range(len(BUTTON_NAMES)), start_ns, n, tick_ns)
        lo, hi = np.searchsorted(self.mouse_t, [start_ns, end_ns])
        mouse = np.zeros((n, 2), np.float32)
        np.add.at(mouse, (self.mouse_t[lo:hi] - start_ns) // tick_ns, self.mouse_d[lo:hi])
        return keys, buttons, mouse


def tick_labels(events: Sequence[Any], start_ns: int, n: int, vks: Sequence[int],
                tick_ns: int = GRID_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense labels per tick (see ``EventTable.ticks``) from a list of events, which must include those
    before ``start_ns`` that set the key/button state entering it."""
    return EventTable(events).ticks(start_ns, n, vks, tick_ns)


def fit_frame(frame, size: int, aspect: str = "stretch", scaler=None) -> np.ndarray:
    """An av.VideoFrame -> (size, size, 3) uint8 by FFmpeg's area scaler, with the chosen aspect handling.

    Pass one ``av.video.reformatter.VideoReformatter`` per stream as ``scaler``: it keeps the scaling
    context, which makes a resize ~8x cheaper than building one per frame."""
    from av.video.reformatter import VideoReformatter

    scaler = scaler or VideoReformatter()

    def scaled(width: int, height: int) -> np.ndarray:
        return scaler.reformat(frame, width, height, "rgb24", interpolation="AREA").to_ndarray()

    if aspect == "stretch":
        return scaled(size, size)
    w, h = frame.width, frame.height
    if aspect == "crop":
        scale = size / min(w, h)
        img = scaled(max(size, round(w * scale)), max(size, round(h * scale)))
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        return img[y:y + size, x:x + size]
    scale = size / max(w, h)
    img = scaled(max(2, round(w * scale) // 2 * 2), max(2, round(h * scale) // 2 * 2))
    out = np.zeros((size, size, 3), np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


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

    ``ds[i]`` is a dict: ``frames`` (T, S, S, 3) uint8, ``times`` (T,) int64 grid times, ``tokens``
    (list of ids), ``keys`` (T, K) bool, ``buttons`` (T, 5) bool, ``mouse`` (T, 2) float32, ``recording``.

    Each process keeps at most ``max_open`` recordings open (decoder, events), least recently used
    closed first: enough for block-shuffled batches, bounded for datasets of thousands of recordings.
    """

    def __init__(self, entries: Sequence[RecordingEntry], spec: WindowSpec, vocab: Vocabulary | None = None,
                 *, max_open: int = 16):
        self.entries = list(entries)
        self.spec = spec
        self.vocab = vocab or Vocabulary.default()
        self.max_open = max_open
        if not spec.vks:
            spec.vks = sorted({vk for e in self.entries for vk in e.vks})
        stride = spec.stride or spec.frames
        self.windows: list[tuple[int, int]] = []
        for ri, e in enumerate(self.entries):
            for start in range(0, e.grid_len - spec.frames + 1, stride):
                self.windows.append((ri, start))
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
            rec.table = EventTable(list(rec.reader.iter(topics=["keyboard", "mouse", "mouse/raw"])))
        return rec.table

    def events(self, ri: int, start_ns: int, end_ns: int) -> list[Any]:
        """Input events of recording ``ri`` in ``[start_ns, end_ns)`` (pointer buttons as raw flags)."""
        return self.table(ri).between(start_ns, end_ns)

    def grid_frames(self, ri: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid times and, for each, the index of the frame shown then (last captured at or before it)."""
        e = self.entries[ri]
        times = e.grid_start + (start + np.arange(n, dtype=np.int64)) * GRID_NS
        idx = np.searchsorted(e.frame_t, times, side="right") - 1
        return times, np.clip(idx, 0, len(e.frame_t) - 1)

    def _frame(self, ri: int, k: int) -> np.ndarray:
        rec = self._open(ri)
        img = rec.fitted.get(k)
        if img is None:
            if rec.scaler is None:
                from av.video.reformatter import VideoReformatter

                rec.scaler = VideoReformatter()
            frame = rec.video.frame_obj_at(int(self.entries[ri].frame_pts[k]))
            img = rec.fitted[k] = fit_frame(frame, self.spec.image_size, self.spec.aspect, rec.scaler)
            if len(rec.fitted) > 2 * self.spec.frames:
                rec.fitted.popitem(last=False)
        return img

    def __getitem__(self, i: int) -> dict[str, Any]:
        ri, start = self.windows[i]
        spec = self.spec
        times, idx = self.grid_frames(ri, start, spec.frames)
        frames = np.empty((spec.frames, spec.image_size, spec.image_size, 3), np.uint8)
        for j, k in enumerate(idx.tolist()):
            frames[j] = self._frame(ri, k)
        tau = spec.tau_ms * 1_000_000
        t0, t_end = int(times[0]), int(times[-1]) + GRID_NS
        table = self.table(ri)
        keys, buttons, mouse = table.ticks(t0, spec.frames, spec.vks)
        tokens = encode_window(table.between(t0 - tau, t_end), times.tolist(), tau, self.vocab,
                               merge_motion_ns=spec.merge_motion_ms * 1_000_000)
        return {"frames": frames, "times": times, "tokens": tokens, "keys": keys, "buttons": buttons,
                "mouse": mouse, "recording": ri}


def _in_worker() -> bool:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return False
    return get_worker_info() is not None


class BlockShuffleSampler:
    """Shuffles blocks of consecutive windows of one recording, not single windows.

    Random single windows make every read a seek to the previous keyframe plus a decode forward (up to
    a GOP of frames thrown away); within a block the decoder just continues. Blocks are small (default
    8 windows) so batches still mix recordings; a new order each epoch (``set_epoch``) as usual.
    """

    def __init__(self, dataset: WindowDataset, block: int = 8, seed: int = 0):
        self.block, self.seed, self.epoch = block, seed, 0
        blocks: list[list[int]] = []
        for i, (ri, _start) in enumerate(dataset.windows):
            if not blocks or len(blocks[-1]) >= block or dataset.windows[blocks[-1][0]][0] != ri:
                blocks.append([])
            blocks[-1].append(i)
        self.blocks = blocks

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = list(range(len(self.blocks)))
        random.Random(self.seed + self.epoch).shuffle(order)
        self.epoch += 1
        for b in order:
            yield from self.blocks[b]

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks)


def _worker_init(_worker_id: int) -> None:
    """End a spawned worker with ``os._exit`` once Python has finished with it.

    Torch abandons a worker's result-queue thread when the loader is dropped mid-epoch (``max_steps``,
    a benchmark, Ctrl-C); if that thread is still inside native code when the process runs its C++
    static destructors, the worker dies with "terminate called without an active exception" and the
    parent prints a "killed by signal: Aborted" traceback. Nothing is left to save at that point, so
    skipping the destructors is safe and keeps the log clean.
    """
    import atexit
    import sys

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    atexit.register(leave)


def make_loader(ds: Any, *, batch_size: int, shuffle: bool, num_workers: int = 0, pad_id: int = 0, seed: int = 0):
    """A ``DataLoader`` with spawned workers (PyAV is not fork-safe) and padded token batches; window
    datasets are shuffled by blocks (``BlockShuffleSampler``), other datasets window by window."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from .collate import Collate

    sampler = None
    if shuffle:
        sampler = (BlockShuffleSampler(ds, seed=seed) if isinstance(ds, WindowDataset)
                   else RandomSampler(ds, generator=torch.Generator().manual_seed(seed)))
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=Collate(pad_id), persistent_workers=num_workers > 0,
                      worker_init_fn=_worker_init if num_workers > 0 else None,
                      multiprocessing_context="spawn" if num_workers > 0 else None)


def make_datamodule(train: WindowDataset, val: WindowDataset | None, *, batch_size: int = 16, num_workers: int = 2,
                    pad_id: int = 0, seed: int = 0):
    """A Lightning ``DataModule`` (``GameDataModule``) over the two datasets: spawned workers, block-shuffled
    training windows, padded token batches."""
    return _datamodule_class()(train, val, batch_size=batch_size, num_workers=num_workers, pad_id=pad_id, seed=seed)


_DATAMODULE: Any = None


def _datamodule_class() -> Any:
    """Built on first use so that importing this module does not import Lightning; registered as
    ``capture.dataset.GameDataModule`` so that it pickles (``ddp_spawn`` sends the datamodule to each process)."""
    global _DATAMODULE
    if _DATAMODULE is None:
        import pytorch_lightning as pl

        class GameDataModule(pl.LightningDataModule):
            def __init__(self, train: WindowDataset, val: WindowDataset | None, *, batch_size: int, num_workers: int,
                         pad_id: int, seed: int):
                super().__init__()
                self.train, self.val = train, val
                self.options = {"batch_size": batch_size, "num_workers": num_workers, "pad_id": pad_id, "seed": seed}

            def train_dataloader(self):
                return make_loader(self.train, shuffle=True, **self.options)

            def val_dataloader(self):
                if self.val is None or not len(self.val):
                    return []
                return make_loader(self.val, shuffle=False, **self.options)

        GameDataModule.__module__, GameDataModule.__qualname__ = __name__, "GameDataModule"
        _DATAMODULE = GameDataModule
    return _DATAMODULE


def __getattr__(name: str) -> Any:
    if name == "GameDataModule":
        return _datamodule_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
