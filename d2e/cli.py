"""``d2e``: composes each stage's commands and imports a stage only when one of its commands runs.

Stages register their commands in ``COMMANDS`` by module path, so ``d2e info`` never imports torch and
a missing optional extra only matters for the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

# command -> (module that defines add_parser(subparsers) for it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("d2e.demo", "the whole loop on embedded defaults: a recording, games, an IDM, pseudo-labels (main job)"),
    "info": ("capture.cli", "summary of a recording: duration, topics, counts, rates, metadata, video"),
    "cat": ("capture.cli", "print messages as JSON lines, filtered by topic and time"),
    "validate": ("capture.cli", "check schema, timestamps, frame/pts consistency and video; list every problem"),
    "trim": ("capture.cli", "cut a time range out of a recording (video cut on keyframes or re-encoded)"),
    "recover": ("capture.cli", "rebuild a finished recording from one whose writer was killed"),
    "convert": ("capture.cli", "convert between the native format and OWAMcap (lossless both ways)"),
    "record": ("capture.recorder.cli", "record the desktop (screen + keyboard + mouse + raw mouse + window) on X11"),
    "generate": ("capture.sources.cli", "record real games (ALE Atari, ViZDoom) played by a human-like policy"),
    "export-web": ("capture.sources.cli", "a recording's video alone (rescaled/re-encoded) + its ground truth"),
    "export-vpt": ("d2e.export_vpt", "a recording in OpenAI VPT's layout: mp4 at 20 fps + one JSON action per tick"),
    "idm": ("idm.cli", "inverse dynamics models: train, eval, label (d2e idm train|eval|label)"),
    "label": ("idm.cli", "pseudo-label gameplay videos with an IDM (= d2e idm label): resumable, sharded, Ray"),
    "report": ("d2e.report", "an HTML report (plots, tables, rollouts) of a 'd2e demo' run folder"),
    "pretrain": ("pretrain.cli", "VAPT: pretrain a vision-action policy on recordings and pseudo-labeled videos"),
    "transfer": ("transfer.cli", "fine-tune and evaluate a policy on LIBERO manipulation and navigation"),
}

EPILOG = """examples:
  d2e demo                                  # the whole loop on a CPU, embedded defaults
  d2e info run.mcap                         # what is in a recording
  d2e cat run.mcap --topic keyboard --start 5 --end 10
  d2e validate run.mcap --json
  d2e convert run.mcap --to owamcap -o run_owa.mcap
"""


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d2e", description="D2E: desktop gameplay to training signal for embodied AI.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == wanted:
            stage = importlib.import_module(module)
            getattr(stage, f"add_{name}_parser", stage.add_parser)(sub, name, help_text)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    from capture.errors import D2EError

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if not argv else 2
    default_show = warnings.showwarning
    warnings.showwarning = _one_line_warnings(args.command, default_show)
    try:
        return int(args.func(args) or 0)
    except D2EError as exc:
        print(f"d2e {args.command}: error: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"d2e {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        warnings.showwarning = default_show


def _one_line_warnings(command: str, default_show: Callable[..., None]) -> Callable[..., None]:
    """Our own warnings (a damaged chunk skipped, an unfinished file) as one line each, like our errors;
    other libraries' warnings keep Python's format."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if category.__module__.split(".")[0] in {"capture", "core", "idm", "pretrain", "transfer", "d2e"}:
            print(f"d2e {command}: warning: {message}", file=sys.stderr)
        else:
            default_show(message, category, filename, lineno, file, line)

    return show


if __name__ == "__main__":
    sys.exit(main())
