"""Per-tick heads (VPT-style): key and button states, binned mouse motion, and a regressed mouse value."""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

KEYS, BUTTONS, MOUSE, MOUSE_VALUE, VALID = "keys", "buttons", "mouse", "mouse_value", "valid"


def mu_law_bin(x: torch.Tensor, bins: int, max_value: float, mu: float = 255.0) -> torch.Tensor:
    """VPT's camera quantisation: mu-law compress |x|/max to [-1, 1], then ``bins`` uniform bins."""
    v = torch.clamp(x / max_value, -1, 1)
    v = torch.sign(v) * torch.log1p(mu * v.abs()) / math.log1p(mu)
    return torch.round((v + 1) / 2 * (bins - 1)).long()


def mu_law_value(b: torch.Tensor, bins: int, max_value: float, mu: float = 255.0) -> torch.Tensor:
    v = b.float() / (bins - 1) * 2 - 1
    return torch.sign(v) * ((1 + mu) ** v.abs() - 1) / mu * max_value


class TickHeads(nn.Module):
    """VPT's per-50 ms heads over per-frame features: multi-label key/button states and mu-law binned mouse
    dx/dy, and optionally a regression head for the mouse (``value_head``): a per-frame gain on the measured
    image shift [plus a linear read of the features], in units of ``VALUE_UNIT`` counts."""

    VALUE_UNIT = 10.0  # mouse counts per unit of the value head: a camera turn is tens of counts per tick
    # the shift's gain moves this many times faster than Adam's ~lr-sized step: at lr 3e-4 a plain gain could
    # move at most ~0.45 units per pixel in 1500 steps, where the shooters here need ~1
    GAIN_STEP = 10.0

    def __init__(self, d_model: int, n_keys: int, n_buttons: int = 5, *, mouse_bins: int = 11,
                 mouse_max: float = 400.0, value_head: bool = False, value_features: bool = True,
                 encoder: nn.Module | None = None):
        super().__init__()
        if encoder is not None:  # a tick model's own encoder, registered first so its parameters come first
            self.encoder = encoder
        self.mouse_bins, self.mouse_max = mouse_bins, mouse_max
        with warnings.catch_warnings():  # a game without keys has zero key columns: torch warns about the empty init
            warnings.simplefilter("ignore", UserWarning)
            self.keys = nn.Linear(d_model, n_keys)
        self.buttons = nn.Linear(d_model, n_buttons)
        self.mouse = nn.Linear(d_model, 2 * mouse_bins)
        self.value: nn.Linear | None = None
        self.value_gain: nn.Linear | None = None
        if value_head:
            self.value = nn.Linear(d_model, 2) if value_features else None
            self.value_gain = nn.Linear(d_model, 2)
            nn.init.zeros_(self.value_gain.weight)
            nn.init.zeros_(self.value_gain.bias)

    def predict(self, h: torch.Tensor, shift: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(B, T, d) per-frame features [and (B, T, 2) image shifts] -> logits [and mouse values]."""
        b, t = h.shape[:2]
        out = {KEYS: self.keys(h), BUTTONS: self.buttons(h), MOUSE: self.mouse(h).reshape(b, t, 2, self.mouse_bins)}
        if self.value_gain is not None:
            value = self.value(h) if self.value is not None else h.new_zeros(b, t, 2)
            if shift is not None:  # the gain depends on the frame: a scrolling Atari screen is no camera turn
                value = value + self.GAIN_STEP * self.value_gain(h) * shift.to(value.dtype)
            out[MOUSE_VALUE] = value * self.VALUE_UNIT
        return out

    def tick_loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                  ) -> tuple[torch.Tensor, dict[str, float]]:
        valid = batch.get(VALID, torch.ones(out[KEYS].shape[:2], dtype=torch.bool, device=out[KEYS].device))
        w = valid.float().unsqueeze(-1)
        key_loss = (F.binary_cross_entropy_with_logits(out[KEYS], batch[KEYS].float(), reduction="none") * w).sum() \
            / (w.sum() * out[KEYS].shape[-1]).clamp(min=1)
        btn_loss = (F.binary_cross_entropy_with_logits(out[BUTTONS], batch[BUTTONS].float(), reduction="none")
                    * w).sum() / (w.sum() * out[BUTTONS].shape[-1]).clamp(min=1)
        target = mu_law_bin(batch[MOUSE].float(), self.mouse_bins, self.mouse_max)
        mouse_loss = F.cross_entropy(out[MOUSE][valid].reshape(-1, self.mouse_bins), target[valid].reshape(-1))
        loss = key_loss + btn_loss + mouse_loss
        metrics = {"key_loss": float(key_loss.detach()), "mouse_loss": float(mouse_loss.detach())}
        if MOUSE_VALUE in out:  # Huber in head units: robust to the rare flick of hundreds of counts
            value_loss = F.smooth_l1_loss(out[MOUSE_VALUE][valid].float() / self.VALUE_UNIT,
                                          batch[MOUSE][valid].float() / self.VALUE_UNIT)
            loss = loss + value_loss
            metrics["mouse_value_loss"] = float(value_loss.detach())
        with torch.no_grad():
            key_acc = ((out[KEYS] > 0) == batch[KEYS].bool())[valid].float().mean()
        return loss, {**metrics, "key_acc": float(key_acc)}
