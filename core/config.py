"""Configs shared by every stage: how windows are cut (``DataConfig``) and how training runs (``TrainConfig``).

Each stage adds a model config of its own (``idm.config.IDMConfig``, ``pretrain.config.PolicyConfig``). A run
folder stores the three side by side (``core.run``), so the preprocessing a model was trained with travels
with it and labeling, evaluation and resuming read it instead of restating it. Field names are unique
across the three, so ``--set name=value`` finds its config by name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from capture.errors import D2EError

C = TypeVar("C", bound="Config")


@dataclass
class Config:
    """JSON round trip with errors that name the bad field and list the valid ones."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], source: str = "config") -> C:
        unknown = sorted(set(data) - cls.field_names())
        if unknown:
            raise D2EError(f"unknown {cls.__name__} fields {unknown}", path=source,
                           fix=f"valid fields: {sorted(cls.field_names())}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise D2EError(f"bad {cls.__name__} ({exc})", path=source) from exc

    def hash(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


@dataclass
class DataConfig(Config):
    """How recordings become training windows; the same settings prepare frames for labeling.

    Attributes:
        frames: Grid points (20 Hz) per window; an IDM sees all of them (non-causal).
        image_size: Frames are resized to this square size (pixels).
        aspect: ``stretch`` (D2E: aspect not kept), ``pad`` (letterbox) or ``crop`` (centre crop).
        tau_ms: NEP-tau: actions are shifted this much later before interleaving with frames (D2E: 100-150).
        merge_motion_ms: Raw mouse motion is summed per slot of this length in the token labels, so a window
            holds at most one motion event per slot; 1 kHz raw input unmerged would need ~16 tokens per ms.
        keys: VK codes of the per-tick key columns, in order; filled from the training recordings when empty.
        stride: Grid points between training window starts (default: half a window).
    """

    frames: int = 8
    image_size: int = 64
    aspect: str = "stretch"
    tau_ms: int = 100
    merge_motion_ms: int = 50
    keys: list[int] = field(default_factory=list)
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.aspect not in ("stretch", "pad", "crop"):
            raise D2EError(f"aspect must be stretch, pad or crop, got {self.aspect!r}")
        if self.frames < 2:
            raise D2EError(f"frames must be >= 2 (an IDM needs the frame after an action), got {self.frames}")
        if self.image_size % 16:
            raise D2EError(f"image_size must be a multiple of 16, got {self.image_size}")

    @property
    def train_stride(self) -> int:
        return self.stride or max(1, self.frames // 2)


@dataclass
class TrainConfig(Config):
    """Optimisation and hardware settings of one training run.

    Attributes:
        lr, weight_decay: AdamW (no decay on biases and norms).
        batch_size: Windows per step (per device).
        max_steps: Optimiser steps; a resumed run continues to this many.
        warmup_steps: Linear warm-up, then cosine decay to a tenth of ``lr``.
        precision: Lightning precision: ``32`` on the CPU, ``bf16-mixed`` on a GPU.
        compile: Wrap the model with ``torch.compile`` (GPU runs).
        seed: Initialisation and data order.
        grad_clip: Gradient norm clip.
        balance_games: Draw training windows game by game with equal chance, so a game with short recordings is
            not starved by the others (blocks of consecutive windows stay together for cheap decoding).
        calib_fraction: The last fraction of each training recording is kept out of training to calibrate the
            model's decisions (e.g. per-key thresholds) after it; 0 disables calibration.
    """

    lr: float = 3e-4
    weight_decay: float = 0.01
    batch_size: int = 16
    max_steps: int = 2000
    warmup_steps: int = 100
    precision: str = "32"
    compile: bool = False
    seed: int = 0
    grad_clip: float = 1.0
    balance_games: bool = True
    calib_fraction: float = 0.15


@dataclass
class EncoderConfig(Config):
    """The vision encoder every stage builds from the same parts (``core.nn``); stage configs extend it.

    Attributes:
        encoder: ``cnn`` (a small CNN trained from scratch) or ``pretrained`` (a local ``transformers`` vision
            model at ``encoder_path``; never downloaded).
        encoder_path: Folder of a local pretrained vision model when ``encoder="pretrained"``.
        patch_grid: Each frame becomes ``patch_grid**2`` tokens after the stem (spatial detail for clicks).
        motion_input: The CNN also sees each frame's differences to the following ones (small moving objects
            survive pooling). Pretrained encoders take plain RGB.
        motion_frames: How many following frames each frame is differenced with: a key pressed late in a tick
            shows one or two frames later, and a paddle moves a pixel a frame.
        motion_cue_radius: The encoder also sees the phase-correlation surface between consecutive frames within
            this many pixels of zero shift (global camera motion, sub-pixel); 0 disables.
        motion_cue_peak: The cue also carries that surface's peak refined to sub-pixel (the optical-flow shift).
        motion_cue_peak_global: That peak is searched over the whole surface, not only the cue's patch (fast
            turns move a 64 px image 5-10 px per frame). Measurements: ``docs/idm-ablations.md``.
        d_model: Width of the encoder (and of the stage's decoder).
        encoder_layers: Transformer layers over all frame tokens of the window.
        heads: Attention heads (``d_model`` must divide by it).
        dropout: Dropout in the transformers.
    """

    encoder: str = "cnn"
    encoder_path: str | None = None
    patch_grid: int = 4
    motion_input: bool = True
    motion_frames: int = 3
    motion_cue_radius: int = 4
    motion_cue_peak: bool = True
    motion_cue_peak_global: bool = True
    d_model: int = 128
    encoder_layers: int = 2
    heads: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.encoder not in ("cnn", "pretrained"):
            raise D2EError(f"encoder must be 'cnn' or 'pretrained', got {self.encoder!r}")
        if self.encoder == "pretrained" and not self.encoder_path:
            raise D2EError("encoder='pretrained' needs encoder_path (a local folder; nothing is downloaded)")
        if self.d_model % self.heads:
            raise D2EError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")


def route_fields(flat: dict[str, Any], *classes: type[Config], source: str = "config") -> list[dict[str, Any]]:
    """Split ``flat`` (one dict of overrides or a legacy single config) into one dict per config class."""
    out: list[dict[str, Any]] = [{} for _ in classes]
    for key, value in flat.items():
        for i, cls in enumerate(classes):
            if key in cls.field_names():
                out[i][key] = value
                break
        else:
            valid = sorted(set().union(*(c.field_names() for c in classes)))
            raise D2EError(f"unknown config field {key!r}", path=source, fix=f"valid fields: {valid}")
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` items; values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise D2EError(f"--set {item!r} is not key=value", fix="e.g. --set max_steps=4000")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
