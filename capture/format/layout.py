"""Names and schema documents that define the on-disk layout of a native recording.

A native file is MCAP with profile ``d2e``. Each topic has one channel whose messages are msgpack
arrays of rows (one row per event, fields in the order stored in the channel's ``fields`` metadata), and
each channel's schema is a JSON Schema document, so generic MCAP tools can still show what is inside.
Recording metadata sits in MCAP metadata records: ``d2e.recording`` at the start (so a crashed file keeps
it) and ``d2e.recording.end`` at a clean finish.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import zlib
from typing import Any

from ..schema import SCHEMA_VERSION

META_NAME = "d2e.recording"
META_END_NAME = "d2e.recording.end"
SCHEMA_PREFIX = "d2e/"
MCAP_MAGIC = b"\x89MCAP0\r\n"

META_CRC_KEY = "crc32"  # beside "json" in d2e metadata records: MCAP gives metadata no checksum of its own

_JSON_TYPES = {int: "integer", str: "string", float: "number", bool: "boolean", tuple: "array", list: "array"}


def _json_type(annotation: Any) -> Any:
    hint = annotation
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [_json_type(a) for a in args if a is not type(None)][0] if len(args) == 2 else "string"
    origin = typing.get_origin(hint) or hint
    return _JSON_TYPES.get(origin, "string")


def schema_document(cls: type) -> dict[str, Any]:
    """A JSON Schema for one batch message of ``cls``: an array of rows, each an array of fields."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    return {
        "title": f"{SCHEMA_PREFIX}{cls.__name__}",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "x-d2e-schema-version": SCHEMA_VERSION,
        "x-d2e-fields": fields,
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [{"title": name, "type": _json_type(hints[name])} for name in fields],
        },
    }


def metadata_record(text: str, **more: str) -> dict[str, str]:
    """The string map of a d2e metadata record: the JSON text, any further keys, and their CRC-32."""
    return checked_metadata({"json": text, **more})


def checked_metadata(entries: dict[str, str]) -> dict[str, str]:
    """``entries`` plus a CRC-32 over all of them, which ``metadata_damage`` checks."""
    return {**entries, META_CRC_KEY: str(_entries_crc(entries))}


def _entries_crc(entries: dict[str, str]) -> int:
    return zlib.crc32(json.dumps(sorted((k, v) for k, v in entries.items() if k != META_CRC_KEY)).encode())


def metadata_damage(record: dict[str, str], *, needs_json: bool = True) -> str | None:
    """Why a d2e metadata record cannot be trusted, or None. Records from before the CRC was stored pass."""
    if needs_json and "json" not in record:
        return "it has no 'json' entry"
    stored = record.get(META_CRC_KEY)
    if stored is not None and stored != str(_entries_crc(record)):
        return f"its CRC does not match (stored {stored}, computed {_entries_crc(record)})"
    return None
