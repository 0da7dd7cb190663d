"""``d2e pretrain``: a thin command over ``pretrain.train.pretrain``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """examples:
  d2e pretrain data/ --out runs/vapt                                    # ground-truth recordings, tiny preset
  d2e pretrain data/ --pseudo labels/ --pseudo-weight 0.5 --out runs/vapt-pl   # plus pseudo-labeled videos
  d2e pretrain data/ --pseudo labels/ --min-confidence 0.6 --out runs/vapt-pl  # only confident pseudo-labels
  d2e pretrain data/ --out runs/vapt --set max_steps=4000               # any model/data/training setting
  d2e pretrain data/ --out runs/vapt-base --preset base --accelerator gpu --devices 8 --strategy ddp
  d2e pretrain data/ --out runs/vapt                                    # again: resumes from the last step
"""


def cmd_pretrain(args: argparse.Namespace) -> int:
    from core.config import parse_overrides
    from core.run import RunFolder

    from .config import PolicyConfig, configs_from, preset
    from .train import pretrain

    overrides = parse_overrides(args.set)
    run = RunFolder(args.out)
    if run.file("config.json").exists() and not args.restart:  # resuming: the run's own configs
        cfg, data, train = run.resumed_configs(PolicyConfig, overrides)
    elif args.config:
        cfg, data, train = configs_from({**json.loads(Path(args.config).read_text()), **overrides}, args.config)
    else:
        cfg, data, train = preset(args.preset, **overrides)
    summary = pretrain(args.data, run, cfg, data, train, pseudo_paths=args.pseudo or (),
                       pseudo_weight=args.pseudo_weight, min_confidence=args.min_confidence,
                       num_workers=args.workers, accelerator=args.accelerator, devices=args.devices,
                       strategy=args.strategy, num_nodes=args.num_nodes, progress=not args.quiet)
    metrics = summary["metrics"]
    val = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith("val/") and
                    k.split("/")[1] in ("loss", "token_acc", "event_type_acc"))
    print(json.dumps(summary, indent=1) if args.json else
          f"pretrained {summary['steps']} steps in {summary['seconds']:.0f} s ({summary['parameters']:,} parameters)"
          f"{'; ' + val if val else ''} -> {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="*", help="ground-truth recordings: files, folders, @list.txt or fsspec URLs")
    p.add_argument("--out", required=True, help="run folder (weights, configs, mixture, logs)")
    p.add_argument("--pseudo", nargs="+", metavar="LABELS", help="pseudo-labeled recordings ('d2e label' outputs)")
    p.add_argument("--pseudo-weight", type=float, default=0.5,
                   help="share of training windows drawn from the pseudo-labels when both are given (default 0.5)")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="leave out pseudo-labeled events the labeler was less sure of (0-1)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "base", "large"], help="model size (default tiny)")
    p.add_argument("--config", help="a JSON file of settings to start from (instead of a preset)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (spawned)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.add_argument("--devices", default="auto", help="Lightning devices, e.g. 1 or 8")
    p.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, fsdp")
    p.add_argument("--num-nodes", type=int, default=1, help="machines for multi-node DDP/FSDP")
    p.add_argument("--restart", action="store_true", help="ignore an existing run in --out and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_pretrain)
    return p
