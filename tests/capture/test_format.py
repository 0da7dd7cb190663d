"""The native format: lossless round trips, time queries, schema versions, bad input."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
from mcap.writer import Writer as McapWriter

from capture.errors import D2EError
from capture.format import RecordingReader, RecordingWriter
from capture.format.layout import META_NAME
from capture.format.reader import UnfinishedRecordingWarning
from capture.schema import (
    SCHEMA_VERSION,
    KeyboardEvent,
    MouseEvent,
    RawMouseEvent,
    RecordingMeta,
    ScreenFrame,
    WindowEvent,
)
from capture.synthetic import synthetic_events


def _write(path: Path, messages, **kw) -> Path:
    with RecordingWriter(path, RecordingMeta(source="test", extra={"k": [1, 2]}), **kw) as w:
        w.write_all(messages)
    return path


def test_round_trip_is_lossless_for_every_field(tmp_path: Path) -> None:
    events = synthetic_events(20_000, seed=3)
    events.append(WindowEvent(events[-1].t_ns + 1, "Títle ✓", "game.exe", 4242, (10, 20, 300, 400), 99))
    events.append(ScreenFrame(events[-1].t_ns + 1, 123_000_000, 1280, 720, 7, 2, None))
    path = _write(tmp_path / "a.mcap", events)
    with RecordingReader(path) as r:
        got = list(r.iter())
        assert r.finished and r.meta.source == "test" and r.meta.extra == {"k": [1, 2]}
        assert r.counts() == {t: sum(1 for e in events if t == e.TOPIC) for t in {e.TOPIC for e in events}}
    assert got == sorted(events, key=lambda e: e.t_ns)
    assert isinstance(got[-2].rect, tuple)


def test_time_range_and_topic_queries_match_a_linear_filter(tmp_path: Path) -> None:
    events = synthetic_events(5_000, seed=1)
    path = _write(tmp_path / "b.mcap", events)
    lo, hi = events[1000].t_ns, events[3000].t_ns
    with RecordingReader(path) as r:
        got = list(r.iter(topics=["keyboard", "mouse/raw"], start_ns=lo, end_ns=hi))
    want = [e for e in events if lo <= e.t_ns < hi and e.TOPIC in ("keyboard", "mouse/raw")]
    assert got == sorted(want, key=lambda e: e.t_ns)


def test_out_of_order_events_come_back_sorted(tmp_path: Path) -> None:
    events = [KeyboardEvent(t, "press", "a", 0x41) for t in (50, 10, 30, 20, 40)]
    path = _write(tmp_path / "c.mcap", events)
    with RecordingReader(path) as r:
        assert [e.t_ns for e in r.iter()] == [10, 20, 30, 40, 50]


def test_files_are_private_and_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.mcap", [KeyboardEvent(1, "press", "a", 65)])
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(D2EError, match="already exists"):
        RecordingWriter(path)


def test_reader_reads_an_unfinished_file_and_strict_mode_refuses_it(tmp_path: Path) -> None:
    stream = io.BytesIO()
    w = RecordingWriter(stream, RecordingMeta(source="crash"))
    for i in range(3000):
        w.write(RawMouseEvent(i * 1_000_000, 1, 2))
    w.flush()  # what the writer does every second by itself
    w.write(RawMouseEvent(10**10, 5, 5))  # still in the open chunk when "killed"
    path = tmp_path / "crash.mcap"
    path.write_bytes(stream.getvalue())
    with pytest.warns(UnfinishedRecordingWarning):
        r = RecordingReader(path)
    assert not r.finished and r.meta.source == "crash"
    assert len(list(r.iter())) == 3000
    with pytest.raises(D2EError, match="not finished.*d2e recover"):
        RecordingReader(path, allow_unfinished=False)


def test_chunks_close_by_recording_time(tmp_path: Path) -> None:
    stream = io.BytesIO()
    w = RecordingWriter(stream, chunk_seconds=1.0)
    for i in range(2500):  # 2.5 s of 1 kHz motion
        w.write(RawMouseEvent(i * 1_000_000, 1, 0))
    path = tmp_path / "t.mcap"
    path.write_bytes(stream.getvalue())  # never closed: as after SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = len(list(RecordingReader(path).iter()))
    assert 1900 <= got < 2500


def _mcap_with_meta(path: Path, meta: dict, profile: str = "d2e") -> Path:
    with open(path, "wb") as f:
        w = McapWriter(f)
        w.start(profile=profile, library="test")
        w.add_metadata(META_NAME, {"json": json.dumps(meta)})
        w.finish()
    return path


def test_unknown_major_version_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = _mcap_with_meta(tmp_path / "v2.mcap", {"schema_version": "2.0"})
    with pytest.raises(D2EError, match=r"schema version 2.0 is not supported.*upgrade d2e"):
        RecordingReader(path)


def test_newer_minor_version_with_extra_fields_is_read(tmp_path: Path) -> None:
    path = _mcap_with_meta(tmp_path / "v1_9.mcap", {"schema_version": "1.9", "source": "x", "new_field": 5})
    with RecordingReader(path) as r:
        assert r.meta.source == "x" and r.meta.extra["new_field"] == 5


def _keyboard_file(path: Path, version: str, fields: str, rows: list[list]) -> Path:
    """A native file whose keyboard channel stores ``fields`` (as another d2e version would)."""
    import msgpack

    with open(path, "wb") as f:
        w = McapWriter(f)
        w.start(profile="d2e", library="test")
        w.add_metadata(META_NAME, {"json": json.dumps({"schema_version": version})})
        sid = w.register_schema("d2e/KeyboardEvent", "jsonschema", b"{}")
        cid = w.register_channel("keyboard", "msgpack", sid, {"fields": fields})
        w.add_message(cid, rows[0][0], msgpack.packb(rows), rows[-1][0])
        w.finish()
    return path


def test_extra_and_missing_fields_in_rows_map_by_name(tmp_path: Path) -> None:
    path = _keyboard_file(tmp_path / "fields.mcap", "1.3", "t_ns,key,action,vk,pressure",
                          [[5, "w", "press", 0x57, 0.7]])
    with RecordingReader(path) as r:
        assert list(r.iter()) == [KeyboardEvent(5, "press", "w", 0x57, None)]


def test_repeat_flags_round_trip_and_files_before_1_1_read_as_no_repeat(tmp_path: Path) -> None:
    held = [KeyboardEvent(10, "press", "w", 0x57, 25), KeyboardEvent(20, "press", "w", 0x57, 25, True),
            KeyboardEvent(30, "press", "w", 0x57, 25, True), KeyboardEvent(40, "release", "w", 0x57, 25)]
    with RecordingReader(_write(tmp_path / "new.mcap", held)) as r:
        assert r.meta.schema_version == SCHEMA_VERSION and list(r.iter()) == held
    old = _keyboard_file(tmp_path / "v1_0.mcap", "1.0", "t_ns,action,key,vk,scan",  # the 1.0 layout
                         [[5, "press", "w", 0x57, 25], [6, "press", "w", 0x57, 25]])
    with RecordingReader(old) as r:
        assert [e.repeat for e in r.iter()] == [False, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an MCAP recording"),
        (b"\x1aE\xdf\xa3" + b"\0" * 40, "not an MCAP recording.*MKV"),
        (b"hello world, not a recording", "not an MCAP recording"),
    ],
)
def test_wrong_magic_gives_one_clear_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mcap"
    path.write_bytes(content)
    with pytest.raises(D2EError, match=message) as exc:
        RecordingReader(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_foreign_profile_is_refused(tmp_path: Path) -> None:
    path = _mcap_with_meta(tmp_path / "ros.mcap", {}, profile="ros1")
    with pytest.raises(D2EError, match="profile 'ros1' is not a d2e or OWAMcap"):
        RecordingReader(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(D2EError, match="no such file"):
        RecordingReader(tmp_path / "nope.mcap")


def test_fsspec_url_reads_without_local_file(tmp_path: Path) -> None:
    import fsspec

    events = synthetic_events(3000, seed=2)
    local = _write(tmp_path / "remote.mcap", events)
    fs = fsspec.filesystem("memory")
    fs.pipe("/rec/remote.mcap", local.read_bytes())
    with RecordingReader("memory:///rec/remote.mcap") as r:
        assert list(r.iter()) == sorted(events, key=lambda e: e.t_ns)


def test_mouse_events_keep_their_shape(tmp_path: Path) -> None:
    events = [MouseEvent(1, "move", 5, 6), MouseEvent(2, "press", 5, 6, "left"),
              MouseEvent(3, "scroll", 5, 6, None, 0, -2), MouseEvent(4, "release", 5, 6, "left")]
    path = _write(tmp_path / "m.mcap", events)
    with RecordingReader(path) as r:
        assert list(r.iter()) == events


def test_unfinished_file_reads_in_time_order(tmp_path: Path) -> None:
    events = synthetic_events(20_000, seed=5)
    stream = io.BytesIO()
    w = RecordingWriter(stream)
    w.write_all(events)
    w.flush()  # never closed
    path = tmp_path / "open.mcap"
    path.write_bytes(stream.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = list(RecordingReader(path).iter())
    assert got == sorted(events, key=lambda e: e.t_ns)
