"""The input events a model learns from: keyboard and raw mouse, one normalised form for labels and tokens.

Per-tick labels, event tokens and metrics all read input through ``model_inputs``, so a rule about which
events count (e.g. pointer clicks standing in for raw buttons in files without them) holds everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from capture.schema import BUTTON_FLAGS, RI_WHEEL, WHEEL_DELTA, KeyboardEvent, MouseEvent, RawMouseEvent


def model_inputs(events: Iterable[Any]) -> list[Any]:
    """Keyboard and raw-mouse events, with pointer button/scroll events turned into raw flags when the
    recording has no raw button events of its own (e.g. OWAMcap files without ``mouse/raw``), and without
    the key auto-repeats the recorder flags (``KeyboardEvent.repeat``): holding a key is one press."""
    events = list(events)
    raw_buttons = any(isinstance(e, RawMouseEvent) and e.button_flags for e in events)
    out = []
    for e in events:
        if isinstance(e, KeyboardEvent):
            if not e.repeat:
                out.append(e)
        elif isinstance(e, RawMouseEvent):
            out.append(e)
        elif isinstance(e, MouseEvent) and not raw_buttons:
            if e.action in ("press", "release") and e.button in BUTTON_FLAGS:
                flag = BUTTON_FLAGS[e.button][0 if e.action == "press" else 1]
                out.append(RawMouseEvent(e.t_ns, 0, 0, flag))
            elif e.action == "scroll" and e.dy:
                out.append(RawMouseEvent(e.t_ns, 0, 0, RI_WHEEL, (e.dy * WHEEL_DELTA) & 0xFFFF))
    return out


def wheel_delta(button_data: int) -> int:
    """RAWMOUSE usButtonData is an unsigned short holding a signed wheel delta."""
    return button_data - 0x10000 if button_data >= 0x8000 else button_data


def confident(events: list[tuple[Any, float]], threshold: float) -> list[tuple[Any, float]]:
    """The (event, confidence) pairs with confidence >= ``threshold``; a key release goes with its press (kept
    or left out together), so labels never hold a key down forever or release one that was never pressed."""
    if threshold <= 0:
        return events
    kept, down = [], {}  # vk -> whether its current press was kept
    for event, conf in sorted(events, key=lambda ec: ec[0].t_ns):
        if isinstance(event, KeyboardEvent) and event.action == "release" and event.vk in down:
            if down.pop(event.vk):
                kept.append((event, conf))
            continue
        keep = conf >= threshold
        if isinstance(event, KeyboardEvent) and event.action == "press":
            down[event.vk] = keep
        if keep:
            kept.append((event, conf))
    return kept


def with_confidence(events: Iterable[Any], confidences: Iterable[Any]) -> list[tuple[Any, float]]:
    """Pair a pseudo-labeled recording's events with their ``LabelConfidence`` records (1.0 where none)."""
    by_key = {(c.t_ns, c.topic): c.confidence for c in confidences}
    return [(e, by_key.get((e.t_ns, e.TOPIC), 1.0)) for e in events]
