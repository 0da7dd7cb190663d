"""The D2E event-token codec: round trips, the 10 s cycle, clamping, NEP-tau, malformed input."""

from __future__ import annotations

import pytest

from capture.schema import RI_LEFT_DOWN, RI_WHEEL, KeyboardEvent, MouseEvent, RawMouseEvent
from core.tokens import Grammar, Vocabulary, decode_tokens, encode_window, id_tables, time_tokens, unwrap_time
from core.tokens.vocab import BOS, END, EOS, START

V = Vocabulary.default()
MS = 1_000_000


def event_tokens(event, t_ns: int) -> list[str]:
    return [V.token(i) for i in id_tables(V).event(event, t_ns)]


def frames(start_ns: int, n: int = 8) -> list[int]:
    return [start_ns + i * 50 * MS for i in range(n)]


def test_round_trip_with_tau_and_10ms_quantisation() -> None:
    start = 123_400 * MS
    events = [KeyboardEvent(start + 20 * MS, "press", "w", 0x57), RawMouseEvent(start + 60 * MS, 12, -7),
              RawMouseEvent(start + 90 * MS, 0, 0, RI_LEFT_DOWN), KeyboardEvent(start + 210 * MS, "release", "w", 0x57)]
    for tau in (0, 50 * MS, 100 * MS, 150 * MS):
        ids = encode_window(events, frames(start), tau, V)
        got = decode_tokens(ids, start, tau, V)
        assert got == events, tau


def test_tau_moves_events_after_the_following_frames() -> None:
    start = 0
    key = KeyboardEvent(10 * MS, "press", "a", 0x41)
    toks = [V.token(i) for i in encode_window([key], frames(start), 100 * MS, V)]
    first_key = toks.index("<KEYBOARD>")
    screens_before = toks[:first_key].count("<SCREEN>")
    assert screens_before == 3  # frames at 0, 50 and 100 ms come before an action at 10 ms + 100 ms


def test_cyclic_timestamps_unwrap_across_the_10s_boundary() -> None:
    start = 9_900 * MS  # window crosses 10 s
    events = [RawMouseEvent(9_950 * MS, 1, 1), RawMouseEvent(10_020 * MS, 2, 2), RawMouseEvent(10_150 * MS, 3, 3)]
    ids = encode_window(events, frames(start), 0, V)
    toks = [V.token(i) for i in ids]
    assert "<0>" in toks[toks.index("<MOUSE>", toks.index("<MOUSE>") + 1) + 1]  # 10.02 s -> 002
    assert decode_tokens(ids, start, 0, V) == events
    assert time_tokens(10_020 * MS) == ["<0>", "<0>", "<2>"]
    assert unwrap_time(2, 9_900 * MS) == 10_020 * MS
    assert unwrap_time(995, 10_000 * MS) == 9_950 * MS  # just before the reference: previous cycle


def test_merged_motion_keeps_each_slots_sum_and_every_click() -> None:
    start = 1_000 * MS  # 1 kHz motion for 400 ms, a click in the middle of it, a key press
    motion = [RawMouseEvent(start + k * MS, 1 + k % 3, -1) for k in range(400)]
    click = RawMouseEvent(start + 120 * MS, 0, 0, RI_LEFT_DOWN)
    key = KeyboardEvent(start + 200 * MS, "press", "w", 0x57)
    ids = encode_window([*motion, click, key], frames(start), 0, V, merge_motion_ns=50 * MS)
    got = decode_tokens(ids, start, 0, V)
    moves = [e for e in got if isinstance(e, RawMouseEvent) and not e.button_flags]
    assert [e.t_ns for e in moves] == [start + k * 50 * MS for k in range(8)]  # one per slot, at its first move
    for k, e in enumerate(moves):
        slot = motion[50 * k:50 * (k + 1)]
        assert (e.dx, e.dy) == (sum(m.dx for m in slot), sum(m.dy for m in slot))
    assert click in got and key in got and len(got) == 10
    assert len(ids) < len(encode_window([*motion, click, key], frames(start), 0, V)) / 20


def test_clamping_and_scroll() -> None:
    e = RawMouseEvent(0, 5000, -2500, RI_WHEEL, (-360) & 0xFFFF)
    (got,) = decode_tokens(V.ids([START, *event_tokens(e, 0)[1:]]), 0, 0, V)
    assert (got.dx, got.dy, got.button_flags) == (1999, -1999, RI_WHEEL)
    assert got.button_data == (-360) & 0xFFFF


def test_pointer_buttons_become_raw_flags_when_no_raw_buttons() -> None:
    events = [MouseEvent(5 * MS, "press", 1, 1, "left"), MouseEvent(80 * MS, "scroll", 1, 1, None, 0, 2)]
    got = decode_tokens(encode_window(events, frames(0), 0, V), 0, 0, V)
    assert got == [RawMouseEvent(0, 0, 0, RI_LEFT_DOWN), RawMouseEvent(80 * MS, 0, 0, RI_WHEEL, 240)]


def test_malformed_events_are_skipped_not_fatal() -> None:
    good = event_tokens(KeyboardEvent(0, "press", "a", 0x41), 0)
    broken = [START, "<KEYBOARD>", "<1>", "<VK_3>", END]  # timestamp cut short
    junk = ["<press>", "<7>"]
    ids = V.ids([BOS, *junk, *broken, *good, START, "<MOUSE>", EOS])
    assert decode_tokens(ids, 0, 0, V) == [KeyboardEvent(0, "press", "a", 0x41)]


def test_vocabulary_json_round_trip(tmp_path) -> None:
    V.save(tmp_path / "vocab.json")
    import json

    again = Vocabulary.from_json(json.loads((tmp_path / "vocab.json").read_text()))
    assert again == V and len(V) == 298 and V.pad_id == 0
    with pytest.raises(KeyError):
        V.id("<NOT_A_TOKEN>")


def test_random_windows_round_trip_and_every_token_is_one_the_grammar_allows() -> None:
    """One layout: what the encoder writes, the parser reads back and the decoding grammar allows."""
    import random

    from capture.keys import name_for

    rng = random.Random(0)
    for _ in range(200):
        start = rng.randrange(0, 4_000) * 100 * MS
        times = frames(start)
        events = []
        for _ in range(rng.randrange(1, 6)):
            t = start + rng.randrange(0, 39) * 10 * MS
            if rng.random() < 0.4:
                vk = rng.choice([0x41, 0x25, 0x20])
                events.append(KeyboardEvent(t, rng.choice(["press", "release"]), name_for(vk), vk))
            else:
                flags = rng.choice([0, RI_LEFT_DOWN, RI_WHEEL, 0x002 | 0x004])
                events.append(RawMouseEvent(t, rng.randrange(-1999, 2000), rng.randrange(-1999, 2000), flags,
                                            (rng.randrange(-5, 6) * 120) & 0xFFFF if flags & RI_WHEEL else 0))
        events.sort(key=lambda e: e.t_ns)
        ids = encode_window(events, times, 0, V)
        assert decode_tokens(ids, start, 0, V) == events
        grammar = Grammar(V, times, 0, [0x20, 0x25, 0x41])
        for k in range(1, len(ids)):
            allowed = grammar(ids[:k])
            assert allowed is not None and ids[k] in allowed, (k, V.token(ids[k]))
        assert grammar(ids) is None
