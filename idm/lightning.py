"""The thin Lightning wrapper: optimisation, logging and checkpoints around a plain IDM module.

Everything model-specific stays in ``idm.model`` (``forward(batch) -> (loss, metrics)``); this file only
adds AdamW with linear warm-up and cosine decay, metric logging, and the per-run folder layout. DDP/FSDP
and precision are Lightning's own ``strategy``/``precision`` settings, passed through unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from .config import IDMConfig


class LitIDM(pl.LightningModule):
    def __init__(self, model: nn.Module, cfg: IDMConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, metrics = self.model(batch)
        self.log_dict({f"train/{k}": v for k, v in metrics.items()}, prog_bar=True, on_step=True,
                      batch_size=batch["frames"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        _loss, metrics = self.model(batch)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=True, on_epoch=True,
                      batch_size=batch["frames"].shape[0])

    def configure_optimizers(self) -> Any:
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=self.cfg.lr)
        warm, total = self.cfg.warmup_steps, max(self.cfg.max_steps, 1)

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                                   "interval": "step"}}
