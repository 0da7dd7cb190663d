"""``d2e export-vpt``: a recording in OpenAI VPT's layout (``core.vpt``), for tools built around VPT's data."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  d2e export-vpt run.mcap -o vpt/run.mp4        # vpt/run.mp4 (20 fps, one frame per tick) + vpt/run.jsonl
"""


def cmd_export_vpt(args: argparse.Namespace) -> int:
    from core.vpt import to_vpt

    result = to_vpt(args.path, args.output, overwrite=args.force)
    print(json.dumps(result) if args.json else f"wrote {result['mp4']} and {result['jsonl']}: {result['ticks']} ticks")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help=".mcap recording: a local path or an fsspec URL")
    p.add_argument("-o", "--output", required=True, help="output .mp4 (the .jsonl goes beside it)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_export_vpt)
    return p
