"""Pseudo-labels scored against the truth kept by ``d2e export-web``: the clocks line up end to end.

A real Breakout recording is exported as a web video; labelers that return the truth (perfect) or
nothing go through ``label_video`` and ``d2e idm eval --labels``; the scores must be 1 and 0. With
``owamcap=True`` the label run also writes an OWAMcap file that OWA's own reader decodes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ale_py")

from capture.format import RecordingReader  # noqa: E402
from capture.sources.ale import AleEnv, default_policy  # noqa: E402
from capture.sources.base import record_game  # noqa: E402
from capture.sources.webvideo import export_web_video  # noqa: E402
from idm.label import LabelOptions, label_video  # noqa: E402


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("web")
    env = AleEnv("Breakout")
    rec = folder / "breakout.mcap"
    record_game(env, default_policy(env), rec, seconds=8, seed=3, source="ale")
    video = export_web_video(rec, folder / "web" / "breakout.mp4", width=320)
    return Path(video.video), Path(video.truth)


def _score(labels: Path, truth: Path) -> dict:
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "idm", "eval", "--labels", str(labels), str(truth),
                          "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["per_game"]["pseudo_labels"]["breakout"]


def test_perfect_and_empty_pseudo_labels_score_one_and_zero(web: tuple[Path, Path], tmp_path: Path) -> None:
    video, truth_file = web
    with RecordingReader(truth_file) as r:
        truth = list(r.iter(topics=["keyboard", "mouse", "mouse/raw"]))
    assert sum(e.TOPIC == "keyboard" for e in truth) > 10

    def oracle(frames, times):  # what a perfect IDM would say about these frames
        end = times[-1] + 50_000_000
        return [(e, 1.0) for e in truth if times[0] <= e.t_ns < end]

    info = {"model_id": "oracle", "kind": "test", "config_hash": "-"}
    opts = LabelOptions(segment_s=3.0, image_size=32, min_motion=0.0, owamcap=True)
    perfect, empty = tmp_path / "perfect", tmp_path / "empty"
    assert label_video(str(video), perfect, oracle, opts, info).status == "labeled"
    assert label_video(str(video), empty, lambda f, t: [], opts, info).status == "labeled"
    best = _score(perfect, truth_file)
    assert best["press_f1"] == pytest.approx(1.0) and best["per_key_f1"] == pytest.approx(1.0)
    assert best["keyboard_accuracy"] == pytest.approx(1.0)
    none = _score(empty, truth_file)
    assert none["press_f1"] == 0.0 and none["keyboard_accuracy"] == 0.0

    owa_reader = pytest.importorskip("mcap_owa.highlevel")
    [owa_file] = perfect.glob("*.owa.mcap")
    with owa_reader.OWAMcapReader(str(owa_file)) as owa:
        keys = [m.decoded for m in owa.iter_messages(topics=["keyboard"])]
        frames = [m.decoded for m in owa.iter_messages(topics=["screen"])]
    labeled = [e for e in truth if e.TOPIC == "keyboard"]
    assert [(k.event_type, k.vk) for k in keys] == [(e.action, e.vk) for e in labeled]
    assert (owa_file.parent / frames[0].media_ref.uri).resolve() == video.resolve()


def test_labels_mode_names_unmatched_truth(web: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    _video, truth_file = web
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "idm", "eval", "--labels", str(tmp_path / "labels"),
                          str(truth_file)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no truth file matches a labeled video" in run.stderr


def test_calibrate_command_gives_each_training_game_thresholds_and_label_checks_the_game(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``d2e idm calibrate`` re-chooses a run's thresholds on its training recordings' held-back tails (real
    Breakout and Pong play), one set per game; ``d2e label --game`` refuses a game the run has none for."""
    from core.run import RunFolder
    from d2e.cli import main

    from .conftest import write_run

    paths = []
    for game in ("Breakout", "Pong"):
        env = AleEnv(game)
        paths.append(str(tmp_path / f"{game.lower()}.mcap"))
        record_game(env, default_policy(env), paths[-1], seconds=12, seed=3, source="ale")
    model = write_run(tmp_path / "run", keys=[0x25, 0x27, 0x20], calib_fraction=0.5)
    RunFolder(model).save_split(paths, [], ["breakout", "pong"], [])
    assert main(["idm", "calibrate", str(model)]) == 0
    labels = RunFolder(model).labels()
    assert sorted(labels["thresholds_by_game"]) == ["breakout", "pong"] and labels["calibration"]["recordings"] == 2
    assert all(len(t["keys"]) == 3 for t in labels["thresholds_by_game"].values())
    code = main(["label", paths[0].replace(".mcap", ".mkv"), "--model", str(model), "--out", str(tmp_path / "l"),
                 "--game", "tetris", "--quiet"])
    assert code != 0 and "no thresholds of its own for game 'tetris'" in capsys.readouterr().err
    assert not (tmp_path / "l").exists()  # refused before anything was written
