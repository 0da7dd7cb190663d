"""The window encoder: frame tokens of a whole window, with time and position embeddings, through a
transformer that sees every frame (non-causal, for an IDM) or only past ones (``causal``, for a policy: its
frame differences and motion cue then look back, not forward)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import EncoderConfig
from .motion import MotionCue
from .stems import ConvStem, PretrainedStem, as_float_frames, normalise_frames


class WindowEncoder(nn.Module):
    """(B, T, H, W, 3) uint8 frames -> (B, T * grid^2, d) encoded frame tokens."""

    def __init__(self, cfg: EncoderConfig, frames: int, causal: bool = False):
        super().__init__()
        grid = cfg.patch_grid
        self.future = cfg.motion_frames if cfg.motion_input and cfg.encoder == "cnn" else 0
        self.stem: nn.Module = (PretrainedStem(cfg.encoder_path or "", cfg.d_model, grid) if cfg.encoder == "pretrained"
                                else ConvStem(cfg.d_model, grid, 3 + 3 * self.future))
        self.cue = (MotionCue(cfg.motion_cue_radius, cfg.d_model, cfg.motion_cue_peak, cfg.motion_cue_peak_global,
                              causal) if cfg.motion_cue_radius > 0 else None)
        self.time = nn.Parameter(torch.zeros(frames, 1, cfg.d_model))
        self.space = nn.Parameter(torch.zeros(1, grid * grid, cfg.d_model))
        nn.init.normal_(self.time, std=0.02)
        nn.init.normal_(self.space, std=0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, cfg.dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.layers = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.frames = frames
        self.patches = grid * grid
        self.causal = causal

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # -> (B, T * grid^2, d)
        return self.encode(frames)[0]

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoded window (B, T * grid^2, d) and the motion cue's image shift per frame (B, T, 2), or
        None without a cue peak: measured once, for the tokens and for whoever reads the shift itself."""
        b, t = frames.shape[:2]
        tokens = self.stem(normalise_frames(frames, self.future, self.causal))  # (B*T, P, d)
        tokens = tokens.reshape(b, t, *tokens.shape[1:]) + self.time[:t] + self.space
        shift = None
        if self.cue is not None:
            cue, shift = self.cue(as_float_frames(frames))
            tokens = tokens + cue
        mask = None
        if self.causal:  # a frame's tokens see their own frame and earlier ones
            frame = torch.arange(t, device=frames.device).repeat_interleave(self.patches)
            mask = torch.zeros(len(frame), len(frame), device=frames.device).masked_fill_(
                frame[None, :] > frame[:, None], float("-inf"))
        return self.norm(self.layers(tokens.reshape(b, -1, tokens.shape[-1]), mask=mask)), shift

    def per_frame(self, memory: torch.Tensor) -> torch.Tensor:  # (B, T*P, d) -> (B, T, d)
        b = memory.shape[0]
        return memory.reshape(b, -1, self.patches, memory.shape[-1]).mean(2)
