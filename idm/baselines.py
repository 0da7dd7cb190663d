"""Baselines an IDM has to beat, scored with the same metrics on the same recordings.

- ``predict_nothing``: no events (D2E's keyboard accuracy scores it 0; VPT's per-tick accuracy does not).
- ``MajorityBaseline``: every key that is down in most training ticks is held for the whole recording.
- ``AlwaysHeld``: every key held for the whole recording (per-key F1 of a key = 2p / (1 + p) at hold rate p).
- ``RandomAtRate``: each key pressed at random (Poisson) at its training press rate, held for durations drawn
  from its training holds, seeded: chance for press F1. ``idm.oracle`` gives the ceiling.
- ``OpticalFlowMouse``: the image shift between consecutive frames (phase correlation) times one fitted
  scale per axis, as raw mouse motion. DESIGN section 2 measured Pearson 0.53 (ViZDoom health_gathering)
  and 0.27 (deathmatch) for it.
The VPT-style learned baseline is ``idm.model.TickIDM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from capture.keys import name_for
from capture.schema import KeyboardEvent, RawMouseEvent
from core.grid import TICK_NS
from core.ticks import NEVER, down_intervals


def predict_nothing(frame_times: Sequence[int]) -> list:
    return []


def _gray(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float32)
    return f.mean(-1) if f.ndim == 3 else f


def phase_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Shift (dx, dy) in pixels that moves image ``a`` onto ``b``, with sub-pixel peak refinement."""
    ga, gb = _gray(a), _gray(b)
    window = np.outer(np.hanning(ga.shape[0]), np.hanning(ga.shape[1]))
    fa, fb = np.fft.fft2((ga - ga.mean()) * window), np.fft.fft2((gb - gb.mean()) * window)
    cross = fb * np.conj(fa)
    cross /= np.abs(cross) + 1e-9
    corr = np.fft.ifft2(cross).real
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = corr.shape

    def refine(c_m: float, c_0: float, c_p: float) -> float:
        denom = c_m - 2 * c_0 + c_p
        return 0.0 if denom == 0 else 0.5 * (c_m - c_p) / denom

    dx = px + refine(corr[py, (px - 1) % w], corr[py, px], corr[py, (px + 1) % w])
    dy = py + refine(corr[(py - 1) % h, px], corr[py, px], corr[(py + 1) % h, px])
    if dx > w / 2:
        dx -= w
    if dy > h / 2:
        dy -= h
    return float(dx), float(dy)


def frame_shifts(frames: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 2) image shift from each frame to the next (the last row is zero)."""
    out = np.zeros((len(frames), 2))
    for i in range(len(frames) - 1):
        out[i] = phase_correlation(frames[i], frames[i + 1])
    return out


@dataclass
class OpticalFlowMouse:
    """Mouse dx/dy = scale * image shift between the frame before and after; scale fitted by least squares."""

    scale: tuple[float, float] = (1.0, 1.0)

    def fit(self, shifts: np.ndarray, true_motion: np.ndarray) -> OpticalFlowMouse:
        """``shifts``: (N, 2) image shifts; ``true_motion``: (N, 2) summed mouse motion between the frames."""
        scale = []
        for axis in range(2):
            s, m = shifts[:, axis], true_motion[:, axis]
            denom = float((s * s).sum())
            scale.append(float((s * m).sum() / denom) if denom > 0 else 0.0)
        self.scale = (scale[0], scale[1])
        return self

    def predict(self, shifts: np.ndarray, frame_times: Sequence[int]) -> list[RawMouseEvent]:
        """One raw motion event just after each frame, carrying the motion until the next frame."""
        out = []
        for i in range(len(frame_times) - 1):
            dx, dy = round(shifts[i, 0] * self.scale[0]), round(shifts[i, 1] * self.scale[1])
            if dx or dy:
                out.append(RawMouseEvent(frame_times[i] + 1, dx, dy))
        return out


@dataclass
class MajorityBaseline:
    """Holds the keys that are down in most training ticks, from the first frame to the end."""

    held_vks: list[int] = field(default_factory=list)

    def fit(self, key_state: np.ndarray, vks: Sequence[int]) -> MajorityBaseline:
        """``key_state``: (ticks, keys) booleans from the training recordings."""
        frac = key_state.mean(0) if len(key_state) else np.zeros(len(vks))
        self.held_vks = [vk for vk, f in zip(vks, frac) if f > 0.5]
        return self

    def predict(self, frame_times: Sequence[int]) -> list[KeyboardEvent]:
        if not frame_times:
            return []
        return [KeyboardEvent(frame_times[0], "press", name_for(vk), vk) for vk in self.held_vks]


@dataclass
class AlwaysHeld:
    """Every key held from the first frame to the end: the per-key F1 a model gets by never letting go."""

    vks: list[int] = field(default_factory=list)

    def fit(self, vks: Sequence[int]) -> AlwaysHeld:
        self.vks = [int(vk) for vk in vks]
        return self

    def predict(self, frame_times: Sequence[int]) -> list[KeyboardEvent]:
        return MajorityBaseline(self.vks).predict(frame_times)


@dataclass
class RandomAtRate:
    """Presses at random times at each key's true rate, held as long as the training holds: chance press F1.

    ``fit`` measures, per key, presses per second and the hold durations over the training recordings;
    ``predict`` draws presses at random per key over the frames' span (exponential waits after each release,
    sized so the press rate matches), each hold drawn from that key's measured holds. Seeded, so repeatable.
    """

    rates: dict[int, float] = field(default_factory=dict)
    holds: dict[int, list[int]] = field(default_factory=dict)
    seed: int = 0

    def fit(self, recordings: Sequence[Sequence[object]], seconds: float, vks: Sequence[int] | None = None
            ) -> RandomAtRate:
        """``recordings``: each training recording's events (keyboard ones are used); ``seconds``: their total
        length; ``vks``: keys to model (default: every key pressed)."""
        counts: dict[int, int] = {}
        holds: dict[int, list[int]] = {}
        for events in recordings:
            keys = sorted((e.t_ns, e.vk, e.action == "press") for e in events if isinstance(e, KeyboardEvent))
            for vk, down, up in down_intervals(keys).tolist():
                counts[vk] = counts.get(vk, 0) + 1
                if up != NEVER:
                    holds.setdefault(vk, []).append(up - down)
        wanted = [int(v) for v in vks] if vks is not None else sorted(counts)
        self.rates = {vk: counts.get(vk, 0) / seconds if seconds > 0 else 0.0 for vk in wanted}
        self.holds = {vk: holds.get(vk) or [TICK_NS] for vk in wanted}
        return self

    def predict(self, frame_times: Sequence[int]) -> list[KeyboardEvent]:
        if not frame_times:
            return []
        rng = np.random.default_rng(self.seed)
        start, end = int(frame_times[0]), int(frame_times[-1]) + TICK_NS
        out: list[KeyboardEvent] = []
        for vk in sorted(self.rates):
            rate, holds, t = self.rates[vk], self.holds[vk], start
            # the wait after a release is what is left of the mean press interval once the mean hold is
            # taken out, so that presses come at the true rate although a held key cannot be pressed again
            gap_s = max(1.0 / rate - float(np.mean(holds)) / 1e9, 0.05) if rate > 0 else 0.0
            while rate > 0:
                t += int(rng.exponential(gap_s) * 1e9)
                if t >= end:
                    break
                up = t + int(holds[rng.integers(len(holds))])
                out.append(KeyboardEvent(t, "press", name_for(vk), vk))
                out.append(KeyboardEvent(min(up, end - 1), "release", name_for(vk), vk))
                t = up
        return sorted(out, key=lambda e: e.t_ns)
