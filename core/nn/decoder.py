"""A transformer decoder of our own: full-sequence training and one-token steps over a key/value cache.

``DecoderBlock`` computes exactly what ``nn.TransformerDecoderLayer(norm_first=True, activation="gelu")``
computes (same submodule names, so checkpoints of either load into the other, and the same calls, so
training is bit-identical), and adds ``step``: one new token against cached self-attention keys/values and
cross-attention keys/values of the memory computed once, O(position) per token instead of a pass over the
whole prefix. Without memory (``cross=False``) it is a causal self-attention block for a policy.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # (B, N, d) -> (B, heads, N, d/heads)
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:  # (B, heads, N, dh) -> (B, N, heads*dh)
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


class DecoderBlock(nn.Module):
    """Pre-norm self-attention, [cross-attention to a memory,] and a GELU MLP, each with a residual."""

    def __init__(self, d_model: int, heads: int, dropout: float, cross: bool = True):
        super().__init__()
        self.heads = heads
        self.self_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True) \
            if cross else None
        self.linear1 = nn.Linear(d_model, 4 * d_model)
        self.linear2 = nn.Linear(4 * d_model, d_model)
        self.norm1, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model) if cross else None
        self.dropout, self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(4))
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, *, mask: torch.Tensor | None = None,
                padding: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (N, N) additive causal mask, ``padding`` (B, N) additive key mask, ``memory_mask``
        (B*heads, N, S) additive bias over the memory."""
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h, h, attn_mask=mask, key_padding_mask=padding,
                                             need_weights=False)[0])
        if self.multihead_attn is not None:
            h = self.norm2(x)
            x = x + self.dropout2(self.multihead_attn(h, memory, memory, attn_mask=memory_mask,
                                                      need_weights=False)[0])
        return x + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(self.norm3(x))))))

    # -- one token at a time -------------------------------------------------------------------------
    def start_cache(self, batch: int, max_len: int, memory: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Room for ``max_len`` self-attention keys/values, and the memory's keys/values (computed once)."""
        d = self.linear1.in_features
        empty = torch.zeros(batch, self.heads, max_len, d // self.heads, device=self.linear1.weight.device,
                            dtype=memory.dtype if memory is not None else self.linear1.weight.dtype)
        cache = {"k": empty, "v": empty.clone()}
        if self.multihead_attn is not None and memory is not None:
            w, b = self.multihead_attn.in_proj_weight, self.multihead_attn.in_proj_bias
            cache["mem_k"] = _heads(F.linear(memory, w[d:2 * d], b[d:2 * d]), self.heads)
            cache["mem_v"] = _heads(F.linear(memory, w[2 * d:], b[2 * d:]), self.heads)
        return cache

    def step(self, x: torch.Tensor, position: int, cache: dict[str, torch.Tensor],
             memory_bias: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, d) -> (B, 1, d) for the token at ``position``, given the cached prefix (eval mode: no
        dropout); ``memory_bias`` (B, heads, 1, S) as ``memory_mask`` for this token."""
        d = x.shape[-1]
        sa = self.self_attn
        q, k, v = F.linear(self.norm1(x), sa.in_proj_weight, sa.in_proj_bias).split(d, -1)
        cache["k"][:, :, position] = k[:, 0].reshape(-1, self.heads, d // self.heads)
        cache["v"][:, :, position] = v[:, 0].reshape(-1, self.heads, d // self.heads)
        att = F.scaled_dot_product_attention(_heads(q, self.heads), cache["k"][:, :, :position + 1],
                                             cache["v"][:, :, :position + 1])
        x = x + sa.out_proj(_merge(att))
        if self.multihead_attn is not None:
            ca = self.multihead_attn
            q = F.linear(self.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d])
            att = F.scaled_dot_product_attention(_heads(q, self.heads), cache["mem_k"], cache["mem_v"],
                                                 attn_mask=memory_bias)
            x = x + ca.out_proj(_merge(att))
        return x + self.linear2(self.activation(self.linear1(self.norm3(x))))


class Decoder(nn.Module):
    """A stack of ``DecoderBlock``s (``layers``) with a causal mask over the token sequence.

    Every layer starts as a copy of the first, as ``nn.TransformerDecoder`` does (it clones one layer), so a
    seed gives the weights it gave before this class replaced it.
    """

    def __init__(self, d_model: int, heads: int, layers: int, dropout: float, cross: bool = True):
        super().__init__()
        first = DecoderBlock(d_model, heads, dropout, cross)
        self.layers = nn.ModuleList([first, *(copy.deepcopy(first) for _ in range(layers - 1))])

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, *, padding: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``padding``: (B, N) bool, True where a token is padding (ignored as a key)."""
        n = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=x.device, dtype=x.dtype)
        pad = None if padding is None else torch.zeros(padding.shape, device=x.device, dtype=x.dtype).masked_fill_(
            padding, float("-inf"))
        for layer in self.layers:
            x = layer(x, memory, mask=mask, padding=pad, memory_mask=memory_mask)
        return x

    def start_cache(self, batch: int, max_len: int, memory: torch.Tensor | None = None) -> list[dict[str, Any]]:
        return [layer.start_cache(batch, max_len, memory) for layer in self.layers]

    def step(self, x: torch.Tensor, position: int, cache: list[dict[str, Any]],
             memory_bias: torch.Tensor | None = None) -> torch.Tensor:
        for layer, c in zip(self.layers, cache):
            x = layer.step(x, position, c, memory_bias)
        return x
