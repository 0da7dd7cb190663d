"""The IDM networks: the window encoder (``core.nn``) and two heads over it.

``EventIDM`` is the D2E-style model: an autoregressive decoder that writes timestamped event tokens while
cross-attending to every frame of the window (past and future: an inverse dynamics model must see the frames
after an action to know it happened). ``TickIDM`` is the VPT-style baseline on the same encoder: independent
per-50 ms heads for key states, buttons and binned mouse motion.

Both are plain ``nn.Module``s whose ``forward(batch)`` returns ``(loss, metrics)``; ``core.train`` wraps them.
The file reads top to bottom: grounding bias -> event decoder -> tick model.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.config import DataConfig
from core.data.dataset import FRAMES, KEYS, TOKENS
from core.grid import tau_ticks
from core.nn.decoder import Decoder
from core.nn.encoder import WindowEncoder
from core.nn.heads import VALID, TickHeads
from core.tokens import Vocabulary
from core.tokens.vocab import SCREEN, START

from .config import IDMConfig

# Frames whose pooled features each event token sees directly, relative to the frame it belongs to.
CONTEXT_FRAMES = (-3, -2, -1, 0, 1)


class GroundingBias(nn.Module):
    """Additive cross-attention bias that points each event token at the frames showing its event.

    With NEP-tau an event is written after the screen event of frame ``i`` when it happened ``tau``
    earlier, so it shows between frames ``i - tau/50ms`` and the one after; each head's scores fall off
    linearly with the distance (in frames) from there, at a learned slope (initially 2, 1, 0.5, ... per
    frame, the last head 0: global). The frames stay visible, only the prior changes.
    """

    def __init__(self, heads: int, patches: int, tau_ms: float):
        super().__init__()
        self.slope = nn.Parameter(torch.tensor([2.0 * 0.5 ** k for k in range(heads - 1)] + [0.0]))
        self.lag = tau_ticks(tau_ms) - 0.5  # frames from a token's frame back to its event's
        self.patches = patches

    def forward(self, frame: torch.Tensor, memory_len: int) -> torch.Tensor:
        """(B, N) frame of each token -> (B, heads, N, memory_len) bias over the encoded frame tokens."""
        memory_frame = torch.arange(memory_len // self.patches, device=frame.device).repeat_interleave(self.patches)
        distance = (memory_frame - (frame[..., None] - self.lag)).abs()
        return -self.slope[:, None, None] * distance[:, None]


def tick_heads(cfg: IDMConfig, n_keys: int, encoder: nn.Module | None = None, value_head: bool = False,
               ) -> TickHeads:
    return TickHeads(cfg.d_model, n_keys, mouse_bins=cfg.mouse_bins, mouse_max=cfg.mouse_max, value_head=value_head,
                     value_features=cfg.mouse_value_features, onset_head=cfg.onset_head, encoder=encoder)


def with_edge_mask(batch: dict[str, torch.Tensor], edge_ticks: int) -> dict[str, torch.Tensor]:
    """The batch with ``valid`` False for the last ``edge_ticks`` ticks of each window (their evidence lies in
    frames after the window)."""
    if edge_ticks <= 0:
        return batch
    b, t = batch[FRAMES].shape[:2]
    valid = torch.ones(b, t, dtype=torch.bool, device=batch[FRAMES].device)
    valid[:, max(1, t - edge_ticks):] = False
    return {**batch, VALID: valid}


class EventIDM(nn.Module):
    """Frames -> event tokens. Teacher-forced training; batched, cached, constrained generation."""

    TIED = {"head.weight": "embed.weight"}  # stored once in the weights file

    def __init__(self, cfg: IDMConfig, data: DataConfig, vocab: Vocabulary):
        super().__init__()
        self.cfg, self.data = cfg, data
        self.pad_id, self.screen_id, self.start_id = vocab.pad_id, vocab.id(SCREEN), vocab.id(START)
        self.encoder = WindowEncoder(cfg, data.frames)
        self.frame_in = nn.Linear(len(CONTEXT_FRAMES) * cfg.d_model, cfg.d_model) if cfg.frame_context else None
        self.grounding = GroundingBias(cfg.heads, cfg.patch_grid ** 2, data.tau_ms) if cfg.grounding_bias else None
        self.ticks = (tick_heads(cfg, len(data.keys), value_head=cfg.mouse_value_head)
                      if cfg.tick_aux_weight > 0 else None)
        self.tick_in = (nn.Linear(3 * (self.ticks.keys.out_features + self.ticks.buttons.out_features), cfg.d_model)
                        if cfg.tick_context else None)  # the config refuses it without the tick heads
        self.embed = nn.Embedding(len(vocab), cfg.d_model)
        self.pos = nn.Embedding(cfg.max_tokens, cfg.d_model)
        self.decoder = Decoder(cfg.d_model, cfg.heads, cfg.decoder_layers, cfg.dropout)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, len(vocab), bias=False)
        self.head.weight = self.embed.weight  # tied: small vocab, fewer parameters
        # GPT-2's 0.02, not nn.Embedding's N(0, 1): tied to the output layer, unit-variance rows gave
        # logits of std ~sqrt(d_model) and a first loss of ~60 nats, and the first hundred steps went to
        # undoing that
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self._warned_cut = False

    def frame_table(self, memory: torch.Tensor) -> torch.Tensor | None:
        """(B, T*P, d) encoded window -> (B, T, d): what a token belonging to frame i adds to its input.

        ``frame_context``: the pooled features of frames i-3..i+1. ``tick_context``: the tick heads' key and
        button logits of the two frames around the moment the token's event happened and their change."""
        if self.frame_in is None and self.tick_in is None:
            return None
        h = self.encoder.per_frame(memory)
        t = h.shape[1]
        table = None
        if self.frame_in is not None:
            around = (torch.arange(t, device=h.device)[:, None] + torch.tensor(CONTEXT_FRAMES, device=h.device))
            table = self.frame_in(h[:, around.clamp(0, t - 1)].flatten(2))
        if self.tick_in is not None:
            states = torch.cat([self.ticks.keys(h), self.ticks.buttons(h)], -1)  # (B, T, keys + buttons)
            lag = round(tau_ticks(self.data.tau_ms))
            shown = (torch.arange(t, device=h.device)[:, None] - lag + torch.tensor([0, 1], device=h.device))
            before, after = states[:, shown[:, 0].clamp(0, t - 1)], states[:, shown[:, 1].clamp(0, t - 1)]
            onset = self.tick_in(torch.cat([before, after, after - before], -1))
            table = onset if table is None else table + onset
        return table

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.embed(tokens) + self.pos(torch.arange(n, device=tokens.device))
        frame = tokens.eq(self.screen_id).cumsum(1) - 1  # the frame of a token: screen events so far, itself included
        table = self.frame_table(memory)
        if table is not None:  # the tokens before the first screen event count as frame 0's
            x = x + table.gather(1, frame.clamp(0, table.shape[1] - 1)[..., None].expand(-1, -1, table.shape[-1]))
        memory_mask = None
        if self.grounding is not None:  # (B*heads, N, S), the layout nn.MultiheadAttention takes
            memory_mask = self.grounding(frame, memory.shape[1]).flatten(0, 1).to(memory.dtype)
        out = self.decoder(x, memory, padding=tokens.eq(self.pad_id), memory_mask=memory_mask)
        return self.head(self.norm(out))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cut = batch[TOKENS].ne(self.pad_id).sum(1).gt(self.cfg.max_tokens)
        if cut.any() and not self._warned_cut:  # the events past the cut are silently unlearnable otherwise
            self._warned_cut = True
            warnings.warn(f"{int(cut.sum())} of {len(cut)} windows have more than max_tokens="
                          f"{self.cfg.max_tokens} event tokens and are cut; raise max_tokens, or merge_motion_ms "
                          "for high-rate mouse input (the 'cut_windows' training metric tracks it)", stacklevel=2)
        tokens = batch[TOKENS][:, : self.cfg.max_tokens]
        memory, shift = self.encoder.encode(batch[FRAMES])
        logits = self.decode(tokens[:, :-1], memory)
        target = tokens[:, 1:]
        per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                    ignore_index=self.pad_id, reduction="none").view_as(target)
        keep = target.ne(self.pad_id)
        token_loss = per_token.sum() / keep.sum().clamp(min=1)
        weight = keep.float()
        if self.cfg.event_type_weight != 1.0:  # the token after <EVENT_START>: which event, or the next frame
            weight = weight * torch.where(tokens[:, :-1].eq(self.start_id), self.cfg.event_type_weight, 1.0)
        loss = (per_token * weight).sum() / weight.sum().clamp(min=1)
        with torch.no_grad():
            acc = (logits.argmax(-1).eq(target) & keep).sum() / keep.sum().clamp(min=1)
        metrics = {"token_loss": float(token_loss.detach()), "token_acc": float(acc),
                   "cut_windows": float(cut.float().mean())}
        if self.ticks is not None and KEYS in batch:  # windows from the dataset carry tick labels too
            tick_loss, tick_metrics = self.ticks.tick_loss(self.tick_outputs(memory, shift),
                                                           with_edge_mask(batch, self.cfg.edge_ticks))
            loss = loss + self.cfg.tick_aux_weight * tick_loss
            metrics.update(tick_metrics)
        return loss, {"loss": float(loss.detach()), **metrics}

    def tick_outputs(self, memory: torch.Tensor, shift: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The tick heads over the encoded window and the cue's image shift (``encoder.encode``)."""
        return self.ticks.predict(self.encoder.per_frame(memory), shift)

    # -- incremental decoding ------------------------------------------------------------------------
    def start_cache(self, memory: torch.Tensor) -> dict[str, Any]:
        """The decoder's key/value cache for ``memory``, the frame-context table, the grounding bias per frame
        a token can belong to, and each row's screen-event count (the frame its next token belongs to)."""
        bias = None
        if self.grounding is not None:  # per frame a token can belong to (-1 before the first screen event)
            frames = memory.shape[1] // self.grounding.patches
            bias = self.grounding(torch.arange(-1, frames, device=memory.device)[None], memory.shape[1])[0]
            bias = bias.transpose(0, 1).to(memory.dtype)  # (frames + 1, heads, S)
        return {"layers": self.decoder.start_cache(memory.shape[0], self.cfg.max_tokens, memory),
                "frames": self.frame_table(memory), "bias": bias,
                "screens": torch.zeros(memory.shape[0], dtype=torch.long, device=memory.device)}

    def step(self, tokens: torch.Tensor, position: int, cache: dict[str, Any]) -> torch.Tensor:
        """Logits of the token after ``tokens`` (B,) at ``position``, given the cached prefix; the same
        numbers as ``decode`` on the whole sequence (eval mode), in O(position) instead of O(position^2)."""
        x = self.embed(tokens)[:, None] + self.pos.weight[position]
        cache["screens"] += tokens.eq(self.screen_id)
        frame = cache["screens"] - 1
        table = cache["frames"]
        if table is not None:
            x = x + table[torch.arange(table.shape[0], device=x.device), frame.clamp(0, table.shape[1] - 1)][:, None]
        bias = cache["bias"]
        if bias is not None:  # (B, heads, 1, S)
            bias = bias[(frame + 1).clamp(0, bias.shape[0] - 1)][:, :, None]
        return self.head(self.norm(self.decoder.step(x, position, cache["layers"], bias)))[:, 0]

    @torch.no_grad()
    def generate_batch(self, memory: torch.Tensor, prefix: list[int], grammars: list, *, max_new: int | None = None,
                       temperature: float = 0.0, generator: torch.Generator | None = None,
                       ) -> list[tuple[list[int], list[float]]]:
        """Decode one sequence per row of ``memory`` (encoded windows) in lock step, with a KV cache.

        Every row adds exactly one token per step (forced ones included, as they must enter the cache),
        so all rows share one position and no padding is needed; finished rows ride along idle.
        ``grammars[r](tokens) -> list[int] | None`` gives row r's allowed next tokens (None: done).
        Returns each row's tokens and the probability of each generated one.
        """
        rows = memory.shape[0]
        seqs = [list(prefix) for _ in range(rows)]
        probs: list[list[float]] = [[] for _ in range(rows)]
        done = [False] * rows
        limit = min(self.cfg.max_tokens, len(prefix) + (max_new or self.cfg.max_tokens))
        cache = self.start_cache(memory)
        for position in range(len(prefix) - 1):  # prefill all but the last prefix token
            self.step(torch.full((rows,), prefix[position], device=memory.device), position, cache)
        last = torch.full((rows,), prefix[-1], device=memory.device)
        for position in range(len(prefix) - 1, limit - 1):
            logits = self.step(last, position, cache).float()
            choices: list[list[int] | None] = [None if done[r] else grammars[r](seqs[r]) for r in range(rows)]
            mask = torch.zeros_like(logits, dtype=torch.bool)
            for r, allowed in enumerate(choices):
                mask[r, allowed or [self.pad_id]] = True  # a finished row gets a harmless distribution
            logits = logits.masked_fill(~mask, float("-inf"))
            p = torch.softmax(logits / temperature if temperature > 0 else logits, -1)
            picked = (p.argmax(-1) if temperature <= 0 else torch.multinomial(p, 1, generator=generator)[:, 0]).tolist()
            nxt = []
            for r, allowed in enumerate(choices):
                if not allowed:
                    done[r] = True
                    nxt.append(self.pad_id)
                    continue
                token = allowed[0] if len(allowed) == 1 else int(picked[r])
                seqs[r].append(token)
                probs[r].append(1.0 if len(allowed) == 1 else float(p[r, token]))
                nxt.append(token)
            if all(done):
                break
            last = torch.tensor(nxt, device=memory.device)
        return list(zip(seqs, probs))


class TickIDM(TickHeads):
    """VPT-style baseline: per 50 ms tick, multi-label key/button states and binned mouse dx/dy."""

    def __init__(self, cfg: IDMConfig, data: DataConfig):
        encoder = WindowEncoder(cfg, data.frames)  # built first: its parameters come first, as before
        super().__init__(cfg.d_model, len(data.keys), mouse_bins=cfg.mouse_bins, mouse_max=cfg.mouse_max,
                         onset_head=cfg.onset_head, encoder=encoder)
        self.cfg, self.data = cfg, data

    def heads(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.predict(self.encoder.per_frame(self.encoder(frames)))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = self.tick_loss(self.heads(batch[FRAMES]), with_edge_mask(batch, self.cfg.edge_ticks))
        return loss, {"loss": float(loss.detach()), **metrics}


def build_model(cfg: IDMConfig, data: DataConfig, vocab: Vocabulary | None = None) -> nn.Module:
    if cfg.kind == "events":
        return EventIDM(cfg, data, vocab or Vocabulary.default())
    return TickIDM(cfg, data)
