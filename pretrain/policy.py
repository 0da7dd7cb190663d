"""The VAPT policy: frames and past events in, the next events out (behaviour cloning on desktop recordings).

A causal window encoder (``core.nn.encoder``: each frame's tokens see only that frame and earlier ones) and a
causal event decoder (``core.nn.decoder``) that writes D2E's event tokens (``core.tokens``) and cross-attends
only to the frames shown up to its position: the events after frame i are predicted from frames <= i and the
events before them. D2E puts image tokens into the one sequence; cross-attention gives the same information
flow with a shorter sequence. Both parts are what transfer fine-tunes (``core.nn.trunk``).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.config import DataConfig
from core.data.dataset import FRAMES, TOKENS
from core.nn.trunk import PolicyTrunk
from core.tokens import Vocabulary
from core.tokens.vocab import SCREEN, START

from .config import PolicyConfig


class VAPTPolicy(nn.Module):
    """Next-event prediction over D2E tokens; ``forward(batch)`` returns ``(loss, metrics)``."""

    TIED = {"head.weight": "embed.weight"}  # stored once in the weights file

    def __init__(self, cfg: PolicyConfig, data: DataConfig, vocab: Vocabulary):
        super().__init__()
        self.cfg, self.data = cfg, data
        self.pad_id, self.screen_id, self.start_id = vocab.pad_id, vocab.id(SCREEN), vocab.id(START)
        self.trunk = PolicyTrunk(cfg, cfg.decoder_layers, data.frames)
        self.embed = nn.Embedding(len(vocab), cfg.d_model)
        self.pos = nn.Embedding(cfg.max_tokens, cfg.d_model)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, len(vocab), bias=False)
        self.head.weight = self.embed.weight  # tied, as the IDM's (GPT-2's 0.02 init: a first loss near ln V)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self._warned_cut = False

    def frame_mask(self, tokens: torch.Tensor, memory_len: int) -> torch.Tensor:
        """(B*heads, N, S) additive mask: a token sees the encoded frames shown up to it (the BOS sees frame 0)."""
        frame = (tokens.eq(self.screen_id).cumsum(1) - 1).clamp(min=0)  # the frame of each token
        patches = self.trunk.encoder.patches
        memory_frame = torch.arange(memory_len // patches, device=tokens.device).repeat_interleave(patches)
        mask = torch.zeros(*tokens.shape, memory_len, device=tokens.device)
        mask = mask.masked_fill(memory_frame[None, None] > frame[..., None], float("-inf"))
        return mask.repeat_interleave(self.cfg.heads, 0)

    def logits(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.embed(tokens) + self.pos(torch.arange(n, device=tokens.device))
        out = self.trunk.decoder(x, memory, padding=tokens.eq(self.pad_id),
                                 memory_mask=self.frame_mask(tokens, memory.shape[1]).to(memory.dtype))
        return self.head(self.norm(out))

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        cut = batch[TOKENS].ne(self.pad_id).sum(1).gt(self.cfg.max_tokens)
        if cut.any() and not self._warned_cut:
            self._warned_cut = True
            warnings.warn(f"{int(cut.sum())} of {len(cut)} windows have more than max_tokens={self.cfg.max_tokens} "
                          "event tokens and are cut; raise max_tokens or merge_motion_ms", stacklevel=2)
        tokens = batch[TOKENS][:, : self.cfg.max_tokens]
        memory = self.trunk.encoder(batch[FRAMES])
        logits = self.logits(tokens[:, :-1], memory)
        target = tokens[:, 1:]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                               ignore_index=self.pad_id)
        with torch.no_grad():
            keep = target.ne(self.pad_id)
            hit = logits.argmax(-1).eq(target) & keep
            decision = keep & tokens[:, :-1].eq(self.start_id)  # which event comes next, or the next frame
            metrics = {"loss": float(loss.detach()), "token_acc": float(hit.sum() / keep.sum().clamp(min=1)),
                       "event_type_acc": float((hit & decision).sum() / decision.sum().clamp(min=1)),
                       "cut_windows": float(cut.float().mean())}
        return loss, metrics


def build_policy(cfg: PolicyConfig, data: DataConfig, vocab: Vocabulary | None = None) -> VAPTPolicy:
    return VAPTPolicy(cfg, data, vocab or Vocabulary.default())
