"""``d2e transfer libero VERB``: LIBERO demos, fine-tuning and evaluation."""

from __future__ import annotations

import argparse


def add_verbs(groups: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = groups.add_parser(name, help=help_text, description=help_text)
    p.add_subparsers(dest="verb", metavar="VERB", required=True)
    return p
