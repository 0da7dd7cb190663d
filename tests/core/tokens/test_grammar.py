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
            choice = v.id(T.START) if written < mouse_per_frame else v.id(T.EOS)
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
