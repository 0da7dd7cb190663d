"""``PolicyConfig``: the vision-action policy pretrained on desktop recordings (VAPT), saved as ``config.json``.

The vision encoder's settings are ``EncoderConfig``'s (the same parts as the IDM's); this adds the causal event
decoder. With the run's ``DataConfig`` (frames, image size; NEP-tau is 0 for a policy: it predicts the events
after the frames it has seen) it rebuilds the exact model, and a transfer stage loads its trunk from the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capture.errors import D2EError
from core.config import DataConfig, EncoderConfig, TrainConfig, route_fields


@dataclass
class PolicyConfig(EncoderConfig):
    """Model settings of the pretrained policy.

    Attributes:
        name: Free-form id, recorded in what is fine-tuned from it.
        decoder_layers: Transformer layers of the causal event decoder.
        max_tokens: Longest event-token sequence per window; longer ones are cut (with a warning).
    """

    name: str = "vapt-tiny"
    decoder_layers: int = 2
    max_tokens: int = 768

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_tokens < 16:
            raise D2EError(f"max_tokens must be at least 16, got {self.max_tokens}")


PRESETS: dict[str, dict[str, Any]] = {
    # A few minutes on a 2-core CPU: the pipeline end to end, a small trunk for the CPU transfer experiments.
    "tiny": {"tau_ms": 0, "calib_fraction": 0.0, "max_steps": 1000},
    # Meant for GPUs: bf16, bigger frames and window; DDP/FSDP through --strategy.
    "base": {"name": "vapt-base", "tau_ms": 0, "calib_fraction": 0.0, "image_size": 128, "frames": 16,
             "d_model": 384, "encoder_layers": 6, "decoder_layers": 6, "heads": 6, "batch_size": 32,
             "max_steps": 100_000, "precision": "bf16-mixed", "max_tokens": 1536},
    "large": {"name": "vapt-large", "tau_ms": 0, "calib_fraction": 0.0, "image_size": 224, "frames": 32,
              "patch_grid": 7, "d_model": 768, "encoder_layers": 12, "decoder_layers": 12, "heads": 12,
              "batch_size": 32, "max_steps": 300_000, "precision": "bf16-mixed", "max_tokens": 3072, "compile": True},
}


def configs_from(flat: dict[str, Any], source: str = "config") -> tuple[PolicyConfig, DataConfig, TrainConfig]:
    model, data, train = route_fields(flat, PolicyConfig, DataConfig, TrainConfig, source=source)
    return (PolicyConfig.from_dict(model, source), DataConfig.from_dict(data, source),
            TrainConfig.from_dict(train, source))


def preset(name: str, **overrides: Any) -> tuple[PolicyConfig, DataConfig, TrainConfig]:
    """The three configs of a preset, with ``overrides`` (any field of any of them, by name)."""
    if name not in PRESETS:
        raise D2EError(f"unknown preset {name!r}", fix=f"choose one of {sorted(PRESETS)}")
    return configs_from({**PRESETS[name], **overrides}, source=f"preset {name}")
