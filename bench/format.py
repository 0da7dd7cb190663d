"""Format benchmark: our recording format vs OWA's ``mcap-owa-support`` on the same events, same run.

Writes and reads N realistic input events (keyboard bursts, 1 kHz raw mouse, moves, clicks, scroll;
``capture.synthetic``) with both, and prints events/s for write, read without typed decoding, read with
typed decoding, and bytes/event, with the ratio ours/OWA. Message objects are built before timing for
both sides for the "write" row, so it times only serialization and I/O; "build messages + write" also
builds each message from raw values, as a recorder or converter does.

The reader checks every chunk's CRC before decoding it. A second table prices that check: the same
file read (without typed decoding) by our reader and by the ``mcap`` library with its checks off (how
the reader read before), best of five interleaved runs, and CRC-32 alone over the decompressed chunks.

    python bench/format.py                 # 1,000,000 events (about 3 minutes, mostly OWA)
    python bench/format.py --events 100000 --skip-owa
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _rates(n: int, path: Path, **seconds: float) -> dict[str, float]:
    return {**{k: n / v for k, v in seconds.items()}, "bytes_per_event": path.stat().st_size / n}


def bench_ours(events: list, folder: Path) -> dict[str, float]:
    from capture.format import RecordingReader, RecordingWriter

    path = folder / "ours.mcap"

    def write() -> None:
        with RecordingWriter(path, overwrite=True) as w:
            w.write_all(events)

    def read_rows() -> int:
        with RecordingReader(path) as r:
            return sum(len(rows) for _topic, rows in r.iter_rows())

    def read_typed() -> int:
        with RecordingReader(path) as r:
            return sum(1 for _ in r.iter())

    def build_and_write() -> None:  # as a recorder does: raw input -> message -> file
        with RecordingWriter(path, overwrite=True) as w:
            w.write_all(type(e)(*row) for e, row in zip(events, raw_rows))

    raw_rows = [tuple(getattr(e, f) for f in e.__slots__) for e in events]
    tb, _ = _timed(build_and_write)
    tw, _ = _timed(write)
    tr, n_raw = _timed(read_rows)
    tt, n_typed = _timed(read_typed)
    assert n_raw == n_typed == len(events), (n_raw, n_typed, len(events))
    return _rates(len(events), path, build_write=tb, write=tw, read_raw=tr, read_typed=tt)


def bench_crc(n_events: int, folder: Path, repeats: int = 5) -> dict[str, float]:
    """Events/s reading rows with CRC checks (ours) and without (mcap's reader), and CRC-32's share."""
    import zlib

    import msgpack
    import zstandard
    from mcap.data_stream import ReadDataStream
    from mcap.reader import SeekingReader
    from mcap.records import Chunk

    from capture.format import RecordingReader

    path = folder / "ours.mcap"

    def checked() -> int:
        with RecordingReader(path) as r:
            return sum(len(rows) for _topic, rows in r.iter_rows())

    def unchecked() -> int:
        with open(path, "rb") as f:
            reader = SeekingReader(f, validate_crcs=False)
            return sum(len(msgpack.unpackb(m.data)) for _s, _c, m in reader.iter_messages())

    payloads = []  # what the check runs over: each chunk's decompressed bytes
    with open(path, "rb") as f:
        for index in SeekingReader(f).get_summary().chunk_indexes:
            f.seek(index.chunk_start_offset + 9)
            chunk = Chunk.read(ReadDataStream(f))
            payloads.append(zstandard.decompress(chunk.data, chunk.uncompressed_size))
    best = {"checked": float("inf"), "unchecked": float("inf"), "crc": float("inf")}
    for _ in range(repeats):
        for name, fn in (("checked", checked), ("unchecked", unchecked),
                         ("crc", lambda: [zlib.crc32(p) for p in payloads])):
            best[name] = min(best[name], _timed(fn)[0])
    return {"read_checked": n_events / best["checked"], "read_unchecked": n_events / best["unchecked"],
            "crc_share": best["crc"] / best["checked"]}


def _owa_messages(events: list) -> list[tuple[str, object, int]]:
    from owa.msgs.desktop.keyboard import KeyboardEvent as OwaKey
    from owa.msgs.desktop.mouse import MouseEvent as OwaMouse
    from owa.msgs.desktop.mouse import RawMouseEvent as OwaRaw
    from owa.msgs.desktop.window import WindowInfo

    out = []
    for e in events:
        topic = e.TOPIC
        if topic == "keyboard":
            msg = OwaKey(event_type=e.action, vk=e.vk)
        elif topic == "mouse/raw":
            msg = OwaRaw(last_x=e.dx, last_y=e.dy, button_flags=e.button_flags, button_data=e.button_data)
        elif topic == "mouse":
            if e.action == "move":
                msg = OwaMouse(event_type="move", x=e.x, y=e.y)
            elif e.action == "scroll":
                msg = OwaMouse(event_type="scroll", x=e.x, y=e.y, dx=e.dx, dy=e.dy)
            else:
                msg = OwaMouse(event_type="click", x=e.x, y=e.y, button=e.button, pressed=e.action == "press")
        else:
            x, y, w, h = e.rect
            msg = WindowInfo(title=e.title, rect=(x, y, x + w, y + h), hWnd=e.window_id)
        out.append((topic, msg, e.t_ns))
    return out


def bench_owa(events: list, folder: Path) -> dict[str, float]:
    from mcap_owa.highlevel import OWAMcapReader, OWAMcapWriter

    path = folder / "owa.mcap"
    messages = _owa_messages(events)

    def write() -> None:
        with OWAMcapWriter(str(path)) as w:
            for topic, msg, t in messages:
                w.write_message(msg, topic=topic, timestamp=t)

    def read_raw() -> int:
        with OWAMcapReader(str(path)) as r:
            return sum(1 for m in r.iter_messages() if m.message)

    def read_typed() -> int:
        with OWAMcapReader(str(path)) as r:
            return sum(1 for m in r.iter_messages() if m.decoded is not None)

    def build_and_write() -> None:
        with OWAMcapWriter(str(path)) as w:
            for topic, msg, t in _owa_messages(events):
                w.write_message(msg, topic=topic, timestamp=t)

    tb, _ = _timed(build_and_write)
    tw, _ = _timed(write)
    tr, n_raw = _timed(read_raw)
    tt, n_typed = _timed(read_typed)
    assert n_raw == n_typed == len(events)
    return _rates(len(events), path, build_write=tb, write=tw, read_raw=tr, read_typed=tt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-owa", action="store_true", help="only our format (OWA is slow)")
    args = parser.parse_args()

    from capture.synthetic import synthetic_events

    events = [e for e in synthetic_events(args.events, seed=0)]
    mix: dict[str, int] = {}
    for e in events:
        mix[e.TOPIC] = mix.get(e.TOPIC, 0) + 1
    print(f"{len(events):,} events: " + ", ".join(f"{k} {v / len(events):.1%}" for k, v in sorted(mix.items())))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = bench_ours(events, folder)
        crc = bench_crc(len(events), folder)
        owa = None
        if not args.skip_owa:
            try:
                owa = bench_owa(events, folder)
            except ImportError:
                print("mcap-owa-support / owa-msgs not installed: pip install 'd2e[owa]' to compare")
    rows = [("build messages + write (events/s)", "build_write"), ("write (events/s)", "write"),
            ("read, no typed decode (events/s)", "read_raw"),
            ("read, typed messages (events/s)", "read_typed"), ("bytes/event", "bytes_per_event")]
    print(f"\n| {'metric':<34} | {'d2e':>12} | {'OWA 0.6.6':>12} | {'d2e/OWA':>8} |")
    print(f"|{'-' * 36}|{'-' * 14}|{'-' * 14}|{'-' * 10}|")
    for label, key in rows:
        theirs = f"{owa[key]:>12,.1f}" if owa else f"{'-':>12}"
        ratio = f"{ours[key] / owa[key]:>8.2f}" if owa else f"{'-':>8}"
        print(f"| {label:<34} | {ours[key]:>12,.1f} | {theirs} | {ratio} |")
    print(f"\n| {'reading rows (no typed decode)':<42} | {'events/s':>12} |")
    print(f"|{'-' * 44}|{'-' * 14}|")
    print(f"| {'d2e reader, every chunk CRC-checked':<42} | {crc['read_checked']:>12,.1f} |")
    print(f"| {'mcap library reader, no checks':<42} | {crc['read_unchecked']:>12,.1f} |")
    print(f"| {'checked / unchecked':<42} | {crc['read_checked'] / crc['read_unchecked']:>12.2f} |")
    print(f"| {'CRC-32 alone, share of the checked read':<42} | {crc['crc_share']:>11.1%} |")
    print(f"\n(python {os.sys.version.split()[0]}, {os.cpu_count()} cores; ratios compare one run)")


if __name__ == "__main__":
    main()
