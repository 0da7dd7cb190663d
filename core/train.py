"""The training entry every stage calls with its own model: Lightning underneath, quiet, resumable.

A stage hands over a plain ``nn.Module`` whose ``forward(batch)`` returns ``(loss, metrics)``, its datasets
and a run folder; this file adds AdamW with warm-up and cosine decay, one progress bar (loss, steps/s, ETA),
CSV metrics, resuming from the folder's ``training_state/last.ckpt``, and the final weights. DDP/FSDP and
precision are Lightning's own ``strategy``/``precision`` settings, passed through unchanged. Lightning's
banners, tips and deprecation warnings do not reach the terminal.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .data.loader import make_loader
from .run import SUMMARY, RunFolder


def quiet_lightning() -> None:
    """Lightning logs device info and advertisements at INFO and warns about its own internals: not ours.
    (Imported first: importing it sets its loggers' level.)"""
    import pytorch_lightning  # noqa: F401

    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("pytorch_lightning", "lightning_fabric", "lightning", "torch.utils.data"):
        warnings.filterwarnings("ignore", module=module)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _lit_module(model: nn.Module, cfg: TrainConfig) -> Any:
    import pytorch_lightning as pl

    class LitModel(pl.LightningModule):
        """Optimisation and logging around a plain module; everything model-specific stays in the module."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
            loss, metrics = self.model(batch)
            self.log_dict({f"train/{k}": v for k, v in metrics.items()}, on_step=True, batch_size=_size(batch))
            return loss

        def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
            _loss, metrics = self.model(batch)
            self.log_dict({f"val/{k}": v for k, v in metrics.items()}, on_epoch=True, batch_size=_size(batch))

        def configure_optimizers(self) -> Any:
            params = list(self.model.parameters())
            opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
                                     {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=cfg.lr)
            warm, total = cfg.warmup_steps, max(cfg.max_steps, 1)

            def schedule(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

            return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                                       "interval": "step"}}

    return LitModel()


def _size(batch: dict[str, Any]) -> int:
    return len(next(iter(v for v in batch.values() if hasattr(v, "shape"))))


def _progress_callback(total: int, desc: str) -> Any:
    import pytorch_lightning as pl
    from tqdm import tqdm

    class Progress(pl.Callback):
        """One bar over all steps (resumed runs start where they left off): loss and steps/s, on a terminal only."""

        def on_train_start(self, trainer: Any, module: Any) -> None:
            self.bar = tqdm(total=total, initial=trainer.global_step, desc=desc, unit="step", disable=None,
                            dynamic_ncols=True, leave=False)

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.bar.update(trainer.global_step - self.bar.n)
            loss = trainer.callback_metrics.get("train/loss")
            if loss is not None:
                self.bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)

        def on_train_end(self, trainer: Any, module: Any) -> None:
            self.bar.close()

    return Progress()


def fit(build_model: Callable[[], nn.Module], cfg: TrainConfig, train_ds: Any, val_ds: Any, run: RunFolder, *,
        pad_id: int = 0, sampler: Any = None, num_workers: int = 0, accelerator: str = "auto", devices: Any = "auto",
        strategy: str = "auto", num_nodes: int = 1, progress: bool = True, desc: str = "training",
        val_every: int | None = None, config_hash: str = "") -> dict[str, Any]:
    """Build the model (after seeding, so a seed gives the same weights) and train or resume it into ``run``;
    saves the weights and ``train_summary.json`` and returns the summary (steps, seconds, last metrics,
    parameters). The stage has saved its configs beforehand."""
    quiet_lightning()
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    run.path.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model()
    trained = torch.compile(model) if cfg.compile else model
    lit = _lit_module(trained, cfg)
    last = run.last_checkpoint
    callbacks = [ModelCheckpoint(dirpath=run.state_dir, save_last=True, every_n_train_steps=max(1, cfg.max_steps // 10),
                                 save_top_k=0)]
    if progress:
        callbacks.append(_progress_callback(cfg.max_steps, desc))
    trainer = pl.Trainer(
        max_steps=cfg.max_steps, precision=cfg.precision, accelerator=accelerator, devices=devices,
        # a resumed run logs to the next logs/version_N instead of overwriting the first
        strategy=strategy, num_nodes=num_nodes, logger=CSVLogger(run.path, name="logs"), callbacks=callbacks,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=10, gradient_clip_val=cfg.grad_clip,
        val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1, num_sanity_val_steps=0)
    train_loader = make_loader(train_ds, batch_size=cfg.batch_size, shuffle=True, num_workers=num_workers,
                               pad_id=pad_id, seed=cfg.seed, sampler=sampler)
    val_loader = (make_loader(val_ds, batch_size=cfg.batch_size, shuffle=False, num_workers=0, pad_id=pad_id)
                  if val_ds is not None and len(val_ds) else None)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        quiet_lightning()
        trainer.fit(lit, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    seconds = time.perf_counter() - t0
    summary = {"steps": trainer.global_step, "seconds": seconds, "out": str(run.path),
               "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
               "parameters": sum(p.numel() for p in model.parameters())}
    if trainer.is_global_zero:
        run.save_weights(model, config_hash)
        run.write_json(SUMMARY, summary)
    return summary
