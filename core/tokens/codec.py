"""Encoding input events into token ids and decoding them back; the event bodies are stated once (``BODY``).

Timestamps are three decimal digits at 10 ms resolution, cyclic modulo 10 s; the decoder unwraps them
against a reference time (the window start). Mouse dx/dy are clamped to +-1999 and written as sign + 4
digits; button flags are RAWMOUSE ``usButtonFlags`` as 3 hex digits; the optional scroll carries the wheel
delta in notches. Image tokens are placeholders a model may fill with its own frame embeddings; the IDM here
cross-attends to frames instead, so its screen events carry none.

NEP-tau: action timestamps are shifted ``+tau`` before they are interleaved with the frames, so each action
is predicted after the frames that follow it; the decoder subtracts ``tau`` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from capture.keys import name_for
from capture.schema import RI_WHEEL, WHEEL_DELTA, KeyboardEvent, RawMouseEvent

from ..grid import TICK_NS
from ..inputs import model_inputs, wheel_delta
from .vocab import (
    BOS,
    DIGITS,
    END,
    EOS,
    HEX,
    IMG,
    IMG_END,
    IMG_TOKEN,
    KEYBOARD,
    MINUS,
    MOUSE,
    PLUS,
    PRESS,
    RELEASE,
    SCREEN,
    SCROLL,
    START,
    VKS,
    Vocabulary,
)

TIME_RES_NS = 10_000_000  # 10 ms per timestamp unit
TIME_CYCLE = 1000  # three digits: 10 s
TIME_DIGITS = 3
MAX_DELTA = 1999

# Each event body after its type and timestamp, one tuple of allowed token strings per slot.
SIGNED = ((PLUS, MINUS), tuple(DIGITS[:2]), tuple(DIGITS), tuple(DIGITS), tuple(DIGITS))  # -1999..+1999
BODY: dict[str, tuple[tuple[str, ...], ...]] = {
    KEYBOARD: (tuple(VKS), (PRESS, RELEASE)),
    MOUSE: (*SIGNED, *SIGNED, tuple(HEX), tuple(HEX), tuple(HEX)),  # dx, dy, button flags
}
SCROLL_BODY = SIGNED  # after the mouse body, optionally: <SCROLL> + wheel notches


class IdTables:
    """Precomputed id sequences for times, signed values and flags: encoding a window of 1 kHz mouse motion
    from these is several times faster than through token strings."""

    def __init__(self, v: Vocabulary):
        d = [v.id(t) for t in DIGITS]
        h = [v.id(t) for t in HEX]
        self.time = [[d[u // 100], d[u // 10 % 10], d[u % 10]] for u in range(TIME_CYCLE)]
        self.mag = [[d[a // 1000], d[a // 100 % 10], d[a // 10 % 10], d[a % 10]] for a in range(MAX_DELTA + 1)]
        self.hex3 = [[h[f >> 8], h[(f >> 4) & 0xF], h[f & 0xF]] for f in range(0x1000)]
        self.vk = [v.id(t) for t in VKS]
        (self.bos, self.eos, self.start, self.end, self.keyboard, self.mouse, self.screen, self.img, self.img_end,
         self.img_token, self.press, self.release, self.plus, self.minus, self.scroll) = (
            v.id(t) for t in (BOS, EOS, START, END, KEYBOARD, MOUSE, SCREEN, IMG, IMG_END, IMG_TOKEN, PRESS,
                              RELEASE, PLUS, MINUS, SCROLL))

    def stamp(self, t_ns: int) -> list[int]:
        return self.time[(t_ns // TIME_RES_NS) % TIME_CYCLE]

    def signed(self, value: int) -> list[int]:
        v = max(-MAX_DELTA, min(MAX_DELTA, int(value)))
        return [self.minus if v < 0 else self.plus, *self.mag[abs(v)]]

    def event(self, e: Any, t_ns: int) -> list[int]:
        """The ids of one input event stamped at ``t_ns`` (already shifted by tau)."""
        if isinstance(e, KeyboardEvent):
            return [self.start, self.keyboard, *self.stamp(t_ns), self.vk[e.vk & 0xFF],
                    self.press if e.action == "press" else self.release, self.end]
        out = [self.start, self.mouse, *self.stamp(t_ns), *self.signed(e.dx), *self.signed(e.dy),
               *self.hex3[max(0, min(0xFFF, e.button_flags))]]
        if e.button_flags & RI_WHEEL:
            out += [self.scroll, *self.signed(round(wheel_delta(e.button_data) / WHEEL_DELTA))]
        out.append(self.end)
        return out

    def screen_event(self, t_ns: int, image_tokens: int = 0) -> list[int]:
        return [self.start, self.screen, *self.stamp(t_ns), self.img, *([self.img_token] * image_tokens),
                self.img_end, self.end]


@lru_cache(maxsize=8)
def id_tables(vocab: Vocabulary) -> IdTables:
    return IdTables(vocab)


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


def encode_window(events: Sequence[Any], frame_times: Sequence[int], tau_ns: int, vocab: Vocabulary, *,
                  image_tokens: int = 0, bos_eos: bool = True, merge_motion_ns: int = 0) -> list[int]:
    """The token ids of one window: screen events at ``frame_times`` interleaved with input events
    shifted by ``tau_ns``; events are kept when their shifted time falls in the window
    ``[frame_times[0], frame_times[-1] + frame period)``.

    ``merge_motion_ns > 0`` sums raw mouse motion without buttons over slots of that length (from the
    window start) into one event at the slot's first motion time: 1 kHz raw input would otherwise need
    16 tokens per millisecond, far more than a window's token budget. Clicks and scrolls stay separate.
    """
    period = frame_times[1] - frame_times[0] if len(frame_times) > 1 else TICK_NS
    lo, hi = frame_times[0], frame_times[-1] + period
    tab = id_tables(vocab)
    items: list[tuple[int, int, list[int]]] = [(t, 0, tab.screen_event(t, image_tokens)) for t in frame_times]
    slots: dict[int, list[int]] = {}  # slot -> [time, dx, dy] of merged motion
    for e in model_inputs(events):
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
    out = [tab.bos] if bos_eos else []
    for _t, _k, ids in items:
        out += ids
    if bos_eos:
        out.append(tab.eos)
    return out


def decode_tokens(ids: Sequence[int], ref_ns: int, tau_ns: int, vocab: Vocabulary) -> list[Any]:
    """Events from token ids; malformed events are skipped (decoding resumes at the next <EVENT_START>).

    ``ref_ns`` anchors the cyclic timestamps (use the window's first frame time); ``tau_ns`` is
    subtracted so events come back at their real time. Screen events are consumed, not returned.
    """
    toks = [vocab.token(i) for i in ids]
    out: list[Any] = []
    i = 0
    while i < len(toks):
        if toks[i] != START:
            i += 1
            continue
        j = toks.index(END, i + 1) if END in toks[i + 1:] else len(toks)
        event = parse_event(toks[i + 1:j], ref_ns, tau_ns)
        if event is not None:
            out.append(event)
        i = j + 1
    return out


def _fits(toks: Sequence[str], slots: Sequence[tuple[str, ...]]) -> bool:
    return len(toks) == len(slots) and all(t in allowed for t, allowed in zip(toks, slots))


def _number(toks: Sequence[str]) -> int:
    value = 0
    for t in toks:
        value = value * 10 + DIGITS.index(t)
    return value


def _signed_value(toks: Sequence[str]) -> int:
    return -_number(toks[1:]) if toks[0] == MINUS else _number(toks[1:])


def parse_event(body: list[str], ref_ns: int, tau_ns: int) -> Any | None:
    """One event from the tokens between ``<EVENT_START>`` and ``<EVENT_END>``; None when malformed or a
    screen event (which carries no input)."""
    kind = body[0] if body else None
    if kind not in BODY or len(body) < 1 + TIME_DIGITS or not _fits(body[1:4], [tuple(DIGITS)] * TIME_DIGITS):
        return None
    t = unwrap_time(_number(body[1:4]), ref_ns + tau_ns) - tau_ns
    rest, slots = body[4:], BODY[kind]
    if kind == KEYBOARD:
        if not _fits(rest, slots):
            return None
        vk = VKS.index(rest[0])
        return KeyboardEvent(t, "press" if rest[1] == PRESS else "release", name_for(vk), vk)
    scroll = rest[len(slots):]
    if not _fits(rest[:len(slots)], slots) or (scroll and not (scroll[0] == SCROLL and _fits(scroll[1:],
                                                                                              SCROLL_BODY))):
        return None
    flags = (HEX.index(rest[10]) << 8) | (HEX.index(rest[11]) << 4) | HEX.index(rest[12])
    data = (_signed_value(scroll[1:]) * WHEEL_DELTA) & 0xFFFF if scroll else 0
    return RawMouseEvent(t, _signed_value(rest[0:5]), _signed_value(rest[5:10]), flags, data)
