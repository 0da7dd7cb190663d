"""From frames on the 20 Hz grid to timestamped events with confidences, for both IDM kinds.

Long videos are covered by windows of ``data.frames`` frames that overlap by half; each window's predictions
are kept only for its middle part (its first and last quarter see less context), except at the ends of the
video. Windows are batched (``batch_size``), with bf16 autocast on CUDA. ``load_labeler`` turns a run folder
into the ``Labeler`` that ``d2e idm eval`` and ``d2e label`` both call, so they label identically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import DataConfig
from core.grid import TICK_NS, tau_ns, tau_ticks
from core.nn.heads import BUTTONS, KEYS, MOUSE, mu_law_value
from core.run import RunFolder
from core.ticks import ticks_to_events
from core.tokens import Grammar, Vocabulary, decode_tokens
from core.tokens.vocab import BOS, END, KEYBOARD, SCREEN, START
from core.tokens.vocab import MOUSE as MOUSE_TOKEN

from .config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig
from .label import Labeler
from .model import EventIDM, TickIDM, build_model


def windows(n_frames: int, size: int) -> list[tuple[int, int, int, int]]:
    """(start, keep_from, keep_to, end) frame indices covering ``n_frames`` with half-overlapping windows."""
    if n_frames <= size:
        return [(0, 0, n_frames, n_frames)]
    step = max(1, size // 2)
    starts = list(range(0, n_frames - size + 1, step))
    if starts[-1] != n_frames - size:
        starts.append(n_frames - size)
    out = []
    for k, s in enumerate(starts):
        keep_from = 0 if k == 0 else s + size // 4
        keep_to = n_frames if k == len(starts) - 1 else s + size - size // 4
        if out:
            keep_from = out[-1][2]
        out.append((s, keep_from, max(keep_from, keep_to), s + size))
    return out


def _pad(frames: np.ndarray, size: int) -> np.ndarray:
    if len(frames) >= size:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], size - len(frames), axis=0)])


def _batches(frames: np.ndarray, size: int, batch_size: int):
    """(windows of this batch, (B, T, S, S, 3) frames) over the whole segment."""
    spans = windows(len(frames), size)
    for b in range(0, len(spans), batch_size):
        chunk = spans[b:b + batch_size]
        yield chunk, torch.from_numpy(np.stack([_pad(frames[s:e], size) for s, _kf, _kt, e in chunk]))


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def predict_ticks(model: TickIDM, frames: np.ndarray, times: Sequence[int], *, device: torch.device,
                  batch_size: int = 8) -> list[tuple[Any, float]]:
    """VPT-style inference: per-tick key/button states (threshold 0.5) and the likeliest mouse bin.

    The bin's centre, not the expectation over bins: mouse motion is sparse, and the expectation turns
    a confident "no motion" into a small motion on every tick (scale ratios of 25-120 when measured)."""
    model.eval().to(device)
    cfg, data = model.cfg, model.data
    n = len(frames)
    probs_k = np.zeros((n, model.keys.out_features), np.float32)
    probs_b = np.zeros((n, model.buttons.out_features), np.float32)
    mouse = np.zeros((n, 2), np.float32)
    centers = mu_law_value(torch.arange(cfg.mouse_bins), cfg.mouse_bins, cfg.mouse_max).to(device)
    for chunk, batch in _batches(frames, data.frames, batch_size):
        with _autocast(device):
            out = model.heads(batch.to(device))
        pk, pb = torch.sigmoid(out[KEYS].float()).cpu().numpy(), torch.sigmoid(out[BUTTONS].float()).cpu().numpy()
        pm = centers[out[MOUSE].float().argmax(-1)].cpu().numpy()  # the likeliest bin: still means no motion
        for row, (s, kf, kt, _e) in enumerate(chunk):
            probs_k[kf:kt] = pk[row, kf - s:kt - s]
            probs_b[kf:kt] = pb[row, kf - s:kt - s]
            mouse[kf:kt] = pm[row, kf - s:kt - s]
    key_conf = np.where(probs_k > 0.5, probs_k, 1 - probs_k)
    return ticks_to_events(probs_k > 0.5, probs_b > 0.5, mouse, times, data.keys, key_conf)


def _confidences(ids: list[int], probs: list[float], vocab: Vocabulary, n_prefix: int) -> list[float]:
    """Geometric mean of chosen-token probabilities per input event, in order of appearance."""
    out, current, kind = [], [], None
    start, end = vocab.id(START), vocab.id(END)
    inputs = (vocab.id(KEYBOARD), vocab.id(MOUSE_TOKEN))
    for tok, p in zip(ids[n_prefix:], probs):
        if tok == start:
            current, kind = [], None
        elif kind is None and tok in (*inputs, vocab.id(SCREEN)):
            kind = tok
        if p < 1.0:
            current.append(p)
        if tok == end and kind in inputs:
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
def predict_events(model: EventIDM, vocab: Vocabulary, frames: np.ndarray, times: Sequence[int], *,
                   device: torch.device, batch_size: int = 8, temperature: float = 0.0,
                   generator: torch.Generator | None = None) -> list[tuple[Any, float]]:
    """Events over a whole segment (frames on the 20 Hz grid at ``times``), with confidences: the windows of
    a batch are encoded together and decoded in lock step with a KV cache, under the token grammar. The
    confidence of an event is the geometric mean of the probabilities of the tokens the model chose for it."""
    model.eval().to(device)
    data = model.data
    tau = tau_ns(data.tau_ms)
    lag = round(tau_ticks(data.tau_ms))
    out: list[tuple[Any, float]] = []
    for chunk, batch in _batches(frames, data.frames, batch_size):
        with _autocast(device):
            memory, shift = model.encoder.encode(batch.to(device))
            values = model.mouse_values(memory, shift)
        values = None if values is None else values.float().cpu().numpy()
        grammars, spans_times = [], []
        for row, (s, _kf, _kt, e) in enumerate(chunk):
            win_times = [int(t) for t in times[s:e]]
            while len(win_times) < data.frames:  # padded tail: frames continue on the grid
                win_times.append(win_times[-1] + TICK_NS)
            grammars.append(Grammar(vocab, win_times, tau, data.keys, _shown_after(values, row, lag)))
            spans_times.append(win_times)
        with _autocast(device):
            decoded = model.generate_batch(memory, [vocab.id(BOS)], grammars, temperature=temperature,
                                           generator=generator)
        for (ids, probs), win_times, (_s, kf, kt, _e) in zip(decoded, spans_times, chunk):
            events = decode_tokens(ids, win_times[0], tau, vocab)
            confs = _confidences(ids, probs, vocab, 1)
            # keep what this window saw with the most context (its middle), as the tick model does
            lo = int(times[kf])
            hi = int(times[kt]) if kt < len(times) else int(times[-1]) + TICK_NS
            out += [(ev, c) for ev, c in zip(events, confs) if lo <= ev.t_ns < hi]
    out.sort(key=lambda ec: ec[0].t_ns)
    return out


def device_for(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(folder: str | Path) -> tuple[torch.nn.Module, IDMConfig, DataConfig, Vocabulary]:
    """The trained model of a run folder (strictly loaded), with its configs and vocabulary."""
    run = RunFolder(folder)
    cfg, data, _train = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
    vocab = run.vocab()
    model = build_model(cfg, data, vocab)
    run.load_weights(model)
    return model, cfg, data, vocab


def load_labeler(folder: str | Path, *, device: str = "auto", batch_size: int = 8) -> Labeler:
    model, cfg, _data, vocab = load_model(folder)
    dev = device_for(device)
    if cfg.kind == "ticks":
        return lambda frames, times: predict_ticks(model, frames, times, device=dev, batch_size=batch_size)
    return lambda frames, times: predict_events(model, vocab, frames, times, device=dev, batch_size=batch_size)


def model_info(folder: str | Path) -> dict[str, Any]:
    """What pseudo-labels record about the model that made them, and the frame preparation it needs."""
    run = RunFolder(folder)
    cfg, data, _train = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
    import hashlib

    config_hash = hashlib.sha256((cfg.to_json() + data.to_json()).encode()).hexdigest()[:12]
    return {"model_id": cfg.name, "kind": cfg.kind, "config_hash": config_hash,
            "weights_hash": run.weights_hash(),  # retrained with the same config: other labels
            "image_size": data.image_size, "aspect": data.aspect, "model_path": str(folder)}
