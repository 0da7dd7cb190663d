"""Batches for training: padded token sequences, stacked arrays, block-shuffled windows, spawned workers."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset import TOKENS, WindowDataset


def collate(samples: Sequence[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    """Stack array fields into tensors; pad ``tokens`` with ``pad_id`` to the longest in the batch."""
    import torch
    from torch.utils.data import default_collate

    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key == TOKENS:
            longest = max(len(v) for v in values)
            arr = np.full((len(values), longest), pad_id, np.int64)
            for i, v in enumerate(values):
                arr[i, : len(v)] = np.asarray(v, np.int64)
            out[key] = torch.from_numpy(arr)
        elif isinstance(values[0], np.ndarray) or hasattr(values[0], "shape"):
            # default_collate stacks straight into shared memory inside a worker: one copy of the frames, not two
            out[key] = default_collate([torch.as_tensor(v) for v in values])
        elif isinstance(values[0], (int, float)):
            out[key] = torch.tensor(values)
    return out


class Collate:
    """A picklable ``collate_fn`` (spawned DataLoader workers need one)."""

    def __init__(self, pad_id: int = 0):
        self.pad_id = pad_id

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, self.pad_id)


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


class GameBalancedSampler(BlockShuffleSampler):
    """Blocks drawn game by game with equal chance: each draw picks a game uniformly, then one of its blocks.

    With one sampler over all windows a game recorded for 2 minutes gets a tenth of the steps of one recorded
    for 20; spread over nine games, each was learned slowly (measured on the IDM's keys). An epoch is as many
    windows as the dataset has; blocks of one game are drawn without replacement until all were used.
    """

    def __init__(self, dataset: WindowDataset, games: Sequence[str], block: int = 8, seed: int = 0):
        super().__init__(dataset, block, seed)
        self.by_game: dict[str, list[int]] = {}
        for b, blk in enumerate(self.blocks):
            self.by_game.setdefault(games[dataset.windows[blk[0]][0]], []).append(b)
        self.size = len(dataset)

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        names = sorted(self.by_game)
        queues: dict[str, list[int]] = {}
        served = 0
        while served < self.size:
            game = rng.choice(names)
            if not queues.get(game):
                queues[game] = rng.sample(self.by_game[game], len(self.by_game[game]))
            for i in self.blocks[queues[game].pop()][:self.size - served]:
                yield i
                served += 1

    def __len__(self) -> int:
        return self.size


class MixtureSampler:
    """Blocks drawn from several window datasets, concatenated in the given order, with the given weights: e.g.
    ground-truth recordings and pseudo-labeled videos mixed at a chosen share, whatever their sizes."""

    def __init__(self, datasets: Sequence[WindowDataset], weights: Sequence[float], block: int = 8, seed: int = 0):
        self.parts = [BlockShuffleSampler(ds, block, seed + i) for i, ds in enumerate(datasets)]
        self.offsets = np.cumsum([0, *(len(ds) for ds in datasets)])[:-1].tolist()
        total = sum(w for w, ds in zip(weights, datasets) if len(ds))
        self.weights = [w / total if len(ds) else 0.0 for w, ds in zip(weights, datasets)]
        self.size, self.seed, self.epoch = sum(len(ds) for ds in datasets), seed, 0

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        queues: list[list[int]] = [[] for _ in self.parts]
        served = 0
        while served < self.size:
            k = rng.choices(range(len(self.parts)), self.weights)[0]
            if not queues[k]:
                queues[k] = rng.sample(range(len(self.parts[k].blocks)), len(self.parts[k].blocks))
            for i in self.parts[k].blocks[queues[k].pop()][:self.size - served]:
                yield self.offsets[k] + i
                served += 1

    def __len__(self) -> int:
        return self.size


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


def make_loader(ds: Any, *, batch_size: int, shuffle: bool, num_workers: int = 0, pad_id: int = 0, seed: int = 0,
                sampler: Any = None):
    """A ``DataLoader`` with spawned workers (PyAV is not fork-safe) and padded token batches; window
    datasets are shuffled by blocks (``BlockShuffleSampler``) unless a ``sampler`` is given."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    if sampler is None and shuffle:
        sampler = (BlockShuffleSampler(ds, seed=seed) if isinstance(ds, WindowDataset)
                   else RandomSampler(ds, generator=torch.Generator().manual_seed(seed)))
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=Collate(pad_id), persistent_workers=num_workers > 0,
                      worker_init_fn=_worker_init if num_workers > 0 else None,
                      multiprocessing_context="spawn" if num_workers > 0 else None)
