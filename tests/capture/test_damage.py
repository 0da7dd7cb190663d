"""Damaged files through the reader: the original events (perhaps fewer, with a warning naming the damaged
part) or a ``D2EError``, never an altered event, a traceback or a hang.

The property test mutates a real recording (bit flips, zeroed ranges, random bytes, truncation, appended
bytes) with Hypothesis; ``bench/fuzz_format.py`` runs the same mutations by the thousand and counts them.
"""

from __future__ import annotations

import collections
import io
import struct
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_format import KINDS, Mutation, classify, make_recording, read_events, run_case
from capture.errors import D2EError
from capture.format import RecordingReader, RecordingWriter
from capture.format.integrity import McapFile
from capture.format.reader import DamagedRecordingWarning
from capture.inspect import validate
from capture.schema import RawMouseEvent, RecordingMeta
from capture.synthetic import write_synthetic_recording


@pytest.fixture(scope="module", params=["native", "owamcap"])
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[str]]:
    """A 3 s recording in several chunks (its bytes) and its events as the reader returns them."""
    path = make_recording(tmp_path_factory.mktemp("fuzz"), seconds=3, owamcap=request.param == "owamcap")
    events, warned = read_events(path)
    assert not warned and len(events) > 1000
    return path.read_bytes(), events


def _mutations(size: int) -> st.SearchStrategy[Mutation]:
    offsets = st.integers(0, size - 1)
    return st.one_of(
        st.lists(st.integers(0, size * 8 - 1), min_size=1, max_size=8, unique=True).map(
            lambda bits: Mutation("flip", bits=tuple(sorted(bits)))),
        st.builds(lambda o, n: Mutation("zero", offset=o, length=n), offsets, st.sampled_from([1, 4, 8, 64, 4096])),
        st.builds(lambda o, b: Mutation("overwrite", offset=o, payload=b), offsets, st.binary(min_size=1, max_size=64)),
        st.builds(lambda o: Mutation("truncate", offset=o), offsets),
        st.builds(lambda b, magic: Mutation("append", payload=b + (b"\x89MCAP0\r\n" if magic else b"")),
                  st.binary(min_size=1, max_size=200), st.booleans()),
    )


def _check(small: tuple[bytes, list[str]], tmp_path: Path, mutation: Mutation) -> None:
    data, original = small
    path = tmp_path / "damaged.mcap"
    path.write_bytes(mutation.apply(data))
    outcome, detail = run_case(path, original, limit_s=20)
    assert outcome in ("intact", "lost_with_warning", "clean_error"), f"{mutation.describe()}: {outcome} {detail}"
    if outcome != "intact":  # whatever changed what a reader returns, validate reports it
        assert not validate(str(path), video=False).ok, mutation.describe()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_file_gives_original_events_or_a_clean_error(small, tmp_path: Path, data) -> None:
    _check(small, tmp_path, data.draw(_mutations(len(small[0]))))


@pytest.mark.heavy
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_file_gives_original_events_or_a_clean_error_many(small, tmp_path: Path, data) -> None:
    _check(small, tmp_path, data.draw(_mutations(len(small[0]))))


def test_every_mutation_kind_is_covered() -> None:
    assert set(KINDS) == {"flip", "zero", "overwrite", "truncate", "append"}
    assert classify(["a", "b"], ["a"], []) == "silent_loss"
    assert classify(["a", "b"], ["a"], ["w"]) == "lost_with_warning"
    assert classify(["a", "b"], ["a", "c"], ["w"]) == "altered"


def _chunks(path: Path) -> list:
    with open(path, "rb") as f:
        return McapFile(f, path.stat().st_size).summary().chunk_indexes


def test_a_flipped_byte_in_a_chunk_skips_that_chunk_with_a_warning_naming_it(tmp_path: Path) -> None:
    path = write_synthetic_recording(tmp_path / "r.mcap", seconds=3, size=(64, 48))
    with RecordingReader(path) as r:
        before = list(r.iter())
    chunk = _chunks(path)[1]
    data = bytearray(path.read_bytes())
    data[chunk.chunk_start_offset + chunk.chunk_length // 2] ^= 0x04
    path.write_bytes(bytes(data))
    start, end = chunk.message_start_time, chunk.message_end_time
    named = rf"chunk at bytes {chunk.chunk_start_offset}-.*events {start}\.\.{end} ns"
    with pytest.warns(DamagedRecordingWarning, match=named), RecordingReader(path) as r:
        after = list(r.iter())
    lost = [m for m in before if m not in after]
    assert lost and all(m in before for m in after)
    # the lost events are those of the damaged chunk's time span (batches start inside it)
    assert all(chunk.message_start_time <= m.t_ns for m in lost)


@pytest.mark.parametrize("damage", ["zeroed summary", "huge footer offset", "garbage and magic appended",
                                    "huge header length"])
def test_damage_outside_the_chunks_costs_no_event(tmp_path: Path, damage: str) -> None:
    path = write_synthetic_recording(tmp_path / "r.mcap", seconds=2, size=(64, 48))
    with RecordingReader(path) as r:
        before = list(r.iter())
    data = bytearray(path.read_bytes())
    tail = len(data) - 8 - 29
    summary_start = struct.unpack_from("<Q", data, tail + 9)[0]
    if damage == "zeroed summary":
        data[summary_start:tail] = bytes(tail - summary_start)
    elif damage == "huge footer offset":
        struct.pack_into("<Q", data, tail + 9, 2**62)
    elif damage == "garbage and magic appended":
        data += b"\x00garbage" * 20 + b"\x89MCAP0\r\n"
    else:
        struct.pack_into("<Q", data, 9, 2**60)
    path.write_bytes(bytes(data))
    with pytest.warns(DamagedRecordingWarning), RecordingReader(path) as r:
        assert list(r.iter()) == before
    assert not validate(str(path), video=False).ok


def test_damaged_metadata_is_refused_and_points_to_recover(tmp_path: Path) -> None:
    path = write_synthetic_recording(tmp_path / "r.mcap", seconds=1, size=(64, 48))
    data = path.read_bytes()
    at = data.index(b'"source": "synthetic"')
    path.write_bytes(data[:at + 11] + b"X" + data[at + 12:])  # "synthetic" -> "Xynthetic", JSON still valid
    with pytest.raises(D2EError, match="metadata is damaged.*d2e recover"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedRecordingWarning)
        RecordingReader(path)


def test_a_chunk_without_crc_counts_as_damage_in_a_d2e_file(tmp_path: Path) -> None:
    stream = io.BytesIO()
    with RecordingWriter(stream, RecordingMeta(source="t")) as w:
        w.write_all(RawMouseEvent(i * 1_000_000, 1, 1) for i in range(500))
    data = bytearray(stream.getvalue())
    path = tmp_path / "r.mcap"
    path.write_bytes(bytes(data))
    chunk = _chunks(path)[0]
    struct.pack_into("<I", data, chunk.chunk_start_offset + 9 + 24, 0)  # the uncompressed CRC field
    path.write_bytes(bytes(data))
    with pytest.warns(DamagedRecordingWarning, match="CRC is zero"):
        assert list(RecordingReader(path).iter()) == []


def test_counts_per_topic_are_checked_by_validate(tmp_path: Path) -> None:
    path = write_synthetic_recording(tmp_path / "r.mcap", seconds=3, size=(64, 48))
    chunk = _chunks(path)[0]
    data = bytearray(path.read_bytes())
    data[chunk.chunk_start_offset + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    report = validate(str(path), video=False)
    where = collections.Counter(p.where.split(" ")[0] for p in report.problems)
    assert where["chunk"] == 1 and where["topic"] >= 2
    assert any("the summary's statistics count" in p.message for p in report.problems)
    assert any("the file's end record says" in p.message for p in report.problems)
