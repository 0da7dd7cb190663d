"""OWAMcap interop, tested against OWA's own package in both directions."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.convert import to_native, to_owamcap
from capture.format import RecordingReader
from capture.inspect import validate

owa_reader = pytest.importorskip("mcap_owa.highlevel")
owa_msgs = pytest.importorskip("owa.msgs.desktop.keyboard")


def test_owa_reader_decodes_what_we_write(sample_recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "ours_as_owa.mcap"
    counts = to_owamcap(str(sample_recording), str(out))
    with RecordingReader(sample_recording) as r:
        ours = list(r.iter())
        wall_shift = r.meta.wall_start_ns - r.meta.monotonic_start_ns
    with owa_reader.OWAMcapReader(str(out)) as owa:
        decoded = [(m.topic, m.timestamp, m.decoded) for m in owa.iter_messages()]
    assert len(decoded) == len(ours) == sum(counts.values())
    by_topic: dict[str, list] = {}
    for topic, ts, msg in decoded:
        by_topic.setdefault(topic, []).append((ts, msg))
    keys = [e for e in ours if e.TOPIC == "keyboard"]
    for e, (ts, k) in zip(keys, by_topic["keyboard"], strict=True):
        assert (k.event_type, k.vk, ts) == (e.action, e.vk, e.t_ns + wall_shift)
    frames = [e for e in ours if e.TOPIC == "screen"]
    for f, (_ts, s) in zip(frames, by_topic["screen"], strict=True):
        assert s.media_ref.pts_ns == f.pts_ns and tuple(s.shape) == (f.width, f.height)
        assert (out.parent / s.media_ref.uri).resolve() == sample_recording.with_suffix(".mkv").resolve()
    raw = [e for e in ours if e.TOPIC == "mouse/raw"]
    for e, (_ts, m) in zip(raw, by_topic["mouse/raw"], strict=True):
        assert (m.dx, m.dy, int(m.button_flags), m.button_data) == (e.dx, e.dy, e.button_flags, e.button_data)


def test_round_trip_through_owamcap_is_lossless(sample_recording: Path, tmp_path: Path) -> None:
    owa, back = tmp_path / "x_owa.mcap", tmp_path / "x_back.mcap"
    to_owamcap(str(sample_recording), str(owa))
    to_native(str(owa), str(back))
    with RecordingReader(sample_recording) as a, RecordingReader(back) as b:
        assert list(a.iter()) == list(b.iter())
        assert a.meta.to_dict() | {"video": {}} == b.meta.to_dict() | {"video": {}}
    assert validate(str(back)).ok


def test_we_read_files_written_by_owas_writer(tmp_path: Path) -> None:
    from mcap_owa.highlevel import OWAMcapWriter
    from owa.msgs.desktop.keyboard import KeyboardEvent as OwaKey
    from owa.msgs.desktop.mouse import MouseEvent as OwaMouse
    from owa.msgs.desktop.mouse import RawMouseEvent as OwaRaw
    from owa.msgs.desktop.screen import ScreenCaptured
    from owa.msgs.desktop.window import WindowInfo

    path = tmp_path / "owa.mcap"
    t0 = 1_700_000_000_000_000_000
    with OWAMcapWriter(str(path)) as w:
        w.write_message(WindowInfo(title="Game", rect=(10, 20, 810, 620), hWnd=77), topic="window", timestamp=t0)
        w.write_message(OwaKey(event_type="press", vk=0x57), topic="keyboard", timestamp=t0 + 1)
        w.write_message(OwaMouse(event_type="click", x=5, y=6, button="left", pressed=True), topic="mouse",
                        timestamp=t0 + 2)
        w.write_message(OwaMouse(event_type="scroll", x=5, y=6, dx=0, dy=-1), topic="mouse", timestamp=t0 + 3)
        w.write_message(OwaRaw(last_x=3, last_y=-4, button_flags=0x0001), topic="mouse/raw", timestamp=t0 + 4)
        w.write_message(ScreenCaptured(utc_ns=t0 + 5, shape=(800, 600), source_shape=(800, 600),
                                       media_ref={"uri": "video.mkv", "pts_ns": 50_000_000}),
                        topic="screen", timestamp=t0 + 5)
        w.write_message(OwaKey(event_type="release", vk=0x57), topic="keyboard", timestamp=t0 + 6)
    with RecordingReader(path) as r:
        assert r.is_owamcap and r.meta.source == "owamcap"
        got = [(m.TOPIC, m.t_ns - t0) for m in r.iter()]
        msgs = list(r.iter())
    assert got == [("window", 0), ("keyboard", 1), ("mouse", 2), ("mouse", 3), ("mouse/raw", 4),
                   ("screen", 5), ("keyboard", 6)]
    window, key, click, scroll, raw, screen, release = msgs
    assert window.rect == (10, 20, 800, 600) and window.window_id == 77 and window.title == "Game"
    assert (key.action, key.key, key.vk) == ("press", "w", 0x57) and release.action == "release"
    assert (click.action, click.button, click.x, click.y) == ("press", "left", 5, 6)
    assert (scroll.action, scroll.dy) == ("scroll", -1)
    assert (raw.dx, raw.dy, raw.button_flags) == (3, -4, 1)
    assert (screen.pts_ns, screen.width, screen.height, screen.uri) == (50_000_000, 800, 600, "video.mkv")

    native = tmp_path / "native.mcap"
    to_native(str(path), str(native))
    with RecordingReader(native) as r:
        assert r.meta.video["file"] == "video.mkv"
        assert [m.TOPIC for m in r.iter()] == [t for t, _ in got]


def test_repeat_flags_survive_owamcap_and_owa_still_reads_the_file(tmp_path: Path) -> None:
    from capture.format import RecordingWriter
    from capture.schema import KeyboardEvent, RecordingMeta

    src, owa, back = tmp_path / "rep.mcap", tmp_path / "rep_owa.mcap", tmp_path / "rep_back.mcap"
    right = ("right", 0x27, 106)
    events = [KeyboardEvent(1_000, "press", *right), KeyboardEvent(2_000, "press", *right, True),
              KeyboardEvent(3_000, "press", *right, True), KeyboardEvent(4_000, "release", *right),
              KeyboardEvent(5_000, "press", "a", 0x41)]
    with RecordingWriter(src, RecordingMeta(source="test")) as w:
        w.write_all(events)
    to_owamcap(str(src), str(owa))
    with owa_reader.OWAMcapReader(str(owa)) as r:  # OWA sees four presses: it has no repeat flag
        assert [(m.decoded.event_type, m.decoded.vk) for m in r.iter_messages()] == [
            ("press", 0x27), ("press", 0x27), ("press", 0x27), ("release", 0x27), ("press", 0x41)]
    to_native(str(owa), str(back))
    with RecordingReader(back) as r:
        assert list(r.iter()) == events
