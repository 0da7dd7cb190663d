"""Damage a valid recording many ways and count what the reader and ``validate`` make of each copy.

Each case applies one mutation to the ``.mcap`` of a small synthetic recording (several chunks): bit
flips, a zeroed range, random bytes over a range, a truncation, or bytes appended (sometimes ending in
the MCAP magic, as a careless concatenation leaves them). It then reads every event back with
``RecordingReader`` and sorts the outcome into one of:

- ``intact``: the original events, nothing said;
- ``lost_with_warning``: some original events missing, none altered, and a warning was raised;
- ``clean_error``: a ``D2EError`` (the one-line error the CLI prints);
- ``silent_loss``: original events missing and no warning;
- ``altered``: an event that is not in the original (a changed field, or a made-up event);
- ``traceback``: any other exception (a bug: the user would see a traceback);
- ``hang``: no answer within the time limit.

and checks ``validate`` on the same copy: every copy whose events differ from the original (or that
the reader refuses) must be reported as invalid ("validate missed" counts those it passed).

    python bench/fuzz_format.py                  # 600 cases
    python bench/fuzz_format.py --cases 5000 --seed 3
    python bench/fuzz_format.py --owamcap        # an OWAMcap file (one JSON message per event)
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MCAP_MAGIC = b"\x89MCAP0\r\n"
KINDS = ("flip", "zero", "overwrite", "truncate", "append")
OUTCOMES = ("intact", "lost_with_warning", "clean_error", "silent_loss", "altered", "traceback", "hang")


@dataclass(frozen=True)
class Mutation:
    """One change to a file's bytes; ``describe()`` says exactly what, so a failing case can be replayed."""

    kind: str
    offset: int = 0
    length: int = 0
    bits: tuple[int, ...] = ()
    payload: bytes = b""

    def apply(self, data: bytes) -> bytes:
        buf = bytearray(data)
        if self.kind == "flip":
            for bit in self.bits:
                buf[bit // 8] ^= 1 << (bit % 8)
        elif self.kind == "zero":
            end = min(len(buf), self.offset + self.length)
            buf[self.offset:end] = bytes(end - self.offset)
        elif self.kind == "overwrite":
            end = min(len(buf), self.offset + len(self.payload))
            buf[self.offset:end] = self.payload[: end - self.offset]
        elif self.kind == "truncate":
            del buf[self.offset:]
        elif self.kind == "append":
            buf += self.payload
        return bytes(buf)

    def describe(self) -> str:
        if self.kind == "flip":
            return f"flip bits {list(self.bits)}"
        if self.kind in ("zero", "truncate"):
            return f"{self.kind} at byte {self.offset}" + (f" (+{self.length})" if self.kind == "zero" else "")
        return f"{self.kind} {len(self.payload)} bytes at {self.offset if self.kind == 'overwrite' else 'end'}"


def random_mutation(rng: random.Random, size: int, kind: str | None = None) -> Mutation:
    kind = kind or rng.choice(KINDS)
    if kind == "flip":
        return Mutation("flip", bits=tuple(sorted(rng.sample(range(size * 8), rng.choice((1, 1, 2, 3, 8))))))
    if kind == "zero":
        return Mutation("zero", offset=rng.randrange(size), length=rng.choice((1, 4, 8, 64, 512, 4096)))
    if kind == "overwrite":
        n = rng.choice((1, 2, 8, 64))
        return Mutation("overwrite", offset=rng.randrange(size), payload=rng.randbytes(n))
    if kind == "truncate":
        return Mutation("truncate", offset=rng.randrange(size))
    payload = rng.randbytes(rng.choice((1, 9, 100, 1000)))
    return Mutation("append", payload=payload + (MCAP_MAGIC if rng.random() < 0.5 else b""))


def event_key(msg: object) -> str:
    from capture.schema import to_dict

    return json.dumps(to_dict(msg), sort_keys=True, default=str)


def read_events(path: Path) -> tuple[list[str], list[str]]:
    """Every event of ``path`` through the reader (as comparable strings, after the recording's metadata
    and end record, so a changed metadata field counts as an altered event) and the warnings raised."""
    from capture.format import RecordingReader

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with RecordingReader(path) as reader:
            events = [json.dumps({"meta": reader.meta.to_dict()}, sort_keys=True)]
            if reader.end_info:
                events.append(json.dumps({"end": reader.end_info}, sort_keys=True))
            events += [event_key(m) for m in reader.iter()]
    return events, [str(w.message) for w in caught]


def classify(original: list[str], events: list[str], warned: list[str]) -> str:
    """One of OUTCOMES for a read that returned (no exception)."""
    if events == original:
        return "intact"
    have = collections.Counter(original)
    got = collections.Counter(events)
    if got - have:
        return "altered"
    return "lost_with_warning" if warned else "silent_loss"


class _Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise _Timeout


def run_case(path: Path, original: list[str], limit_s: int = 20) -> tuple[str, str]:
    """(outcome, detail) of reading ``path``; ``detail`` names the exception or warning."""
    from capture.errors import D2EError

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    try:
        events, warned = read_events(path)
    except _Timeout:
        return "hang", ""
    except D2EError as exc:
        return "clean_error", exc.line()
    except Exception as exc:  # noqa: BLE001 - counting them is the point
        return "traceback", f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return classify(original, events, warned), (warned[0][:160] if warned else "")


def validate_verdict(path: Path) -> str:
    """``ok``, ``invalid`` or ``traceback`` for ``validate(path, video=False)``."""
    from capture.inspect import validate

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok" if validate(str(path), video=False).ok else "invalid"
    except Exception:  # noqa: BLE001
        return "traceback"


def make_recording(folder: Path, seconds: float = 4.0, owamcap: bool = False) -> Path:
    from capture.synthetic import write_synthetic_recording

    path = write_synthetic_recording(folder / "fuzz.mcap", seconds=seconds, size=(64, 48))
    if not owamcap:
        return path
    from capture.convert import to_owamcap

    to_owamcap(str(path), str(folder / "fuzz_owa.mcap"))
    return folder / "fuzz_owa.mcap"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the damaged recording")
    parser.add_argument("--show", type=int, default=3, help="examples to print per bad outcome")
    parser.add_argument("--owamcap", action="store_true", help="damage an OWAMcap file instead of a native one")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rec = make_recording(folder, args.seconds, args.owamcap)
        data = rec.read_bytes()
        original, _ = read_events(rec)
        damaged = folder / "damaged.mcap"
        counts = {kind: collections.Counter() for kind in KINDS}
        missed = collections.Counter()
        intact_verdicts = collections.Counter()
        examples: dict[str, list[str]] = collections.defaultdict(list)
        t0 = time.perf_counter()
        for _ in range(args.cases):
            mutation = random_mutation(rng, len(data))
            mutated = mutation.apply(data)
            damaged.write_bytes(mutated)
            outcome, detail = run_case(damaged, original)
            counts[mutation.kind][outcome] += 1
            verdict = validate_verdict(damaged)
            if outcome == "intact":
                intact_verdicts[verdict] += 1
                if verdict == "ok":
                    unchanged = mutated == data  # e.g. zeros written over zeros
                    intact_verdicts["ok, bytes unchanged"] += unchanged
                    examples["intact, validate ok"].append(mutation.describe() + (" (no byte changed)" if unchanged
                                                                                  else ""))
            else:
                if verdict != "invalid":
                    missed[verdict] += 1
                    examples[f"validate {verdict}"].append(f"{mutation.describe()} [reader: {outcome}]")
            if outcome in ("silent_loss", "altered", "traceback", "hang"):
                examples[outcome].append(f"{mutation.describe()}: {detail}")
        elapsed = time.perf_counter() - t0

    kind = "OWAMcap" if args.owamcap else "native"
    print(f"{args.cases} mutations of a {len(data):,}-byte {kind} recording ({len(original)} events), "
          f"seed {args.seed}, {elapsed:.1f} s\n")
    print(f"| {'mutation':<10} | " + " | ".join(f"{o:>17}" for o in OUTCOMES) + " |")
    print(f"|{'-' * 12}|" + "|".join("-" * 19 for _ in OUTCOMES) + "|")
    total: collections.Counter = collections.Counter()
    for kind in KINDS:
        total.update(counts[kind])
        print(f"| {kind:<10} | " + " | ".join(f"{counts[kind][o]:>17}" for o in OUTCOMES) + " |")
    print(f"| {'all':<10} | " + " | ".join(f"{total[o]:>17}" for o in OUTCOMES) + " |")
    changed = args.cases - total["intact"]
    print(f"\nvalidate on the {changed} copies whose read was not intact: "
          f"{changed - sum(missed.values())} reported invalid, {missed['ok']} passed as OK, "
          f"{missed['traceback']} tracebacks")
    print(f"validate on the {total['intact']} copies read intact: {intact_verdicts['invalid']} reported invalid "
          f"(damage outside the events, e.g. an index), {intact_verdicts['ok']} OK "
          f"({intact_verdicts['ok, bytes unchanged']} of them left every byte as it was), "
          f"{intact_verdicts['traceback']} tracebacks")
    for name, lines in sorted(examples.items()):
        print(f"\n{name} ({len(lines)}), e.g.:")
        for line in lines[: args.show]:
            print(f"  {line}")


if __name__ == "__main__":
    main()
