"""The IDM networks: a non-causal frame encoder and two heads over it.

``EventIDM`` is the D2E-style model: an autoregressive decoder that writes timestamped event tokens
while cross-attending to every frame of the window (past and future: an inverse dynamics model must see
the frames after an action to know it happened). ``TickIDM`` is the VPT-style baseline on the same
encoder: independent per-50 ms heads for key states, buttons and binned mouse motion.

Both are plain ``nn.Module``s whose ``forward(batch)`` returns ``(loss, metrics)``; Lightning wraps
them thinly in ``idm.train``. The file reads top to bottom: encoder -> event decoder -> tick heads.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from capture.ticks import GRID_NS
from capture.tokens import SCREEN as SCREEN_TOKEN
from capture.tokens import START as START_TOKEN
from capture.tokens import Vocabulary

from .config import IDMConfig

FRAMES, TOKENS, KEYS, BUTTONS, MOUSE, VALID = "frames", "tokens", "keys", "buttons", "mouse", "valid"
MOUSE_VALUE = "mouse_value"  # regressed mouse dx/dy per tick (the event IDM's value head), in counts
# Scale of the frame-difference channels: without it a tick model sat at chance for 300 steps on a
# 4-pixel square moved by the keys (the difference signal is ~1% of the appearance signal); with x8 it
# learned the square in ~100 steps.
MOTION_GAIN = 8.0
# Frames whose pooled features each event token sees directly, relative to the frame it belongs to.
CONTEXT_FRAMES = (-3, -2, -1, 0, 1)


def _as_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, T, 3, H, W) in [0, 1]; float input is already laid out so."""
    if frames.dtype == torch.uint8:
        return frames.permute(0, 1, 4, 2, 3).float().div_(255.0)
    return frames


def _norm_frames(frames: torch.Tensor, motion: bool = False) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) or float (B, T, 3, H, W) -> float (B*T, C, H, W) around zero.

    With ``motion`` each frame also carries its difference to the next frame (C = 6): what an action
    changed is often a few pixels (a paddle, a cursor) that a pooled appearance feature averages away,
    so the first convolutions should see the change itself.
    """
    frames = (_as_float_frames(frames) - 0.5) / 0.25
    if motion:  # differences are sparse and faint: amplified so they are not lost next to appearance
        following = torch.cat([frames[:, 1:], frames[:, -1:]], 1)
        frames = torch.cat([frames, (following - frames) * MOTION_GAIN], 2)
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

    def __init__(self, radius: int, d_model: int, peak: bool = False, peak_global: bool = False):
        super().__init__()
        self.radius = radius
        self.with_peak = peak
        self.peak_global = peak_global
        side = 2 * radius + 1
        self.embed = nn.Sequential(nn.Linear(side * side + 2 * peak, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def correlation(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) float frames -> (B, T, H, W) phase correlation of each frame with the next (the
        last with itself), zero shift at (H // 2, W // 2)."""
        with torch.autocast(frames.device.type, enabled=False):
            gray = frames.float().mean(2)
            gray = gray - gray.mean((-2, -1), keepdim=True)
            h, w = gray.shape[-2:]
            hann = torch.outer(torch.hann_window(h, periodic=False, device=gray.device),
                               torch.hann_window(w, periodic=False, device=gray.device))
            spec = torch.fft.rfft2(gray * hann)
            following = torch.cat([spec[:, 1:], spec[:, -1:]], 1)
            cross = following * spec.conj()
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


class WindowEncoder(nn.Module):
    """Frame tokens of the whole window, with time and position embeddings, through a non-causal transformer."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        grid = cfg.patch_grid
        self.motion = cfg.motion_input and cfg.encoder == "cnn"
        self.stem: nn.Module = (PretrainedStem(cfg.encoder_path or "", cfg.d_model, grid) if cfg.encoder == "pretrained"
                                else ConvStem(cfg.d_model, grid, 6 if self.motion else 3))
        self.cue = (MotionCue(cfg.motion_cue_radius, cfg.d_model, cfg.motion_cue_peak,
                               cfg.motion_cue_peak_global)
                    if cfg.motion_cue_radius > 0 else None)
        self.time = nn.Parameter(torch.zeros(cfg.frames, 1, cfg.d_model))
        self.space = nn.Parameter(torch.zeros(1, grid * grid, cfg.d_model))
        nn.init.normal_(self.time, std=0.02)
        nn.init.normal_(self.space, std=0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, cfg.dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.layers = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.frames = cfg.frames

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # -> (B, T * grid^2, d)
        return self.encode(frames)[0]

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoded window (B, T * grid^2, d) and the motion cue's image shift per frame (B, T, 2), or
        None without a cue peak: measured once, for the tokens and for whoever reads the shift itself."""
        b, t = frames.shape[:2]
        tokens = self.stem(_norm_frames(frames, self.motion))  # (B*T, P, d)
        tokens = tokens.reshape(b, t, *tokens.shape[1:]) + self.time[:t] + self.space
        shift = None
        if self.cue is not None:
            cue, shift = self.cue(_as_float_frames(frames))
            tokens = tokens + cue
        return self.norm(self.layers(tokens.reshape(b, -1, tokens.shape[-1]))), shift

    def per_frame(self, memory: torch.Tensor) -> torch.Tensor:  # (B, T*P, d) -> (B, T, d)
        b = memory.shape[0]
        return memory.reshape(b, self.frames, -1, memory.shape[-1]).mean(2)


def tau_frames(cfg: IDMConfig) -> float:
    """NEP-tau in frames (20 Hz): how far a token's frame lies after the frames that show its event."""
    return cfg.tau_ms * 1_000_000 / GRID_NS


class GroundingBias(nn.Module):
    """Additive cross-attention bias that points each event token at the frames showing its event.

    With NEP-tau an event is written after the screen event of frame ``i`` when it happened ``tau``
    earlier, so it shows between frames ``i - tau/50ms`` and the one after; each head's scores fall off
    linearly with the distance (in frames) from there, at a learned slope (initially 2, 1, 0.5, ... per
    frame, the last head 0: global). The frames stay visible, only the prior changes.
    """

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        self.slope = nn.Parameter(torch.tensor([2.0 * 0.5 ** k for k in range(cfg.heads - 1)] + [0.0]))
        self.lag = tau_frames(cfg) - 0.5  # frames from a token's frame back to its event's
        self.patches = cfg.patch_grid ** 2

    def forward(self, frame: torch.Tensor, memory_len: int) -> torch.Tensor:
        """(B, N) frame of each token -> (B, heads, N, memory_len) bias over the encoded frame tokens."""
        memory_frame = torch.arange(memory_len // self.patches, device=frame.device).repeat_interleave(self.patches)
        distance = (memory_frame - (frame[..., None] - self.lag)).abs()
        return -self.slope[:, None, None] * distance[:, None]


class EventIDM(nn.Module):
    """Frames -> event tokens. Teacher-forced training; greedy/sampled/constrained generation."""

    def __init__(self, cfg: IDMConfig, pad_id: int, screen_id: int | None = None):
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        self.screen_id = Vocabulary.default().id(SCREEN_TOKEN) if screen_id is None else screen_id
        self.start_id = Vocabulary.default().id(START_TOKEN)
        self.encoder = WindowEncoder(cfg)
        self.frame_in = nn.Linear(len(CONTEXT_FRAMES) * cfg.d_model, cfg.d_model) if cfg.frame_context else None
        self.grounding = GroundingBias(cfg) if cfg.grounding_bias else None
        self.ticks = (TickHeads(cfg, len(cfg.keys), value_head=cfg.mouse_value_head,
                                value_features=cfg.mouse_value_features) if cfg.tick_aux_weight > 0 else None)
        self.tick_in = (nn.Linear(3 * (self.ticks.keys.out_features + self.ticks.buttons.out_features), cfg.d_model)
                        if cfg.tick_context else None)  # the config refuses it without the tick heads
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_tokens, cfg.d_model)
        layer = nn.TransformerDecoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, cfg.dropout,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: small vocab, fewer parameters
        # GPT-2's 0.02, not nn.Embedding's N(0, 1): tied to the output layer, unit-variance rows gave
        # logits of std ~sqrt(d_model) and a first loss of ~60 nats, and the first hundred steps went to
        # undoing that
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self._warned_cut = False

    def frame_table(self, memory: torch.Tensor) -> torch.Tensor | None:
        """(B, T*P, d) encoded window -> (B, T, d): what a token belonging to frame i adds to its input.

        ``frame_context``: the pooled features of frames i-3..i+1 (an action shifted by NEP-tau is seen in
        frames just before the screen event it follows; the frame after confirms it). ``tick_context``: the
        tick heads' key and button logits of the two frames around the moment the token's event happened
        (i - tau/50 ms and the one after) and their change, i.e. the evidence that a key went down there."""
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
            lag = round(tau_frames(self.cfg))
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
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=tokens.device)
        padding = torch.zeros(tokens.shape, device=tokens.device).masked_fill_(tokens.eq(self.pad_id), float("-inf"))
        out = self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True, tgt_key_padding_mask=padding,
                           memory_mask=memory_mask)
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
            tick_loss, tick_metrics = self.ticks.tick_loss(self.tick_outputs(memory, shift), batch)
            loss = loss + self.cfg.tick_aux_weight * tick_loss
            metrics.update(tick_metrics)
        return loss, {"loss": float(loss.detach()), **metrics}

    def tick_outputs(self, memory: torch.Tensor, shift: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The tick heads over the encoded window and the cue's image shift (``encoder.encode``)."""
        return self.ticks.predict(self.encoder.per_frame(memory), shift)

    def mouse_values(self, memory: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor | None:
        """(B, T, 2) regressed mouse dx/dy of each frame's tick (counts), or None without the value head."""
        if self.ticks is None or self.ticks.value_gain is None:
            return None
        return self.tick_outputs(memory, shift)[MOUSE_VALUE]

    # -- incremental decoding ------------------------------------------------------------------------
    def start_cache(self, memory: torch.Tensor) -> dict[str, Any]:
        """Per decoder layer: cross-attention keys/values of ``memory`` (computed once) and room for
        ``max_tokens`` self-attention keys/values, so each generated token costs one position, not a
        pass over the whole prefix; plus the frame-context table and each row's screen-event count (the
        frame its next token belongs to)."""
        b, d = memory.shape[0], self.cfg.d_model
        heads = self.cfg.heads
        layers = []
        for layer in self.decoder.layers:
            mha = layer.multihead_attn
            k = F.linear(memory, mha.in_proj_weight[d:2 * d], mha.in_proj_bias[d:2 * d])
            v = F.linear(memory, mha.in_proj_weight[2 * d:], mha.in_proj_bias[2 * d:])
            empty = memory.new_zeros(b, heads, self.cfg.max_tokens, d // heads)
            layers.append({"mem_k": _heads(k, heads), "mem_v": _heads(v, heads), "k": empty, "v": empty.clone()})
        bias = None
        if self.grounding is not None:  # per frame a token can belong to (-1 before the first screen event)
            frames = memory.shape[1] // self.grounding.patches
            bias = self.grounding(torch.arange(-1, frames, device=memory.device)[None], memory.shape[1])[0]
            bias = bias.transpose(0, 1).to(memory.dtype)  # (frames + 1, heads, S)
        return {"layers": layers, "frames": self.frame_table(memory), "bias": bias,
                "screens": torch.zeros(b, dtype=torch.long, device=memory.device)}

    def step(self, tokens: torch.Tensor, position: int, cache: dict[str, Any]) -> torch.Tensor:
        """Logits of the token after ``tokens`` (B,) at ``position``, given the cached prefix; the same
        numbers as ``decode`` on the whole sequence (eval mode), in O(position) instead of O(position^2)."""
        d, heads = self.cfg.d_model, self.cfg.heads
        x = self.embed(tokens)[:, None] + self.pos.weight[position]
        cache["screens"] += tokens.eq(self.screen_id)
        frame = cache["screens"] - 1
        table = cache["frames"]
        if table is not None:
            x = x + table[torch.arange(table.shape[0], device=x.device), frame.clamp(0, table.shape[1] - 1)][:, None]
        bias = cache["bias"]
        if bias is not None:  # (B, heads, 1, S)
            bias = bias[(frame + 1).clamp(0, bias.shape[0] - 1)][:, :, None]
        for layer, c in zip(self.decoder.layers, cache["layers"]):
            sa = layer.self_attn
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).split(d, -1)
            c["k"][:, :, position] = k[:, 0].reshape(-1, heads, d // heads)
            c["v"][:, :, position] = v[:, 0].reshape(-1, heads, d // heads)
            att = F.scaled_dot_product_attention(_heads(q, heads), c["k"][:, :, :position + 1],
                                                 c["v"][:, :, :position + 1])
            x = x + sa.out_proj(_merge(att))
            ca = layer.multihead_attn
            q = F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d])
            att = F.scaled_dot_product_attention(_heads(q, heads), c["mem_k"], c["mem_v"], attn_mask=bias)
            x = x + ca.out_proj(_merge(att))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        return self.head(self.norm(x))[:, 0]

    @torch.no_grad()
    def generate(self, frames: torch.Tensor, prefix: list[int], allowed, *, max_new: int | None = None,
                 temperature: float = 0.0, generator: torch.Generator | None = None) -> tuple[list[int], list[float]]:
        """Continue ``prefix`` for one window; ``allowed(tokens) -> list[int] | None`` constrains each step
        (None: stop). Returns the tokens and the probability of each generated one."""
        [(tokens, probs)] = self.generate_batch(self.encoder(frames), prefix, [allowed], max_new=max_new,
                                                temperature=temperature, generator=generator)
        return tokens, probs

    @torch.no_grad()
    def generate_batch(self, memory: torch.Tensor, prefix: list[int], grammars: list, *, max_new: int | None = None,
                       temperature: float = 0.0, generator: torch.Generator | None = None,
                       ) -> list[tuple[list[int], list[float]]]:
        """Decode one sequence per row of ``memory`` (encoded windows) in lock step, with a KV cache.

        Every row adds exactly one token per step (forced ones included, as they must enter the cache),
        so all rows share one position and no padding is needed; finished rows ride along idle.
        ``grammars[r](tokens) -> list[int] | None`` gives row r's allowed next tokens (None: done).
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


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # (B, N, d) -> (B, heads, N, d/heads)
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:  # (B, heads, N, dh) -> (B, N, heads*dh)
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


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
    dx/dy. The tick IDM is these on the window encoder; the event IDM can train them beside its decoder, with
    a regression head for the mouse (``value_head``) whose dx/dy it writes into its mouse events."""

    VALUE_UNIT = 10.0  # mouse counts per unit of the value head: a camera turn is tens of counts per tick
    # the shift's gain moves this many times faster than Adam's ~lr-sized step: at lr 3e-4 a plain gain could
    # move at most ~0.45 units per pixel in 1500 steps, where the shooters here need ~1
    GAIN_STEP = 10.0

    def __init__(self, cfg: IDMConfig, n_keys: int, n_buttons: int = 5, encoder: nn.Module | None = None,
                 value_head: bool = False, value_features: bool = True):
        super().__init__()
        self.cfg = cfg
        if encoder is not None:  # the tick IDM's, built first so a seed gives the weights it gave before the split
            self.encoder = encoder
        self.keys = nn.Linear(cfg.d_model, n_keys)
        self.buttons = nn.Linear(cfg.d_model, n_buttons)
        self.mouse = nn.Linear(cfg.d_model, 2 * cfg.mouse_bins)
        self.value: nn.Linear | None = None
        self.value_gain: nn.Linear | None = None
        if value_head:  # regressed mouse dx/dy: a per-frame gain on the measured image shift [plus features]
            self.value = nn.Linear(cfg.d_model, 2) if value_features else None
            self.value_gain = nn.Linear(cfg.d_model, 2)
            nn.init.zeros_(self.value_gain.weight)
            nn.init.zeros_(self.value_gain.bias)

    def predict(self, h: torch.Tensor, shift: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(B, T, d) per-frame features [and (B, T, 2) image shifts] -> logits [and mouse values]."""
        b, t = h.shape[:2]
        out = {KEYS: self.keys(h), BUTTONS: self.buttons(h), MOUSE: self.mouse(h).reshape(b, t, 2, self.cfg.mouse_bins)}
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
        target = mu_law_bin(batch[MOUSE].float(), self.cfg.mouse_bins, self.cfg.mouse_max)
        mouse_loss = F.cross_entropy(out[MOUSE][valid].reshape(-1, self.cfg.mouse_bins), target[valid].reshape(-1))
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


class TickIDM(TickHeads):
    """VPT-style baseline: per 50 ms tick, multi-label key/button states and binned mouse dx/dy."""

    def __init__(self, cfg: IDMConfig, n_keys: int, n_buttons: int = 5):
        super().__init__(cfg, n_keys, n_buttons, encoder=WindowEncoder(cfg))

    def heads(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.predict(self.encoder.per_frame(self.encoder(frames)))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = self.tick_loss(self.heads(batch[FRAMES]), batch)
        return loss, {"loss": float(loss.detach()), **metrics}


def build_model(cfg: IDMConfig, *, pad_id: int = 0, n_keys: int = 0, screen_id: int | None = None) -> nn.Module:
    if cfg.kind == "events":
        return EventIDM(cfg, pad_id, screen_id)
    return TickIDM(cfg, n_keys or len(cfg.keys))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: nn.Module) -> dict[str, Any]:
    return {"class": type(model).__name__, "parameters": parameter_count(model)}
