"""Frames to patch tokens: a small CNN trained from scratch, or a local pretrained vision model."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Scale of the frame-difference channels: without it a tick model sat at chance for 300 steps on a
# 4-pixel square moved by the keys (the difference signal is ~1% of the appearance signal); with x8 it
# learned the square in ~100 steps.
MOTION_GAIN = 8.0


def as_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, T, 3, H, W) in [0, 1]; float input is already laid out so."""
    if frames.dtype == torch.uint8:
        return frames.permute(0, 1, 4, 2, 3).float().div_(255.0)
    return frames


def normalise_frames(frames: torch.Tensor, future: int = 0, causal: bool = False) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) or float (B, T, 3, H, W) -> float (B*T, 3 + 3 * future, H, W) around zero.

    With ``future`` each frame also carries its differences to the next ``future`` frames (the last frame of
    the window stands in for frames past it): what an action changed is often a few pixels (a paddle, a
    cursor) that a pooled appearance feature averages away, so the first convolutions should see the change
    itself, and a key pressed late in a tick shows only one or two frames later. ``causal`` (a policy, which
    must not see the future): differences to the previous frames instead (the first frame stands in for
    frames before it).
    """
    frames = (as_float_frames(frames) - 0.5) / 0.25
    if future:  # differences are sparse and faint: amplified so they are not lost next to appearance
        t = frames.shape[1]
        other = (lambda i, j: max(i - j, 0)) if causal else (lambda i, j: min(i + j, t - 1))
        diffs = [(frames[:, [other(i, j) for i in range(t)]] - frames) * MOTION_GAIN for j in range(1, future + 1)]
        frames = torch.cat([frames, *diffs], 2)
    b, t = frames.shape[:2]
    return frames.reshape(b * t, *frames.shape[2:])


class ConvStem(nn.Module):
    """Four stride-2 conv blocks (16x downsampling), pooled to a ``grid x grid`` map of tokens.

    BatchNorm, not GroupNorm: per-sample GroupNorm let the border pattern of mostly static game screens
    dominate every token, and the tick model stayed at chance on Breakout for 600 steps; with BatchNorm
    it learns the paddle keys within a few hundred (both measured on the same data).
    """

    def __init__(self, d_model: int, grid: int, in_channels: int = 3):
        super().__init__()
        chans = [in_channels, 32, 64, 128, d_model]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.GELU()]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, grid*grid, d)
        return self.pool(self.body(x)).flatten(2).transpose(1, 2)


class PretrainedStem(nn.Module):
    """A local ``transformers`` vision model (no download) whose patch tokens are pooled to the grid."""

    def __init__(self, path: str, d_model: int, grid: int):
        super().__init__()
        from capture.errors import require

        transformers = require("transformers", "train")
        self.backbone = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        hidden = self.backbone.config.hidden_size
        self.proj = nn.Linear(hidden, d_model)
        self.grid = grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(pixel_values=x).last_hidden_state  # (N, 1 + P, hidden) for ViT-like models
        side = int(math.isqrt(tokens.shape[1] - 1))
        patches = tokens[:, -side * side:].transpose(1, 2).reshape(x.shape[0], -1, side, side)
        pooled = F.adaptive_avg_pool2d(patches, self.grid).flatten(2).transpose(1, 2)
        return self.proj(pooled)
