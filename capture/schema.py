"""The typed messages of a recording and the schema version that guards them.

Every stage (recorder, game sources, IDM, pretraining) speaks these classes, so they live in one module.
Each message class has a topic and an ordered field list; on disk a message is a msgpack array in that
order, and the field names are stored in the file, so a reader of an older or newer *minor* version maps
fields by name (extra fields are ignored, missing ones take defaults). A different *major* version means
the meaning of a field changed, and the reader refuses it with an explanation.

All ``t_ns`` are CLOCK_MONOTONIC nanoseconds in one clock per recording (DESIGN 3.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = "1.2"  # 1.1: KeyboardEvent.repeat; 1.2: the ``state`` topic (GameState)
SCHEMA_MAJOR = 1
PROFILE = "d2e"

KEY_PRESS, KEY_RELEASE = "press", "release"
MOUSE_MOVE, MOUSE_PRESS, MOUSE_RELEASE, MOUSE_SCROLL = "move", "press", "release", "scroll"
MOUSE_BUTTONS = ("left", "right", "middle", "x1", "x2")

# RAWMOUSE usButtonFlags, as D2E's tokenizer and OWA's RawMouseEvent use them.
RI_LEFT_DOWN, RI_LEFT_UP = 0x0001, 0x0002
RI_RIGHT_DOWN, RI_RIGHT_UP = 0x0004, 0x0008
RI_MIDDLE_DOWN, RI_MIDDLE_UP = 0x0010, 0x0020
RI_X1_DOWN, RI_X1_UP = 0x0040, 0x0080
RI_X2_DOWN, RI_X2_UP = 0x0100, 0x0200
RI_WHEEL, RI_HWHEEL = 0x0400, 0x0800
WHEEL_DELTA = 120
BUTTON_FLAGS = {
    "left": (RI_LEFT_DOWN, RI_LEFT_UP), "right": (RI_RIGHT_DOWN, RI_RIGHT_UP),
    "middle": (RI_MIDDLE_DOWN, RI_MIDDLE_UP), "x1": (RI_X1_DOWN, RI_X1_UP), "x2": (RI_X2_DOWN, RI_X2_UP),
}


@dataclass(slots=True)
class KeyboardEvent:
    """A key press or release. ``key`` is the platform-neutral name, ``vk`` the Windows VK code.

    ``repeat`` marks a press that the OS's key auto-repeat generated while the key was held (the X
    server reports it as a second press without a release): the player pressed once. Files older than
    schema 1.1 read as ``repeat=False``. Consumers that count presses (token codec, tick labels,
    metrics) should skip repeats; a repeat is only ever stored between its key's press and release.
    """

    TOPIC: ClassVar[str] = "keyboard"
    t_ns: int
    action: str
    key: str
    vk: int
    scan: int | None = None
    repeat: bool = False


@dataclass(slots=True)
class MouseEvent:
    """Pointer event in absolute screen pixels: move, button press/release, or scroll (dx, dy clicks)."""

    TOPIC: ClassVar[str] = "mouse"
    t_ns: int
    action: str
    x: int
    y: int
    button: str | None = None
    dx: int = 0
    dy: int = 0


@dataclass(slots=True)
class RawMouseEvent:
    """Relative device motion (dx, dy counts) and RAWMOUSE button flags; what games that grab the pointer
    actually consume. ``button_data`` carries the wheel delta (multiples of 120) as on Windows."""

    TOPIC: ClassVar[str] = "mouse/raw"
    t_ns: int
    dx: int
    dy: int
    button_flags: int = 0
    button_data: int = 0


@dataclass(slots=True)
class WindowEvent:
    """The focused window changed (or its title/geometry did). ``rect`` is (x, y, width, height)."""

    TOPIC: ClassVar[str] = "window"
    t_ns: int
    title: str
    app: str = ""
    pid: int | None = None
    rect: tuple[int, int, int, int] = (0, 0, 0, 0)
    window_id: int = 0


@dataclass(slots=True)
class ScreenFrame:
    """One video frame: when it was captured and where it sits in the video.

    ``pts_ns`` is the frame's presentation time in the video stream (ns from the stream's start);
    ``uri`` names the video when it is not the recording's own ``NAME.mkv``; ``dropped_before`` counts
    frames the recorder had to skip just before this one, so gaps are never silent.
    """

    TOPIC: ClassVar[str] = "screen"
    t_ns: int
    pts_ns: int
    width: int
    height: int
    index: int = 0
    dropped_before: int = 0
    uri: str | None = None


@dataclass(slots=True)
class LabelConfidence:
    """How sure a pseudo-labeler was of the event of ``topic`` at ``t_ns`` (one per predicted event)."""

    TOPIC: ClassVar[str] = "label/confidence"
    t_ns: int
    topic: str
    confidence: float


@dataclass(slots=True)
class GameState:
    """A game's privileged state at ``t_ns`` (before that instant's input is applied), for ceilings, not training.

    Generated recordings store it at every native step (ALE: the 128 RAM bytes; ViZDoom: game variables);
    the names of ``values`` are in the recording metadata, ``meta.extra["state_names"]``. Models never read
    this topic: an IDM sees pixels only; the state lets ``idm.oracle`` say what a perfect IDM could know.
    """

    TOPIC: ClassVar[str] = "state"
    t_ns: int
    values: list[float]


MESSAGE_TYPES: tuple[type, ...] = (KeyboardEvent, MouseEvent, RawMouseEvent, WindowEvent, ScreenFrame,
                                   LabelConfidence, GameState)
TOPIC_TO_TYPE: dict[str, type] = {cls.TOPIC: cls for cls in MESSAGE_TYPES}
EVENT_TOPICS = ("keyboard", "mouse", "mouse/raw", "window")
Message = KeyboardEvent | MouseEvent | RawMouseEvent | WindowEvent | ScreenFrame | LabelConfidence | GameState


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def to_row(msg: Any) -> list[Any]:
    """The msgpack array form of a message (field order of its class)."""
    return [getattr(msg, name) for name in msg.__slots__]


def to_dict(msg: Any) -> dict[str, Any]:
    out = {"topic": msg.TOPIC}
    out.update({name: getattr(msg, name) for name in msg.__slots__})
    if isinstance(msg, WindowEvent):
        out["rect"] = list(msg.rect)
    return out


@dataclass
class RecordingMeta:
    """Facts about how a recording was made, stored in the file so loaders never guess (DESIGN 3.5).

    Geometry is in physical pixels; ``screens`` lists every monitor as ``{x, y, width, height}``;
    ``capture_region`` is what the video shows. ``monotonic_start_ns`` and ``wall_start_ns`` were read
    together at start, so any ``t_ns`` maps to wall-clock time as ``wall_start_ns + t_ns -
    monotonic_start_ns``. ``source`` says who made it (``recorder``, ``ale``, ``vizdoom``, ``pseudo-label``,
    ``owamcap``, ``demo``); ``extra`` holds source-specific facts (game, policy, seed, key map, model id).
    """

    schema_version: str = SCHEMA_VERSION
    source: str = "unknown"
    recorder_version: str = ""
    os: str = ""
    hostname: str = ""
    screens: list[dict[str, int]] = field(default_factory=list)
    capture_region: dict[str, int] = field(default_factory=dict)
    dpi: float | None = None
    key_repeat: dict[str, Any] = field(default_factory=dict)
    pointer: dict[str, Any] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=dict)
    fps: float | None = None
    wall_start_ns: int = 0
    monotonic_start_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordingMeta:
        known = {f.name for f in dataclasses.fields(cls)}
        meta = cls(**{k: v for k, v in data.items() if k in known})
        # Unknown fields from newer minor versions are kept, not dropped, so a rewrite preserves them.
        meta.extra = {**{k: v for k, v in data.items() if k not in known}, **meta.extra}
        return meta


def schema_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return -1
