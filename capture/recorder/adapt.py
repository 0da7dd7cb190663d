"""What the recorder gives up when its encoder cannot keep up: encoder preset first, then frame rate.

Issue 19 measured 35-48 % of frames dropped while a game and another job saturated two cores, and 87 %
in the benchmark with two busy processes: the encoder fell behind and the grab thread threw frames away
at random moments, which leaves gaps a model cannot see. Giving things up in a fixed order is better:

1. a faster x264 preset (veryfast -> superfast -> ultrafast) costs only bytes (the same quality target
   at roughly 1.5-2x the size);
2. then a lower frame rate (60 -> 40 -> 30 -> 20 -> 15 -> 10 ... fps, never below ``min_fps``) costs
   temporal detail but keeps frames regular;
3. only then are frames dropped, and every drop is still counted.

``EncoderPressure`` decides when a step is due from what the encoder thread sees: the capture queue
staying deep (the encoder is slower than the grabs) or new drops. After each step it waits ``settle_ns``
so that a step can take effect before the next. After ``calm_ns`` without drops or a deep queue it
gives one frame-rate step back (a short spike of load must not cost the rest of a long recording its
frame rate); presets stay down, since they cost only bytes. Every step is logged and stored in the
file's end record.
"""

from __future__ import annotations

from dataclasses import dataclass

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
FPS_DIVISORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


@dataclass
class Step:
    """One decision: a new preset or a new frame rate, when, and why."""

    t_ns: int
    preset: str | None = None
    fps: float | None = None
    why: str = ""

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if v is not None}


class EncoderPressure:
    """Call ``observe`` once per encoded frame; it returns a ``Step`` when the recorder should take one."""

    def __init__(self, preset: str, fps: float, queue_size: int, *, presets_switchable: bool = True,
                 min_fps: float = 5.0, settle_ns: int = 1_000_000_000, deep_frames: int = 3,
                 calm_ns: int = 10_000_000_000):
        faster = X264_PRESETS[:X264_PRESETS.index(preset)] if preset in X264_PRESETS else ()
        self.presets = list(reversed(faster)) if presets_switchable else []  # next one first
        self.preset = preset
        self.base_fps = fps
        self.divisors = [d for d in FPS_DIVISORS[1:] if fps / d >= min_fps]
        self.used: list[float] = []  # divisors taken, last first to give back
        self.fps = fps
        self.calm_ns = calm_ns
        self._calm_since: int | None = None
        self.high = max(2, queue_size // 2)
        self.settle_ns = settle_ns
        self.deep_frames = deep_frames
        self._deep = 0
        self._last_step_t: int | None = None
        self._window_t = 0
        self._window_drops = 0
        self.steps: list[Step] = []

    def observe(self, t_ns: int, depth: int, drops: int) -> Step | None:
        """``depth``: frames still queued after taking this one; ``drops``: the recorder's drop counter."""
        if self._last_step_t is None:  # the first frames pay for the encoder's start: a grace period
            self._last_step_t, self._window_t, self._window_drops = t_ns, t_ns, drops
        self._deep = self._deep + 1 if depth >= self.high else 0
        settled = t_ns - self._last_step_t >= self.settle_ns
        why = None
        if settled and self._deep >= self.deep_frames:
            why = f"encoder queue {depth} frames deep"
        if t_ns - self._window_t >= self.settle_ns:  # drops are judged per window of settle_ns
            new_drops = drops - self._window_drops
            self._window_t, self._window_drops = t_ns, drops
            if settled and why is None and new_drops >= 2:
                why = f"{new_drops} frames dropped in {self.settle_ns / 1e9:g} s"
        if why is None:
            return self._recover(t_ns, depth, drops)
        self._calm_since = None
        if self.presets:
            self.preset = self.presets.pop(0)
            step = Step(t_ns, preset=self.preset, why=why)
        elif self.divisors:
            self.used.insert(0, self.divisors.pop(0))
            self.fps = self.base_fps / self.used[0]
            step = Step(t_ns, fps=round(self.fps, 3), why=why)
        else:
            return None
        return self._took(step, drops)

    def _took(self, step: Step, drops: int) -> Step:
        self._last_step_t, self._deep = step.t_ns, 0
        self._window_t, self._window_drops = step.t_ns, drops
        self.steps.append(step)
        return step

    def _recover(self, t_ns: int, depth: int, drops: int) -> Step | None:
        """One frame-rate step back up after ``calm_ns`` without pressure."""
        if not self.used or depth > 1 or drops != self._window_drops:
            self._calm_since = None
            return None
        if self._calm_since is None:
            self._calm_since = t_ns
        if t_ns - self._calm_since < self.calm_ns:
            return None
        self.divisors.insert(0, self.used.pop(0))
        self.fps = self.base_fps / (self.used[0] if self.used else 1.0)
        self._calm_since = None
        return self._took(Step(t_ns, fps=round(self.fps, 3), why=f"no pressure for {self.calm_ns / 1e9:g} s"),
                          drops)
