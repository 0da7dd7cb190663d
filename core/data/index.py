"""The recording index: frame times and key codes of each recording, read without decoding any video.

It reads only the ``screen`` and ``keyboard`` topics, so a thousand recordings index in seconds, local or
remote (fsspec). Splits are by whole recordings (never windows of one recording on both sides) or by game.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.format import RecordingReader
from capture.schema import KeyboardEvent, ScreenFrame
from capture.storage import expand_inputs

from ..grid import grid_length


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
        return grid_length(int(self.frame_t[0]), int(self.frame_t[-1]))


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


def keys_of(entries: Sequence[RecordingEntry]) -> list[int]:
    """Every key code seen in these recordings, sorted: the key columns a model trained on them predicts."""
    return sorted({vk for e in entries for vk in e.vks})


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
    """A random split by whole recordings."""
    order = list(entries)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction)) if len(order) > 1 else 0
    return order[n_val:], order[:n_val]
