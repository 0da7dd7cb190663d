"""``RecordingWriter``: events and frame records into a crash-safe, compact MCAP file.

Why it is fast and small: instead of one MCAP message per event (OWAMcap's layout, whose per-message
framing and JSON dominate its cost), events of one topic are gathered into one msgpack array per time
slice (100 ms by default). MCAP still indexes every slice by time and topic, so readers seek as before.

Why it survives a crash: chunks are closed by time (every ``chunk_seconds``, default 1 s of either
recording time or wall time), and each closed chunk is flushed to the OS. A process killed with SIGKILL
therefore loses at most the open chunk; ``capture.recover`` rebuilds a finished file from the rest.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgpack
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter

from .. import __version__
from ..errors import D2EError
from ..schema import PROFILE, SCHEMA_VERSION, TOPIC_TO_TYPE, RecordingMeta, field_names
from .layout import META_END_NAME, META_NAME, SCHEMA_PREFIX, metadata_record, schema_document

_COMPRESSION = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}


class _TopicBatch:
    __slots__ = ("channel_id", "rows", "first_t", "last_t", "count", "row_of")

    def __init__(self, channel_id: int, fields: tuple[str, ...]):
        self.channel_id = channel_id
        self.rows: list[tuple[Any, ...]] = []
        self.first_t = 0
        self.last_t = 0
        self.count = 0  # rows already emitted
        self.row_of = operator.attrgetter(*fields)  # message -> tuple in field order, in C


class RecordingWriter:
    """Write a recording's ``.mcap``; use it as a context manager so the file is always finished.

    >>> with RecordingWriter("run.mcap", RecordingMeta(source="demo")) as w:
    ...     w.write(KeyboardEvent(t_ns=1_000, action="press", key="a", vk=0x41))

    ``write`` takes any message from ``capture.schema``. Events of one topic should arrive in time
    order (the recorder and the game sources guarantee it); topics may interleave freely.
    """

    def __init__(
        self,
        path: str | os.PathLike | IO[bytes],
        meta: RecordingMeta | None = None,
        *,
        overwrite: bool = False,
        compression: str = "zstd",
        slice_ns: int = 100_000_000,
        max_batch: int = 4096,
        chunk_seconds: float = 1.0,
        chunk_size: int = 4 * 1024 * 1024,
    ):
        if compression not in _COMPRESSION:
            raise D2EError(f"unknown compression {compression!r}", fix=f"use one of {sorted(_COMPRESSION)}")
        self.meta = meta or RecordingMeta()
        if not self.meta.os:
            self.meta.os = f"{platform.system()} {platform.release()}"
        if not self.meta.hostname:
            self.meta.hostname = platform.node()
        if not self.meta.recorder_version:
            self.meta.recorder_version = f"d2e {__version__}"
        if not self.meta.wall_start_ns:
            self.meta.wall_start_ns = time.time_ns()
            self.meta.monotonic_start_ns = time.monotonic_ns()
        self.meta.schema_version = SCHEMA_VERSION

        if isinstance(path, (str, os.PathLike)):
            self.path: Path | None = Path(path)
            if self.path.exists() and not overwrite:
                raise D2EError("output already exists", path=self.path, fix="choose another name or pass --force")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600: a recording holds everything the user typed.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._stream: IO[bytes] = os.fdopen(fd, "wb")
            self._owns_stream = True
        else:
            self.path, self._stream, self._owns_stream = None, path, False

        # CRCs everywhere (chunks, summary, data section): readers refuse bytes that fail them (integrity.py)
        self._mcap = McapWriter(self._stream, chunk_size=chunk_size, compression=_COMPRESSION[compression],
                                enable_crcs=True, enable_data_crcs=True)
        self._mcap.start(profile=PROFILE, library=f"d2e {__version__}")
        self._mcap.add_metadata(META_NAME, metadata_record(json.dumps(self.meta.to_dict()),
                                                           schema_version=SCHEMA_VERSION))
        self._mcap.flush()
        self._stream.flush()

        self._slice_ns = slice_ns
        self._max_batch = max_batch
        self._chunk_ns = int(chunk_seconds * 1e9)
        self._chunk_wall = chunk_seconds
        self._batches: dict[str, _TopicBatch] = {}
        self._chunk_first_t: int | None = None
        self._last_flush_wall = time.monotonic()
        self._end_info: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._first_t: int | None = None
        self._last_t: int | None = None
        self._closed = False
        self._packer = msgpack.Packer(use_bin_type=True)

    # -- writing ---------------------------------------------------------------------------------
    def _batch_for(self, topic: str) -> _TopicBatch:
        cls = TOPIC_TO_TYPE[topic]
        doc = schema_document(cls)
        schema_id = self._mcap.register_schema(
            name=SCHEMA_PREFIX + cls.__name__, encoding="jsonschema", data=json.dumps(doc).encode()
        )
        channel_id = self._mcap.register_channel(
            topic=topic, message_encoding="msgpack", schema_id=schema_id,
            metadata={"fields": ",".join(field_names(cls)), "layout": "batch", "slice_ns": str(self._slice_ns)},
        )
        batch = self._batches[topic] = _TopicBatch(channel_id, field_names(cls))
        return batch

    def write(self, msg: Any) -> None:
        """Add one message. Cheap: it is appended to its topic's open slice."""
        self.write_all((msg,))

    def write_all(self, messages: Iterable[Any]) -> None:
        """Add many messages; the same as ``write`` for each, with the per-call overhead taken out."""
        if self._closed:
            raise D2EError("write after close()", path=self.path)
        batches, slice_ns, max_batch = self._batches, self._slice_ns, self._max_batch
        for msg in messages:
            batch = batches.get(msg.TOPIC) or self._batch_for(msg.TOPIC)
            t = msg.t_ns
            rows = batch.rows
            if not rows:
                batch.first_t = t
            elif t - batch.first_t >= slice_ns or t < batch.last_t or len(rows) >= max_batch:
                self._emit(batch)
                self._maybe_close_chunk(t)
                rows = batch.rows
                batch.first_t = t
            rows.append(batch.row_of(msg))
            batch.last_t = t

    def _maybe_close_chunk(self, t: int) -> None:
        """Close the chunk after ``chunk_seconds`` of recording time or of wall time, whichever is first."""
        if self._chunk_first_t is None:
            self._chunk_first_t = t
        elif t - self._chunk_first_t >= self._chunk_ns or time.monotonic() - self._last_flush_wall >= self._chunk_wall:
            self.flush()

    def _emit(self, batch: _TopicBatch) -> None:
        rows = batch.rows
        first = batch.first_t  # rows are in time order: write() starts a new slice on any step back
        batch.count += len(rows)
        self._mcap.add_message(
            channel_id=batch.channel_id, log_time=first, publish_time=batch.last_t, sequence=len(rows),
            data=self._packer.pack(rows),
        )
        if self._first_t is None or first < self._first_t:
            self._first_t = first
        if self._last_t is None or batch.last_t > self._last_t:
            self._last_t = batch.last_t
        batch.rows = []

    def flush(self) -> None:
        """Close every open slice and the open chunk, and hand the bytes to the OS (crash point)."""
        for batch in self._batches.values():
            if batch.rows:
                self._emit(batch)
        self._mcap.flush()
        self._stream.flush()
        self._chunk_first_t = None
        self._last_flush_wall = time.monotonic()

    def update_end_info(self, **info: Any) -> None:
        """Facts known only at the end (dropped frames, stop reason); stored when the file is finished."""
        self._end_info.update(info)

    @property
    def counts(self) -> dict[str, int]:
        return {topic: b.count + len(b.rows) for topic, b in self._batches.items()}

    # -- finishing -------------------------------------------------------------------------------
    def close(self) -> None:
        """Write the remaining events, the end metadata and MCAP's summary. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for batch in self._batches.values():
                if batch.rows:
                    self._emit(batch)
            self._fingerprint_video()
            end = {
                "counts": self.counts,
                "first_t_ns": self._first_t,
                "last_t_ns": self._last_t,
                "closed_wall_ns": time.time_ns(),
                **self._end_info,
            }
            self._mcap.add_metadata(META_END_NAME, metadata_record(json.dumps(end)))
            self._mcap.finish()
            self._stream.flush()
        finally:
            if self._owns_stream:
                self._stream.close()

    def _fingerprint_video(self) -> None:
        """Store the fingerprint of the recording's video (``NAME.mkv``, else the file the metadata names), so
        readers can tell it from another recording's. Close the video before the recording to include it."""
        if self.path is None or "video_fingerprint" in self._end_info:
            return
        from ..video import video_fingerprint

        own, name = self.path.with_suffix(".mkv"), self.meta.video.get("file")
        video = own if own.exists() or not isinstance(name, str) or "://" in name else self.path.parent / name
        if video.exists():
            fingerprint = video_fingerprint(video)
            if fingerprint is not None:
                self._end_info["video_fingerprint"] = fingerprint

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._end_info.setdefault("stopped_by", repr(exc))
        self.close()
