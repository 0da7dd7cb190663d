"""OWAMcap interop: read Open World Agents recordings and write files OWA's own reader accepts.

OWAMcap is MCAP with profile ``owa``, one JSON message per event, JSON Schema schemas named
``desktop/KeyboardEvent`` etc. (older files use ``owa_env_desktop.msg.KeyboardEvent``; both are read),
message log times in wall-clock ns, and screen messages that point into a video by ``media_ref``.

A d2e -> OWAMcap -> d2e round trip is lossless: times are mapped to wall clock and back through the
recording metadata we add as an MCAP metadata record (OWA's tools ignore it), and the few fields OWA's
messages cannot carry (key names without a VK code, scan codes, auto-repeat flags, window app/pid, frame
index and drop counts) go into a sparse ``d2e.extras`` metadata record keyed by topic and the message's sequence number.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from typing import IO, Any

from mcap.records import Channel, Message, Schema
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter

from .. import __version__
from ..keys import name_for
from ..schema import (
    KeyboardEvent,
    MouseEvent,
    RawMouseEvent,
    RecordingMeta,
    ScreenFrame,
    WindowEvent,
)
from .layout import META_CRC_KEY, META_NAME, checked_metadata, metadata_record

PROFILE = "owa"
EXTRAS_NAME = "d2e.extras"

TOPIC_SCHEMA = {
    "keyboard": "desktop/KeyboardEvent",
    "mouse": "desktop/MouseEvent",
    "mouse/raw": "desktop/RawMouseEvent",
    "window": "desktop/WindowInfo",
    "screen": "desktop/ScreenCaptured",
}

_INT, _STR = {"type": "integer"}, {"type": "string"}
_NULLABLE_INT = {"anyOf": [_INT, {"type": "null"}]}
_PAIR = {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}
_JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "desktop/KeyboardEvent": {"event_type": {"enum": ["press", "release"]}, "vk": _INT, "timestamp": _NULLABLE_INT},
    "desktop/MouseEvent": {
        "event_type": {"enum": ["move", "click", "scroll"]}, "x": _INT, "y": _INT,
        "button": {"anyOf": [_STR, {"type": "null"}]}, "pressed": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
        "dx": _NULLABLE_INT, "dy": _NULLABLE_INT, "timestamp": _NULLABLE_INT,
    },
    "desktop/RawMouseEvent": {
        "us_flags": _INT, "last_x": _INT, "last_y": _INT, "button_flags": _INT, "button_data": _INT,
        "device_handle": _NULLABLE_INT, "timestamp": _NULLABLE_INT,
    },
    "desktop/WindowInfo": {"title": _STR, "rect": {"type": "array", "items": _INT}, "hWnd": _INT},
    "desktop/ScreenCaptured": {
        "utc_ns": _NULLABLE_INT, "source_shape": _PAIR, "shape": _PAIR,
        "media_ref": {"type": "object", "properties": {"uri": _STR, "pts_ns": _NULLABLE_INT}},
    },
}


def _json_schema(name: str) -> bytes:
    return json.dumps({"title": name, "type": "object", "properties": _JSON_SCHEMAS[name]}).encode()


def _short_type(schema_name: str) -> str:
    """'desktop/KeyboardEvent' and 'owa_env_desktop.msg.KeyboardEvent' -> 'KeyboardEvent'."""
    return schema_name.replace(".", "/").rsplit("/", 1)[-1]


def meta_from_metadata(metadata: dict[str, dict[str, str]]) -> RecordingMeta:
    """Metadata of an OWAMcap file written by OWA's tools (no d2e record): wall clock is the clock."""
    meta = RecordingMeta(source="owamcap")
    meta.extra["owa_metadata"] = {k: v for k, v in metadata.items() if k != EXTRAS_NAME}
    return meta


class OwaDecoding:
    """Turns OWAMcap JSON messages into d2e messages; knows the time mapping and the extras."""

    def __init__(self, meta: RecordingMeta, metadata: dict[str, dict[str, str]], has_d2e_meta: bool):
        # d2e-written OWAMcap: log time = wall_start + (t - monotonic_start); undo it exactly.
        self.offset = (meta.monotonic_start_ns - meta.wall_start_ns) if has_d2e_meta else 0
        self.ours = has_d2e_meta
        raw = metadata.get(EXTRAS_NAME, {})
        self.extras: dict[str, dict[int, list[Any]]] = {
            topic: {int(k): v for k, v in json.loads(text).items()} for topic, text in raw.items()
            if topic != META_CRC_KEY
        }

    def decoder_for(self, schema: Schema | None, channel: Channel) -> Callable[[Message], list[Any]] | None:
        if schema is None or channel.message_encoding != "json":
            return None
        build = _BUILDERS.get(_short_type(schema.name))
        if build is None:
            return None  # keyboard/state, mouse/state and other topics are not events we model
        extras = self.extras.get(channel.topic, {})
        offset = self.offset
        ours = self.ours

        def decode(message: Message) -> list[Any]:
            data = json.loads(message.data)
            msg = build(message.log_time + offset, data)
            extra = extras.get(message.sequence)
            if isinstance(msg, ScreenFrame):
                msg.index = message.sequence
                if ours:
                    msg.uri = None  # our own video; a different one would be in the extras
            if extra is not None:
                _apply_extra(msg, extra)
            return [msg]

        return decode


def _keyboard(t: int, d: dict[str, Any]) -> KeyboardEvent:
    vk = int(d["vk"])
    return KeyboardEvent(t, d["event_type"], name_for(vk), vk)


def _mouse(t: int, d: dict[str, Any]) -> MouseEvent:
    kind = d["event_type"]
    if kind == "click":
        return MouseEvent(t, "press" if d.get("pressed") else "release", d["x"], d["y"], d.get("button"))
    if kind == "scroll":
        return MouseEvent(t, "scroll", d["x"], d["y"], None, d.get("dx") or 0, d.get("dy") or 0)
    return MouseEvent(t, "move", d["x"], d["y"])


def _raw(t: int, d: dict[str, Any]) -> RawMouseEvent:
    return RawMouseEvent(t, d["last_x"], d["last_y"], int(d.get("button_flags") or 0), int(d.get("button_data") or 0))


def _window(t: int, d: dict[str, Any]) -> WindowEvent:
    left, top, right, bottom = d["rect"]
    return WindowEvent(t, d["title"], rect=(left, top, right - left, bottom - top), window_id=int(d.get("hWnd") or 0))


def _screen(t: int, d: dict[str, Any]) -> ScreenFrame:
    ref = d.get("media_ref") or {}
    width, height = d.get("shape") or d.get("source_shape") or (0, 0)
    return ScreenFrame(t, int(ref.get("pts_ns") or 0), width, height, uri=ref.get("uri"))


_BUILDERS: dict[str, Callable[[int, dict[str, Any]], Any]] = {
    "KeyboardEvent": _keyboard, "MouseEvent": _mouse, "RawMouseEvent": _raw,
    "WindowInfo": _window, "ScreenCaptured": _screen,
}

# Fields that OWA messages cannot carry, per topic; stored in d2e.extras when not at their default.
_EXTRA_FIELDS = {"keyboard": ("key", "scan", "repeat"), "window": ("app", "pid"),
                 "screen": ("index", "dropped_before", "uri")}


def _apply_extra(msg: Any, extra: list[Any]) -> None:
    for name, value in zip(_EXTRA_FIELDS[msg.TOPIC], extra, strict=False):
        setattr(msg, name, value)


def _extra_of(msg: Any, ordinal: int, video_uri: str) -> list[Any] | None:
    if isinstance(msg, KeyboardEvent):
        if msg.key == name_for(msg.vk) and msg.scan is None and not msg.repeat:
            return None
        return [msg.key, msg.scan, msg.repeat] if msg.repeat else [msg.key, msg.scan]
    if isinstance(msg, WindowEvent):
        return None if not msg.app and msg.pid is None else [msg.app, msg.pid]
    if isinstance(msg, ScreenFrame):
        default = msg.index == ordinal and msg.dropped_before == 0 and msg.uri is None
        return None if default else [msg.index, msg.dropped_before, msg.uri]
    return None


def owa_payload(msg: Any, wall_ns: int, video_uri: str) -> dict[str, Any]:
    """The OWA JSON object for one d2e message."""
    if isinstance(msg, KeyboardEvent):
        return {"event_type": msg.action, "vk": msg.vk, "timestamp": wall_ns}
    if isinstance(msg, MouseEvent):
        if msg.action in ("press", "release"):
            return {"event_type": "click", "x": msg.x, "y": msg.y, "button": msg.button,
                    "pressed": msg.action == "press", "timestamp": wall_ns}
        if msg.action == "scroll":
            return {"event_type": "scroll", "x": msg.x, "y": msg.y, "dx": msg.dx, "dy": msg.dy, "timestamp": wall_ns}
        return {"event_type": "move", "x": msg.x, "y": msg.y, "timestamp": wall_ns}
    if isinstance(msg, RawMouseEvent):
        return {"us_flags": 0, "last_x": msg.dx, "last_y": msg.dy, "button_flags": msg.button_flags,
                "button_data": msg.button_data, "device_handle": None, "timestamp": wall_ns}
    if isinstance(msg, WindowEvent):
        x, y, w, h = msg.rect
        return {"title": msg.title, "rect": [x, y, x + w, y + h], "hWnd": msg.window_id}
    if isinstance(msg, ScreenFrame):
        return {"utc_ns": wall_ns, "source_shape": [msg.width, msg.height], "shape": [msg.width, msg.height],
                "media_ref": {"uri": msg.uri or video_uri, "pts_ns": msg.pts_ns}}
    raise TypeError(f"no OWAMcap form for {type(msg).__name__}")


def write_owamcap(messages: Iterable[Any], meta: RecordingMeta, output: str | os.PathLike | IO[bytes],
                  video_uri: str) -> dict[str, int]:
    """Write ``messages`` (time-ordered d2e messages) as an OWAMcap file; returns counts per topic.

    ``video_uri`` is the media reference of screen frames, relative to the output's folder as OWA
    resolves it (normally the ``.mkv`` file name).
    """
    with contextlib.ExitStack() as stack:
        if isinstance(output, (str, os.PathLike)):
            stream: IO[bytes] = stack.enter_context(open(output, "wb"))
        else:
            stream = output
        writer = McapWriter(stream, chunk_size=1024 * 1024, compression=CompressionType.ZSTD, enable_data_crcs=True)
        writer.start(profile=PROFILE, library=f"d2e {__version__}")
        writer.add_metadata(META_NAME, metadata_record(json.dumps(meta.to_dict()), schema_version=meta.schema_version))
        channels: dict[str, int] = {}
        counts: dict[str, int] = {}
        extras: dict[str, dict[str, list[Any]]] = {}
        shift = meta.wall_start_ns - meta.monotonic_start_ns
        dumps = json.dumps
        for msg in messages:
            topic = msg.TOPIC
            if topic not in TOPIC_SCHEMA:  # d2e-only topics (label confidences) have no OWA message
                continue
            if topic not in channels:
                name = TOPIC_SCHEMA[topic]
                schema_id = writer.register_schema(name=name, encoding="jsonschema", data=_json_schema(name))
                channels[topic] = writer.register_channel(topic=topic, message_encoding="json", schema_id=schema_id)
            ordinal = counts.get(topic, 0)
            counts[topic] = ordinal + 1
            wall = msg.t_ns + shift
            extra = _extra_of(msg, ordinal, video_uri)
            if extra is not None:
                extras.setdefault(topic, {})[str(ordinal)] = extra
            payload = dumps(owa_payload(msg, wall, video_uri), separators=(",", ":")).encode()
            writer.add_message(channel_id=channels[topic], log_time=wall, publish_time=wall,
                               sequence=ordinal, data=payload)
        if extras:
            writer.add_metadata(EXTRAS_NAME, checked_metadata({topic: json.dumps(v) for topic, v in extras.items()}))
        writer.finish()
        return counts
