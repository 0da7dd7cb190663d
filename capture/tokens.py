"""D2E's event tokens: the one codec shared by the IDM, pseudo-labeling and pretraining.

Layout (DESIGN section 1, so a D2E model's output can be scored by our tools):

    <EVENT_START> <KEYBOARD> <t> <t> <t> <VK_n> <press|release> <EVENT_END>
    <EVENT_START> <MOUSE> <t> <t> <t> <+|-> <d>x4 <+|-> <d>x4 <h><h><h> [<SCROLL> <+|-> <d>x4] <EVENT_END>
    <EVENT_START> <SCREEN> <t> <t> <t> <img> ...image tokens... </img> <EVENT_END>

Timestamps are three decimal digits at 10 ms resolution, cyclic modulo 10 s; the decoder unwraps them
against a reference time (the window start). Mouse dx/dy are clamped to +-1999 and written as sign + 4
digits; button flags are RAWMOUSE ``usButtonFlags`` as 3 hex digits; the optional scroll carries the wheel
delta in notches. Image tokens are placeholders the model fills with its own frame embeddings; the IDM
in this toolkit cross-attends to frames instead, so its screen events carry no image tokens.

NEP-tau: action timestamps are shifted ``+tau`` before they are interleaved with the frames, so each
action is predicted after the frames that follow it; the decoder subtracts ``tau`` again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .keys import name_for
from .schema import BUTTON_FLAGS, RI_WHEEL, WHEEL_DELTA, KeyboardEvent, MouseEvent, RawMouseEvent

TIME_RES_NS = 10_000_000  # 10 ms per timestamp unit
TIME_CYCLE = 1000  # three digits: 10 s
CYCLE_NS = TIME_RES_NS * TIME_CYCLE
MAX_DELTA = 1999

PAD, BOS, EOS = "<PAD>", "<BOS>", "<EOS>"
START, END = "<EVENT_START>", "<EVENT_END>"
KEYBOARD, MOUSE, SCREEN = "<KEYBOARD>", "<MOUSE>", "<SCREEN>"
IMG, IMG_END, IMG_TOKEN = "<img>", "</img>", "<IMG_CONTEXT>"
PRESS, RELEASE = "<press>", "<release>"
PLUS, MINUS, SCROLL = "<+>", "<->", "<SCROLL>"
DIGITS = [f"<{d}>" for d in range(10)]
HEX = [f"<0x{d:X}>" for d in range(16)]
VKS = [f"<VK_{i}>" for i in range(256)]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings <-> ids, in a fixed order; saved beside every model that uses it."""

    tokens: tuple[str, ...]

    @classmethod
    def default(cls) -> Vocabulary:
        fixed = [PAD, BOS, EOS, START, END, KEYBOARD, MOUSE, SCREEN, IMG, IMG_END, IMG_TOKEN, PRESS, RELEASE,
                 PLUS, MINUS, SCROLL]
        return cls(tuple(fixed + DIGITS + HEX + VKS))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._ids[token]  # type: ignore[attr-defined]

    def ids(self, tokens: Iterable[str]) -> list[int]:
        ids = self._ids  # type: ignore[attr-defined]
        return [ids[t] for t in tokens]

    def token(self, i: int) -> str:
        return self.tokens[i]

    @property
    def pad_id(self) -> int:
        return self.id(PAD)

    def to_json(self) -> dict[str, Any]:
        return {"format": "d2e-event-tokens", "version": 1, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(tuple(data["tokens"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_json(json.loads(Path(path).read_text()))

    @property
    def tables(self) -> _IdTables:
        """Precomputed id sequences for times, signed values and flags: encoding a window of 1 kHz mouse
        motion from these is several times faster than through token strings."""
        tables = self.__dict__.get("_tables")
        if tables is None:
            tables = _IdTables(self)
            object.__setattr__(self, "_tables", tables)
        return tables


class _IdTables:
    def __init__(self, v: Vocabulary):
        d = [v.id(t) for t in DIGITS]
        h = [v.id(t) for t in HEX]
        self.time = [[d[u // 100], d[u // 10 % 10], d[u % 10]] for u in range(TIME_CYCLE)]
        self.mag = [[d[a // 1000], d[a // 100 % 10], d[a // 10 % 10], d[a % 10]] for a in range(MAX_DELTA + 1)]
        self.hex3 = [[h[f >> 8], h[(f >> 4) & 0xF], h[f & 0xF]] for f in range(0x1000)]
        self.vk = [v.id(t) for t in VKS]
        (self.start, self.end, self.keyboard, self.mouse, self.screen, self.img, self.img_end, self.img_token,
         self.press, self.release, self.plus, self.minus, self.scroll) = (
            v.id(t) for t in (START, END, KEYBOARD, MOUSE, SCREEN, IMG, IMG_END, IMG_TOKEN, PRESS, RELEASE, PLUS,
                              MINUS, SCROLL))

    def signed(self, value: int) -> list[int]:
        v = max(-MAX_DELTA, min(MAX_DELTA, int(value)))
        return [self.minus if v < 0 else self.plus, *self.mag[abs(v)]]

    def event(self, e: Any, t_ns: int) -> list[int]:
        """The ids of ``event_tokens(e, t_ns)``."""
        t = self.time[(t_ns // TIME_RES_NS) % TIME_CYCLE]
        if isinstance(e, KeyboardEvent):
            return [self.start, self.keyboard, *t, self.vk[e.vk & 0xFF],
                    self.press if e.action == "press" else self.release, self.end]
        out = [self.start, self.mouse, *t, *self.signed(e.dx), *self.signed(e.dy),
               *self.hex3[max(0, min(0xFFF, e.button_flags))]]
        if e.button_flags & RI_WHEEL:
            out += [self.scroll, *self.signed(round(_wheel(e.button_data) / WHEEL_DELTA))]
        out.append(self.end)
        return out

    def screen_ids(self, t_ns: int, image_tokens: int) -> list[int]:
        return [self.start, self.screen, *self.time[(t_ns // TIME_RES_NS) % TIME_CYCLE], self.img,
                *([self.img_token] * image_tokens), self.img_end, self.end]


def time_tokens(t_ns: int) -> list[str]:
    """Three digit tokens of ``t_ns`` at 10 ms resolution, cyclic modulo 10 s."""
    units = (t_ns // TIME_RES_NS) % TIME_CYCLE
    return [DIGITS[units // 100], DIGITS[units // 10 % 10], DIGITS[units % 10]]


def unwrap_time(units: int, ref_ns: int, slack_units: int = 100) -> int:
    """The time whose 10 ms units are ``units`` modulo 1000, in ``[ref - 1 s, ref + 9 s)``.

    Windows are shorter than 9 s and their events come after the window start (``ref``), less a
    little slack for rounding, so this picks the right 10 s cycle."""
    ref_units = ref_ns // TIME_RES_NS
    lo = ref_units - slack_units
    u = lo + (units - lo) % TIME_CYCLE
    return u * TIME_RES_NS


def _signed(value: int) -> list[str]:
    v = max(-MAX_DELTA, min(MAX_DELTA, int(value)))
    sign = MINUS if v < 0 else PLUS
    a = abs(v)
    return [sign, DIGITS[a // 1000], DIGITS[a // 100 % 10], DIGITS[a // 10 % 10], DIGITS[a % 10]]


def _hex3(value: int) -> list[str]:
    v = max(0, min(0xFFF, int(value)))
    return [HEX[v >> 8], HEX[(v >> 4) & 0xF], HEX[v & 0xF]]


def event_tokens(event: Any, t_ns: int) -> list[str]:
    """Token strings of one input event stamped at ``t_ns`` (already shifted by tau)."""
    if isinstance(event, KeyboardEvent):
        return [START, KEYBOARD, *time_tokens(t_ns), VKS[event.vk & 0xFF],
                PRESS if event.action == "press" else RELEASE, END]
    if isinstance(event, RawMouseEvent):
        out = [START, MOUSE, *time_tokens(t_ns), *_signed(event.dx), *_signed(event.dy), *_hex3(event.button_flags)]
        if event.button_flags & RI_WHEEL:
            out += [SCROLL, *_signed(round(_wheel(event.button_data) / WHEEL_DELTA))]
        return out + [END]
    raise TypeError(f"no event tokens for {type(event).__name__}")


def _wheel(button_data: int) -> int:
    """RAWMOUSE usButtonData is an unsigned short holding a signed wheel delta."""
    return button_data - 0x10000 if button_data >= 0x8000 else button_data


def screen_tokens(t_ns: int, image_tokens: int = 0) -> list[str]:
    return [START, SCREEN, *time_tokens(t_ns), IMG, *([IMG_TOKEN] * image_tokens), IMG_END, END]


def as_raw_events(events: Iterable[Any]) -> list[Any]:
    """Keyboard and raw-mouse events, with pointer button/scroll events turned into raw flags when the
    recording has no raw button events of its own (e.g. OWAMcap files without ``mouse/raw``)."""
    events = list(events)
    raw_buttons = any(isinstance(e, RawMouseEvent) and e.button_flags for e in events)
    out = []
    for e in events:
        if isinstance(e, (KeyboardEvent, RawMouseEvent)):
            out.append(e)
        elif isinstance(e, MouseEvent) and not raw_buttons:
            if e.action in ("press", "release") and e.button in BUTTON_FLAGS:
                flag = BUTTON_FLAGS[e.button][0 if e.action == "press" else 1]
                out.append(RawMouseEvent(e.t_ns, 0, 0, flag))
            elif e.action == "scroll" and e.dy:
                out.append(RawMouseEvent(e.t_ns, 0, 0, RI_WHEEL, (e.dy * WHEEL_DELTA) & 0xFFFF))
    return out


def encode_window(events: Sequence[Any], frame_times: Sequence[int], tau_ns: int, vocab: Vocabulary, *,
                  image_tokens: int = 0, bos_eos: bool = True, merge_motion_ns: int = 0) -> list[int]:
    """The token ids of one window: screen events at ``frame_times`` interleaved with input events
    shifted by ``tau_ns``; events are kept when their shifted time falls in the window
    ``[frame_times[0], frame_times[-1] + frame period)``.

    ``merge_motion_ns > 0`` sums raw mouse motion without buttons over slots of that length (from the
    window start) into one event at the slot's first motion time: 1 kHz raw input would otherwise need
    16 tokens per millisecond, far more than a window's token budget. Clicks and scrolls stay separate.
    """
    period = frame_times[1] - frame_times[0] if len(frame_times) > 1 else 50_000_000
    lo, hi = frame_times[0], frame_times[-1] + period
    tab = vocab.tables
    items: list[tuple[int, int, list[int]]] = [(t, 0, tab.screen_ids(t, image_tokens)) for t in frame_times]
    slots: dict[int, list[int]] = {}  # slot -> [time, dx, dy] of merged motion
    for e in as_raw_events(events):
        shifted = e.t_ns + tau_ns
        if not lo <= shifted < hi:
            continue
        if merge_motion_ns > 0 and isinstance(e, RawMouseEvent) and not e.button_flags:
            merged = slots.setdefault((shifted - lo) // merge_motion_ns, [shifted, 0, 0])
            merged[1] += e.dx
            merged[2] += e.dy
            continue
        items.append((shifted, 1, tab.event(e, shifted)))
    for t, dx, dy in slots.values():
        if dx or dy:
            items.append((t, 1, tab.event(RawMouseEvent(t - tau_ns, dx, dy), t)))
    items.sort(key=lambda x: (x[0], x[1]))  # a frame before events stamped at the same time
    out = [vocab.id(BOS)] if bos_eos else []
    for _t, _k, ids in items:
        out += ids
    if bos_eos:
        out.append(vocab.id(EOS))
    return out


def encode_events(events: Sequence[Any], frame_times: Sequence[int], tau_ns: int, vocab: Vocabulary | None = None,
                  **kwargs: Any) -> list[int]:
    """``encode_window`` with the default vocabulary unless one is given (the name the issue uses)."""
    return encode_window(events, frame_times, tau_ns, vocab or Vocabulary.default(), **kwargs)


def decode_tokens(ids: Sequence[int], ref_ns: int, tau_ns: int, vocab: Vocabulary | None = None) -> list[Any]:
    """Events from token ids; malformed events are skipped (decoding resumes at the next <EVENT_START>).

    ``ref_ns`` anchors the cyclic timestamps (use the window's first frame time); ``tau_ns`` is
    subtracted so events come back at their real time. Screen events are consumed, not returned.
    """
    vocab = vocab or Vocabulary.default()
    toks = [vocab.token(i) for i in ids]
    out: list[Any] = []
    i = 0
    while i < len(toks):
        if toks[i] != START:
            i += 1
            continue
        j = toks.index(END, i + 1) if END in toks[i + 1:] else len(toks)
        event = _parse(toks[i + 1:j], ref_ns, tau_ns)
        if event is not None:
            out.append(event)
        i = j + 1
    return out


def _digits(toks: Sequence[str]) -> int | None:
    if any(t not in DIGITS for t in toks):
        return None
    value = 0
    for t in toks:
        value = value * 10 + DIGITS.index(t)
    return value


def _signed_value(toks: Sequence[str]) -> int | None:
    if len(toks) != 5 or toks[0] not in (PLUS, MINUS):
        return None
    mag = _digits(toks[1:])
    return None if mag is None else (-mag if toks[0] == MINUS else mag)


def parse_time(toks: Sequence[str], ref_ns: int) -> int | None:
    units = _digits(toks)
    return None if units is None else unwrap_time(units, ref_ns)


def _parse(body: list[str], ref_ns: int, tau_ns: int) -> Any | None:
    if len(body) < 4 or body[0] not in (KEYBOARD, MOUSE, SCREEN):
        return None
    t = parse_time(body[1:4], ref_ns + tau_ns)
    if t is None:
        return None
    t -= tau_ns
    rest = body[4:]
    if body[0] == KEYBOARD:
        if len(rest) != 2 or rest[0] not in VKS or rest[1] not in (PRESS, RELEASE):
            return None
        vk = VKS.index(rest[0])
        return KeyboardEvent(t, "press" if rest[1] == PRESS else "release", name_for(vk), vk)
    if body[0] == MOUSE:
        if len(rest) not in (13, 19):
            return None
        dx, dy = _signed_value(rest[0:5]), _signed_value(rest[5:10])
        if dx is None or dy is None or any(h not in HEX for h in rest[10:13]):
            return None
        flags = (HEX.index(rest[10]) << 8) | (HEX.index(rest[11]) << 4) | HEX.index(rest[12])
        data = 0
        if len(rest) == 19:
            notches = _signed_value(rest[14:19])
            if rest[13] != SCROLL or notches is None:
                return None
            data = (notches * WHEEL_DELTA) & 0xFFFF
        return RawMouseEvent(t, dx, dy, flags, data)
    return None  # screen events carry no input
