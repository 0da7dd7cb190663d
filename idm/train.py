"""Training an IDM: recordings in, a run folder out (``d2e idm train`` is a thin layer over ``train_idm``).

Indexes the recordings, splits them (leave-games-out or by recording), fixes the key columns from the
training recordings, builds the window datasets and the model, and hands them to ``core.train.fit``. Every
setting goes into the run folder first (``core.run``), so a rerun with the same folder resumes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from capture.errors import D2EError
from core.config import DataConfig, TrainConfig
from core.data.dataset import WindowDataset
from core.data.index import find_recordings, index_recordings, keys_of, split_by_game, split_by_recording
from core.run import RunFolder
from core.tokens import Vocabulary

from .config import IDMConfig
from .model import build_model


def train_idm(data_paths: Sequence[str], run: RunFolder, cfg: IDMConfig, data: DataConfig, train: TrainConfig, *,
              held_out: Sequence[str] = (), val_fraction: float = 0.2, num_workers: int = 0,
              accelerator: str = "auto", devices: Any = "auto", strategy: str = "auto", num_nodes: int = 1,
              progress: bool = True, log: Any = sys.stderr) -> dict[str, Any]:
    """Train (or resume) an IDM on ``data_paths`` into ``run``; returns the training summary."""
    from core.train import fit

    entries = index_recordings(find_recordings(data_paths))
    if held_out:
        train_set, val_set = split_by_game(entries, held_out)
    else:
        train_set, val_set = split_by_recording(entries, val_fraction, train.seed)
    if not train_set:
        raise D2EError("no training recordings left after the split", fix="pass more data or fewer --held-out games")
    if not data.keys:
        data.keys = keys_of(train_set)
    vocab = Vocabulary.default()
    cfg.vocab_size = len(vocab)
    run.save_configs(cfg, data, train)
    run.save_vocab(vocab)
    train_games = sorted({e.game for e in train_set})
    run.save_split([e.path for e in train_set], [e.path for e in val_set], train_games, list(held_out))
    train_ds = WindowDataset(train_set, data, vocab, stride=data.train_stride)
    val_ds = WindowDataset(val_set, data, vocab) if val_set else None
    if log is not None:
        print(f"training {cfg.name} ({cfg.kind}) on {len(train_set)} recordings / {len(train_ds)} windows of "
              f"{', '.join(train_games)}; validating on {len(val_set)} recordings -> {run.path}", file=log)
    return fit(lambda: build_model(cfg, data, vocab), train, train_ds, val_ds, run, pad_id=vocab.pad_id,
               num_workers=num_workers, accelerator=accelerator, devices=devices, strategy=strategy,
               num_nodes=num_nodes, progress=progress, desc=f"training {cfg.kind} IDM",
               config_hash=cfg.hash())
