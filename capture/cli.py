"""Commands for inspecting and editing recordings: info, cat, validate, trim, recover, convert.

Each is a thin layer over a function a user can call from Python (``capture.inspect.info``,
``capture.recover.recover``, ...). Times on the command line are seconds from the recording's first
event unless ``--abs`` is given (then nanoseconds in the recording's clock).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from .errors import D2EError

EXAMPLES = {
    "info": "examples:\n  d2e info run.mcap\n  d2e info run.mcap --json\n  d2e info s3://bucket/run.mcap --no-video",
    "cat": "examples:\n  d2e cat run.mcap --topic keyboard --topic mouse/raw --start 5 --end 10\n"
           "  d2e cat run.mcap --limit 20 | jq .",
    "validate": "examples:\n  d2e validate run.mcap\n  d2e validate *.mcap --json\n"
                "  d2e validate run.mcap --max-drop-pct 2    # fail when over 2 % of the frames were dropped",
    "trim": "examples:\n  d2e trim run.mcap --start 10 --end 70 -o clip.mcap\n"
            "  d2e trim run.mcap --start 10 --end 70 -o clip.mcap --reencode   # exact start",
    "recover": "examples:\n  d2e recover crashed.mcap                 # writes crashed.recovered.mcap/.mkv\n"
               "  d2e recover crashed.mcap -o fixed.mcap",
    "convert": "examples:\n  d2e convert run.mcap --to owamcap -o run_owa.mcap\n"
               "  d2e convert owa_file.mcap --to d2e -o native.mcap",
}


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _time_range(args: argparse.Namespace, reader) -> tuple[int | None, int | None]:
    """--start/--end as absolute ns, checked up front: finite, start before end, overlapping the recording."""
    for flag, value in (("--start", args.start), ("--end", args.end)):
        if value is not None and not math.isfinite(value):
            raise D2EError(f"{flag} {value} is not a finite number", where=flag,
                           fix="give seconds from the first event, e.g. --start 1.5 (or ns with --abs)")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise D2EError(f"--end ({args.end:g}) must be after --start ({args.start:g})", where="--end",
                       fix="an empty or reversed range selects nothing")
    first, last = reader.time_range()
    origin = 0 if args.abs else first
    scale = 1 if args.abs else 1e9
    start = origin + round(args.start * scale) if args.start is not None else None
    end = origin + round(args.end * scale) if args.end is not None else None
    span = (f"{first}..{last} ns" if args.abs else f"0..{(last - first) / 1e9:.3f} s from its first event")
    if (start is not None and start > last) or (end is not None and end <= first):
        raise D2EError(f"the range is outside the recording, which spans {span}", path=reader.path,
                       where="--start/--end", fix="choose times inside it (d2e info shows the span)")
    return start, end


def cmd_info(args: argparse.Namespace) -> int:
    from .inspect import info, render_info

    for i, path in enumerate(args.paths):
        data = info(path, video=not args.no_video)
        if args.json:
            _print_json(data)
        else:
            print(("\n" if i else "") + render_info(data))
    return 0


def cmd_cat(args: argparse.Namespace) -> int:
    from .format import RecordingReader
    from .schema import to_dict

    with RecordingReader(args.path) as reader:
        start, end = _time_range(args, reader)
        out = sys.stdout
        for n, msg in enumerate(reader.iter(topics=args.topic, start_ns=start, end_ns=end)):
            if args.limit is not None and n >= args.limit:
                break
            out.write(json.dumps(to_dict(msg)) + "\n")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .inspect import validate

    worst = 0
    for path in args.paths:
        report = validate(path, video=not args.no_video, max_drop_pct=args.max_drop_pct)
        if args.json:
            _print_json(report.to_dict())
        else:
            for problem in report.problems:
                print(problem.line())
            checked = ", ".join(f"{n} {t}" for t, n in report.checked.items())
            empty = "an empty recording" if report.ok else "nothing readable"
            print(f"{path}: {'OK' if report.ok else 'INVALID'} ({checked or empty}; "
                  f"{len(report.problems)} problem(s))")
        worst = max(worst, 0 if report.ok else 1)
    return worst


def cmd_trim(args: argparse.Namespace) -> int:
    from .format import RecordingReader
    from .trim import trim

    with RecordingReader(args.path) as reader:
        start, end = _time_range(args, reader)
        start = reader.start_ns if start is None else start
        end = reader.end_ns + 1 if end is None else end
    result = trim(args.path, args.output, start, end, reencode=args.reencode, overwrite=args.force)
    if args.json:
        _print_json(result.__dict__)
    else:
        note = " (start moved back to the previous keyframe; use --reencode for an exact cut)" \
            if result.snapped_to_keyframe else ""
        print(f"wrote {result.output}: {result.frames} frames, "
              f"{sum(result.counts.values())} messages, {(result.end_ns - result.start_ns) / 1e9:.3f} s{note}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from .recover import recover

    report = recover(args.path, args.output, video=not args.no_video, overwrite=args.force)
    if args.json:
        _print_json(report.__dict__)
        return 0
    state = "was already finished" if report.was_finished else \
        f"kept {report.mcap_bytes_kept} of {report.mcap_bytes_total} bytes"
    print(f"{args.path}: {state}")
    for part in report.damaged:
        print(f"{args.path}: left out damaged {part}")
    print(f"wrote {report.output}: " + ", ".join(f"{n} {t}" for t, n in sorted(report.counts.items())))
    if report.video_output:
        print(f"wrote {report.video_output}: {report.video_packets} frames"
              + (f" ({report.screen_records_dropped} screen records without a frame dropped)"
                 if report.screen_records_dropped else ""))
    if report.no_frames:
        print("no frames were recorded: an empty recording has no video")
    elif report.video_missing:
        print(f"no video at {report.video_missing}: recovered the events only")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from . import convert

    if args.to == "owamcap":
        result: Any = convert.to_owamcap(args.path, args.output, overwrite=args.force)
    else:
        result = convert.to_native(args.path, args.output, overwrite=args.force)
    if args.json:
        _print_json(result)
    else:
        print(f"wrote {args.output}: {result}")
    return 0


def _add_time_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", type=float, help="start, seconds from the first event (default: beginning)")
    p.add_argument("--end", type=float, help="end (exclusive), seconds from the first event (default: end)")
    p.add_argument("--abs", action="store_true", help="--start/--end are absolute ns in the recording's clock")


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if name in ("info", "validate"):
        p.add_argument("paths", nargs="+", metavar="PATH", help=".mcap file(s): local paths or fsspec URLs")
        p.add_argument("--no-video", action="store_true", help="skip the video checks (faster; no decoding)")
    else:
        p.add_argument("path", help=".mcap file: a local path or an fsspec URL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if name == "validate":
        p.add_argument("--max-drop-pct", type=float, metavar="P",
                       help="fail when more than P %% of the frames were dropped (above 1 %% is always a warning)")
    if name == "cat":
        p.add_argument("--topic", action="append", help="only this topic (repeatable): keyboard, mouse, "
                       "mouse/raw, window, screen")
        p.add_argument("--limit", type=int, help="stop after N messages")
        _add_time_args(p)
    if name in ("trim", "recover", "convert"):
        p.add_argument("-o", "--output", required=name != "recover", help="output .mcap (its video goes beside it)")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    if name == "trim":
        _add_time_args(p)
        p.add_argument("--reencode", action="store_true", help="re-encode the video for an exact start")
    if name == "recover":
        p.add_argument("--no-video", action="store_true", help="recover events only")
    if name == "convert":
        p.add_argument("--to", required=True, choices=["owamcap", "d2e"],
                       help="target format (for OpenAI VPT's layout see 'd2e export-vpt')")
    funcs = {"info": cmd_info, "cat": cmd_cat, "validate": cmd_validate, "trim": cmd_trim,
             "recover": cmd_recover, "convert": cmd_convert}
    p.set_defaults(func=funcs[name])
    return p


__all__ = ["add_parser", "D2EError"]
