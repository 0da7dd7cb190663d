"""Load a checkpoint folder as a ``Labeler``: frames on the 20 Hz grid -> events with confidences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import checkpoint
from .label import Labeler


def model_info(folder: str) -> dict[str, Any]:
    """What pseudo-labels record about the model that made them."""
    import hashlib
    from pathlib import Path

    cfg = checkpoint.load_config(folder)
    digest = hashlib.sha256()
    with open(Path(folder) / checkpoint.WEIGHTS, "rb") as f:  # retrained with the same config: other labels
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"model_id": cfg.name, "kind": cfg.kind, "config_hash": cfg.hash(),
            "weights_hash": digest.hexdigest()[:12], "image_size": cfg.image_size, "model_path": str(folder)}


def load_labeler(folder: str, *, device: str = "auto", batch_size: int = 8) -> Labeler:

    from .infer import predict_ticks
    from .model import build_model

    cfg = checkpoint.load_config(folder)
    labels = checkpoint.load_labels(folder)
    dev = checkpoint.device_for(device)
    if cfg.kind == "ticks":
        vks = labels.get("vks") or cfg.keys
        model = build_model(cfg, n_keys=len(vks))
        checkpoint.load_state(folder, model)

        def label_ticks(frames: np.ndarray, times: Sequence[int]) -> list[tuple[Any, float]]:
            return predict_ticks(model, cfg, frames, times, vks, device=dev, batch_size=batch_size)

        return label_ticks
    from .events import load_event_labeler

    return load_event_labeler(folder, cfg, labels, dev, batch_size)
