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

from capture.keys import name_for
from capture.schema import KeyboardEvent
from core.config import DataConfig
from core.grid import TICK_NS, tau_ns, tau_ticks
from core.nn.heads import BUTTONS, KEYS, MOUSE, MOUSE_VALUE, PRESSES, mu_law_value
from core.run import RunFolder
from core.ticks import ticks_to_events
from core.tokens import Grammar, Vocabulary, decode_tokens
from core.tokens.vocab import BOS, END, KEYBOARD, SCREEN, START
from core.tokens.vocab import MOUSE as MOUSE_TOKEN

from .calibrate import KEEP_DOWN, thresholds_for
from .config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig
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


def tick_outputs(model: torch.nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-tick heads of either IDM kind over a batch of windows."""
    if isinstance(model, TickIDM):
        return model.heads(batch)
    return model.tick_outputs(*model.encoder.encode(batch))


@torch.no_grad()
def tick_probabilities(model: torch.nn.Module, frames: np.ndarray, *, device: torch.device,
                       batch_size: int = 8) -> dict[str, np.ndarray]:
    """Per tick of a whole segment: key, press-onset and button probabilities and the mouse motion (the value
    head's when there is one, else the likeliest bin's centre), each tick from the window that saw it best.

    The bin's centre, not the expectation over bins: mouse motion is sparse, and the expectation turns a
    confident "no motion" into a small motion on every tick (scale ratios of 25-120 when measured)."""
    model.eval().to(device)
    cfg, data = model.cfg, model.data
    heads = model if isinstance(model, TickIDM) else model.ticks
    n = len(frames)
    out: dict[str, np.ndarray] = {KEYS: np.zeros((n, heads.keys.out_features), np.float32),
                                  BUTTONS: np.zeros((n, heads.buttons.out_features), np.float32),
                                  MOUSE: np.zeros((n, 2), np.float32)}
    if heads.onset is not None:
        out[PRESSES] = np.zeros((n, heads.onset.out_features), np.float32)
    for chunk, batch in _batches(frames, data.frames, batch_size):
        with _autocast(device):
            probs = head_probabilities(tick_outputs(model, batch.to(device)), cfg)
        for row, (s, kf, kt, _e) in enumerate(chunk):
            for name, value in probs.items():
                out[name][kf:kt] = value[row, kf - s:kt - s]
    return out


def head_probabilities(out: dict[str, torch.Tensor], cfg: IDMConfig) -> dict[str, np.ndarray]:
    """(B, T, ...) arrays from the per-tick heads: key, onset and button probabilities, and the mouse motion
    (the value head's when there is one, else the likeliest bin's centre)."""
    probs = {name: torch.sigmoid(out[name].float()).cpu().numpy() for name in (KEYS, BUTTONS, PRESSES) if name in out}
    if MOUSE_VALUE in out:
        probs[MOUSE] = out[MOUSE_VALUE].float().cpu().numpy()
    else:
        centers = mu_law_value(torch.arange(cfg.mouse_bins), cfg.mouse_bins, cfg.mouse_max).to(out[MOUSE].device)
        probs[MOUSE] = centers[out[MOUSE].float().argmax(-1)].cpu().numpy()
    return probs


ONSET_GAP = 2  # ticks a rise of the held state waits for an onset peak before it counts as a press itself


def onset_peaks(p: np.ndarray, threshold: float, gap: int = 2) -> list[int]:
    """Ticks where ``p`` has a local maximum of at least ``threshold``; of peaks closer than ``gap`` ticks only
    the higher one (a press shows in two neighbouring ticks when it falls near their border)."""
    candidates = [t for t in range(len(p)) if p[t] >= threshold and (t == 0 or p[t] >= p[t - 1])
                  and (t == len(p) - 1 or p[t] > p[t + 1])]
    kept: list[int] = []
    for t in sorted(candidates, key=lambda t: -p[t]):
        if all(abs(t - k) >= gap for k in kept):
            kept.append(t)
    return sorted(kept)


def key_events(held: np.ndarray, onset: np.ndarray | None, thresholds: dict[str, Any], times: Sequence[int],
               vks: Sequence[int]) -> list[tuple[Any, float]]:
    """Key events from per-tick probabilities, with confidences.

    With an onset head a press is a peak of the onset probability (timed in the middle of its tick), or a rise of
    the thresholded held state with no onset peak in the next ``ONSET_GAP`` ticks (the onset head missed it), and
    the key stays down while the held probability stays above its keep-down threshold (``KEEP_DOWN``, at most the
    held one: a key can stay down on weaker evidence than a rise needs to count as a press; default: the held
    one); a peak while the key is down is a release and a new press. Without an onset head, presses and releases
    are the changes of the thresholded held state (VPT's reading). Measured on the IDM benchmark's test
    recordings with thresholds chosen on them: the rises add 0.00-0.03 press F1 over peaks alone on most games."""
    held_thr = np.asarray(thresholds.get(KEYS, [0.5] * held.shape[1]), np.float32)
    if onset is None:
        down = held > held_thr
        conf = np.where(down, held, 1 - held)
        return [(e, c) for e, c in ticks_to_events(down, np.zeros((len(times), 0), bool), np.zeros((len(times), 2)),
                                                   times, vks, conf)]
    onset_thr = thresholds.get(PRESSES, [0.5] * onset.shape[1])
    keep_thr = np.asarray(thresholds.get(KEEP_DOWN, held_thr), np.float32)
    out: list[tuple[Any, float]] = []
    for k, vk in enumerate(vks):
        name = name_for(int(vk))
        peaks = sorted(onset_peaks(onset[:, k], float(onset_thr[k])))
        is_peak = set(peaks)
        down = False
        for t, t_ns in enumerate(times):
            up = held[t, k] <= held_thr[k]
            if t in is_peak:
                if down:  # pressed again: it was released within the previous tick
                    out.append((KeyboardEvent(t_ns - 1, "release", name, int(vk)), float(1 - held[t - 1, k])))
                out.append((KeyboardEvent(t_ns + TICK_NS // 2, "press", name, int(vk)), float(onset[t, k])))
                down = True
            elif not down and not up and not any(0 < p - t <= ONSET_GAP for p in peaks):  # a press the peaks missed
                out.append((KeyboardEvent(t_ns + TICK_NS // 2, "press", name, int(vk)), float(held[t, k])))
                down = True
            elif down and held[t, k] <= keep_thr[k]:  # up for the whole of this tick: released in the last one
                out.append((KeyboardEvent(t_ns - 1, "release", name, int(vk)), float(1 - held[t, k])))
                down = False
        if down and len(times):
            out.append((KeyboardEvent(times[-1] + TICK_NS - 1, "release", name, int(vk)), 1.0))
    return sorted(out, key=lambda ec: ec[0].t_ns)


def decode_ticks(probs: dict[str, np.ndarray], times: Sequence[int], vks: Sequence[int],
                 thresholds: dict[str, Any]) -> list[tuple[Any, float]]:
    """Events from per-tick probabilities: keys (``key_events``), buttons and mouse motion per tick."""
    button_thr = np.asarray(thresholds.get(BUTTONS, [0.5] * probs[BUTTONS].shape[1]), np.float32)
    no_keys = np.zeros((len(times), 0), bool)
    others = ticks_to_events(no_keys, probs[BUTTONS] > button_thr, probs[MOUSE], times, [])
    return sorted(key_events(probs[KEYS], probs.get(PRESSES), thresholds, times, vks) + others,
                  key=lambda ec: ec[0].t_ns)


def predict_ticks(model: TickIDM, frames: np.ndarray, times: Sequence[int], *, device: torch.device,
                  batch_size: int = 8, thresholds: dict[str, Any] | None = None) -> list[tuple[Any, float]]:
    """VPT-style inference: per-tick heads, then decisions at the thresholds calibrated after training."""
    probs = tick_probabilities(model, frames, device=device, batch_size=batch_size)
    return decode_ticks(probs, times, model.data.keys, thresholds or {})


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


MAX_EVENTS_PER_FRAME = 8  # input events the decoder may write after one frame: a weak model must not flood


def _by_frame(events: list[tuple[Any, float]], win_times: list[int], tau: int) -> list[list[Any]]:
    """Events grouped by the frame they are written after (NEP-tau), in order; those that fall outside the
    window's frames are dropped (the overlapping windows keep only their middles anyway)."""
    grouped: list[list[Any]] = [[] for _ in win_times]
    ends = [*win_times[1:], win_times[-1] + TICK_NS]
    for event, _c in events:
        shifted = event.t_ns + tau
        for k, (lo, hi) in enumerate(zip(win_times, ends)):
            if lo <= shifted < hi:
                grouped[k].append(event)
                break
    return grouped


@torch.no_grad()
def predict_events(model: EventIDM, vocab: Vocabulary, frames: np.ndarray, times: Sequence[int], *,
                   device: torch.device, batch_size: int = 8, thresholds: dict[str, Any] | None = None,
                   temperature: float = 0.0, generator: torch.Generator | None = None,
                   max_events: int = MAX_EVENTS_PER_FRAME) -> list[tuple[Any, float]]:
    """Events over a whole segment (frames on the 20 Hz grid at ``times``), with confidences: the windows of
    a batch are encoded together and decoded in lock step with a KV cache, under the token grammar.

    With ``events_from_ticks`` the events are what the calibrated per-tick heads find (``decode_ticks``: presses
    at onset peaks, button changes, the value head's motion), written into the token stream by the grammar and
    stamped by the decoder; their confidence is the heads'. Otherwise an event's confidence is the geometric
    mean of the probabilities of the tokens the model chose for it."""
    model.eval().to(device)
    data, cfg = model.data, model.cfg
    tau = tau_ns(data.tau_ms)
    lag = round(tau_ticks(data.tau_ms))
    out: list[tuple[Any, float]] = []
    for chunk, batch in _batches(frames, data.frames, batch_size):
        with _autocast(device):
            memory, shift = model.encoder.encode(batch.to(device))
            heads = model.tick_outputs(memory, shift) if model.ticks is not None else {}
        values = heads[MOUSE_VALUE].float().cpu().numpy() if MOUSE_VALUE in heads else None
        probs = head_probabilities(heads, cfg) if cfg.events_from_ticks else {}
        grammars, spans_times, given = [], [], []
        for row, (s, _kf, _kt, e) in enumerate(chunk):
            win_times = [int(t) for t in times[s:e]]
            while len(win_times) < data.frames:  # padded tail: frames continue on the grid
                win_times.append(win_times[-1] + TICK_NS)
            events = None
            if cfg.events_from_ticks:
                given.append(decode_ticks({k: v[row] for k, v in probs.items()}, win_times, data.keys,
                                          thresholds or {}))
                events = _by_frame(given[-1], win_times, tau)
            grammars.append(Grammar(vocab, win_times, tau, data.keys, _shown_after(values, row, lag), given=events,
                                    max_events=max_events))
            spans_times.append(win_times)
        with _autocast(device):
            decoded = model.generate_batch(memory, [vocab.id(BOS)], grammars, temperature=temperature,
                                           generator=generator)
        for row, ((ids, probs), win_times, (_s, kf, kt, _e)) in enumerate(zip(decoded, spans_times, chunk)):
            events = list(zip(decode_tokens(ids, win_times[0], tau, vocab), _confidences(ids, probs, vocab, 1)))
            if cfg.events_from_ticks:  # the given events come back in order: their confidence is the heads'
                confidence = iter(c for e, c in given[row] if win_times[0] <= e.t_ns + tau < win_times[-1] + TICK_NS)
                events = [(e, next(confidence)) for e, _c in events]
            # keep what this window saw with the most context (its middle), as the tick model does
            lo = int(times[kf])
            hi = int(times[kt]) if kt < len(times) else int(times[-1]) + TICK_NS
            out += [(ev, c) for ev, c in events if lo <= ev.t_ns < hi]
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


class ModelLabeler:
    """A trained model as a ``Labeler``: frames in, events with confidences out, decided at the thresholds
    calibrated after training. ``for_game`` gives the same model deciding at a training game's own thresholds
    (``idm.calibrate``); a game it was not calibrated on gets the pooled ones."""

    def __init__(self, model: torch.nn.Module, cfg: IDMConfig, vocab: Vocabulary, labels: dict[str, Any],
                 device: torch.device, batch_size: int = 8, game: str | None = None):
        self.model, self.cfg, self.vocab, self.labels = model, cfg, vocab, labels
        self.device, self.batch_size, self.game = device, batch_size, game
        self.thresholds = thresholds_for(labels, game)

    def for_game(self, game: str | None) -> ModelLabeler:
        return ModelLabeler(self.model, self.cfg, self.vocab, self.labels, self.device, self.batch_size, game)

    def __call__(self, frames: np.ndarray, times: Sequence[int]) -> list[tuple[Any, float]]:
        if self.cfg.kind == "ticks":
            return predict_ticks(self.model, frames, times, device=self.device, batch_size=self.batch_size,
                                 thresholds=self.thresholds)
        return predict_events(self.model, self.vocab, frames, times, device=self.device, batch_size=self.batch_size,
                              thresholds=self.thresholds)


def load_labeler(folder: str | Path, *, device: str = "auto", batch_size: int = 8, game: str | None = None
                 ) -> ModelLabeler:
    """The run's model as a ``Labeler``; ``game``: decide at that training game's calibrated thresholds."""
    model, cfg, _data, vocab = load_model(folder)
    labels = RunFolder(folder).labels()
    return ModelLabeler(model, cfg, vocab, labels, device_for(device), batch_size, game)


def calibrated_games(folder: str | Path) -> list[str]:
    """The games a run has thresholds of its own for (``d2e label --game``)."""
    return sorted(RunFolder(folder).labels().get("thresholds_by_game", {}))


def model_info(folder: str | Path) -> dict[str, Any]:
    """What pseudo-labels record about the model that made them, and the frame preparation it needs."""
    run = RunFolder(folder)
    cfg, data, _train = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
    import hashlib

    config_hash = hashlib.sha256((cfg.to_json() + data.to_json()).encode()).hexdigest()[:12]
    return {"model_id": cfg.name, "kind": cfg.kind, "config_hash": config_hash,
            "weights_hash": run.weights_hash(),  # retrained with the same config: other labels
            "image_size": data.image_size, "aspect": data.aspect, "model_path": str(folder)}
