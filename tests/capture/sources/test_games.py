"""Real games played by the policy: valid recordings whose logged inputs replay to the same frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from capture.format import RecordingReader
from capture.inspect import validate
from capture.sources.base import record_game, replay_intents
from capture.sources.policy import HumanLikePolicy
from capture.video import VideoReader

pytest.importorskip("ale_py")


def _luma(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Luma PSNR: the video is yuv420p, so colour detail of pixel art is lossy by design, brightness is not."""
    mse = float(((_luma(a) - _luma(b)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def _replay_matches(env, path: Path, seed: int) -> tuple[list[float], list[float]]:
    """PSNR of replayed frames vs the recorded video, and vs the video one frame later (a control)."""
    with RecordingReader(path) as r:
        events = list(r.iter(topics=["keyboard", "mouse/raw"]))
        frames = list(r.iter(topics=["screen"]))
        steps = r.end_info["steps"]
        video = VideoReader(r.video_path)
    intents = replay_intents(events, env.native_hz, steps)
    env.reset(seed)
    native_ns = 1e9 / env.native_hz
    shown: dict[int, np.ndarray] = {}
    j = 0
    for k in range(steps):
        t = round(k * native_ns)
        while j < len(frames) and frames[j].t_ns <= t:
            shown[j] = env.screen().copy()
            j += 1
        env.step(intents[k])
    same, shifted = [], []
    for i in range(0, len(frames) - 1, 7):
        decoded = video.frame_at(frames[i].pts_ns)
        same.append(_psnr(decoded, shown[i]))
        shifted.append(_psnr(video.frame_at(frames[i + 1].pts_ns), shown[i]))
    return same, shifted


@pytest.mark.parametrize("game", ["Breakout", "SpaceInvaders"])
def test_ale_recording_is_valid_and_replays(tmp_path: Path, game: str) -> None:
    from capture.sources.ale import AleEnv, default_policy

    env = AleEnv(game)
    path = tmp_path / f"{game}.mcap"
    result = record_game(env, default_policy(env), path, seconds=8, seed=3, source="ale")
    assert result.frames == 160 and result.events > 10  # exactly 20 fps from 60 Hz
    assert validate(str(path)).ok
    with RecordingReader(path) as r:
        keys = list(r.iter(topics=["keyboard"]))
        assert r.meta.extra["game"] == env.name and r.meta.extra["repeat_action_probability"] == 0.0
    assert {k.key for k in keys} <= set(env.keys)
    # key changes fall between video frames (60 Hz inputs, 20 Hz video)
    assert any(k.t_ns % 50_000_000 for k in keys)
    same, shifted = _replay_matches(AleEnv(game), path, seed=3)
    assert min(same) > 40 and min(shifted) < min(same) - 5  # the control (next frame) must differ


def test_vizdoom_mouse_deltas_and_replay(tmp_path: Path) -> None:
    pytest.importorskip("vizdoom")
    from capture.sources.vizdoom import DoomEnv, default_policy

    env = DoomEnv("basic")  # an enemy in view, so the intent player also shoots
    path = tmp_path / "doom.mcap"
    result = record_game(env, default_policy(env), path, seconds=6, seed=5, source="vizdoom")
    assert result.frames == 120 and validate(str(path)).ok
    with RecordingReader(path) as r:
        raw = list(r.iter(topics=["mouse/raw"]))
    assert sum(abs(m.dx) for m in raw) > 100  # the player really turns
    assert any(m.button_flags for m in raw)  # and attacks with the left button
    same, shifted = _replay_matches(DoomEnv("basic"), path, seed=5)
    # basic's textured walls lose more to yuv420p than health_gathering did (~33 dB); the control sits near 21 dB
    assert min(same) > 30 and np.mean(same) > np.mean(shifted) + 5


def test_policy_is_deterministic_and_human_like() -> None:
    def run(seed: int) -> list:
        p = HumanLikePolicy(keys=["w", "a", "s", "d"], mouse=True)
        p.reset(seed)
        return [p.step(round(k * 1e9 / 60)) for k in range(60 * 30)]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    holds, start = [], {}
    for k, intent in enumerate(a):
        for key in intent.keys - (a[k - 1].keys if k else frozenset()):
            start[key] = k
        for key in (a[k - 1].keys if k else frozenset()) - intent.keys:
            holds.append((k - start.pop(key)) / 60)
    assert holds and min(holds) >= 0.09 and max(holds) <= 0.85  # 100-800 ms, on a 60 Hz clock
    idle = sum(1 for i in a if not i.keys) / len(a)
    assert 0.1 < idle < 0.9


def test_generate_cli_and_web_export(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "generate", "ale", "--game", "Pong", "--minutes", "0.1",
                          "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rec = tmp_path / "pong-s0.mcap"
    assert rec.exists() and validate(str(rec)).ok
    web = subprocess.run([sys.executable, "-m", "d2e.cli", "export-web", str(rec), "-o", str(tmp_path / "w.mp4"),
                          "--width", "80", "--fps", "30"], capture_output=True, text=True, timeout=120)
    assert web.returncode == 0, web.stderr
    with VideoReader(tmp_path / "w.mp4") as v:
        info = v.info()
    assert (info.width, info.height) == (80, 104) and abs(info.frames - 180) <= 1
    with RecordingReader(tmp_path / "w.truth.mcap") as truth, RecordingReader(rec) as original:
        t0 = next(iter(original.iter(topics=["screen"]))).t_ns
        assert [m.t_ns for m in truth.iter()] == [m.t_ns - t0 for m in original.iter() if m.TOPIC != "screen"]
    bad = subprocess.run([sys.executable, "-m", "d2e.cli", "generate", "ale", "--game", "NoSuchGame", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown ALE game" in bad.stderr
