"""The dataset layer on recordings whose truth is known: frame/event alignment, labels, edges, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.format import RecordingReader
from capture.schema import RI_LEFT_DOWN, RI_LEFT_UP, KeyboardEvent, RawMouseEvent
from capture.synthetic import write_synthetic_recording
from core.config import DataConfig
from core.data.dataset import WindowDataset
from core.data.index import (
    RecordingEntry,
    find_recordings,
    index_recordings,
    keys_of,
    split_by_game,
    split_by_recording,
)
from core.grid import TICK_NS as GRID_NS
from core.ticks import EventTable, tick_labels
from core.tokens import decode_tokens

MS = 1_000_000


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for seed in (1, 2):
        write_synthetic_recording(folder / f"rec{seed}.mcap", seconds=4, seed=seed)
    return folder


def test_index_windows_and_edges(recordings: Path) -> None:
    entries = index_recordings(find_recordings([str(recordings)]))
    assert len(entries) == 2 and all(e.vks for e in entries)
    lens = [int((e.frame_t[-1] - e.frame_t[0]) // GRID_NS) + 1 for e in entries]
    assert [e.grid_len for e in entries] == lens and all(78 <= n <= 80 for n in lens)
    ds = WindowDataset(entries, DataConfig(frames=8, image_size=32))
    assert len(ds) == sum(n // 8 for n in lens)  # non-overlapping windows that fit entirely
    overlapping = WindowDataset(entries, DataConfig(frames=8, image_size=32), stride=4)
    assert len(overlapping) == sum((n - 8) // 4 + 1 for n in lens)
    last = overlapping[len(overlapping) - 1]
    assert last["times"][-1] <= entries[1].frame_t[-1] < last["times"][-1] + 5 * GRID_NS


def test_frames_are_the_ones_shown_at_each_grid_time(recordings: Path) -> None:
    entries = index_recordings([str(recordings / "rec1.mcap")])
    ds = WindowDataset(entries, DataConfig(frames=8, image_size=320 // 4, aspect="stretch"))
    frame_t = entries[0].frame_t
    assert (np.diff(frame_t) != GRID_NS).any()  # capture jitter: the rule matters here
    for w in (0, 3, len(ds) - 1):
        sample = ds[w]
        for j, t in enumerate(sample["times"]):
            shown = int(np.argmin(np.abs(frame_t - t)))  # the frame nearest in time (ties: the earlier)
            # synthetic frames carry their index in the top-left 16x16 block: (i * 7) % 256
            assert abs(int(sample["frames"][j, 1, 1, 0]) - (shown * 7) % 256) <= 6, (w, j)


def test_labels_match_the_events(recordings: Path) -> None:
    path = recordings / "rec2.mcap"
    entries = index_recordings([str(path)])
    spec = DataConfig(frames=10, image_size=16, tau_ms=100, keys=keys_of(entries))
    ds = WindowDataset(entries, spec)
    with RecordingReader(path) as r:
        raw = list(r.iter(topics=["mouse/raw"]))
        keys = list(r.iter(topics=["keyboard"]))
    for w in range(len(ds)):
        s = ds[w]
        t0 = int(s["times"][0])
        for j in range(10):
            lo, hi = t0 + j * GRID_NS, t0 + (j + 1) * GRID_NS
            assert s["mouse"][j, 0] == sum(m.dx for m in raw if lo <= m.t_ns < hi)
            for c, vk in enumerate(spec.keys):
                before = [k for k in keys if k.vk == vk and k.t_ns < lo]
                down_at_start = bool(before) and before[-1].action == "press"
                pressed_inside = any(k.vk == vk and k.action == "press" and lo <= k.t_ns < hi for k in keys)
                assert s["keys"][j, c] == (down_at_start or pressed_inside), (w, j, vk)
        # the tokens hold exactly the window's events (10 ms resolution), shifted by tau and back
        decoded = decode_tokens(s["tokens"], t0, 100 * MS, ds.vocab)
        truth = [e for e in keys if t0 - 100 * MS <= e.t_ns < t0 + 400 * MS]
        assert [(e.vk, e.action, e.t_ns // (10 * MS)) for e in decoded if isinstance(e, KeyboardEvent)] == \
            [(e.vk, e.action, e.t_ns // (10 * MS)) for e in truth]


def test_tick_labels_by_hand() -> None:
    events = [KeyboardEvent(-30 * MS, "press", "w", 0x57), KeyboardEvent(120 * MS, "release", "w", 0x57),
              KeyboardEvent(160 * MS, "press", "a", 0x41), KeyboardEvent(170 * MS, "release", "a", 0x41),
              RawMouseEvent(10 * MS, 3, -1), RawMouseEvent(40 * MS, 2, 0), RawMouseEvent(60 * MS, 0, 0, RI_LEFT_DOWN),
              RawMouseEvent(140 * MS, 0, 0, RI_LEFT_UP)]
    keys, buttons, mouse = tick_labels(events, 0, 4, [0x57, 0x41])
    assert keys[:, 0].tolist() == [True, True, True, False]  # held from before the window, released in tick 2
    assert keys[:, 1].tolist() == [False, False, False, True]  # a tap inside tick 3
    assert buttons[:, 0].tolist() == [False, True, True, False]
    assert mouse[0].tolist() == [5, -1] and mouse[1:].sum() == 0


def test_event_table_keeps_state_from_long_before_and_tick_edges() -> None:
    events = [KeyboardEvent(-60_000 * MS, "press", "w", 0x57),  # a minute before the window, still held
              KeyboardEvent(-30_000 * MS, "press", "w", 0x57),  # auto-repeat: the first press counts
              KeyboardEvent(100 * MS, "release", "w", 0x57),  # exactly on the tick 1/2 boundary
              RawMouseEvent(50 * MS, 4, 4), RawMouseEvent(200 * MS - 1, 1, 0), RawMouseEvent(200 * MS, 9, 9),
              RawMouseEvent(-MS, 0, 0, RI_LEFT_DOWN)]
    table = EventTable(events)
    keys, buttons, mouse = table.ticks(0, 4, [0x57])
    assert keys[:, 0].tolist() == [True, True, True, False]
    assert buttons[:, 0].all() and not buttons[:, 1:].any()  # pressed before, never released
    assert mouse[:, 0].tolist() == [0, 4, 0, 1]  # the event at 200 ms belongs to the next window
    later, _b, _m = table.ticks(150 * MS, 2, [0x57])
    assert not later.any()
    assert [e.t_ns for e in table.between(50 * MS, 200 * MS)] == [50 * MS, 100 * MS, 200 * MS - 1]


def test_splits() -> None:
    def entry(name: str, game: str) -> RecordingEntry:
        return RecordingEntry(name, game, "ale", np.arange(3), np.arange(3))

    entries = [entry(f"{g}{i}", g) for g in ("pong", "breakout", "doom") for i in range(3)]
    train, held = split_by_game(entries, ["doom"])
    assert {e.game for e in train} == {"pong", "breakout"} and {e.game for e in held} == {"doom"}
    with pytest.raises(Exception, match="not in the data"):
        split_by_game(entries, ["tetris"])
    tr, va = split_by_recording(entries, 0.34, seed=1)
    assert len(va) == 3 and not {e.path for e in tr} & {e.path for e in va}


def test_loader_with_a_spawned_worker(recordings: Path) -> None:
    pytest.importorskip("torch")
    from core.data.loader import make_loader

    entries = index_recordings(find_recordings([str(recordings)]))
    ds = WindowDataset(entries, DataConfig(frames=4, image_size=32, keys=keys_of(entries)))
    batch = next(iter(make_loader(ds, batch_size=4, shuffle=True, num_workers=1)))
    assert tuple(batch["frames"].shape) == (4, 4, 32, 32, 3) and batch["tokens"].shape[0] == 4
    assert batch["keys"].dtype.is_floating_point is False and batch["keys"].shape[-1] == len(ds.data.keys)


def test_remote_recordings_serve_the_same_windows(recordings: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for suffix in (".mcap", ".mkv"):
        fs.pipe(f"/d2e-test/rec1{suffix}", (recordings / f"rec1{suffix}").read_bytes())
    urls = find_recordings(["memory://d2e-test/*.mcap"])
    remote = WindowDataset(index_recordings(urls), DataConfig(frames=4, image_size=32))
    local = WindowDataset(index_recordings([str(recordings / "rec1.mcap")]), DataConfig(frames=4, image_size=32))
    a, b = remote[5], local[5]
    assert np.array_equal(a["frames"], b["frames"]) and a["tokens"] == b["tokens"]
    assert np.array_equal(a["keys"], b["keys"]) and np.array_equal(a["mouse"], b["mouse"])


def test_alignment_on_a_generated_game_recording(tmp_path: Path) -> None:
    """A 60 Hz game whose screen shows its step count, a player holding space for steps 10-39: every
    frame, tick label and token of the served windows is known exactly."""
    from capture.sources.base import record_game
    from capture.sources.policy import Intent

    class Counter:
        native_hz, name = 60.0, "counter"

        def reset(self, seed: int) -> None:
            self.k = 0

        def screen(self) -> np.ndarray:
            return np.full((48, 64, 3), self.k * 2, np.uint8)  # 2 s at 60 Hz: at most 240

        def step(self, intent: Intent) -> bool:
            self.k += 1
            return False

        def describe(self) -> dict:
            return {"key_map": {"space": "jump"}}

    class HoldSpace:
        def reset(self, seed: int) -> None:
            self.k = -1

        def step(self, t_ns: int) -> Intent:
            self.k += 1
            return Intent(frozenset({"space"}) if 10 <= self.k < 40 else frozenset())

    path = tmp_path / "counter.mcap"
    record_game(Counter(), HoldSpace(), path, seconds=2, source="test", crf=0)
    entries = index_recordings([str(path)])
    ds = WindowDataset(entries, DataConfig(frames=8, image_size=16, tau_ms=100, keys=keys_of(entries)))
    assert ds.data.keys == [0x20] and len(ds) == 5
    for w in range(len(ds)):
        s = ds[w]
        steps = [int(t) * 60 // 1_000_000_000 for t in s["times"]]  # frame at grid g: after 3 steps per 50 ms
        shown = s["frames"][:, 8, 8, 0].astype(int)
        assert np.abs(shown - 2 * np.array(steps)).max() <= 2, (w, shown, steps)  # one frame off would be 6
        # space is down from step 10 (166.7 ms, tick 3) until step 40 (666.7 ms, tick 13)
        ticks = [int(t) // GRID_NS for t in s["times"]]
        assert s["keys"][:, 0].tolist() == [3 <= j <= 13 for j in ticks], w
        decoded = decode_tokens(s["tokens"], int(s["times"][0]), 100 * MS, ds.vocab)
        t0 = int(s["times"][0])
        changes = (("press", 166_666_667), ("release", 666_666_667))
        truth = [(a, t) for a, t in changes if t0 - 100 * MS <= t < t0 + 300 * MS]
        assert [(e.action, e.t_ns // (10 * MS)) for e in decoded] == [(a, t // (10 * MS)) for a, t in truth], w
