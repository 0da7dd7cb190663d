"""The ``finetune`` verb both simulators share (``d2e transfer libero|nav finetune``): a thin layer over
``transfer.finetune.finetune`` with each simulator's observation and action defaults."""

from __future__ import annotations

import argparse
import json
from typing import Any

# What a policy sees and does in each simulator (TransferConfig fields).
SIMULATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "libero": {"simulator": "libero", "cameras": ["agentview_rgb", "eye_in_hand_rgb"], "state_dim": 8,
               "action": "chunk", "action_dim": 7, "chunk": 8, "execute": 4},
    "nav": {"simulator": "nav", "cameras": ["rgb"], "state_dim": 4, "action": "discrete", "action_dim": 4,
            "chunk": 1, "execute": 1},
}
TRAIN_DEFAULTS = {"max_steps": 2000, "batch_size": 32, "lr": 3e-4, "warmup_steps": 100, "calib_fraction": 0.0,
                  "balance_games": False}


def transfer_configs(simulator: str, pretrained: str | None, overrides: dict[str, Any]):
    """The policy and training configs of a fine-tuning run: the simulator's defaults, the pretrained run's
    encoder (the trunk must fit it), then ``overrides``."""
    from core.config import TrainConfig, route_fields
    from core.nn.trunk import trunk_settings

    from .policy import TransferConfig

    base = {**SIMULATOR_DEFAULTS[simulator], **(trunk_settings(pretrained) if pretrained else {}),
            "pretrained": pretrained, "name": f"{simulator}-{'pretrained' if pretrained else 'scratch'}"}
    model, train = route_fields({**TRAIN_DEFAULTS, **base, **overrides}, TransferConfig, TrainConfig,
                                source="--set")
    return TransferConfig.from_dict(model, "--set"), TrainConfig.from_dict(train, "--set")


def cmd_finetune(args: argparse.Namespace) -> int:
    from core.config import parse_overrides
    from core.run import RunFolder

    from .finetune import finetune
    from .policy import TransferConfig

    run = RunFolder(args.out)
    overrides = parse_overrides(args.set)
    if run.file("config.json").exists() and not args.restart:  # resuming: the run's own configs
        cfg, _data, train = run.resumed_configs(TransferConfig, overrides)
    else:
        cfg, train = transfer_configs(args.simulator, args.pretrained, overrides)
    summary = finetune(args.demos, run, cfg, train, num_workers=args.workers, accelerator=args.accelerator,
                       devices=args.devices, strategy=args.strategy, progress=not args.quiet)
    print(json.dumps(summary, indent=1) if args.json else
          f"fine-tuned {summary['steps']} steps in {summary['seconds']:.0f} s ({summary['parameters']:,} parameters)"
          f" -> {args.out}")
    return 0


def add_finetune_verb(verbs: argparse._SubParsersAction, simulator: str, examples: str) -> argparse.ArgumentParser:
    text = "train a policy on demonstrations, from a pretrained trunk (--pretrained RUN) or from scratch"
    p = verbs.add_parser("finetune", help=text, description=text, epilog=examples,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("demos", nargs="+", help="demo files (.hdf5) or folders of them")
    p.add_argument("--out", required=True, help="run folder (weights, configs, logs); a rerun resumes")
    p.add_argument("--pretrained", help="a 'd2e pretrain' run whose trunk to start from (default: scratch)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. max_steps=4000, batch_size=16, history=2, chunk=8")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.add_argument("--devices", default="auto", help="Lightning devices")
    p.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, fsdp")
    p.add_argument("--restart", action="store_true", help="ignore an existing run in --out and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_finetune, simulator=simulator)
    return p
