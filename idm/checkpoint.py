"""A checkpoint is a folder: ``config.json`` + ``model.safetensors`` (+ ``vocab.json``, ``labels.json``).

Self-sufficient by design (LeRobot's habit): evaluation, pseudo-labeling and resumed training rebuild the
exact model from the folder alone; loading is strict, so a mismatch fails loudly instead of silently
dropping weights (VPT's ``strict=False`` lesson). Lightning's own ``training_state/last.ckpt`` sits beside
it for resuming optimiser state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from capture.errors import D2EError, require

from .config import IDMConfig

WEIGHTS, LABELS = "model.safetensors", "labels.json"


def save(folder: str | Path, model: nn.Module, cfg: IDMConfig, labels: dict[str, Any] | None = None) -> Path:
    """Write the weights, the config and the label space (vocabulary or key list) atomically."""
    safetensors = require("safetensors.torch", "train")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".part")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if "head.weight" in state and "embed.weight" in state:
        state.pop("head.weight")  # tied to the embedding; safetensors refuses shared tensors
    safetensors.save_file(state, str(tmp), metadata={"config_hash": cfg.hash()})
    tmp.replace(folder / WEIGHTS)
    cfg.save(folder)
    if labels is not None:
        (folder / LABELS).write_text(json.dumps(labels, indent=1))
    return folder


def load_state(folder: str | Path, model: nn.Module) -> None:
    safetensors = require("safetensors.torch", "train")
    path = Path(folder) / WEIGHTS
    if not path.exists():
        raise D2EError("no model.safetensors", path=folder, fix="pass a folder written by 'd2e idm train'")
    state = safetensors.load_file(str(path))
    if "embed.weight" in state and "head.weight" not in state and hasattr(model, "head"):
        state["head.weight"] = state["embed.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise D2EError(f"weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})",
                       path=path, fix="the folder mixes files from different runs")


def load_labels(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / LABELS
    return json.loads(path.read_text()) if path.exists() else {}


def load_config(folder: str | Path) -> IDMConfig:
    return IDMConfig.load(folder)


def device_for(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
