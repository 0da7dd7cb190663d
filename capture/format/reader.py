"""``RecordingReader``: typed messages from native d2e files and from OWAMcap files, by topic and time.

Finished files are read through MCAP's index: a time range or a topic touches only the chunks that hold
it, which is what makes remote (fsspec) reads cheap. Unfinished files (the writer was killed) have no
index; the reader then streams the complete chunks it finds and stops quietly where the damage begins,
remembering the offset, so a crashed recording is readable without a separate step (``recover`` makes
it permanent).
"""

from __future__ import annotations

import heapq
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import msgpack
from mcap.exceptions import McapError
from mcap.reader import SeekingReader
from mcap.records import Channel, DataEnd, Footer, Header, Message, Metadata, Schema
from mcap.stream_reader import StreamReader

from ..errors import D2EError
from ..schema import PROFILE, SCHEMA_MAJOR, TOPIC_TO_TYPE, RecordingMeta, WindowEvent, field_names, schema_major
from ..storage import file_size, open_read, sibling
from . import owamcap
from .layout import MCAP_MAGIC, META_END_NAME, META_NAME

Decoder = Callable[[Message], list[Any]]


def _in_range(t: int, start_ns: int | None, end_ns: int | None) -> bool:
    return (start_ns is None or t >= start_ns) and (end_ns is None or t < end_ns)


class UnfinishedRecordingWarning(UserWarning):
    """The file has no MCAP summary: its writer did not finish. Readable; ``d2e recover`` fixes it."""


def _row_decoder(cls: type, stored_fields: list[str]) -> Callable[[list[Any]], Any]:
    """Build a row->message function that maps stored fields onto the current class by name."""
    current = field_names(cls)
    if list(stored_fields) == list(current):
        if cls is WindowEvent:
            return lambda row: WindowEvent(row[0], row[1], row[2], row[3], tuple(row[4]), row[5])
        return lambda row: cls(*row)
    index = {name: i for i, name in enumerate(stored_fields)}
    missing_required = [f for f in current[:2] if f not in index]
    if missing_required:
        raise D2EError(f"topic {cls.TOPIC!r} lacks required fields {missing_required}",
                       fix="the file was written by an incompatible tool")
    picks = [(name, index[name]) for name in current if name in index]

    def decode(row: list[Any]) -> Any:
        kwargs = {name: row[i] for name, i in picks if i < len(row)}
        if "rect" in kwargs:
            kwargs["rect"] = tuple(kwargs["rect"])
        return cls(**kwargs)

    return decode


class RecordingReader:
    """Read a recording (native ``.mcap`` or OWAMcap), local path or fsspec URL.

    >>> with RecordingReader("run.mcap") as r:
    ...     for msg in r.iter(topics=["keyboard"], start_ns=r.start_ns, end_ns=r.start_ns + 10**9):
    ...         print(msg)

    ``allow_unfinished`` (default) reads a crashed file up to its last complete chunk and warns;
    with ``False`` such a file raises a ``D2EError`` that points to ``d2e recover``.
    """

    def __init__(self, path: str | os.PathLike, *, allow_unfinished: bool = True):
        self.path = str(path)
        self._file: IO[bytes] = open_read(path)
        try:
            self._open(allow_unfinished)
        except BaseException:
            self._file.close()
            raise

    # -- opening ---------------------------------------------------------------------------------
    def _open(self, allow_unfinished: bool) -> None:
        head = self._file.read(8)
        if head != MCAP_MAGIC:
            hint = "an MKV/video file" if head[:4] == b"\x1aE\xdf\xa3" else f"starts with {head[:8]!r}"
            raise D2EError(f"not an MCAP recording ({hint})", path=self.path, where="byte 0",
                           fix="pass the .mcap file of the recording")
        self.size = file_size(self.path)
        self.finished = False
        if self.size >= 16:
            self._file.seek(-8, os.SEEK_END)
            self.finished = self._file.read(8) == MCAP_MAGIC
        self.truncated_at: int | None = None
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        self._metadata: dict[str, dict[str, str]] = {}
        if self.finished:
            try:
                self._file.seek(0)
                self._mcap = SeekingReader(self._file, validate_crcs=False)
                self.header: Header = self._mcap.get_header()
                summary = self._mcap.get_summary()
            except (McapError, ValueError, EOFError) as exc:
                raise D2EError(f"damaged MCAP summary ({exc})", path=self.path,
                               fix="run: d2e recover " + self.path) from exc
            if summary is None:
                self.finished = False
            else:
                self._schemas, self._channels = dict(summary.schemas), dict(summary.channels)
                self._statistics = summary.statistics
                for meta in self._mcap.iter_metadata():
                    self._metadata[meta.name] = dict(meta.metadata)
        if not self.finished:
            if not allow_unfinished:
                raise D2EError("recording was not finished (the writer stopped before closing it)",
                               path=self.path, where=f"byte {self.size}", fix="run: d2e recover " + self.path)
            self._scan_unfinished()
            warnings.warn(
                f"{self.path}: unfinished recording, reading up to byte {self.truncated_at} of {self.size}; "
                f"run 'd2e recover {self.path}' to make it permanent", UnfinishedRecordingWarning, stacklevel=3)
        self.profile = self.header.profile
        if self.profile not in (PROFILE, owamcap.PROFILE):
            raise D2EError(f"MCAP profile {self.profile!r} is not a d2e or OWAMcap recording", path=self.path,
                           where="header", fix="only d2e (native) and owa (OWAMcap) files are supported")
        self.is_owamcap = self.profile == owamcap.PROFILE
        self.meta = self._read_meta()
        self.end_info: dict[str, Any] = json.loads(self._metadata.get(META_END_NAME, {}).get("json", "{}"))
        self._decoders: dict[int, Decoder | None] = {}
        if self.is_owamcap:
            self._owa = owamcap.OwaDecoding(self.meta, self._metadata, META_NAME in self._metadata)

    def _records(self) -> Iterator[Any]:
        """Stream records from the start; stop (and remember where) at the first damaged byte."""
        self._file.seek(0)
        stream = StreamReader(self._file, skip_magic=False, emit_chunks=False, validate_crcs=True)
        it = iter(stream.records)
        good_end = 8
        while True:
            try:
                record = next(it)
            except StopIteration:
                break
            except Exception:
                break  # whatever the failure, everything yielded before it is intact (CRC-checked chunks)
            good_end = self._file.tell()
            yield record
        self.truncated_at = good_end

    def _scan_unfinished(self) -> None:
        self.header = None  # type: ignore[assignment]
        self._statistics = None
        for record in self._records():
            if isinstance(record, Header):
                self.header = record
            elif isinstance(record, Schema):
                self._schemas[record.id] = record
            elif isinstance(record, Channel):
                self._channels[record.id] = record
            elif isinstance(record, Metadata):
                self._metadata[record.name] = dict(record.metadata)
            elif isinstance(record, (DataEnd, Footer)):
                break
        if self.header is None:
            raise D2EError("no MCAP header: the file is empty or cut before its first record",
                           path=self.path, where="byte 8", fix="nothing can be recovered from this file")

    def _read_meta(self) -> RecordingMeta:
        raw = self._metadata.get(META_NAME)
        if raw is None:
            if self.is_owamcap:
                return owamcap.meta_from_metadata(self._metadata)
            return RecordingMeta()
        try:
            data = json.loads(raw["json"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise D2EError(f"metadata record {META_NAME!r} is not valid JSON", path=self.path,
                           fix="the file was damaged or written by another tool") from exc
        version = str(data.get("schema_version", "0"))
        if schema_major(version) != SCHEMA_MAJOR:
            raise D2EError(f"schema version {version} is not supported (this d2e reads {SCHEMA_MAJOR}.x)",
                           path=self.path, where=f"metadata {META_NAME!r}",
                           fix="upgrade d2e (pip install -U d2e)" if schema_major(version) > SCHEMA_MAJOR
                           else "convert it with an older d2e release")
        return RecordingMeta.from_dict(data)

    # -- facts -----------------------------------------------------------------------------------
    @property
    def topics(self) -> list[str]:
        return sorted({c.topic for c in self._channels.values()})

    @property
    def video_path(self) -> str:
        """The video that the screen topic refers to (``NAME.mkv`` beside the ``.mcap`` by default)."""
        name = self.meta.video.get("file")
        if name:
            if "://" in name or name.startswith("/"):
                return name
            return os.path.join(os.path.dirname(self.path), name)
        return sibling(self.path, ".mkv")

    def counts(self) -> dict[str, int]:
        """Events per topic. Uses the end record or the index where possible; scans otherwise."""
        if self.end_info.get("counts") is not None and not self.is_owamcap:
            return dict(self.end_info["counts"])
        out: dict[str, int] = {}
        if self._statistics is not None and self.is_owamcap:
            for cid, n in self._statistics.channel_message_counts.items():
                topic = self._channels[cid].topic
                out[topic] = out.get(topic, 0) + n
            return out
        for _schema, channel, message in self._messages(None, None, None):
            n = message.sequence if not self.is_owamcap else 1
            out[channel.topic] = out.get(channel.topic, 0) + n
        return out

    def time_range(self) -> tuple[int, int]:
        """(first, last) event time in ns; from the end record or MCAP statistics when present."""
        first, last = self.end_info.get("first_t_ns"), self.end_info.get("last_t_ns")
        if first is not None and last is not None:
            return int(first), int(last)
        if self._statistics is not None and self._statistics.message_count:
            return self._statistics.message_start_time, self._statistics.message_end_time
        lo, hi = None, None
        for _schema, _channel, message in self._messages(None, None, None):
            lo = message.log_time if lo is None else min(lo, message.log_time)
            hi = message.publish_time if hi is None else max(hi, message.publish_time)
        return (lo or 0, hi or 0)

    @property
    def start_ns(self) -> int:
        return self.time_range()[0]

    @property
    def end_ns(self) -> int:
        return self.time_range()[1]

    # -- messages --------------------------------------------------------------------------------
    def _slack_ns(self) -> int:
        return max((int(c.metadata.get("slice_ns", 100_000_000)) for c in self._channels.values()), default=0)

    def _messages(self, topics: Iterable[str] | None, start_ns: int | None, end_ns: int | None):
        topic_set = set(topics) if topics is not None else None
        if self.finished:
            yield from self._mcap.iter_messages(topics=topic_set, starting_at=start_ns, ending_before=end_ns)
            return
        # No index: stream every complete chunk, then order by log time as the index would have.
        found = []
        for record in self._records():
            if not isinstance(record, Message):
                continue
            channel = self._channels.get(record.channel_id)
            if channel is None or (topic_set is not None and channel.topic not in topic_set):
                continue
            if _in_range(record.log_time, start_ns, end_ns):
                found.append((self._schemas.get(channel.schema_id), channel, record))
        found.sort(key=lambda item: item[2].log_time)
        yield from found

    def _decoder(self, schema: Schema | None, channel: Channel) -> Decoder | None:
        if channel.id in self._decoders:
            return self._decoders[channel.id]
        decoder: Decoder | None = None
        if self.is_owamcap:
            decoder = self._owa.decoder_for(schema, channel)
        elif channel.topic in TOPIC_TO_TYPE and channel.message_encoding == "msgpack":
            cls = TOPIC_TO_TYPE[channel.topic]
            stored = channel.metadata.get("fields", "").split(",")
            row_to_msg = _row_decoder(cls, stored)
            unpackb = msgpack.unpackb

            def decoder(message: Message) -> list[Any]:
                return [row_to_msg(row) for row in unpackb(message.data)]
        self._decoders[channel.id] = decoder
        return decoder

    def _decoded(self, topics: Iterable[str] | None, start_ns: int | None, end_ns: int | None):
        lo = None if start_ns is None else start_ns - (0 if self.is_owamcap else self._slack_ns())
        for schema, channel, message in self._messages(topics, lo, end_ns):
            decode = self._decoder(schema, channel)
            if decode is None:
                continue
            msgs = decode(message)
            if start_ns is not None or end_ns is not None:
                msgs = [m for m in msgs if _in_range(m.t_ns, start_ns, end_ns)]
            yield channel.topic, message.log_time, msgs

    def iter_batches(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                     end_ns: int | None = None) -> Iterator[tuple[str, list[Any]]]:
        """(topic, messages) per stored batch, in the file's order; the fastest way through a file."""
        for topic, _log_time, msgs in self._decoded(topics, start_ns, end_ns):
            if msgs:
                yield topic, msgs

    def iter_rows(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, list[list[Any]]]]:
        """(topic, raw msgpack rows) per batch, without building typed messages (native files only)."""
        if self.is_owamcap:
            raise D2EError("raw rows exist only in native d2e files", path=self.path, fix="use iter()")
        unpackb = msgpack.unpackb
        for _schema, channel, message in self._messages(topics, None, None):
            yield channel.topic, unpackb(message.data)

    def iter(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
             end_ns: int | None = None) -> Iterator[Any]:
        """Typed messages with ``start_ns <= t_ns < end_ns``, in time order across topics."""
        # Batches arrive ordered by their first event (the MCAP log time); events of a batch may overlap
        # the next one, so hold them in a heap and release those older than the next batch's start.
        heap: list[tuple[int, int, Any]] = []
        push, pop = heapq.heappush, heapq.heappop
        seq = 0
        for _topic, log_time, msgs in self._decoded(topics, start_ns, end_ns):
            while heap and heap[0][0] < log_time:
                yield pop(heap)[2]
            for m in msgs:
                push(heap, (m.t_ns, seq, m))
                seq += 1
        while heap:
            yield pop(heap)[2]

    __iter__ = iter

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
