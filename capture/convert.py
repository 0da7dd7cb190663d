"""Conversions: native d2e <-> OWAMcap (the VPT export, which needs per-tick labels, is ``core.vpt``).

Videos are referenced, not copied, when converting between MCAP flavours: the output's media
reference is the source video's path relative to the output's folder. Every output is written to a
temp file and renamed, so an interrupted conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import D2EError
from .format import RecordingReader, RecordingWriter
from .format.owamcap import write_owamcap
from .progress import progress
from .schema import ScreenFrame
from .storage import atomic_output, local_path


def _relative_video(video: str, out_dir: Path) -> str:
    if "://" in video:
        return video
    return os.path.relpath(os.path.abspath(video), os.path.abspath(out_dir))


def to_owamcap(src: str, dst: str, *, overwrite: bool = False) -> dict[str, int]:
    """Write ``src`` as OWAMcap (one JSON message per event) that OWA's own reader decodes."""
    with RecordingReader(src) as reader:
        if reader.is_owamcap:
            raise D2EError("already an OWAMcap file", path=src, fix="use --to d2e to convert it to the native format")
        uri = _relative_video(reader.video_path, local_path(dst).parent)
        meta = reader.meta
        meta.video = {**meta.video, "file": uri}
        if reader.video_fingerprint:  # OWAMcap has no end record: the fingerprint travels in the metadata
            meta.video["fingerprint"] = reader.video_fingerprint
        with atomic_output(dst, overwrite=overwrite) as tmp:
            total = sum(reader.counts().values())
            return write_owamcap(progress(reader.iter(), total=total, desc="to OWAMcap"), meta, tmp, uri)


def to_native(src: str, dst: str, *, overwrite: bool = False) -> dict[str, int]:
    """Write any readable recording (OWAMcap included) in the native format."""
    out_dir = local_path(dst).parent
    with RecordingReader(src) as reader:
        meta = reader.meta
        src_dir = os.path.dirname(os.path.abspath(src)) if "://" not in src else None
        uris: set[str | None] = set()

        def rebased(messages: Iterator[Any]) -> Iterator[Any]:
            for msg in messages:
                if isinstance(msg, ScreenFrame) and msg.uri is not None and src_dir is not None \
                        and "://" not in msg.uri and not os.path.isabs(msg.uri):
                    msg.uri = _relative_video(os.path.join(src_dir, msg.uri), out_dir)
                if isinstance(msg, ScreenFrame):
                    uris.add(msg.uri)
                yield msg

        total = sum(reader.counts().values())
        messages = list(rebased(progress(reader.iter(), total=total, desc="reading")))
        if len(uris) == 1 and None not in uris:
            (single,) = uris
            meta.video = {**meta.video, "file": single}
            for msg in messages:
                if isinstance(msg, ScreenFrame):
                    msg.uri = None
        elif None in uris:  # frames in the recording's own video: keep pointing at it from the new folder
            meta.video = {**meta.video, "file": _relative_video(reader.video_path, out_dir)}
        with atomic_output(dst, overwrite=overwrite) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
            writer.write_all(messages)
            return writer.counts


def shift_events(src: str | Path, dst: str | Path, offset_ns: int, *, overwrite: bool = False,
                 video_file: str | None = None) -> dict[str, int]:
    """Copy the input events of ``src`` (not its frame records) with every time moved by ``offset_ns``."""
    import dataclasses

    with RecordingReader(src) as reader:
        meta = reader.meta
        meta.monotonic_start_ns += offset_ns
        meta.video = {"file": video_file} if video_file else {}
        meta.extra = {**meta.extra, "shifted_from": str(src), "shift_ns": offset_ns}
        with atomic_output(dst, overwrite=overwrite) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
            writer.write_all(dataclasses.replace(m, t_ns=m.t_ns + offset_ns) for m in reader.iter()
                             if not isinstance(m, ScreenFrame))
            return writer.counts
