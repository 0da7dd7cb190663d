"""Checked access to the parts of an MCAP file: nothing handed on comes from bytes that failed a check.

The ``mcap`` library trusts what it reads. It skips chunk CRCs unless asked, never checks the summary's
CRC, believes record lengths (a flipped length asks for gigabytes) and lets whatever its parsing meets
escape (``struct.error``, ``UnicodeDecodeError``, zstd's "Data corruption detected"). A flipped byte
inside a chunk can then decode to a different key name with no error at all. So this module reads every
part itself, bounds-checked against the file size, and verifies it before use: a chunk by its CRC and
against the summary's index, the summary by the footer's CRC, the data section by the CRC in its
``DataEnd`` record. A failed check is a ``Damage`` that names the byte offset; the reader turns it into
a warning (a skipped chunk) or into a ``D2EError``.

Without a usable summary, ``scan`` walks the data section record by record and, past a damaged stretch,
finds the next chunk whose CRC checks, so every intact chunk around a damaged one is still read.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import IO

import lz4.frame
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import (
    AttachmentIndex,
    Channel,
    ChunkIndex,
    DataEnd,
    Header,
    McapRecord,
    Message,
    MessageIndex,
    Metadata,
    MetadataIndex,
    Schema,
    Statistics,
    SummaryOffset,
)
from mcap.summary import Summary

_RECORD_HEAD = struct.Struct("<BQ")
_MESSAGE_HEAD = struct.Struct("<HIQQ")
_CHUNK_HEAD = struct.Struct("<QQQII")  # start, end, uncompressed size, uncompressed crc, compression length
_FOOTER = struct.Struct("<BQQQI")
FOOTER_BYTES = _FOOTER.size  # opcode + length + summary_start + summary_offset_start + crc = 29
MAX_CHUNK_BYTES = 1 << 30  # a chunk claiming more than 1 GiB uncompressed is damage, not data
_PARSERS = {
    Opcode.HEADER: Header.read, Opcode.SCHEMA: Schema.read, Opcode.CHANNEL: Channel.read,
    Opcode.METADATA: Metadata.read, Opcode.DATA_END: DataEnd.read, Opcode.STATISTICS: Statistics.read,
    Opcode.CHUNK_INDEX: ChunkIndex.read, Opcode.METADATA_INDEX: MetadataIndex.read,
    Opcode.ATTACHMENT_INDEX: AttachmentIndex.read, Opcode.SUMMARY_OFFSET: SummaryOffset.read,
    Opcode.MESSAGE_INDEX: MessageIndex.read,
}
# Records a data section holds between its header and DataEnd; anything else there means damage.
_DATA_OPCODES = {Opcode.SCHEMA, Opcode.CHANNEL, Opcode.MESSAGE, Opcode.CHUNK, Opcode.MESSAGE_INDEX,
                 Opcode.ATTACHMENT, Opcode.METADATA, Opcode.DATA_END}


class Damage(Exception):
    """A part of the file failed a check; ``offset`` is the byte where that part starts."""

    def __init__(self, problem: str, offset: int):
        super().__init__(problem)
        self.problem, self.offset = problem, offset


@dataclass
class DamagedPart:
    """A damaged chunk (or other part) as readers and ``validate`` report it: where, when, and why."""

    offset: int
    problem: str
    kind: str = "chunk"
    start_ns: int | None = None
    end_ns: int | None = None
    end_offset: int | None = None

    def describe(self) -> str:
        span = f"bytes {self.offset}-{self.end_offset}" if self.end_offset is not None else f"byte {self.offset}"
        when = (f", events {self.start_ns}..{self.end_ns} ns" if self.start_ns is not None and self.end_ns is not None
                else "")
        return f"{self.kind} at {span}{when}: {self.problem}"


@dataclass
class ChunkRef:
    """Where an intact-looking chunk is and what it holds, from the summary's index or from a scan."""

    offset: int
    start_ns: int
    end_ns: int
    channel_ids: frozenset[int] | None = None  # None: not known without opening it
    index: ChunkIndex | None = None


@dataclass
class ScanResult:
    """Everything a walk through the data section found (records outside chunks, chunk positions)."""

    header: Header | None = None
    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    metadata: list[tuple[int, Metadata]] = field(default_factory=list)
    chunks: list[ChunkRef] = field(default_factory=list)
    loose_messages: list[tuple[int, Message]] = field(default_factory=list)
    damaged: list[DamagedPart] = field(default_factory=list)
    end: int = 8  # byte after the last record that was read intact
    reached_data_end: bool = False
    cut_at: int | None = None  # where the bytes stop making sense for good (a cut file): nothing intact after


class _Exact(io.RawIOBase):
    """A byte buffer whose ``read(n)`` fails instead of returning fewer than ``n`` bytes."""

    def __init__(self, data: bytes | memoryview, offset: int):
        self._data, self._pos, self._offset = memoryview(data), 0, offset

    def read(self, n: int = -1) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise Damage(f"a field runs past the end of its record ({n} bytes wanted)", self._offset)
        out = bytes(self._data[self._pos:self._pos + n])
        self._pos += n
        return out

    @property
    def left(self) -> int:
        return len(self._data) - self._pos


def parse_record(opcode: int, body: bytes | memoryview, offset: int) -> McapRecord:
    """One record from its body, every field bounds-checked; any parsing failure becomes ``Damage``."""
    parser = _PARSERS.get(opcode)
    if parser is None and opcode != Opcode.MESSAGE:
        raise Damage(f"unexpected record type {opcode:#04x}", offset)
    source = _Exact(body, offset)
    try:
        if opcode == Opcode.MESSAGE:
            return Message.read(ReadDataStream(source), len(body))
        return parser(ReadDataStream(source))
    except Damage:
        raise
    except Exception as exc:  # struct.error, UnicodeDecodeError, ...: what damaged bytes raise while parsing
        raise Damage(f"malformed {_name(opcode)} record ({type(exc).__name__}: {exc})", offset) from exc


def _name(opcode: int) -> str:
    try:
        return Opcode(opcode).name.lower().replace("_", " ")
    except ValueError:
        return f"unknown ({opcode:#04x})"


def _decompress(compression: str, data: bytes, size: int, offset: int) -> bytes:
    """Decompress at most ``size`` bytes: a damaged frame header cannot make us allocate more."""
    try:
        if compression == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(data) as reader:
                parts, got = [], 0
                while got <= size:
                    part = reader.read(min(size + 1 - got, 8 << 20))  # memory follows real output only
                    if not part:
                        break
                    parts.append(part)
                    got += len(part)
            out = b"".join(parts)
        elif compression == "lz4":
            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=size + 1)
        elif compression == "":
            out = data
        else:
            raise Damage(f"unknown compression {compression!r}", offset)
    except Damage:
        raise
    except Exception as exc:  # zstd "Data corruption detected", lz4 RuntimeError, ...
        raise Damage(f"{compression} data does not decompress ({exc})", offset) from exc
    if len(out) != size:
        raise Damage(f"decompresses to {len(out)} bytes, the chunk says {size}", offset)
    return out


def chunk_records(data: bytes, offset: int) -> list[McapRecord]:
    """Schema, Channel and Message records of a decompressed, verified chunk."""
    out: list[McapRecord] = []
    pos, n = 0, len(data)
    head, msg_head = _RECORD_HEAD.unpack_from, _MESSAGE_HEAD.unpack_from
    view = memoryview(data)
    while pos < n:
        if pos + 9 > n:
            raise Damage("chunk ends inside a record header", offset)
        opcode, length = head(data, pos)
        start, end = pos + 9, pos + 9 + length
        if end > n:
            raise Damage("a record runs past the end of its chunk", offset)
        if opcode == Opcode.MESSAGE:
            if length < _MESSAGE_HEAD.size:
                raise Damage("message record too short", offset)
            channel_id, sequence, log_time, publish_time = msg_head(data, start)
            out.append(Message(channel_id=channel_id, sequence=sequence, log_time=log_time,
                               publish_time=publish_time, data=bytes(view[start + _MESSAGE_HEAD.size:end])))
        elif opcode in (Opcode.SCHEMA, Opcode.CHANNEL):
            out.append(parse_record(opcode, view[start:end], offset))
        pos = end  # other record types inside a chunk are skipped, as the MCAP spec asks
    return out


class McapFile:
    """Bounds-checked reads of one MCAP file's records; every method raises ``Damage`` on bad bytes.

    ``require_crcs``: a zero CRC (= "not computed") counts as damage. Files written by d2e always carry
    CRCs, so for them a zeroed CRC field is damage that would otherwise switch the check off.
    """

    def __init__(self, file: IO[bytes], size: int, *, require_crcs: bool = False):
        self._file, self.size, self.require_crcs = file, size, require_crcs

    # -- raw access ----------------------------------------------------------------------------
    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise Damage(f"{n} bytes at byte {offset} would run past the end of the file ({self.size} bytes)",
                         offset)
        self._file.seek(offset)
        data = self._file.read(n)
        if len(data) != n:
            raise Damage(f"short read at byte {offset}", offset)
        return data

    def record_at(self, offset: int) -> tuple[int, bytes, int]:
        """(opcode, body, offset after the record) of the record at ``offset``."""
        opcode, length = _RECORD_HEAD.unpack(self.read_at(offset, 9))
        if offset + 9 + length > self.size:
            raise Damage(f"{_name(opcode)} record at byte {offset} claims {length} bytes, past the end of the file",
                         offset)
        return opcode, self.read_at(offset + 9, length), offset + 9 + length

    # -- the parts -----------------------------------------------------------------------------
    def header(self) -> tuple[Header, int, str | None]:
        """The header record, the offset after it, and what was wrong with it (None if nothing). A damaged
        length is worked around when the profile and library strings read cleanly and a record follows."""
        record: McapRecord | None = None
        try:
            opcode, body, end = self.record_at(8)
            if opcode != Opcode.HEADER:
                raise Damage(f"expected the header record at byte 8, found {_name(opcode)}", 8)
            record = parse_record(opcode, body, 8)
            if end == self.size or self._data_record_at(end):
                assert isinstance(record, Header)
                return record, end, None
            problem = "header record length does not lead to the next record"
        except Damage as exc:
            problem = exc.problem
        repaired = self._header_by_strings()
        if repaired is not None:
            return (*repaired, problem)
        if isinstance(record, Header):  # a file cut right after its header
            return record, end, None
        raise Damage(problem, 8)

    def _data_record_at(self, offset: int) -> bool:
        try:
            return self.record_at(offset)[0] in _DATA_OPCODES
        except Damage:
            return False

    def _header_by_strings(self) -> tuple[Header, int] | None:
        try:
            pos = 17
            strings = []
            for _ in range(2):
                (n,) = struct.unpack("<I", self.read_at(pos, 4))
                if n > 4096:
                    return None
                strings.append(self.read_at(pos + 4, n).decode())
                pos += 4 + n
        except (Damage, UnicodeDecodeError):
            return None
        if not self._data_record_at(pos):
            return None
        return Header(profile=strings[0], library=strings[1]), pos

    def summary(self) -> Summary | None:
        """The summary, checked against the footer's CRC; None when the file has none."""
        tail = self.size - 8 - FOOTER_BYTES
        if tail < 8:
            raise Damage("file too short for a footer", max(0, tail))
        opcode, length, summary_start, offsets_start, crc = _FOOTER.unpack(self.read_at(tail, FOOTER_BYTES))
        if opcode != Opcode.FOOTER or length != FOOTER_BYTES - 9:
            raise Damage("no footer record before the closing magic", tail)
        if summary_start == 0:
            return None
        if not 8 < summary_start <= tail:
            raise Damage(f"footer points at byte {summary_start}, outside the file", tail)
        if offsets_start and not summary_start <= offsets_start <= tail:
            raise Damage(f"footer's summary offsets start at byte {offsets_start}, outside the summary", tail)
        covered = self.read_at(summary_start, tail + FOOTER_BYTES - 4 - summary_start)
        if crc == 0 and self.require_crcs:
            raise Damage("summary CRC is zero (d2e always writes one)", tail)
        if crc and zlib.crc32(covered) != crc:
            raise Damage(f"summary CRC mismatch (stored {crc:#010x}, computed {zlib.crc32(covered):#010x})",
                         summary_start)
        summary = Summary()
        pos, end = 0, tail - summary_start
        while pos < end:
            if pos + 9 > end:
                raise Damage("summary ends inside a record header", summary_start + pos)
            opcode, length = _RECORD_HEAD.unpack_from(covered, pos)
            if pos + 9 + length > end:
                raise Damage("a summary record runs past the footer", summary_start + pos)
            record = parse_record(opcode, memoryview(covered)[pos + 9:pos + 9 + length], summary_start + pos)
            if isinstance(record, Schema):
                summary.schemas[record.id] = record
            elif isinstance(record, Channel):
                summary.channels[record.id] = record
            elif isinstance(record, Statistics):
                summary.statistics = record
            elif isinstance(record, ChunkIndex):
                summary.chunk_indexes.append(record)
            elif isinstance(record, MetadataIndex):
                summary.metadata_indexes.append(record)
            elif isinstance(record, AttachmentIndex):
                summary.attachment_indexes.append(record)
            pos += 9 + length
        return summary

    def metadata_at(self, offset: int, name: str | None = None) -> Metadata:
        opcode, body, _end = self.record_at(offset)
        if opcode != Opcode.METADATA:
            raise Damage(f"expected a metadata record, found {_name(opcode)}", offset)
        record = parse_record(opcode, body, offset)
        assert isinstance(record, Metadata)
        if name is not None and record.name != name:
            raise Damage(f"metadata record is named {record.name!r}, the index says {name!r}", offset)
        return record

    def chunk(self, offset: int, index: ChunkIndex | None = None) -> list[McapRecord]:
        """The records of the chunk at ``offset``, after its CRC (and the index, if given) agree."""
        opcode, body, end = self.record_at(offset)
        if opcode != Opcode.CHUNK:
            raise Damage(f"expected a chunk, found {_name(opcode)}", offset)
        return self._open_chunk(body, offset, end, index)

    def _open_chunk(self, body: bytes, offset: int, end: int, index: ChunkIndex | None) -> list[McapRecord]:
        if len(body) < _CHUNK_HEAD.size + 8:
            raise Damage("chunk record too short", offset)
        start_ns, end_ns, size, crc, name_len = _CHUNK_HEAD.unpack_from(body, 0)
        pos = _CHUNK_HEAD.size
        if name_len > 16 or pos + name_len + 8 > len(body):
            raise Damage("chunk header is malformed (compression name)", offset)
        try:
            compression = body[pos:pos + name_len].decode()
        except UnicodeDecodeError as exc:
            raise Damage("chunk header is malformed (compression name)", offset) from exc
        pos += name_len
        (data_len,) = struct.unpack_from("<Q", body, pos)
        pos += 8
        if pos + data_len != len(body):
            raise Damage(f"chunk data length {data_len} does not match its record length", offset)
        if index is not None:
            expected = (index.chunk_length, index.compression, index.compressed_size, index.uncompressed_size,
                        index.message_start_time, index.message_end_time)
            if (end - offset, compression, data_len, size, start_ns, end_ns) != expected:
                raise Damage("chunk header disagrees with the summary's chunk index", offset)
        if size > MAX_CHUNK_BYTES:
            raise Damage(f"chunk claims {size} bytes uncompressed", offset)
        if crc == 0 and self.require_crcs:
            raise Damage("chunk CRC is zero (d2e always writes one)", offset)
        data = _decompress(compression, body[pos:], size, offset)
        if crc and zlib.crc32(data) != crc:
            raise Damage(f"CRC mismatch (stored {crc:#010x}, computed {zlib.crc32(data):#010x})", offset)
        return chunk_records(data, offset)

    def _chunk_times(self, body: bytes) -> tuple[int | None, int | None]:
        if len(body) < 16:
            return None, None
        return struct.unpack_from("<QQ", body, 0)

    # -- walking the data section --------------------------------------------------------------
    def scan(self, start: int) -> ScanResult:
        """Walk the data section from ``start`` (after the header). Damaged stretches are listed in
        ``damaged`` and skipped up to the next chunk whose CRC checks."""
        result = ScanResult(end=start)
        data_crc: int | None = zlib.crc32(self.read_at(0, start))
        pos = start
        while pos < self.size:
            try:
                opcode, body, end = self.record_at(pos)
                if opcode not in _DATA_OPCODES:
                    raise Damage(f"unexpected {_name(opcode)} record in the data section", pos)
                if opcode == Opcode.DATA_END:
                    self._data_end(result, parse_record(opcode, body, pos), data_crc, pos, end)
                    return result
                if opcode == Opcode.CHUNK:
                    try:
                        records = self._open_chunk(body, pos, end, None)
                    except Damage as exc:
                        t0, t1 = self._chunk_times(body)
                        result.damaged.append(DamagedPart(exc.offset, exc.problem, start_ns=t0, end_ns=t1,
                                                          end_offset=end))
                        data_crc, after = None, self._after_damaged_chunk(pos, end)
                        if after is None:
                            result.cut_at = end
                            return result
                        pos = after
                        continue
                    self._collect_chunk(result, pos, records)
                elif opcode not in (Opcode.MESSAGE_INDEX, Opcode.ATTACHMENT):
                    self._collect(result, pos, parse_record(opcode, body, pos))
                if data_crc is not None:
                    data_crc = zlib.crc32(body, zlib.crc32(_RECORD_HEAD.pack(opcode, len(body)), data_crc))
                result.end = pos = end
            except Damage as exc:
                data_crc = None
                found = self._next_chunk(pos + 1)
                if found is None:  # nothing intact follows: a cut file, or damage up to its end
                    result.cut_at = pos
                    return result
                result.damaged.append(DamagedPart(pos, exc.problem, kind="data", end_offset=found))
                pos = found
        return result

    def _data_end(self, result: ScanResult, record: McapRecord, data_crc: int | None, pos: int, end: int) -> None:
        assert isinstance(record, DataEnd)
        result.reached_data_end, result.end = True, end
        stored = record.data_section_crc
        if data_crc is not None and stored and stored != data_crc:
            result.damaged.append(DamagedPart(
                8, f"data section CRC mismatch (stored {stored:#010x}, computed {data_crc:#010x}): bytes outside "
                "the chunks changed (message indexes or metadata)", kind="data section", end_offset=pos))

    def _after_damaged_chunk(self, pos: int, end: int) -> int | None:
        """Where to go on after a chunk that failed its check: the next intact chunk if one starts inside
        the stretch the damaged record claims (its length was hit), else the record after it."""
        found = self._next_chunk(pos + 1)
        if found is not None and found < end:
            return found
        try:
            opcode, _body, _after = self.record_at(end)
        except Damage:
            return found
        return end if opcode in _DATA_OPCODES else found

    def _collect(self, result: ScanResult, offset: int, record: McapRecord) -> None:
        if isinstance(record, Schema):
            result.schemas[record.id] = record
        elif isinstance(record, Channel):
            result.channels[record.id] = record
        elif isinstance(record, Metadata):
            result.metadata.append((offset, record))
        elif isinstance(record, Message):
            result.loose_messages.append((offset, record))

    def _collect_chunk(self, result: ScanResult, offset: int, records: list[McapRecord]) -> None:
        channels: set[int] = set()
        times = []
        for record in records:
            if isinstance(record, Message):
                channels.add(record.channel_id)
                times.append(record.log_time)
            else:
                self._collect(result, offset, record)
        if times:
            result.chunks.append(ChunkRef(offset, min(times), max(times), frozenset(channels)))

    def _next_chunk(self, start: int) -> int | None:
        """Offset of the next chunk at or after ``start`` whose structure and CRC check, or None."""
        window = 1 << 20
        pos = start
        while pos < self.size:
            self._file.seek(pos)
            buf = self._file.read(min(window, self.size - pos))
            at = buf.find(b"\x06")
            while at != -1:
                candidate = pos + at
                if self._is_chunk(candidate):
                    return candidate
                at = buf.find(b"\x06", at + 1)
            pos += len(buf)
        return None

    def _is_chunk(self, offset: int) -> bool:
        try:
            opcode, length = _RECORD_HEAD.unpack(self.read_at(offset, 9))
            if opcode != Opcode.CHUNK or offset + 9 + length > self.size or length < _CHUNK_HEAD.size + 8:
                return False
            head = self.read_at(offset + 9, _CHUNK_HEAD.size)
            name_len = _CHUNK_HEAD.unpack(head)[4]
            if name_len > 16 or _CHUNK_HEAD.size + name_len + 8 > length:
                return False
            (data_len,) = struct.unpack("<Q", self.read_at(offset + 9 + _CHUNK_HEAD.size + name_len, 8))
            if _CHUNK_HEAD.size + name_len + 8 + data_len != length:
                return False
            self.chunk(offset)
        except Damage:
            return False
        return True
