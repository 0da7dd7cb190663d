"""Damaged recordings and bad arguments by the commands a user types: a one-line error (exit 2), a
report (validate, exit 1) or a result, never a traceback; recover always helps and never writes over
what it reads; a renamed pair still reads; another recording's video is caught."""

from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import pytest

from capture.format import RecordingReader, RecordingWriter
from capture.format.integrity import McapFile
from capture.format.reader import DamagedRecordingWarning
from capture.synthetic import write_synthetic_recording
from d2e.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [x for x in err.splitlines() if "error:" in x]
    assert code == 2 and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("orig") / "rec.mcap", seconds=3, size=(160, 120))


def copy_pair(original: Path, folder: Path, name: str = "rec") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(original, folder / f"{name}.mcap")
    shutil.copy(original.with_suffix(".mkv"), folder / f"{name}.mkv")
    return folder / f"{name}.mcap"


def events(path: Path) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with RecordingReader(path) as r:
            return list(r.iter())


def chunk_indexes(path: Path) -> list:
    with open(path, "rb") as f:
        return McapFile(f, path.stat().st_size).summary().chunk_indexes


def damage(path: Path, case: str) -> None:
    data = bytearray(path.read_bytes())
    tail = len(data) - 8 - 29
    if case == "flipped chunk":
        chunk = chunk_indexes(path)[1]
        data[chunk.chunk_start_offset + chunk.chunk_length // 2] ^= 0x01
    elif case == "zeroed summary":
        start = struct.unpack_from("<Q", data, tail + 9)[0]
        data[start:tail] = bytes(tail - start)
    elif case == "huge footer offset":
        struct.pack_into("<Q", data, tail + 9, 2**62)
    elif case == "garbage and magic appended":
        data += os.urandom(300) + b"\x89MCAP0\r\n"
    elif case == "huge header length":
        struct.pack_into("<Q", data, 9, 2**60)
    elif case == "zeroed 4 KB":
        first = chunk_indexes(path)[0].chunk_start_offset
        data[first + 50:first + 4146] = bytes(4096)
    elif case == "cut in half":
        del data[len(data) // 2:]
    path.write_bytes(bytes(data))


CASES = ["flipped chunk", "zeroed summary", "huge footer offset", "garbage and magic appended", "huge header length",
         "zeroed 4 KB", "cut in half"]
COMMANDS = [("info",), ("info", "--json"), ("cat", "--limit", "3"), ("validate",), ("recover",),
            ("convert", "--to", "d2e", "-o", "{dir}/native.mcap"),
            ("convert", "--to", "owamcap", "-o", "{dir}/owa.mcap"),
            ("export-vpt", "-o", "{dir}/v.mp4"),
            ("trim", "--start", "0.2", "--end", "2.5", "-o", "{dir}/t.mcap")]


@pytest.mark.parametrize("case", CASES)
def test_no_command_prints_a_traceback_for_a_damaged_file(capsys, tmp_path: Path, original: Path, case: str) -> None:
    path = copy_pair(original, tmp_path)
    damage(path, case)
    for command in COMMANDS:
        args = [a.format(dir=tmp_path) for a in command]
        code, out, err = run(capsys, args[0], path, *args[1:])  # an escaping exception fails the test
        assert "Traceback" not in err
        if args[0] == "validate":
            assert code == 1 and "INVALID" in out, out
        elif code != 0:
            one_line_error(code, err)


def test_validate_lists_each_damaged_chunk_with_offset_and_time_range(capsys, tmp_path: Path,
                                                                      original: Path) -> None:
    path = copy_pair(original, tmp_path)
    damage(path, "flipped chunk")
    chunk = chunk_indexes(original)[1]
    code, out, _ = run(capsys, "validate", path, "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    chunk_problems = [p for p in report["problems"] if p["where"].startswith("chunk at bytes")]
    assert len(chunk_problems) == 1
    assert chunk_problems[0]["where"] == f"chunk at bytes {chunk.chunk_start_offset}-" \
                                         f"{chunk.chunk_start_offset + chunk.chunk_length}"
    assert "CRC mismatch" in chunk_problems[0]["message"] and " s to " in chunk_problems[0]["message"]
    assert any("end record says" in p["message"] for p in report["problems"])
    _, info, _ = run(capsys, "info", path)
    assert "DAMAGED" in info and f"chunk at bytes {chunk.chunk_start_offset}" in info


@pytest.mark.parametrize("case", ["zeroed summary", "huge footer offset", "garbage and magic appended",
                                  "huge header length"])
def test_recover_rebuilds_everything_when_only_the_summary_or_tail_is_damaged(capsys, tmp_path: Path,
                                                                             original: Path, case: str) -> None:
    path = copy_pair(original, tmp_path)
    damage(path, case)
    code, out, err = run(capsys, "recover", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert events(Path(report["output"])) == events(original)
    assert run(capsys, "validate", report["output"])[0] == 0


def test_recover_keeps_every_intact_chunk_around_a_damaged_one(capsys, tmp_path: Path, original: Path) -> None:
    for case in ("flipped chunk", "zeroed 4 KB"):
        path = copy_pair(original, tmp_path / case.replace(" ", "_"))
        damage(path, case)
        readable = events(path)
        code, out, err = run(capsys, "recover", path, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["damaged"] and "chunk at bytes" in report["damaged"][0]
        recovered = events(Path(report["output"]))
        # what the damaged file still reads (every intact chunk, after the damage too), minus screen records
        # whose frame the video lacks: here none are lacking
        assert recovered == readable and 0 < len(recovered) < len(events(original))
        assert max(m.t_ns for m in recovered) == max(m.t_ns for m in events(original))
        assert run(capsys, "validate", report["output"])[0] == 0


@pytest.mark.parametrize("target", ["rec.mkv", "rec.mcap", "elsewhere.mcap"])
def test_recover_never_writes_over_an_input(capsys, tmp_path: Path, original: Path, target: str) -> None:
    path = copy_pair(original, tmp_path)
    damage(path, "zeroed summary")
    if target == "elsewhere.mcap":  # the output's video would be the input's video, through a link
        os.symlink(tmp_path / "rec.mkv", tmp_path / "elsewhere.mkv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, _, err = run(capsys, "recover", path, "-o", tmp_path / target, "--force")
    one_line_error(code, err)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_failed_recover_leaves_no_half_pair_and_a_rerun_works(capsys, tmp_path: Path, original: Path) -> None:
    path = copy_pair(original, tmp_path)
    damage(path, "cut in half")
    (tmp_path / "rec.mkv").write_bytes(b"\x1aE\xdf\xa3 not really a video" * 10)  # a damaged video
    code, _, err = run(capsys, "recover", path)
    one_line_error(code, err, "rec.mkv", "--no-video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mcap", "rec.mkv"]  # nothing half-written
    code, out, err = run(capsys, "recover", path, "--no-video")
    assert code == 0 and (tmp_path / "rec.recovered.mcap").exists(), err
    assert not (tmp_path / "rec.recovered.mkv").exists()


def test_recover_of_a_symlink_loop_is_one_line(capsys, tmp_path: Path) -> None:
    os.symlink(tmp_path / "b.mcap", tmp_path / "a.mcap")
    os.symlink(tmp_path / "a.mcap", tmp_path / "b.mcap")
    for command in ("recover", "info", "cat"):
        code, _, err = run(capsys, command, tmp_path / "a.mcap")
        one_line_error(code, err, "symbolic links")


def test_a_renamed_pair_still_reads(capsys, tmp_path: Path, original: Path) -> None:
    path = copy_pair(original, tmp_path, "a")
    path.rename(tmp_path / "b.mcap")
    (tmp_path / "a.mkv").rename(tmp_path / "b.mkv")
    code, out, err = run(capsys, "validate", tmp_path / "b.mcap")
    assert code == 0, out + err
    code, out, err = run(capsys, "trim", tmp_path / "b.mcap", "--start", "1", "--end", "2", "-o", tmp_path / "c.mcap")
    assert code == 0, err
    assert run(capsys, "validate", tmp_path / "c.mcap")[0] == 0


def test_a_video_from_another_recording_is_caught(capsys, tmp_path: Path, original: Path) -> None:
    path = copy_pair(original, tmp_path)
    other = write_synthetic_recording(tmp_path / "other" / "o.mcap", seconds=2, size=(160, 120), seed=5)
    shutil.copy(other.with_suffix(".mkv"), tmp_path / "rec.mkv")  # same frame size, another recording
    code, out, _ = run(capsys, "validate", path)
    assert code == 1 and "does not match this recording's video" in out
    code, _, err = run(capsys, "export-vpt", path, "-o", tmp_path / "v.mp4")
    one_line_error(code, err, "does not match this recording's")
    with RecordingReader(path) as r, pytest.raises(Exception, match="another recording's video"):
        _ = r.video_path


def test_files_without_a_fingerprint_keep_working(capsys, tmp_path: Path, original: Path) -> None:
    """A recording written before fingerprints existed: no check, as before."""
    path = tmp_path / "old.mcap"
    with RecordingReader(original) as r, RecordingWriter(path, r.meta) as w:
        w.write_all(r.iter())  # no NAME.mkv yet when the writer closes: nothing to fingerprint
    shutil.copy(original.with_suffix(".mkv"), tmp_path / "old.mkv")
    with RecordingReader(path) as r:
        assert r.video_fingerprint is None and r.video_path.endswith("old.mkv")
    assert run(capsys, "validate", path)[0] == 0


@pytest.mark.parametrize(("args", "needle"), [
    (("trim", "--start", "nan", "--end", "2"), "--start nan is not a finite number"),
    (("trim", "--start", "1", "--end", "inf"), "--end inf is not a finite number"),
    (("cat", "--start", "10", "--end", "5"), "--end (5) must be after --start (10)"),
    (("trim", "--start", "50", "--end", "60"), "outside the recording, which spans 0..2."),
    (("cat", "--start", "-9", "--end", "-5"), "outside the recording"),
])
def test_bad_time_arguments_are_refused_up_front(capsys, tmp_path: Path, original: Path, args, needle) -> None:
    path = copy_pair(original, tmp_path)
    extra = ("-o", tmp_path / "clip.mcap") if args[0] == "trim" else ()
    code, _, err = run(capsys, args[0], path, *args[1:], *extra)
    one_line_error(code, err, needle)
    assert not (tmp_path / "clip.mcap").exists() and not (tmp_path / "clip.mkv").exists()


def test_trim_reports_the_span_it_wrote_and_refuses_an_empty_clip(capsys, tmp_path: Path, original: Path) -> None:
    path = copy_pair(original, tmp_path)
    code, out, err = run(capsys, "trim", path, "--start", "2", "--end", "100", "-o", tmp_path / "end.mcap",
                         "--reencode", "--json")
    assert code == 0, err
    result = json.loads(out)
    got = events(tmp_path / "end.mcap")
    assert (result["start_ns"], result["end_ns"]) == (got[0].t_ns, got[-1].t_ns)
    assert result["end_ns"] == events(original)[-1].t_ns  # the real end, not the 100 s asked for
    # a range inside the recording that holds nothing (between two events) is refused, and leaves nothing
    times = [m.t_ns for m in events(original)]
    gap = max(range(len(times) - 1), key=lambda i: times[i + 1] - times[i])
    lo, hi = times[gap] + 1, times[gap + 1]
    code, _, err = run(capsys, "trim", path, "--abs", "--start", lo, "--end", hi, "-o", tmp_path / "none.mcap")
    one_line_error(code, err, "nothing to keep")
    assert not (tmp_path / "none.mcap").exists() and not (tmp_path / "none.mkv").exists()


def test_damaged_video_gives_a_clear_error_and_info_still_works(capsys, tmp_path: Path, original: Path) -> None:
    path = copy_pair(original, tmp_path)
    video = tmp_path / "rec.mkv"
    video.write_bytes(video.read_bytes()[:2500])
    code, out, err = run(capsys, "info", path)
    assert code == 0 and "video" in out, err
    code, _, err = run(capsys, "export-vpt", path, "-o", tmp_path / "v.mp4")
    assert code in (0, 2) and "Traceback" not in err
    if code:
        one_line_error(code, err, "rec.mkv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedRecordingWarning)  # the events themselves are intact
        assert len(events(path)) == len(events(original))


def test_writers_store_the_finished_videos_fingerprint(capsys, tmp_path: Path, original: Path) -> None:
    from capture.sources.base import record_game
    from capture.sources.policy import HumanLikePolicy
    from capture.video import VideoReader
    from tests.capture.sources.test_episodes import CountdownEnv

    record_game(CountdownEnv(90), HumanLikePolicy(keys=["space"]), tmp_path / "game.mcap", seconds=2,
                one_episode=True)
    path = copy_pair(original, tmp_path)
    damage(path, "cut in half")
    assert run(capsys, "recover", path)[0] == 0
    assert run(capsys, "trim", original, "--start", "1", "--end", "2", "-o", tmp_path / "clip.mcap")[0] == 0
    for rec in (original, tmp_path / "game.mcap", tmp_path / "rec.recovered.mcap", tmp_path / "clip.mcap"):
        with RecordingReader(rec) as r, VideoReader(rec.with_suffix(".mkv")) as video:
            stored = r.video_fingerprint
            assert stored == video.fingerprint() and stored["frames"] > 0, rec  # every packet demuxed again
