"""``d2e label`` end to end on a folder of mixed videos: outputs, bad inputs, resume, shards, Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from capture.format import RecordingReader  # noqa: E402
from capture.synthetic import pattern_frame, write_synthetic_recording  # noqa: E402
from capture.video import VideoWriter  # noqa: E402
from idm.label import LabelOptions, label_video, run_local, select_shard  # noqa: E402
from idm.predict import load_labeler, model_info  # noqa: E402

from .conftest import write_run  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    rec = write_synthetic_recording(folder / "rec" / "game.mcap", seconds=3)
    rec.unlink()  # keep only the video, as a downloaded gameplay clip
    with VideoWriter(folder / "clip30fps.mp4", 200, 150, fps_hint=30) as w:  # other size, rate and container
        for i in range(75):
            w.write(pattern_frame(i, 200, 150), i * 33_333_333)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.webm").write_bytes(b"\x00not a video" * 100)
    static = folder / "static.mkv"
    with VideoWriter(static, 64, 48) as w:
        for i in range(40):
            w.write(np.full((48, 64, 3), 90, np.uint8), i * 50_000_000)
    return folder


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d2e.cli", "label", *args], capture_output=True, text=True,
                          timeout=300)


def test_label_folder_of_mixed_videos(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    run = _run(str(videos), "--model", str(tick_model), "--out", str(out), "--segment", "1", "--json", "--quiet")
    assert run.returncode == 1, run.stderr  # two inputs failed: a script must notice
    summary = json.loads(run.stdout)
    assert summary["labeled"] == 3 and summary["failed"] == 2
    assert (out / "run_summary.json").stat().st_mode & 0o777 == 0o600
    assert all(p.stat().st_mode & 0o077 == 0 for p in [*out.glob("*.mcap"), *out.glob("*.json")])
    assert any("zero-length" in r for r in summary["failures"].values())
    assert any("unreadable" in r for r in summary["failures"].values())
    outputs = sorted(out.glob("*.mcap"))
    assert len(outputs) == 3 and not (out / ".parts").exists() or not any((out / ".parts").rglob("*.msgpack"))
    for mcap in outputs:
        meta = json.loads(mcap.with_suffix(".json").read_text())
        with RecordingReader(mcap) as r:
            assert r.meta.source == "pseudo-label" and r.meta.extra["config_hash"] == meta["model"]["config_hash"]
            frames = list(r.iter(topics=["screen"]))
            if "static" in mcap.name:
                assert frames == [] and meta["static_segments"] == [0, 1]
                continue
            assert len(frames) == round(meta["probe"]["duration_s"] * 20)
            assert all(f.t_ns == i * 50_000_000 for i, f in enumerate(frames))
            if "clip30fps" in mcap.name:  # every model frame remembers the source frame it came from
                assert all(abs(f.pts_ns - f.t_ns) <= 17_000_000 for f in frames)  # half a frame (ms pts)
        assert subprocess.run([sys.executable, "-m", "d2e.cli", "info", str(mcap), "--no-video"],
                              capture_output=True).returncode == 0


def test_rerun_skips_finished_and_resumes_segments(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    labeler = load_labeler(str(tick_model))
    calls = []

    def counting(frames, times):
        calls.append(len(frames))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the second segment
        return labeler(frames, times)

    video = str(videos / "rec" / "game.mkv")
    opts = LabelOptions(segment_s=1.0, image_size=32)
    info = model_info(str(tick_model))
    with pytest.raises(KeyboardInterrupt):
        label_video(video, tmp_path, counting, opts, info)
    assert not list(tmp_path.glob("*.mcap")) and len(list((tmp_path / ".parts").rglob("*.msgpack"))) == 1
    calls.clear()
    result = label_video(video, tmp_path, lambda f, t: calls.append(len(f)) or labeler(f, t), opts, info)
    assert result.status == "labeled" and len(calls) == 2  # segment 0 was reused
    again = run_local([video], tmp_path, lambda f, t: pytest.fail("finished work redone"), opts, info,
                      progress=False)
    assert again.skipped_done == 1


def test_shards_partition_and_match_a_single_run(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    names = [f"v{i}.mp4" for i in range(7)]
    parts = [select_shard(names, f"{i}/3") for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(names) and all(parts)
    single, split = tmp_path / "single", tmp_path / "split"
    assert _run(str(videos), "--model", str(tick_model), "--out", str(single), "--quiet").returncode == 1
    for i in range(2):  # one thread per shard, as when shards share a machine: the same labels
        assert _run(str(videos), "--model", str(tick_model), "--out", str(split), "--shard", f"{i}/2",
                    "--threads", "1", "--quiet").returncode == 1  # each shard has one of the two bad videos
    _assert_same_outputs(single, split)


def _assert_same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.mcap"))
    assert names == sorted(p.name for p in b.glob("*.mcap")) and names
    for name in names:
        with RecordingReader(a / name) as ra, RecordingReader(b / name) as rb:
            assert list(ra.iter()) == list(rb.iter())


def test_ray_local_cluster_matches_local_run(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert _run(str(videos), "--model", str(tick_model), "--out", str(local), "--quiet").returncode == 1
    run = _run(str(videos), "--model", str(tick_model), "--out", str(ray_out), "--ray", "--workers", "2", "--json")
    assert run.returncode == 1, run.stderr[-2000:]
    assert json.loads(run.stdout)["labeled"] == 3
    _assert_same_outputs(local, ray_out)


def test_bad_shard_and_no_videos(tick_model: Path, tmp_path: Path) -> None:
    out = _run(str(tmp_path), "--model", str(tick_model), "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "no videos found" in out.stderr
    (tmp_path / "a.mp4").write_bytes(b"x")
    out = _run(str(tmp_path), "--model", str(tick_model), "--out", str(tmp_path / "o"), "--shard", "3/2")
    assert out.returncode == 2 and "bad --shard" in out.stderr


def test_labels_of_another_model_are_kept_unless_replace(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    clip = str(videos / "clip30fps.mp4")
    assert _run(clip, "--model", str(tick_model), "--out", str(out), "--quiet").returncode == 0
    [first] = [p for p in out.glob("*.json") if p.name != "run_summary.json"]
    made_by = json.loads(first.read_text())["model"]["weights_hash"]
    other = tmp_path / "retrained"  # same config, other weights: another model
    write_run(other, seed=1)
    refused = _run(clip, "--model", str(other), "--out", str(out), "--quiet")
    assert refused.returncode == 2 and "made by another model" in refused.stderr and "--replace" in refused.stderr
    assert json.loads(first.read_text())["model"]["weights_hash"] == made_by  # untouched
    assert _run(clip, "--model", str(other), "--out", str(out), "--quiet", "--replace").returncode == 0
    assert json.loads(first.read_text())["model"]["weights_hash"] != made_by


def test_outputs_feed_the_training_dataset(videos: Path, tick_model: Path, tmp_path: Path) -> None:
    """Pseudo-labels are ordinary recordings: the dataset layer serves windows from them, with frames
    decoded from the referenced source video (not copied) and labels from the predicted events."""
    from core.config import DataConfig
    from core.data.dataset import WindowDataset
    from core.data.index import index_recordings

    out = tmp_path / "labels"
    run = _run(str(videos / "clip30fps.mp4"), "--model", str(tick_model), "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    [mcap] = out.glob("*.mcap")
    assert not list(out.glob("*.mkv")) and not list(out.glob("*.mp4"))
    entries = index_recordings([str(mcap)])
    ds = WindowDataset(entries, DataConfig(frames=8, image_size=32, keys=[0x57, 0x41]))
    assert len(ds) == 75 * 20 // 30 // 8
    window = ds[1]
    assert window["frames"].shape == (8, 32, 32, 3) and window["frames"].std() > 10  # real pixels
    assert window["keys"].shape == (8, 2) and len(window["tokens"]) > 0


def test_min_confidence_leaves_out_doubtful_events_with_their_releases() -> None:
    from capture.schema import KeyboardEvent, RawMouseEvent
    from core.inputs import confident

    a = lambda t, action: KeyboardEvent(t, action, "a", 0x41)  # noqa: E731
    events = [(a(0, "press"), 0.9), (RawMouseEvent(5, 3, 0), 0.2), (a(10, "release"), 0.1),
              (a(20, "press"), 0.3), (a(30, "release"), 0.99), (RawMouseEvent(40, 1, 1), 0.7)]
    kept = [(e.t_ns, c) for e, c in confident(events, 0.5)]
    assert kept == [(0, 0.9), (10, 0.1), (40, 0.7)]  # the doubtful press goes with its sure release
    assert confident(events, 0.0) == events
