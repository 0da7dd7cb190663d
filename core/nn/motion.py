"""The motion cue: how far and which way the whole image moved between consecutive frames, embedded."""

from __future__ import annotations

import torch
from torch import nn


class MotionCue(nn.Module):
    """The phase-correlation surface around zero shift between each frame and the next, embedded.

    Camera motion (mouse look in a shooter) moves the whole image by a pixel or less per tick at model
    size; a CNN has to learn correlation to see that and, trained for minutes, did not (mouse Pearson
    0.06 where phase correlation alone reached 0.8). The central ``(2r+1)^2`` values of the normalised
    cross-power spectrum's inverse say how far and which way the image moved, sub-pixel included, for any
    game; the network learns what that motion means (mouse, strafing, scrolling) and when to ignore it.

    With ``peak`` the embedding also gets the surface's peak location refined to sub-pixel (the shift the
    optical-flow baseline reports). Typical camera turns move the image a third of a pixel at model size,
    so the peak sits at zero shift and only its neighbours' imbalance says which way it moved: a linear
    read of the surface recovered Pearson 0.47 with the mouse on a held-out game, the refined peak 0.65.
    With ``peak_global`` that peak is searched over the whole surface: fast turns move the image 5-10 px,
    beyond the patch, where a patch-bound peak lands on a wrong neighbour (the same read then gave 0.85).
    """

    GAIN = 4.0  # a clean shift peaks near 1, noise near 1/sqrt(H*W): brought to the scale of the tokens

    def __init__(self, radius: int, d_model: int, peak: bool = False, peak_global: bool = False,
                 causal: bool = False):
        super().__init__()
        self.causal = causal
        self.radius = radius
        self.with_peak = peak
        self.peak_global = peak_global
        side = 2 * radius + 1
        self.embed = nn.Sequential(nn.Linear(side * side + 2 * peak, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def correlation(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) float frames -> (B, T, H, W) phase correlation of each frame with the next (the
        last with itself; ``causal``: of the previous frame with each, the first with itself), zero shift at
        (H // 2, W // 2)."""
        with torch.autocast(frames.device.type, enabled=False):
            gray = frames.float().mean(2)
            gray = gray - gray.mean((-2, -1), keepdim=True)
            h, w = gray.shape[-2:]
            hann = torch.outer(torch.hann_window(h, periodic=False, device=gray.device),
                               torch.hann_window(w, periodic=False, device=gray.device))
            spec = torch.fft.rfft2(gray * hann)
            if self.causal:  # a policy must not see the future: the motion that led to each frame
                cross = spec * torch.cat([spec[:, :1], spec[:, :-1]], 1).conj()
            else:
                cross = torch.cat([spec[:, 1:], spec[:, -1:]], 1) * spec.conj()
            corr = torch.fft.irfft2(cross / (cross.abs() + 1e-6), s=(h, w))
        return torch.roll(corr, shifts=(h // 2, w // 2), dims=(-2, -1)) * self.GAIN

    def patch(self, corr: torch.Tensor) -> torch.Tensor:
        """(..., H, W) correlation -> (..., 2r+1, 2r+1): the shifts within the cue's radius, zero at the centre."""
        (h, w), r = corr.shape[-2:], self.radius
        return corr[..., h // 2 - r: h // 2 + r + 1, w // 2 - r: w // 2 + r + 1]

    @staticmethod
    def peak(grid: torch.Tensor) -> torch.Tensor:
        """(..., H, W) correlation with zero shift at (H // 2, W // 2) -> (..., 2) shift (dx, dy) in pixels:
        the highest value, moved by the parabola through it and its two neighbours on each axis (none at
        the edge)."""
        (h, w) = grid.shape[-2:]
        flat = grid.flatten(-2)
        best = flat.argmax(-1, keepdim=True)
        py, px = best // w, best % w

        def offset(pos: torch.Tensor, size: int, step: int) -> torch.Tensor:
            inner = (pos > 0) & (pos < size - 1)
            lo = flat.gather(-1, torch.where(inner, best - step, best))
            hi = flat.gather(-1, torch.where(inner, best + step, best))
            mid = flat.gather(-1, best)
            denom = lo - 2 * mid + hi
            safe = torch.where(denom < 0, denom, torch.full_like(denom, -1.0))
            return torch.where(inner & (denom < 0), 0.5 * (lo - hi) / safe, torch.zeros_like(denom)).clamp(-0.5, 0.5)

        dx = px.to(grid.dtype) - w // 2 + offset(px, w, 1)
        dy = py.to(grid.dtype) - h // 2 + offset(py, h, w)
        return torch.cat([dx, dy], -1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, 3, H, W) float frames -> the cue's embedding (B, T, 1, d) and, with ``peak``, the image
        shift (B, T, 2) from each frame to the next that it embeds (over the whole surface or its patch, as
        configured), which the mouse value head reads too."""
        corr = self.correlation(frames)
        features = self.patch(corr).flatten(-2)
        shift = None
        if self.with_peak:
            shift = self.peak(corr if self.peak_global else self.patch(corr))
            features = torch.cat([features, shift], -1)
        return self.embed(features.to(self.embed[0].weight.dtype)).unsqueeze(2), shift


