"""``d2e idm train`` and ``d2e idm eval``: thin commands over ``idm.train.fit`` and ``idm.evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from capture.errors import D2EError

EXAMPLES = """examples:
  d2e generate ale --game Breakout --minutes 5 --out data/ && d2e generate vizdoom --out data/
  d2e idm train data/ --out runs/idm                                  # tiny preset, CPU-friendly
  d2e idm train data/ --out runs/idm --held-out health_gathering      # leave one game out
  d2e idm train data/ --out runs/idm --set max_steps=4000 --set tau_ms=150
  d2e idm train data/ --out runs/vpt --kind ticks                     # VPT-style baseline
  d2e idm train data/ --out runs/base --preset base --accelerator gpu --devices 8 --strategy ddp
  d2e idm train data/ --out runs/idm                                  # again: resumes from the last step
  d2e idm eval --model runs/idm data/ --markdown results.md
  d2e idm eval --labels labels/ web/*.truth.mcap                      # pseudo-labels vs the kept truth
"""


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise D2EError(f"--set {item!r} is not key=value", fix="e.g. --set max_steps=4000")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_config(args: argparse.Namespace):
    from .config import IDMConfig, preset

    out = Path(args.out)
    overrides = _parse_sets(args.set)
    if args.kind:
        overrides["kind"] = args.kind
    if args.config:
        base = json.loads(Path(args.config).read_text())
        return IDMConfig.from_dict({**base, **overrides}, source=args.config)
    if (out / "config.json").exists() and not args.restart:  # resuming: the run's own config
        base = json.loads((out / "config.json").read_text())
        return IDMConfig.from_dict({**base, **overrides}, source=str(out / "config.json"))
    return preset(args.preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from capture.dataset import (
        WindowDataset,
        WindowSpec,
        find_recordings,
        index_recordings,
        split_by_game,
        split_by_recording,
    )
    from capture.tokens import SCREEN, Vocabulary

    from .train import fit

    cfg = build_config(args)
    entries = index_recordings(find_recordings(args.data))
    if args.held_out:
        train, val = split_by_game(entries, args.held_out)
    else:
        train, val = split_by_recording(entries, args.val_fraction, cfg.seed)
    if not train:
        raise D2EError("no training recordings left after the split", fix="pass more data or fewer --held-out games")
    vocab = Vocabulary.default()
    cfg.vocab_size = len(vocab)
    spec = WindowSpec(frames=cfg.frames, stride=max(1, cfg.frames // 2), image_size=cfg.image_size,
                      tau_ms=cfg.tau_ms, merge_motion_ms=cfg.merge_motion_ms, vks=list(cfg.keys))
    train_ds = WindowDataset(train, spec, vocab)
    cfg.keys = list(spec.vks)
    val_ds = WindowDataset(val, WindowSpec(**{**spec.__dict__, "stride": cfg.frames}), vocab) if val else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split = {"train": [e.path for e in train], "val": [e.path for e in val],
             "train_games": sorted({e.game for e in train}), "held_out_games": sorted(set(args.held_out or []))}
    (out / "split.json").write_text(json.dumps(split, indent=1))
    print(f"training {cfg.name} ({cfg.kind}) on {len(train)} recordings / {len(train_ds)} windows of "
          f"{', '.join(split['train_games'])}; validating on {len(val)} recordings -> {out}", file=sys.stderr)
    labels = {"vocab": vocab.to_json(), "vks": spec.vks}
    summary = fit(cfg, train_ds, val_ds, out, labels=labels, pad_id=vocab.pad_id, screen_id=vocab.id(SCREEN),
                  n_keys=len(spec.vks), num_workers=args.workers, accelerator=args.accelerator, devices=args.devices,
                  strategy=args.strategy, num_nodes=args.num_nodes, progress=not args.quiet)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1) if args.json else
          f"trained {summary['steps']} steps in {summary['seconds']:.0f} s ({summary['parameters']:,} parameters)"
          f" -> {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from capture.dataset import find_recordings
    from capture.storage import expand_inputs

    from .evaluate import evaluate, evaluate_labels, render_markdown

    if args.labels:
        result = evaluate_labels(expand_inputs([args.labels], (".mcap",)), expand_inputs(args.data, (".mcap",)))
    else:
        result = evaluate(args.model, find_recordings(args.data), baselines=not args.no_baselines,
                          max_seconds=args.max_seconds, device=args.device)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    markdown = render_markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    print(json.dumps({k: v for k, v in result.items() if k != "per_recording"}, indent=1) if args.json else markdown)
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t = verbs.add_parser("train", help="train an IDM (resumes when --out holds a run)", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("data", nargs="+", help="recordings: files, folders, @list.txt or fsspec URLs")
    t.add_argument("--out", required=True, help="run folder (checkpoint, logs, config, split)")
    t.add_argument("--preset", default="tiny", choices=["tiny", "base", "large"], help="model size (default tiny)")
    t.add_argument("--config", help="a config.json to start from (instead of a preset)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    t.add_argument("--kind", choices=["events", "ticks"], help="events (D2E-style) or ticks (VPT-style baseline)")
    t.add_argument("--held-out", nargs="+", metavar="GAME", help="leave these games out of training (validate on them)")
    t.add_argument("--val-fraction", type=float, default=0.2, help="share of recordings for validation")
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (spawned)")
    t.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    t.add_argument("--devices", default="auto", help="Lightning devices, e.g. 1 or 8")
    t.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, fsdp")
    t.add_argument("--num-nodes", type=int, default=1, help="machines for multi-node DDP/FSDP")
    t.add_argument("--restart", action="store_true", help="ignore an existing run in --out and start over")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the summary as JSON")
    t.set_defaults(func=cmd_train)
    e = verbs.add_parser("eval", help="score a model and the baselines per game", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("data", nargs="+", help="recordings with ground truth")
    e.add_argument("--model", help="run folder from 'd2e idm train' (omit to score only the baselines)")
    e.add_argument("--labels", help="instead of a model: score the 'd2e label' outputs in this folder against "
                                    "the truth files given as data (NAME.truth.mcap from 'd2e export-web')")
    e.add_argument("--no-baselines", action="store_true", help="skip predict-nothing, majority and optical flow")
    e.add_argument("--max-seconds", type=float, help="score only the first N seconds of each recording")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda")
    e.add_argument("--out", help="write the full result (per recording too) as JSON here")
    e.add_argument("--markdown", help="write the per-game tables as Markdown here")
    e.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    e.set_defaults(func=cmd_eval)
    return p
