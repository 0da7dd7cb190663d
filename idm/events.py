"""Streaming, constrained decoding of the event IDM: frames in, timestamped events out.

Per window the decoder writes the D2E token stream: the screen event of each frame (forced: its time is
known), then the input events that happened before the next frame, until it decides to move on. The
grammar below allows only well-formed events, timestamps between the current and the next frame
(after NEP-tau), key codes the model was trained on and deltas within +-1999, so every generated
sequence decodes; forced tokens cost no forward pass. With the value head (``mouse_value_head``) the
grammar also forces each frame's mouse dx/dy digits to the head's regressed motion, so the decoder decides
which events there are and when, and the head says how far the mouse moved. Confidence of an event is the
geometric mean of the probabilities of the tokens the model chose for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from capture import tokens as T
from capture.tokens import Vocabulary, decode_tokens

from .config import IDMConfig
from .infer import _autocast, _pad, windows
from .model import tau_frames

FRAME_NS = 50_000_000


class Grammar:
    """Allowed next tokens for one window, given the frame times and the NEP-tau shift."""

    def __init__(self, vocab: Vocabulary, frame_times: Sequence[int], tau_ns: int, vks: Sequence[int],
                 mouse_values: Sequence[tuple[float, float] | None] | None = None):
        """``mouse_values[k]``: the (dx, dy) the first mouse event written after frame k must carry (the
        value head's, already shifted by NEP-tau); later mouse events of that frame carry no motion. None
        (or a None entry): the model chooses the digits."""
        self.v = vocab
        self.mouse_values = mouse_values
        self.tables = vocab.tables
        self.frame_times = list(frame_times)
        self.tau_ns = tau_ns
        self.ids = {name: vocab.id(name) for name in (T.BOS, T.EOS, T.START, T.END, T.KEYBOARD, T.MOUSE, T.SCREEN,
                                                      T.IMG, T.IMG_END, T.PRESS, T.RELEASE, T.PLUS, T.MINUS,
                                                      T.SCROLL)}
        self.digit = [vocab.id(d) for d in T.DIGITS]
        self.hex = [vocab.id(h) for h in T.HEX]
        self.vk_ids = [vocab.id(T.VKS[vk]) for vk in (vks or range(256))]
        self.id_to_token = vocab.tokens
        self.frames_done = 0

    def _time_units(self) -> list[int]:
        """10 ms units (mod 1000) an event may carry now: from the current frame to the next one."""
        k = self.frames_done - 1
        lo = self.frame_times[k]
        hi = self.frame_times[k + 1] if k + 1 < len(self.frame_times) else self.frame_times[-1] + FRAME_NS
        units = range(lo // T.TIME_RES_NS, max(lo // T.TIME_RES_NS + 1, -(-hi // T.TIME_RES_NS)))
        return [u % T.TIME_CYCLE for u in units]

    def __call__(self, tokens: list[int]) -> list[int] | None:
        ids = self.ids
        # find the event in progress
        try:
            start = len(tokens) - 1 - tokens[::-1].index(ids[T.START])
        except ValueError:
            start = -1
        if start < 0 or ids[T.END] in tokens[start:] or tokens[-1] == ids[T.END]:
            if tokens and tokens[-1] == ids[T.EOS]:
                return None
            # between events: start one, or end the window once every frame is in
            return [ids[T.START], ids[T.EOS]] if self.frames_done == len(self.frame_times) else [ids[T.START]]
        body = tokens[start + 1:]
        if not body:
            kinds = [ids[T.KEYBOARD], ids[T.MOUSE]] if self.frames_done else []
            return kinds + ([ids[T.SCREEN]] if self.frames_done < len(self.frame_times) else [])
        kind = body[0]
        pos = len(body) - 1  # tokens after the type
        if kind == ids[T.SCREEN]:
            stamp = [self.v.id(t) for t in T.time_tokens(self.frame_times[self.frames_done])]
            forced = [*stamp, ids[T.IMG], ids[T.IMG_END], ids[T.END]]
            if pos == len(forced) - 1:
                self.frames_done += 1
            return [forced[pos]]
        if pos < 3:  # timestamp digits of an input event, shifted by tau, between this frame and the next
            prefix = [self.digit.index(t) for t in body[1:1 + pos]]
            allowed = sorted({int(f"{u:03d}"[pos]) for u in self._time_units()
                              if [int(c) for c in f"{u:03d}"[:pos]] == prefix})
            return [self.digit[d] for d in allowed]
        rest = pos - 3
        if kind == ids[T.KEYBOARD]:
            return [self.vk_ids, [ids[T.PRESS], ids[T.RELEASE]], [ids[T.END]]][rest]
        # mouse: sign d d d d sign d d d d h h h [SCROLL sign d d d d] END
        if rest < 10 and self.mouse_values is not None:
            forced = self._forced_motion(tokens)
            if forced is not None:
                return [forced[rest]]
        sign, digits = [ids[T.PLUS], ids[T.MINUS]], self.digit
        layout = [sign, digits[:2], digits, digits, digits, sign, digits[:2], digits, digits, digits,
                  self.hex[:16], self.hex, self.hex]
        if rest < len(layout):
            return layout[rest]
        if rest == len(layout):
            return [ids[T.END], ids[T.SCROLL]]
        scroll = [sign, digits[:2], digits, digits, digits, [ids[T.END]]]
        return scroll[rest - len(layout) - 1] if rest - len(layout) - 1 < len(scroll) else None

    def _forced_motion(self, tokens: list[int]) -> list[int] | None:
        """The 10 sign/digit ids of the mouse event in progress, if its motion comes from the value head."""
        value = self.mouse_values[self.frames_done - 1] if self.frames_done - 1 < len(self.mouse_values) else None
        if value is None:
            return None
        screen = len(tokens) - 1 - tokens[::-1].index(self.ids[T.SCREEN])
        first = tokens[screen:].count(self.ids[T.MOUSE]) == 1  # the one in progress is the frame's first
        dx, dy = (round(value[0]), round(value[1])) if first else (0, 0)
        return [*self.tables.signed(dx), *self.tables.signed(dy)]


def _confidences(ids: list[int], probs: list[float], vocab: Vocabulary, n_prefix: int) -> list[float]:
    """Geometric mean of chosen-token probabilities per input event, in order of appearance."""
    out, current, kind = [], [], None
    start, end = vocab.id(T.START), vocab.id(T.END)
    for tok, p in zip(ids[n_prefix:], probs):
        if tok == start:
            current, kind = [], None
        elif kind is None and tok in (vocab.id(T.KEYBOARD), vocab.id(T.MOUSE), vocab.id(T.SCREEN)):
            kind = tok
        if p < 1.0:
            current.append(p)
        if tok == end and kind in (vocab.id(T.KEYBOARD), vocab.id(T.MOUSE)):
            out.append(math.exp(sum(math.log(max(x, 1e-9)) for x in current) / max(1, len(current))))
    return out


def _shown_after(values: np.ndarray | None, row: int, lag: int) -> list[tuple[float, float] | None] | None:
    """Per frame k of a window, the value head's motion of the tick its input events describe (k - lag:
    NEP-tau puts an event after the frames that show it); None where that tick precedes the window."""
    if values is None:
        return None
    n = values.shape[1]
    return [tuple(values[row, k - lag]) if 0 <= k - lag < n else None for k in range(n)]


@torch.no_grad()
def predict_events(model, cfg: IDMConfig, vocab: Vocabulary, frames: np.ndarray, times: Sequence[int],
                   vks: Sequence[int], *, device: torch.device, batch_size: int = 8,
                   temperature: float = 0.0, generator: torch.Generator | None = None) -> list[tuple[Any, float]]:
    """Events over a whole segment (frames on the 20 Hz grid at ``times``), with confidences.

    Windows of a batch are encoded together and decoded in lock step with a KV cache."""
    model.eval().to(device)
    tau = cfg.tau_ms * 1_000_000
    out: list[tuple[Any, float]] = []
    spans = windows(len(frames), cfg.frames)
    bos = vocab.id(T.BOS)
    lag = round(tau_frames(cfg))
    for b in range(0, len(spans), batch_size):
        chunk = spans[b:b + batch_size]
        batch = torch.from_numpy(np.stack([_pad(frames[s:e], cfg.frames) for s, _kf, _kt, e in chunk])).to(device)
        with _autocast(device):
            memory, shift = model.encoder.encode(batch)
            values = model.mouse_values(memory, shift)
        values = None if values is None else values.float().cpu().numpy()
        grammars, spans_times = [], []
        for row, (s, _kf, _kt, e) in enumerate(chunk):
            win_times = [int(t) for t in times[s:e]]
            while len(win_times) < cfg.frames:  # padded tail: frames continue on the grid
                win_times.append(win_times[-1] + FRAME_NS)
            grammars.append(Grammar(vocab, win_times, tau, vks, _shown_after(values, row, lag)))
            spans_times.append(win_times)
        with _autocast(device):
            decoded = model.generate_batch(memory, [bos], grammars, temperature=temperature, generator=generator)
        for (ids, probs), win_times, (_s, kf, kt, _e) in zip(decoded, spans_times, chunk):
            events = decode_tokens(ids, win_times[0], tau, vocab)
            confs = _confidences(ids, probs, vocab, 1)
            # keep what this window saw with the most context (its middle), as the tick model does
            lo = int(times[kf])
            hi = int(times[kt]) if kt < len(times) else int(times[-1]) + FRAME_NS
            for ev, c in zip(events, confs):
                if lo <= ev.t_ns < hi:
                    out.append((ev, c))
    out.sort(key=lambda ec: ec[0].t_ns)
    return out


def load_event_labeler(folder: str, cfg: IDMConfig, labels: dict[str, Any], device: torch.device, batch_size: int):
    from . import checkpoint
    from .model import build_model

    vocab = Vocabulary.from_json(labels["vocab"]) if "vocab" in labels else Vocabulary.default()
    cfg.vocab_size = len(vocab)
    model = build_model(cfg, pad_id=vocab.pad_id, screen_id=vocab.id(T.SCREEN))
    checkpoint.load_state(folder, model)
    vks = labels.get("vks") or []

    def label_events(frames: np.ndarray, times: Sequence[int]) -> list[tuple[Any, float]]:
        return predict_events(model, cfg, vocab, frames, times, vks, device=device, batch_size=batch_size)

    return label_events
