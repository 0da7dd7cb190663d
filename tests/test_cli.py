"""The d2e command as a user runs it: real processes, real files, one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from capture.format import RecordingReader
from capture.synthetic import write_synthetic_recording


def d2e(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d2e.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_help_lists_commands_and_each_command_has_examples() -> None:
    out = d2e("--help")
    assert out.returncode == 0
    for cmd in ("demo", "info", "cat", "validate", "trim", "recover", "convert"):
        assert cmd in out.stdout
    sub = d2e("convert", "--help")
    assert sub.returncode == 0 and "examples:" in sub.stdout and "--to" in sub.stdout


def test_info_cat_validate(sample_recording: Path) -> None:
    info = d2e("info", str(sample_recording), "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["topics"]["screen"]["count"] == 60 and data["video"]["frames"] == 60
    assert 2.9 < data["duration_s"] < 3.1
    human = d2e("info", str(sample_recording))
    assert "mouse/raw" in human.stdout and "h264" in human.stdout

    cat = d2e("cat", str(sample_recording), "--topic", "keyboard", "--start", "0.5", "--end", "2")
    lines = [json.loads(x) for x in cat.stdout.splitlines()]
    with RecordingReader(sample_recording) as r:
        t0 = r.start_ns
        want = [m for m in r.iter(topics=["keyboard"]) if t0 + 5e8 <= m.t_ns < t0 + 2e9]
    assert [x["t_ns"] for x in lines] == [m.t_ns for m in want] and all(x["topic"] == "keyboard" for x in lines)

    ok = d2e("validate", str(sample_recording))
    assert ok.returncode == 0 and "OK" in ok.stdout


def test_validate_reports_every_problem_with_position(tmp_path: Path) -> None:
    rec = write_synthetic_recording(tmp_path / "r.mcap", seconds=2)
    # Replace the video with a shorter one at another size: missing frames and a size mismatch.
    write_synthetic_recording(tmp_path / "other.mcap", seconds=1, size=(160, 120))
    (tmp_path / "other.mkv").replace(tmp_path / "r.mkv")
    out = d2e("validate", str(rec), "--json")
    assert out.returncode == 1
    problems = json.loads(out.stdout)["problems"]
    messages = " | ".join(p["message"] for p in problems)
    assert "no video frame at pts" in messages
    assert "declared frame size 320x240 but the video decodes as 160x120" in messages
    assert all(p["where"] for p in problems)


@pytest.mark.parametrize("case", ["truncated", "magic", "missing_video", "missing_file", "directory", "version",
                                  "profile"])
def test_bad_input_gives_one_line_and_no_traceback(tmp_path: Path, sample_recording: Path, case: str) -> None:
    data = sample_recording.read_bytes()
    target = tmp_path / "x.mcap"
    if case == "truncated":
        target.write_bytes(data[: len(data) // 2])
        out = d2e("info", str(target), "--no-video")
        assert out.returncode == 0 and "UNFINISHED" in out.stdout  # still readable, and says so
        out = d2e("validate", str(target), "--no-video")
        assert out.returncode == 1 and "not finished" in out.stdout and "d2e recover" in out.stdout
        return
    if case == "magic":
        target.write_bytes(b"RIFF0000WAVEfmt " + data[16:])
        expect = "not an MCAP recording"
    elif case == "missing_video":
        target.write_bytes(data)
        out = d2e("validate", str(target))
        assert out.returncode == 1 and "video file" in out.stdout and "is missing" in out.stdout
        return
    elif case == "missing_file":
        expect = "no such file"
    elif case in ("version", "profile"):
        from mcap.writer import Writer

        with open(target, "wb") as f:
            w = Writer(f)
            w.start(profile="d2e" if case == "version" else "ros2", library="test")
            w.add_metadata("d2e.recording", {"json": '{"schema_version": "7.2"}'})
            w.finish()
        expect = "schema version 7.2 is not supported" if case == "version" else "profile 'ros2'"
    else:
        target.mkdir()
        expect = "is a directory"
    out = d2e("info", str(target))
    assert out.returncode == 2
    assert expect in out.stderr and str(target) in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_trim_copy_and_reencode(sample_recording: Path, tmp_path: Path) -> None:
    copy = d2e("trim", str(sample_recording), "--start", "1.2", "--end", "2.2", "-o", str(tmp_path / "c.mcap"))
    assert copy.returncode == 0, copy.stderr
    exact = d2e("trim", str(sample_recording), "--start", "1.2", "--end", "2.2", "-o", str(tmp_path / "e.mcap"),
                "--reencode")
    assert exact.returncode == 0, exact.stderr
    with RecordingReader(sample_recording) as r:
        t0 = r.start_ns
    with RecordingReader(tmp_path / "e.mcap") as r:
        frames = list(r.iter(topics=["screen"]))
        assert all(t0 + 1.2e9 <= m.t_ns < t0 + 2.2e9 for m in r.iter())
        assert len(frames) == 20
    with RecordingReader(tmp_path / "c.mcap") as r:
        assert len(list(r.iter(topics=["screen"]))) >= 20  # start moved back to a keyframe
    for name in ("c.mcap", "e.mcap"):
        assert d2e("validate", str(tmp_path / name)).returncode == 0
    again = d2e("trim", str(sample_recording), "--start", "1", "--end", "2", "-o", str(tmp_path / "c.mcap"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_recover_cli_on_truncated_copy(sample_recording: Path, tmp_path: Path) -> None:
    data = sample_recording.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    # the recording's metadata names its video (sample.mkv): a cut copy of it, as a crash leaves it
    (tmp_path / "sample.mkv").write_bytes(sample_recording.with_suffix(".mkv").read_bytes()[:-5000])
    out = d2e("recover", str(cut), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["counts"]["screen"] > 0 and report["mcap_bytes_kept"] < report["mcap_bytes_total"]
    assert report["video_output"].endswith("cut.recovered.mkv")
    assert d2e("validate", report["output"]).returncode == 0
    assert cut.read_bytes() == data[: int(len(data) * 0.6)]  # the original is untouched
