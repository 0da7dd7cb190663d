"""Constrained decoding: which tokens may come next in one window, so every generated sequence decodes.

Per window the decoder writes the screen event of each frame (forced: its time is known), then the input
events that happened before the next frame, until it decides to move on. Only well-formed events are
allowed (the slots of ``codec.BODY``), timestamps between the current and the next frame (after NEP-tau),
key codes the model was trained on and deltas within +-1999, and at most ``max_events`` input events after a
frame (a weak model must not flood its output). With ``mouse_values`` the first mouse event after each frame
carries a given motion (a regression head's) and later ones of that frame carry none. With ``given`` the input
events after each frame are given (e.g. by calibrated per-tick detectors): the decoder stamps them within the
frame, in order, and writes no events of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capture.schema import KeyboardEvent

from ..grid import TICK_NS
from .codec import BODY, SCROLL_BODY, TIME_CYCLE, TIME_DIGITS, TIME_RES_NS, id_tables, time_tokens
from .vocab import (
    BOS,
    DIGITS,
    END,
    EOS,
    IMG,
    IMG_END,
    KEYBOARD,
    MOUSE,
    PRESS,
    RELEASE,
    SCREEN,
    SCROLL,
    START,
    VKS,
    Vocabulary,
)


class Grammar:
    """Allowed next tokens for one window, given the frame times and the NEP-tau shift."""

    def __init__(self, vocab: Vocabulary, frame_times: Sequence[int], tau_ns: int, vks: Sequence[int],
                 mouse_values: Sequence[tuple[float, float] | None] | None = None,
                 given: Sequence[Sequence[Any]] | None = None, max_events: int | None = None):
        """``mouse_values[k]``: the (dx, dy) the first mouse event written after frame k must carry (already
        shifted by NEP-tau); later mouse events of that frame carry no motion. None (or a None entry): the model
        chooses the digits. ``given[k]``: the events (``KeyboardEvent``/``RawMouseEvent``) written after frame k,
        in order; their times are the decoder's to stamp within the frame."""
        self.v = vocab
        self.tables = id_tables(vocab)
        self.mouse_values = mouse_values
        self.frame_times = list(frame_times)
        self.tau_ns = tau_ns
        self.ids = {name: vocab.id(name) for name in (BOS, EOS, START, END, KEYBOARD, MOUSE, SCREEN, IMG, IMG_END,
                                                      SCROLL)}
        self.digit = vocab.ids(DIGITS)
        allowed_vks = {VKS[vk] for vk in (vks or range(256))}
        self.body = {vocab.id(kind): [vocab.ids(t for t in slot if kind != KEYBOARD or i or t in allowed_vks)
                                      for i, slot in enumerate(slots)] for kind, slots in BODY.items()}
        self.scroll = [vocab.ids(slot) for slot in SCROLL_BODY]
        self.given = given
        self.max_events = max_events
        self.vk_id = {vk: vocab.id(VKS[vk]) for vk in range(256)}
        self.action_id = {True: vocab.id(PRESS), False: vocab.id(RELEASE)}
        self.frames_done = 0

    def _time_units(self) -> list[int]:
        """10 ms units (mod 1000) an event may carry now: from the current frame to the next one."""
        k = self.frames_done - 1
        lo = self.frame_times[k]
        hi = self.frame_times[k + 1] if k + 1 < len(self.frame_times) else self.frame_times[-1] + TICK_NS
        units = range(lo // TIME_RES_NS, max(lo // TIME_RES_NS + 1, -(-hi // TIME_RES_NS)))
        return [u % TIME_CYCLE for u in units]

    def __call__(self, tokens: list[int]) -> list[int] | None:
        ids = self.ids
        try:  # find the event in progress
            start = len(tokens) - 1 - tokens[::-1].index(ids[START])
        except ValueError:
            start = -1
        frame_tokens = self._frame_tokens(tokens)
        pending = self._pending(frame_tokens)
        if start < 0 or ids[END] in tokens[start:] or tokens[-1] == ids[END]:
            if tokens and tokens[-1] == ids[EOS]:
                return None
            # between events: start one, or end the window once every frame is in and its keys are written
            done = self.frames_done == len(self.frame_times) and not pending
            full = self.max_events is not None and frame_tokens.count(ids[END]) - 1 >= self.max_events
            return [ids[EOS]] if done and full else [ids[START], ids[EOS]] if done else [ids[START]]
        body = tokens[start + 1:]
        if not body:
            if pending:
                return [ids[KEYBOARD] if isinstance(pending[0], KeyboardEvent) else ids[MOUSE]]
            full = self.max_events is not None and frame_tokens.count(ids[END]) >= self.max_events + 1
            kinds = [] if not self.frames_done or full or self.given is not None else [ids[KEYBOARD], ids[MOUSE]]
            return kinds + ([ids[SCREEN]] if self.frames_done < len(self.frame_times) else [])
        kind = body[0]
        pos = len(body) - 1  # tokens after the type
        if kind == ids[SCREEN]:
            stamp = self.v.ids(time_tokens(self.frame_times[self.frames_done]))
            forced = [*stamp, ids[IMG], ids[IMG_END], ids[END]]
            if pos == len(forced) - 1:
                self.frames_done += 1
            return [forced[pos]]
        if pos < TIME_DIGITS:  # timestamp digits of an input event, shifted by tau, between this frame and the next
            prefix = [self.digit.index(t) for t in body[1:1 + pos]]
            allowed = sorted({int(f"{u:03d}"[pos]) for u in self._time_units()
                              if [int(c) for c in f"{u:03d}"[:pos]] == prefix})
            return [self.digit[d] for d in allowed]
        rest = pos - TIME_DIGITS
        slots = self.body[kind]
        if self.given is not None:  # a given event: only its stamp was the model's
            body_ids = self._body(self.given[self.frames_done - 1][self._started(frame_tokens) - 1])
            return [body_ids[rest]] if rest < len(body_ids) else None
        if kind == ids[MOUSE] and rest < 10 and self.mouse_values is not None:
            forced = self._forced_motion(tokens)
            if forced is not None:
                return [forced[rest]]
        if rest < len(slots):
            return slots[rest]
        if kind == ids[KEYBOARD]:
            return [ids[END]] if rest == len(slots) else None
        if rest == len(slots):
            return [ids[END], ids[SCROLL]]
        k = rest - len(slots) - 1
        return self.scroll[k] if k < len(self.scroll) else [ids[END]] if k == len(self.scroll) else None

    def _frame_tokens(self, tokens: list[int]) -> list[int]:
        """The tokens since the current frame's screen event (all of them before the first)."""
        try:
            return tokens[len(tokens) - 1 - tokens[::-1].index(self.ids[SCREEN]):]
        except ValueError:
            return tokens

    def _started(self, frame_tokens: list[int]) -> int:
        """Input events of the current frame begun so far (the given ones, in order)."""
        return frame_tokens.count(self.ids[KEYBOARD]) + frame_tokens.count(self.ids[MOUSE])

    def _pending(self, frame_tokens: list[int]) -> list[Any]:
        """Given events of the current frame not yet begun."""
        if self.given is None or not self.frames_done or self.frames_done - 1 >= len(self.given):
            return []
        return list(self.given[self.frames_done - 1][self._started(frame_tokens):])

    def _body(self, event: Any) -> list[int]:
        """The ids after the timestamp of a given event, its ``<EVENT_END>`` included."""
        if isinstance(event, KeyboardEvent):
            return [self.vk_id[event.vk & 0xFF], self.action_id[event.action == "press"], self.ids[END]]
        flags = self.tables.hex3[max(0, min(0xFFF, event.button_flags))]
        return [*self.tables.signed(event.dx), *self.tables.signed(event.dy), *flags, self.ids[END]]

    def _forced_motion(self, tokens: list[int]) -> list[int] | None:
        """The 10 sign/digit ids of the mouse event in progress, if its motion comes from the value head."""
        value = self.mouse_values[self.frames_done - 1] if self.frames_done - 1 < len(self.mouse_values) else None
        if value is None:
            return None
        screen = len(tokens) - 1 - tokens[::-1].index(self.ids[SCREEN])
        first = tokens[screen:].count(self.ids[MOUSE]) == 1  # the one in progress is the frame's first
        dx, dy = (round(value[0]), round(value[1])) if first else (0, 0)
        return [*self.tables.signed(dx), *self.tables.signed(dy)]
