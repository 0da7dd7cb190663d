"""Pretraining the VAPT policy: recordings (and pseudo-labeled videos) in, a run folder out.

Ground-truth recordings (generated games, the user's own ``d2e record`` sessions) and pseudo-labeled videos
(``d2e label`` outputs, read through the same dataset layer) are mixed at a chosen share: D2E found
pseudo-labels hurt LIBERO but helped navigation, so the mixture is a setting, not a constant. Pseudo-labels
the labeler was unsure of can be left out (``min_confidence``). Validation holds out whole recordings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from capture.errors import D2EError
from core.config import DataConfig, TrainConfig
from core.data.dataset import WindowDataset
from core.data.index import find_recordings, index_recordings, keys_of, split_by_recording
from core.data.loader import MixtureSampler
from core.run import RunFolder
from core.tokens import Vocabulary

from .config import PolicyConfig
from .policy import build_policy


class _Concat:
    """Windows of several datasets as one (indices as ``MixtureSampler`` gives them)."""

    def __init__(self, parts: Sequence[WindowDataset]):
        self.parts = [p for p in parts]
        self.starts = [sum(len(p) for p in self.parts[:i]) for i in range(len(self.parts))]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, i: int) -> dict[str, Any]:
        k = max(j for j, s in enumerate(self.starts) if s <= i and len(self.parts[j]))
        return self.parts[k][i - self.starts[k]]


def pretrain(data_paths: Sequence[str], run: RunFolder, cfg: PolicyConfig, data: DataConfig, train: TrainConfig, *,
             pseudo_paths: Sequence[str] = (), pseudo_weight: float = 0.5, min_confidence: float = 0.0,
             val_fraction: float = 0.1, num_workers: int = 0, accelerator: str = "auto", devices: Any = "auto",
             strategy: str = "auto", num_nodes: int = 1, progress: bool = True, log: Any = sys.stderr
             ) -> dict[str, Any]:
    """Train (or resume) the policy on ``data_paths`` [+ ``pseudo_paths``] into ``run``; returns the summary."""
    from core.train import fit

    if not data_paths and not pseudo_paths:
        raise D2EError("no recordings given", fix="pass recordings (and/or --pseudo label folders)")
    truth = index_recordings(find_recordings(data_paths)) if data_paths else []
    pseudo = index_recordings(find_recordings(pseudo_paths)) if pseudo_paths else []
    truth_train, truth_val = split_by_recording(truth, val_fraction, train.seed) if len(truth) > 1 else (truth, [])
    if not data.keys:
        data.keys = keys_of(truth_train + pseudo)
    vocab = Vocabulary.default()
    run.save_configs(cfg, data, train)
    run.save_vocab(vocab)
    run.save_split([e.path for e in truth_train + pseudo], [e.path for e in truth_val],
                   sorted({e.game for e in truth_train + pseudo}), [])
    run.write_json("mixture.json", {"ground_truth": [e.path for e in truth_train], "pseudo_labels": [e.path for e in
                                                                                                   pseudo],
                                    "pseudo_weight": pseudo_weight if pseudo and truth_train else float(bool(pseudo)),
                                    "min_confidence": min_confidence})
    parts = [WindowDataset(truth_train, data, vocab, stride=data.train_stride),
             WindowDataset(pseudo, data, vocab, stride=data.train_stride, min_confidence=min_confidence)]
    sampler = MixtureSampler(parts, [1 - pseudo_weight, pseudo_weight], seed=train.seed)
    val_ds = WindowDataset(truth_val, data, vocab) if truth_val else None
    if log is not None:
        print(f"pretraining {cfg.name} on {len(truth_train)} recordings + {len(pseudo)} pseudo-labeled videos "
              f"({len(parts[0])} + {len(parts[1])} windows, pseudo-label share {pseudo_weight if pseudo else 0:g}); "
              f"validating on {len(truth_val)} recordings -> {run.path}", file=log)
    return fit(lambda: build_policy(cfg, data, vocab), train, _Concat(parts), val_ds, run, pad_id=vocab.pad_id,
               sampler=sampler, num_workers=num_workers, accelerator=accelerator, devices=devices,
               strategy=strategy, num_nodes=num_nodes, progress=progress, desc="pretraining", config_hash=cfg.hash())
