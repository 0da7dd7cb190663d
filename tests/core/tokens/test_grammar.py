"""The decoding grammar: the value head's motion goes into the token stream, the rest stays the model's."""

from __future__ import annotations

from capture.schema import RawMouseEvent
from core.grid import TICK_NS as FRAME_NS
from core.tokens import Grammar, Vocabulary, decode_tokens
from core.tokens import vocab as T


def _drive(grammar: Grammar, v: Vocabulary, mouse_per_frame: int) -> list[int]:
    """Write ``mouse_per_frame`` mouse events after each screen event, taking the first allowed token elsewhere."""
    tokens, written = [v.id(T.BOS)], 0
    while (allowed := grammar(tokens)) is not None:
        if v.id(T.MOUSE) in allowed and written < mouse_per_frame:
            choice = v.id(T.MOUSE)
            written += 1
        elif v.id(T.SCREEN) in allowed:
            choice, written = v.id(T.SCREEN), 0
        elif v.id(T.EOS) in allowed:  # after the last screen event: its mouse events, then the end
            choice = v.id(T.START) if written < mouse_per_frame and v.id(T.START) in allowed else v.id(T.EOS)
        else:
            choice = allowed[0]
        tokens.append(choice)
    return tokens


def test_the_first_mouse_event_of_a_frame_carries_the_value_heads_motion() -> None:
    v = Vocabulary.default()
    times = [1_000_000_000 + i * FRAME_NS for i in range(4)]
    values = [None, (12.4, -3.6), (-250.0, 0.2), (4000.0, -0.4)]  # frame 0: before the window, model decides
    tokens = _drive(Grammar(v, times, 100_000_000, [65], mouse_values=values), v, mouse_per_frame=2)
    motion = [(e.dx, e.dy) for e in decode_tokens(tokens, times[0], 100_000_000, v) if isinstance(e, RawMouseEvent)]
    # two per frame; frame 0's are the model's own digits (here the first allowed: +0000), later ones carry no motion
    assert motion == [(0, 0), (0, 0), (12, -4), (0, 0), (-250, 0), (0, 0), (1999, 0), (0, 0)]


def test_without_values_the_model_writes_every_digit() -> None:
    v = Vocabulary.default()
    times = [i * FRAME_NS for i in range(3)]
    grammar = Grammar(v, times, 0, [65])
    tokens = _drive(grammar, v, mouse_per_frame=1)
    at_sign = tokens.index(v.id(T.MOUSE)) + 4  # after the type and three time digits
    assert sorted(grammar(tokens[:at_sign])) == sorted([v.id(T.PLUS), v.id(T.MINUS)])


def test_given_events_are_written_in_order_stamped_by_the_decoder_and_nothing_else() -> None:
    from capture.schema import KeyboardEvent

    v = Vocabulary.default()
    times = [i * FRAME_NS for i in range(3)]
    given = [[KeyboardEvent(0, "press", "a", 0x41), RawMouseEvent(0, 7, -3, 0x001)], [],
             [KeyboardEvent(0, "release", "a", 0x41)]]
    grammar = Grammar(v, times, 0, [0x41], given=given)
    tokens = [v.id(T.BOS)]
    while (allowed := grammar(tokens)) is not None:
        assert v.id(T.KEYBOARD) not in allowed or len(allowed) == 1  # never a free choice of an input event
        tokens.append(allowed[-1])  # the decoder's choice among allowed stamps: here the latest
    events = decode_tokens(tokens, 0, 0, v)
    assert [(type(e).__name__, getattr(e, "action", None), getattr(e, "dx", None)) for e in events] == [
        ("KeyboardEvent", "press", None), ("RawMouseEvent", None, 7), ("KeyboardEvent", "release", None)]
    assert events[1].dy == -3 and events[1].button_flags == 0x001
    assert [e.t_ns // FRAME_NS for e in events] == [0, 0, 2]  # each stamped within its own frame


def test_at_most_max_events_after_a_frame() -> None:
    v = Vocabulary.default()
    times = [i * FRAME_NS for i in range(2)]
    tokens = _drive(Grammar(v, times, 0, [65], max_events=2), v, mouse_per_frame=5)
    moves = [e for e in decode_tokens(tokens, 0, 0, v) if isinstance(e, RawMouseEvent)]
    assert len(moves) == 4  # two after each frame, though the writer wanted five
