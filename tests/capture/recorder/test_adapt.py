"""The order in which the recorder gives things up under CPU pressure: preset, then frame rate."""

from __future__ import annotations

from capture.recorder.adapt import EncoderPressure

S = 1_000_000_000


def _feed(p: EncoderPressure, seconds: float, fps: float, depth: int, drops_per_s: float = 0.0,
          t0: int = 0, drops0: int = 0) -> tuple[list, int, int]:
    steps, t, drops = [], t0, drops0
    for i in range(int(seconds * fps)):
        t = t0 + round(i * S / fps)
        drops = drops0 + int(drops_per_s * i / fps)
        step = p.observe(t, depth, drops)
        steps += [step] if step else []
    return steps, t, drops


def test_a_deep_queue_steps_the_preset_down_then_the_frame_rate() -> None:
    p = EncoderPressure("veryfast", 60.0, 16)
    steps, _, _ = _feed(p, 8.0, 60, depth=12)
    assert [s.preset or s.fps for s in steps[:4]] == ["superfast", "ultrafast", 40.0, 30.0]
    assert all(b.t_ns - a.t_ns >= p.settle_ns for a, b in zip(steps, steps[1:]))  # one step at a time
    assert min(s.fps for s in steps if s.fps) >= 5.0


def test_no_step_while_the_encoder_keeps_up_or_during_the_start() -> None:
    p = EncoderPressure("veryfast", 30.0, 16)
    assert _feed(p, 10.0, 30, depth=1)[0] == []
    p = EncoderPressure("veryfast", 30.0, 16)
    assert _feed(p, 0.9, 30, depth=16, drops_per_s=30)[0] == []  # the encoder's start-up is not pressure


def test_drops_alone_trigger_a_step_but_one_stray_drop_does_not() -> None:
    p = EncoderPressure("ultrafast", 30.0, 16)
    assert _feed(p, 5.0, 30, depth=0, drops_per_s=0.3)[0] == []  # one drop every ~3 s
    steps, _, _ = _feed(p, 3.0, 30, depth=0, drops_per_s=5, t0=5 * S, drops0=2)
    assert steps and steps[0].fps == 20.0 and "dropped" in steps[0].why


def test_a_fixed_encoder_only_lowers_the_frame_rate() -> None:
    p = EncoderPressure("veryfast", 30.0, 16, presets_switchable=False)
    steps, _, _ = _feed(p, 3.0, 30, depth=12)
    assert steps and all(s.preset is None for s in steps)


def test_the_frame_rate_comes_back_after_a_calm_spell_but_the_preset_stays() -> None:
    p = EncoderPressure("superfast", 30.0, 16)
    steps, t, drops = _feed(p, 2.5, 30, depth=12)  # a spike of load
    assert [s.preset or s.fps for s in steps] == ["ultrafast", 20.0]
    calm, t, _ = _feed(p, 12.0, 30, depth=0, t0=t + S // 30, drops0=drops)
    assert [s.fps for s in calm] == [30.0] and "no pressure" in calm[0].why and p.preset == "ultrafast"
    assert _feed(p, 12.0, 30, depth=0, t0=t + S // 30, drops0=drops)[0] == []  # nothing more to give back
