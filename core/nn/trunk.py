"""The trunk a pretrained policy hands to transfer: the causal frame encoder and the event-decoder blocks.

It lives in the core because two stages own it: ``pretrain`` trains it inside the VAPT policy and ``transfer``
starts from it. ``pretrained_trunk`` reads it straight from a pretraining run folder (``config.json``,
``data.json``, ``model.safetensors``), so transfer never needs pretrain's classes.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from capture.errors import D2EError
from core.config import EncoderConfig

from .decoder import Decoder
from .encoder import WindowEncoder

PREFIX = "trunk."  # where the trunk's weights sit in a pretrained policy's state dict


class PolicyTrunk(nn.Module):
    """The parts of a policy that transfer keeps: the causal frame encoder and the decoder blocks."""

    def __init__(self, cfg: EncoderConfig, decoder_layers: int, frames: int):
        super().__init__()
        self.encoder = WindowEncoder(cfg, frames, causal=True)
        self.decoder = Decoder(cfg.d_model, cfg.heads, decoder_layers, cfg.dropout)


def trunk_settings(pretrained: str) -> dict[str, Any]:
    """The encoder and decoder settings of a pretraining run, which a policy built on its trunk must share."""
    from core.run import DATA_CONFIG, MODEL_CONFIG, RunFolder

    run = RunFolder(pretrained)
    model, data = run.read_json(MODEL_CONFIG), run.read_json(DATA_CONFIG, {})
    if model is None or "decoder_layers" not in model:
        raise D2EError("not a pretraining run (no config.json with decoder_layers)", path=run.path,
                       fix="pass a folder written by 'd2e pretrain'")
    settings = {k: model[k] for k in EncoderConfig.field_names() if k in model}
    return {**settings, "decoder_layers": model["decoder_layers"], "image_size": data.get("image_size", 64)}


def pretrained_trunk(pretrained: str) -> dict[str, Any]:
    """The trunk's weights of a pretraining run (names relative to the trunk)."""
    from capture.errors import require
    from core.run import WEIGHTS, RunFolder

    run = RunFolder(pretrained)
    path = run.file(WEIGHTS)
    if not path.exists():
        raise D2EError("no model.safetensors", path=run.path, fix="pass a pretraining run whose training finished")
    state = require("safetensors.torch", "train").load_file(str(path))
    trunk = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    if not trunk:
        raise D2EError("the weights hold no policy trunk", path=path, fix="pass a folder written by 'd2e pretrain'")
    return trunk
