"""Baselines an IDM has to beat, scored with the same metrics on the same recordings.

- ``predict_nothing``: no events (D2E's keyboard accuracy scores it 0; VPT's per-tick accuracy does not).
- ``MajorityBaseline``: every key that is down in most training ticks is held for the whole recording.
- ``OpticalFlowMouse``: the image shift between consecutive frames (phase correlation) times one fitted
  scale per axis, as raw mouse motion. DESIGN section 2 measured Pearson 0.53 (ViZDoom health_gathering)
  and 0.27 (deathmatch) for it.
The VPT-style learned baseline is ``idm.model.TickIDM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from capture.schema import KeyboardEvent, RawMouseEvent


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
        from capture.keys import name_for

        return [KeyboardEvent(frame_times[0], "press", name_for(vk), vk) for vk in self.held_vks]
