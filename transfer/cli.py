"""``d2e transfer libero|nav VERB``: one command group per simulator, each verb a thin layer over a function.

Each simulator's verbs live in their own module (``transfer.cli_libero``, ``transfer.cli_nav``) that only
builds its arguments; a verb imports its simulator (and torch) when it runs, so ``--help`` stays fast and
a missing extra matters only for the verb that needs it.
"""

from __future__ import annotations

import argparse
import importlib

GROUPS: dict[str, tuple[str, str]] = {
    "libero": ("transfer.cli_libero", "LIBERO manipulation: generate-demos, finetune, eval"),
    "nav": ("transfer.cli_nav", "goal-object navigation (MiniWorld; habitat-sim adapter): generate-demos, finetune, "
                                "eval"),
}


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    groups = p.add_subparsers(dest="group", metavar="SIMULATOR", required=True)
    for group, (module, group_help) in GROUPS.items():
        importlib.import_module(module).add_verbs(groups, group, group_help)
    return p
