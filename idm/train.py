"""Training an IDM with Lightning: resumable runs in one folder, DDP/FSDP/precision passed through.

The run folder is the checkpoint: ``config.json`` + ``model.safetensors`` + ``labels.json`` (vocabulary
or key list) at the end, ``training_state/last.ckpt`` (weights + optimiser + step) while training, and
``logs/`` (CSV metrics). Calling ``fit`` again on the same folder resumes from ``last.ckpt``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from capture.dataset import make_loader as data_loader

from . import checkpoint
from .config import IDMConfig
from .model import build_model


def make_loader(ds: Dataset, cfg: IDMConfig, pad_id: int, *, shuffle: bool, num_workers: int) -> DataLoader:
    return data_loader(ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=num_workers, pad_id=pad_id,
                       seed=cfg.seed)


def fit(cfg: IDMConfig, train_ds: Dataset, val_ds: Dataset | None, out_dir: str | Path, *,
        labels: dict[str, Any], pad_id: int = 0, screen_id: int | None = None, n_keys: int = 0, num_workers: int = 0,
        accelerator: str = "auto", devices: Any = "auto", strategy: str = "auto", num_nodes: int = 1,
        progress: bool = True, val_every: int | None = None) -> dict[str, Any]:
    """Train (or resume) into ``out_dir``; returns a summary with time, steps and last metrics."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from .lightning import LitIDM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg, pad_id=pad_id, n_keys=n_keys, screen_id=screen_id)
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    lit = LitIDM(model, cfg)
    state_dir = out / "training_state"
    last = state_dir / "last.ckpt"
    trainer = pl.Trainer(
        max_steps=cfg.max_steps, precision=cfg.precision, accelerator=accelerator, devices=devices,
        # a resumed run logs to the next logs/version_N instead of overwriting the first
        strategy=strategy, num_nodes=num_nodes, logger=CSVLogger(out, name="logs"),
        callbacks=[ModelCheckpoint(dirpath=state_dir, save_last=True, every_n_train_steps=max(1, cfg.max_steps // 10),
                                   save_top_k=0)],
        enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=10, gradient_clip_val=1.0,
        val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1,
        num_sanity_val_steps=0)
    train_loader = make_loader(train_ds, cfg, pad_id, shuffle=True, num_workers=num_workers)
    val_loader = make_loader(val_ds, cfg, pad_id, shuffle=False, num_workers=0) if val_ds is not None else None
    t0 = time.perf_counter()
    trainer.fit(lit, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    seconds = time.perf_counter() - t0
    raw = model._orig_mod if hasattr(model, "_orig_mod") else model
    if trainer.is_global_zero:
        checkpoint.save(out, raw, cfg, labels)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {"steps": trainer.global_step, "seconds": seconds, "metrics": metrics, "out": str(out),
            "parameters": sum(p.numel() for p in raw.parameters())}


__all__ = ["fit", "make_loader"]
