"""The ``state`` topic (GameState): stored losslessly, older files still read, OWAMcap export skips it,
validation checks it, and nothing that trains or scores a model reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcap.writer import Writer as McapWriter

from capture.convert import to_owamcap
from capture.format import RecordingReader, RecordingWriter
from capture.format.layout import META_NAME
from capture.inspect import validate
from capture.schema import SCHEMA_VERSION, GameState, KeyboardEvent, RecordingMeta


def _recording(path: Path, states: list[GameState], names: list[str]) -> Path:
    meta = RecordingMeta(source="ale", extra={"game": "breakout", "state_names": names})
    with RecordingWriter(path, meta) as w:
        w.write(KeyboardEvent(5, "press", "left", 0x25))
        w.write_all(states)
        w.write(KeyboardEvent(40, "release", "left", 0x25))
    return path


def test_states_round_trip_with_their_names(tmp_path: Path) -> None:
    states = [GameState(k * 16_666_667, [k, 255, 0, k * 3]) for k in range(200)]
    path = _recording(tmp_path / "s.mcap", states, ["a", "b", "c", "d"])
    with RecordingReader(path) as r:
        assert list(r.iter(topics=["state"])) == states
        assert r.meta.extra["state_names"] == ["a", "b", "c", "d"] and r.meta.schema_version == SCHEMA_VERSION
        assert [m.TOPIC for m in r.iter(topics=["keyboard"])] == ["keyboard", "keyboard"]
    assert validate(str(path), video=False).ok
    assert SCHEMA_VERSION == "1.2"


def test_validate_catches_states_that_do_not_match_their_names(tmp_path: Path) -> None:
    path = _recording(tmp_path / "bad.mcap", [GameState(0, [1, 2, 3])], ["a", "b"])
    report = validate(str(path), video=False)
    assert not report.ok and "3 state values but 2 state_names" in report.problems[0].message


def test_a_1_0_file_without_the_topic_reads_as_before(tmp_path: Path) -> None:
    import msgpack

    path = tmp_path / "old.mcap"
    with open(path, "wb") as f:
        w = McapWriter(f)
        w.start(profile="d2e", library="test")
        w.add_metadata(META_NAME, {"json": json.dumps({"schema_version": "1.0", "source": "ale"})})
        sid = w.register_schema("d2e/KeyboardEvent", "jsonschema", b"{}")
        cid = w.register_channel("keyboard", "msgpack", sid, {"fields": "t_ns,action,key,vk,scan"})
        w.add_message(cid, 5, msgpack.packb([[5, "press", "left", 0x25, None]]), 5)
        w.finish()
    with RecordingReader(path) as r:
        assert list(r.iter()) == [KeyboardEvent(5, "press", "left", 0x25)] and list(r.iter(topics=["state"])) == []


def test_owamcap_export_leaves_the_state_out(tmp_path: Path) -> None:
    pytest.importorskip("mcap_owa.highlevel")
    path = _recording(tmp_path / "s.mcap", [GameState(k, [k]) for k in range(10, 20)], ["x"])
    counts = to_owamcap(str(path), str(tmp_path / "owa.mcap"))
    assert counts == {"keyboard": 2}
    from mcap_owa.highlevel import OWAMcapReader

    with OWAMcapReader(str(tmp_path / "owa.mcap")) as owa:
        assert {m.topic for m in owa.iter_messages()} == {"keyboard"}


def test_models_and_metrics_never_see_the_state() -> None:
    from core.inputs import model_inputs
    from core.ticks import EventTable
    from idm.metrics import Window, evaluate_events

    events = [KeyboardEvent(0, "press", "left", 0x25), GameState(10, [1.0]), KeyboardEvent(60_000_000, "release",
                                                                                             "left", 0x25)]
    assert model_inputs(events) == [events[0], events[2]]
    keys, _b, _m = EventTable(events).ticks(0, 2, [0x25])
    assert keys[:, 0].tolist() == [True, True]
    window = Window(0, 100_000_000)
    assert evaluate_events(events, events, window) == evaluate_events([events[0], events[2]], [events[0], events[2]],
                                                                      window)
