"""``RecordingReader``: typed messages from native d2e files and from OWAMcap files, by topic and time.

Finished files are read through MCAP's index: a time range or a topic touches only the chunks that hold
it, which is what makes remote (fsspec) reads cheap. Unfinished files (the writer was killed) have no
index; the reader then walks the complete chunks it finds and stops quietly where the bytes end,
remembering the offset, so a crashed recording is readable without a separate step (``recover`` makes
it permanent).

Nothing comes back from bytes that failed a check (``integrity``): every chunk's CRC is verified before
its events are decoded, and a damaged chunk is skipped with a ``DamagedRecordingWarning`` that names its
byte offset and time range, so a reader returns the original events (perhaps fewer, never altered) or a
``D2EError``. A damaged summary or footer costs only speed: the data section is walked instead. The CRC
check costs a few percent of read time (``bench/format.py``), so there is no switch to turn it off.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import msgpack
from mcap.records import Channel, Header, Message, Metadata, Schema

from ..errors import D2EError
from ..schema import PROFILE, SCHEMA_MAJOR, TOPIC_TO_TYPE, RecordingMeta, WindowEvent, field_names, schema_major
from ..storage import exists, file_size, open_read, sibling
from . import owamcap
from .integrity import ChunkRef, Damage, DamagedPart, McapFile
from .layout import MCAP_MAGIC, META_END_NAME, META_NAME, metadata_damage

Decoder = Callable[[Message], list[Any]]


def _in_range(t: int, start_ns: int | None, end_ns: int | None) -> bool:
    return (start_ns is None or t >= start_ns) and (end_ns is None or t < end_ns)


class UnfinishedRecordingWarning(UserWarning):
    """The file has no MCAP summary: its writer did not finish. Readable; ``d2e recover`` fixes it."""


class DamagedRecordingWarning(UserWarning):
    """Part of the file failed its checksum or structure check and was skipped; the rest is intact."""


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
    with ``False`` such a file (or one whose summary is damaged) raises a ``D2EError`` that points to
    ``d2e recover``. ``salvage`` is for ``recover``: damaged recording metadata is replaced by defaults
    instead of refused. ``damage`` lists every damaged part met so far (all of them after ``verify()``).
    """

    def __init__(self, path: str | os.PathLike, *, allow_unfinished: bool = True, salvage: bool = False):
        self.path = str(path)
        self._file: IO[bytes] = open_read(path)
        try:
            self._open(allow_unfinished, salvage)
        except BaseException:
            self._file.close()
            raise

    # -- opening ---------------------------------------------------------------------------------
    def _open(self, allow_unfinished: bool, salvage: bool) -> None:
        head = self._file.read(8)
        if head != MCAP_MAGIC:
            hint = "an MKV/video file" if head[:4] == b"\x1aE\xdf\xa3" else f"starts with {head[:8]!r}"
            raise D2EError(f"not an MCAP recording ({hint})", path=self.path, where="byte 0",
                           fix="pass the .mcap file of the recording")
        self.size = file_size(self.path)
        self.damage: list[DamagedPart] = []
        self._warned: set[tuple[str, int]] = set()
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        self._metadata: dict[str, dict[str, str]] = {}
        self._lost: dict[str, str] = {}  # metadata records that failed their check: name -> why
        self._lost_before_data = False
        self._chunks: list[ChunkRef] = []
        self._loose: list[tuple[int, Message]] = []
        self._statistics = None
        self.truncated_at: int | None = None
        self._mcap = McapFile(self._file, self.size)
        self.header = self._read_header()
        self.profile = self.header.profile
        if self.profile not in (PROFILE, owamcap.PROFILE):
            raise D2EError(f"MCAP profile {self.profile!r} is not a d2e or OWAMcap recording", path=self.path,
                           where="header", fix="only d2e (native) and owa (OWAMcap) files are supported")
        self.is_owamcap = self.profile == owamcap.PROFILE
        self._mcap.require_crcs = not self.is_owamcap  # d2e always writes CRCs: a zero one is damage
        self.finished = self.size >= 16 and self._mcap.read_at(self.size - 8, 8) == MCAP_MAGIC
        summary = None
        if self.finished:
            try:
                summary = self._mcap.summary()
            except Damage as exc:
                if not allow_unfinished:
                    raise D2EError(f"the MCAP summary is damaged ({exc.problem})", path=self.path,
                                   where=f"byte {exc.offset}", fix="run: d2e recover " + self.path) from exc
                self._note(DamagedPart(exc.offset, exc.problem + "; reading the data section instead",
                                       kind="summary"))
        if summary is not None:
            self._statistics = summary.statistics
        if summary is not None and summary.chunk_indexes:
            self._schemas, self._channels = dict(summary.schemas), dict(summary.channels)
            self._chunks = [ChunkRef(i.chunk_start_offset, i.message_start_time, i.message_end_time,
                                     frozenset(i.message_index_offsets) or None, i) for i in summary.chunk_indexes]
            for index in summary.metadata_indexes:
                try:
                    self._add_metadata(index.offset, self._mcap.metadata_at(index.offset, index.name))
                except Damage as exc:
                    self._note(DamagedPart(exc.offset, exc.problem, kind=f"metadata record {index.name!r}"))
                    self._lost[index.name] = f"{exc.problem} (byte {exc.offset})"
        else:
            self._scan(summary is not None or any(p.kind == "summary" for p in self.damage), allow_unfinished)
        self.meta = self._read_meta(salvage)
        self.end_info: dict[str, Any] = self._read_end_info()
        self._decoders: dict[int, Decoder | None] = {}
        self._video_checked: str | None = None
        if self.is_owamcap:
            self._owa = self._owa_decoding(salvage)

    def _owa_decoding(self, salvage: bool) -> owamcap.OwaDecoding:
        """OWAMcap decoding; its d2e.extras record carries fields OWA's messages cannot, so events decoded
        without a damaged one would differ: refused, unless salvaging."""
        problem = self._lost.get(owamcap.EXTRAS_NAME)
        if problem is None:
            try:
                return owamcap.OwaDecoding(self.meta, self._metadata, META_NAME in self._metadata)
            except (ValueError, TypeError, AttributeError) as exc:
                problem = f"it does not decode ({type(exc).__name__}: {exc})"
        if not salvage:
            raise D2EError(f"the {owamcap.EXTRAS_NAME!r} metadata record is damaged: {problem}", path=self.path,
                           fix=f"run: d2e recover {self.path} (the fields only it holds are lost)")
        metadata = {k: v for k, v in self._metadata.items() if k != owamcap.EXTRAS_NAME}
        return owamcap.OwaDecoding(self.meta, metadata, META_NAME in metadata)

    def _read_header(self) -> Header:
        try:
            header, self._data_start, problem = self._mcap.header()
        except Damage as exc:
            if self.size < 8 + 9 + 8:
                raise D2EError("no MCAP header: the file is empty or cut before its first record", path=self.path,
                               where="byte 8", fix="nothing can be recovered from this file") from exc
            raise D2EError(f"the MCAP header is damaged ({exc.problem})", path=self.path, where="byte 8",
                           fix="nothing can be recovered from this file") from exc
        if problem:
            self._note(DamagedPart(8, f"{problem}; read past it", kind="header"))
        return header

    def _scan(self, had_summary: bool, allow_unfinished: bool) -> None:
        """No usable index: walk the data section once, collecting definitions and intact chunks."""
        scan = self._mcap.scan(self._data_start)
        self._schemas, self._channels = scan.schemas, scan.channels
        self._chunks, self._loose = scan.chunks, scan.loose_messages
        for offset, record in scan.metadata:
            self._add_metadata(offset, record)
        for part in scan.damaged:
            self._note(part)
        self.truncated_at = scan.end
        first_chunk = min((c.offset for c in scan.chunks), default=None)
        bad = [p.offset for p in scan.damaged if p.kind != "chunk"] + ([scan.cut_at] if scan.cut_at is not None else [])
        self._lost_before_data = any(first_chunk is None or offset < first_chunk for offset in bad)
        if had_summary:
            return
        self.finished = False
        if not allow_unfinished:
            raise D2EError("recording was not finished (the writer stopped before closing it)",
                           path=self.path, where=f"byte {self.size}", fix="run: d2e recover " + self.path)
        warnings.warn(
            f"{self.path}: unfinished recording, reading up to byte {self.truncated_at} of {self.size}; "
            f"run 'd2e recover {self.path}' to make it permanent", UnfinishedRecordingWarning, stacklevel=4)

    def _add_metadata(self, offset: int, record: Metadata) -> None:
        if record.name in (META_NAME, META_END_NAME, owamcap.EXTRAS_NAME):
            problem = metadata_damage(record.metadata, needs_json=record.name != owamcap.EXTRAS_NAME)
            if problem is not None:
                self._note(DamagedPart(offset, problem, kind=f"metadata record {record.name!r}"))
                if record.name != META_END_NAME:  # the end record only repeats what the events say
                    self._lost[record.name] = f"{problem} (byte {offset})"
                return
        self._metadata[record.name] = dict(record.metadata)

    def _note(self, part: DamagedPart) -> None:
        """Remember a damaged part and warn about it once."""
        key = (part.kind, part.offset)
        if key in self._warned:
            return
        self._warned.add(key)
        self.damage.append(part)
        warnings.warn(f"{self.path}: skipped damaged {part.describe()} (d2e validate lists every damaged part; "
                      f"d2e recover writes a clean copy)", DamagedRecordingWarning, stacklevel=5)

    def _read_meta(self, salvage: bool) -> RecordingMeta:
        raw = self._metadata.get(META_NAME)
        problem = self._lost.get(META_NAME)
        if raw is None and problem is None and (not self.is_owamcap or self._lost_before_data):
            problem = "the record is missing (damaged, or the file was cut before it)"  # d2e writes it first
        if raw is not None:
            try:
                data = json.loads(raw["json"])
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
            except (KeyError, ValueError) as exc:
                problem = "it is not valid JSON"
                if not salvage:
                    raise D2EError(f"metadata record {META_NAME!r} is not valid JSON", path=self.path,
                                   fix="the file was damaged or written by another tool") from exc
        if problem is not None:
            if salvage:
                return RecordingMeta(extra={"metadata_lost": problem})
            raise D2EError(f"the recording's metadata is damaged: {problem}", path=self.path,
                           where=f"metadata {META_NAME!r}", fix=f"run: d2e recover {self.path}")
        if raw is None:
            if self.is_owamcap:
                return owamcap.meta_from_metadata(self._metadata)
            return RecordingMeta()
        version = str(data.get("schema_version", "0"))
        if schema_major(version) != SCHEMA_MAJOR:
            raise D2EError(f"schema version {version} is not supported (this d2e reads {SCHEMA_MAJOR}.x)",
                           path=self.path, where=f"metadata {META_NAME!r}",
                           fix="upgrade d2e (pip install -U d2e)" if schema_major(version) > SCHEMA_MAJOR
                           else "convert it with an older d2e release")
        try:
            return RecordingMeta.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise D2EError(f"metadata record {META_NAME!r} has fields of the wrong type ({exc})", path=self.path,
                           fix="the file was written by an incompatible tool") from exc

    def _read_end_info(self) -> dict[str, Any]:
        raw = self._metadata.get(META_END_NAME)
        if raw is None:
            return {}
        try:
            info = json.loads(raw.get("json", "{}"))
        except ValueError:
            info = None
        if not isinstance(info, dict):
            self._note(DamagedPart(0, "it is not a JSON object", kind=f"metadata record {META_END_NAME!r}"))
            return {}
        return info

    # -- facts -----------------------------------------------------------------------------------
    @property
    def topics(self) -> list[str]:
        return sorted({c.topic for c in self._channels.values()})

    def find_video(self) -> str:
        """Where this recording's video is, unchecked: ``NAME.mkv`` beside ``NAME.mcap`` when it exists (so
        renaming both files keeps the pair), else the file the metadata names (converted files point at
        their source's video), else ``NAME.mkv``."""
        own = sibling(self.path, ".mkv")
        name = self.meta.video.get("file")
        if not name or not isinstance(name, str):
            return own
        stored = name if "://" in name or name.startswith("/") else os.path.join(os.path.dirname(self.path), name)
        if stored == own or exists(own):
            return own
        return stored

    @property
    def video_fingerprint(self) -> dict[str, Any] | None:
        """The fingerprint of the video this recording was made with (None in files from before them)."""
        stored = self.end_info.get("video_fingerprint") or self.meta.video.get("fingerprint")
        return stored if isinstance(stored, dict) else None

    @property
    def video_path(self) -> str:
        """This recording's video (``find_video``); a video whose fingerprint differs from the stored one
        (another recording's, even of the same frame size) is refused with a clear error."""
        path = self.find_video()
        if self._video_checked != path:
            self._check_video(path)
            self._video_checked = path
        return path

    def _check_video(self, path: str) -> None:
        from ..video import VideoReader, video_mismatch

        stored = self.video_fingerprint
        if not stored or not exists(path):
            return
        try:
            with VideoReader(path, threads=1) as video:
                actual = video.fingerprint(count=False)
        except D2EError:
            return  # an unreadable video fails where it is read, with its own message
        problem = video_mismatch(stored, actual)
        if problem:
            raise D2EError(f"the video {path} does not match this recording's ({problem}): it is another "
                           "recording's video, or it is damaged", path=self.path, where="video",
                           fix="put the recording's own video beside it as NAME.mkv (d2e validate shows the "
                           "difference)")

    def counts(self) -> dict[str, int]:
        """Events per topic. Uses the end record or the index where possible; scans otherwise."""
        stored = self.end_info.get("counts")
        if isinstance(stored, dict) and not self.is_owamcap:
            return dict(stored)
        if self.is_owamcap and (by_statistics := self.stored_message_counts()) is not None:
            return by_statistics
        out: dict[str, int] = {}
        for _schema, channel, message in self._messages(None, None, None):
            n = message.sequence if not self.is_owamcap else 1
            out[channel.topic] = out.get(channel.topic, 0) + n
        return out

    def time_range(self) -> tuple[int, int]:
        """(first, last) event time in ns; from the end record or MCAP statistics when present."""
        first, last = self.end_info.get("first_t_ns"), self.end_info.get("last_t_ns")
        if isinstance(first, int) and isinstance(last, int):
            return first, last
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
        try:
            return max((int(c.metadata.get("slice_ns", 100_000_000)) for c in self._channels.values()), default=0)
        except ValueError:
            return 100_000_000

    def _load(self, ref: ChunkRef) -> list[Any]:
        """A chunk's records, or [] (and a warning naming it) when it fails its check."""
        try:
            return self._mcap.chunk(ref.offset, ref.index)
        except Damage as exc:
            end = ref.offset + ref.index.chunk_length if ref.index is not None else None
            self._note(DamagedPart(ref.offset, exc.problem, start_ns=ref.start_ns, end_ns=ref.end_ns, end_offset=end))
            return []

    def _messages(self, topics: Iterable[str] | None, start_ns: int | None, end_ns: int | None
                  ) -> Iterator[tuple[Schema | None, Channel, Message]]:
        """Messages in log-time order, as MCAP's own reader orders them: chunks enter a heap by their first
        time and are opened only when they reach its top."""
        topic_set = set(topics) if topics is not None else None
        wanted = None if topic_set is None else {cid for cid, c in self._channels.items() if c.topic in topic_set}
        heap: list[tuple[int, int, int, Any]] = []
        for ref in self._chunks:
            if (start_ns is not None and ref.end_ns < start_ns) or (end_ns is not None and ref.start_ns >= end_ns):
                continue
            if wanted is not None and ref.channel_ids is not None and not ref.channel_ids & wanted:
                continue
            heap.append((ref.start_ns, ref.offset, -1, ref))
        heap += [(m.log_time, offset, 0, m) for offset, m in self._loose]
        heapq.heapify(heap)
        while heap:
            _t, offset, _i, item = heapq.heappop(heap)
            if isinstance(item, ChunkRef):
                for i, record in enumerate(self._load(item)):
                    if isinstance(record, Message):
                        heapq.heappush(heap, (record.log_time, offset, i, record))
                continue
            if not _in_range(item.log_time, start_ns, end_ns):
                continue
            channel = self._channels.get(item.channel_id)
            if channel is None:
                self._note(DamagedPart(offset, f"messages of channel {item.channel_id}, whose definition was lost",
                                       kind="chunk"))
                continue
            if topic_set is not None and channel.topic not in topic_set:
                continue
            yield self._schemas.get(channel.schema_id), channel, item

    def _decode_error(self, channel: Channel, message: Message, exc: Exception) -> D2EError:
        return D2EError(f"a {channel.topic!r} batch does not decode ({type(exc).__name__}: {exc})", path=self.path,
                        where=f"{channel.topic} t={message.log_time}",
                        fix="the file was written by an incompatible tool; d2e validate lists its problems")

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
            try:
                msgs = decode(message)
            except D2EError:
                raise
            except Exception as exc:  # msgpack/JSON/row errors: the bytes passed their CRC, so the writer erred
                raise self._decode_error(channel, message, exc) from exc
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
            try:
                rows = unpackb(message.data)
            except Exception as exc:
                raise self._decode_error(channel, message, exc) from exc
            yield channel.topic, rows

    def verify(self, *, data_section: bool = False) -> list[DamagedPart]:
        """Check every chunk's CRC (no decoding) and return every damaged part found; ``data_section``
        also walks the whole data section to check its CRC and the records outside chunks. Afterwards
        ``readable_messages`` holds the MCAP messages per topic in the parts that passed."""
        readable: dict[str, int] = {}
        for records in itertools.chain((self._load(ref) for ref in self._chunks), [[m for _o, m in self._loose]]):
            for record in records:  # one chunk at a time: a long recording never sits in memory whole
                channel = self._channels.get(record.channel_id) if isinstance(record, Message) else None
                if channel is not None:
                    readable[channel.topic] = readable.get(channel.topic, 0) + 1
        self.readable_messages = readable
        if data_section:
            scan = self._mcap.scan(self._data_start)
            parts = list(scan.damaged)
            if self.finished and not scan.reached_data_end:  # a finished file's data section ends in DataEnd
                at = scan.cut_at if scan.cut_at is not None else scan.end
                parts.append(DamagedPart(at, "the records stop making sense here, before the data section's "
                                         "end (DataEnd record)", kind="data section"))
            for part in parts:
                if not any(p.offset == part.offset and p.kind == part.kind for p in self.damage):
                    self._note(part)
        return list(self.damage)

    def stored_message_counts(self) -> dict[str, int] | None:
        """MCAP messages per topic as the summary's statistics give them (None without statistics). In
        native files a message is one batch of events; in OWAMcap files it is one event."""
        if self._statistics is None:
            return None
        out: dict[str, int] = {}
        for cid, n in self._statistics.channel_message_counts.items():
            channel = self._channels.get(cid)
            topic = channel.topic if channel is not None else f"channel {cid}"
            out[topic] = out.get(topic, 0) + n
        return out

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
