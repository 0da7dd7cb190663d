"""Training an IDM: recordings in, a run folder out (``d2e idm train`` is a thin layer over ``train_idm``).

Indexes the recordings, splits them (leave-games-out or by recording), fixes the key columns and the label
rates from the training recordings, builds the window datasets and the model, and hands them to
``core.train.fit``; then calibrates the model's decision thresholds on the tail of each training recording
that training never saw (``idm.calibrate``). Every setting goes into the run folder first (``core.run``), so a
rerun with the same folder resumes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from capture.errors import D2EError
from capture.format import RecordingReader
from core.config import DataConfig, TrainConfig
from core.data.dataset import WindowDataset, span_of
from core.data.index import (
    RecordingEntry,
    find_recordings,
    index_recordings,
    keys_of,
    split_by_game,
    split_by_recording,
)
from core.data.loader import GameBalancedSampler
from core.run import RunFolder
from core.ticks import EventTable
from core.tokens import Vocabulary

from .config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig
from .model import TickIDM, build_model


def label_rates(entries: Sequence[RecordingEntry], keys: Sequence[int], span: tuple[float, float]
                ) -> dict[str, np.ndarray]:
    """Fraction of training ticks in which each key is down, went down, and each button is down."""
    held, onsets, buttons, n = np.zeros(len(keys)), np.zeros(len(keys)), np.zeros(5), 0
    for e in entries:
        lo, hi = span_of(e, span)
        with RecordingReader(e.path) as r:
            table = EventTable(list(r.iter(topics=["keyboard", "mouse", "mouse/raw"])))
        start = e.grid_start + lo * 50_000_000
        k, b, _m = table.ticks(start, hi - lo, keys)
        held, buttons = held + k.sum(0), buttons + b.sum(0)
        onsets = onsets + table.presses(start, hi - lo, keys).sum(0)
        n += hi - lo
    return {"keys": held / max(n, 1), "presses": onsets / max(n, 1), "buttons": buttons / max(n, 1)}


def train_idm(data_paths: Sequence[str], run: RunFolder, cfg: IDMConfig, data: DataConfig, train: TrainConfig, *,
              held_out: Sequence[str] = (), val_fraction: float = 0.2, num_workers: int = 0,
              accelerator: str = "auto", devices: Any = "auto", strategy: str = "auto", num_nodes: int = 1,
              progress: bool = True, log: Any = sys.stderr) -> dict[str, Any]:
    """Train (or resume) an IDM on ``data_paths`` into ``run``; returns the training summary."""
    import torch

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
    span = (0.0, 1.0 - train.calib_fraction)
    train_ds = WindowDataset(train_set, data, vocab, stride=data.train_stride, span=span)
    val_ds = WindowDataset(val_set, data, vocab) if val_set else None
    sampler = GameBalancedSampler(train_ds, [e.game for e in train_set], seed=train.seed) \
        if train.balance_games else None
    rates = label_rates(train_set, data.keys, span) if cfg.key_pos_weight else None
    if log is not None:
        print(f"training {cfg.name} ({cfg.kind}) on {len(train_set)} recordings / {len(train_ds)} windows of "
              f"{', '.join(train_games)}; validating on {len(val_set)} recordings -> {run.path}", file=log)

    def build() -> torch.nn.Module:
        model = build_model(cfg, data, vocab)
        heads = model if isinstance(model, TickIDM) else model.ticks
        if rates is not None and heads is not None:
            heads.set_label_rates(*(torch.tensor(rates[k], dtype=torch.float32) for k in ("keys", "presses",
                                                                                          "buttons")))
        return model

    summary = fit(build, train, train_ds, val_ds, run, pad_id=vocab.pad_id, sampler=sampler,
                  num_workers=num_workers, accelerator=accelerator, devices=devices, strategy=strategy,
                  num_nodes=num_nodes, progress=progress, desc=f"training {cfg.kind} IDM", config_hash=cfg.hash())
    if train.calib_fraction > 0 and (cfg.kind == "ticks" or cfg.tick_aux_weight > 0):
        summary["calibration"] = calibrate_run(run, train_set, rates, log=log)
    return summary


def calibrate_run(run: RunFolder, train_set: Sequence[RecordingEntry] | None = None,
                  rates: dict[str, np.ndarray] | None = None, *, log: Any = sys.stderr) -> dict[str, Any]:
    """(Re)choose a trained run's decision thresholds on the held-back tail of its training recordings (the
    split saved in the run) and save them with the model; ``d2e idm calibrate`` after an update of the rules."""
    from .calibrate import calibrate

    cfg, data, train = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
    if train.calib_fraction <= 0:
        raise D2EError("this run keeps no held-back ticks to calibrate on (calib_fraction is 0)", path=run.path,
                       fix="train with --set calib_fraction=0.15")
    if train_set is None:
        train_set = index_recordings(run.split().get("train", []))
    model = build_model(cfg, data, run.vocab())
    run.load_weights(model)
    labels = calibrate(model, train_set, data, train.calib_fraction)
    kept = run.labels()
    rates_json = {k: v.tolist() for k, v in rates.items()} if rates is not None else kept.get("label_rates", {})
    run.save_labels({**kept, **labels, "label_rates": rates_json})
    cal = labels["calibration"]
    if log is not None:
        print(f"calibrated thresholds on {cal['ticks']} held-back ticks of {cal['recordings']} recordings "
              f"({len(labels['thresholds_by_game'])} games): press F1 {cal.get('press_f1') or 0:.3f}, "
              f"per-key F1 {cal.get('per_key_f1') or 0:.3f}", file=log)
    return cal
