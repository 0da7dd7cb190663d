"""``d2e idm train|calibrate|eval|label`` (and ``d2e label``, the same as ``d2e idm label``): thin commands over
``idm.train``, ``idm.evaluate`` and ``idm.label``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from capture.errors import D2EError

EXAMPLES = """examples:
  d2e generate ale --game Breakout --minutes 5 --out data/ && d2e generate vizdoom --out data/
  d2e idm train data/ --out runs/idm                                  # tiny preset, CPU-friendly
  d2e idm train data/ --out runs/idm --held-out health_gathering      # leave one game out
  d2e idm train data/ --out runs/idm --set max_steps=4000 --set tau_ms=150
  d2e idm train data/ --out runs/vpt --kind ticks                     # VPT-style baseline
  d2e idm train data/ --out runs/base --preset base --accelerator gpu --devices 8 --strategy ddp
  d2e idm train data/ --out runs/idm                                  # again: resumes from the last step
  d2e idm calibrate runs/idm                                          # re-choose its decision thresholds
  d2e idm eval --model runs/idm data/ --markdown results.md
  d2e idm eval --labels labels/ web/*.truth.mcap                      # pseudo-labels vs the kept truth
  d2e idm label videos/ --model runs/idm --out labels/                # the same as: d2e label ...
"""

LABEL_EXAMPLES = """examples:
  d2e label videos/ --model runs/idm --out labels/
  d2e label videos/ --model runs/idm --out labels/ --shard 0/4        # one of 4 machines
  d2e label @list.txt --model runs/idm --out labels/ --ray             # local Ray cluster, 2 workers
  d2e label s3://bucket/gameplay/*.mp4 --model runs/idm --out labels/ --ray --ray-address auto
  d2e label videos/ --model runs/idm --out labels/ --skip-start 30 --skip-end 30 --segment 120
  d2e label breakout/ --model runs/idm --out labels/ --game breakout  # a training game's own thresholds

A rerun with the same --out skips finished videos and segments; Ctrl-C is safe at any time.
"""


def build_configs(args: argparse.Namespace):
    """A preset, a --config file, or (resuming) the run's own configs; then the --set overrides."""
    from core.config import parse_overrides
    from core.run import RunFolder

    from .config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig, configs_from, preset

    overrides = parse_overrides(args.set)
    if args.kind:
        overrides["kind"] = args.kind
    run = RunFolder(args.out)
    if args.config:
        base = json.loads(Path(args.config).read_text())
        return configs_from({**base, **overrides}, source=args.config)
    if run.file("config.json").exists() and not args.restart:  # resuming: the run's own configs
        return run.resumed_configs(IDMConfig, overrides, SAVED_BEFORE_FIELD_EXISTED)
    return preset(args.preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from core.run import RunFolder

    from .train import train_idm

    cfg, data, train = build_configs(args)
    summary = train_idm(args.data, RunFolder(args.out), cfg, data, train, held_out=args.held_out or (),
                        val_fraction=args.val_fraction, num_workers=args.workers, accelerator=args.accelerator,
                        devices=args.devices, strategy=args.strategy, num_nodes=args.num_nodes,
                        progress=not args.quiet)
    print(json.dumps(summary, indent=1) if args.json else
          f"trained {summary['steps']} steps in {summary['seconds']:.0f} s ({summary['parameters']:,} parameters)"
          f" -> {args.out}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from core.run import RunFolder

    from .train import calibrate_run

    run = RunFolder(args.run)
    if not run.file("config.json").exists():
        raise D2EError("not a run folder (no config.json)", path=args.run, fix="pass a folder from 'd2e idm train'")
    calibrate_run(run)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from capture.storage import expand_inputs
    from core.data.index import find_recordings

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


def cmd_label(args: argparse.Namespace) -> int:
    from capture.storage import atomic_output
    from core.data.frames import discover_videos

    from .label import LabelOptions, foreign_outputs, run_local, run_ray, select_shard
    from .predict import calibrated_games, load_labeler, model_info

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    if args.threads:  # on a shared machine torch's one-thread-per-core default oversubscribes the CPU
        import torch

        torch.set_num_threads(args.threads)
    videos = select_shard(discover_videos(args.inputs, args.glob), args.shard)
    if not videos:
        raise D2EError("no videos found", path=" ".join(args.inputs),
                       fix="pass video files, folders, @list.txt or URLs (suffixes: mp4, mkv, webm, flv, mov...)")
    info = model_info(args.model)
    games = calibrated_games(args.model)
    if args.game is not None and args.game not in games:
        raise D2EError(f"the model has no thresholds of its own for game {args.game!r}", path=args.model,
                       fix=f"use one of {games} or omit --game (a game it never saw gets the pooled thresholds)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    foreign = foreign_outputs(out, info)
    if foreign and not args.replace:
        raise D2EError(f"{len(foreign)} finished output(s) here were made by another model (e.g. {foreign[0]})",
                       path=out, fix="use a new --out folder, or --replace to relabel them with this model")
    opts = LabelOptions(segment_s=args.segment, skip_start_s=args.skip_start, skip_end_s=args.skip_end,
                        min_motion=args.min_motion, image_size=info["image_size"], aspect=info["aspect"],
                        copy_video=args.copy_video, owamcap=args.owamcap, min_confidence=args.min_confidence,
                        game=args.game)
    print(f"labeling {len(videos)} video(s) with {info['model_id']} ({info['kind']}, config {info['config_hash']})"
          f" -> {out}", file=sys.stderr)
    if args.ray:
        model, device, batch, game = args.model, args.device, args.batch_size, args.game
        summary = run_ray(videos, out, lambda: load_labeler(model, device=device, batch_size=batch, game=game), opts,
                          info, address=args.ray_address, num_workers=args.workers,
                          gpus_per_worker=1.0 if args.device.startswith("cuda") else 0.0)
    else:
        labeler = load_labeler(args.model, device=args.device, batch_size=args.batch_size, game=args.game)
        summary = run_local(videos, out, labeler, opts, info, progress=not args.quiet)
    report = {**asdict(summary), "realtime_factor": summary.realtime_factor}
    with atomic_output(out / "run_summary.json", overwrite=True) as tmp:  # private like every output (0600)
        tmp.write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"done: {summary.labeled} labeled, {summary.skipped_done} already done, {summary.failed} failed; "
              f"{summary.labeled_hours * 3600:.1f} s of video in {summary.seconds:.1f} s "
              f"({summary.realtime_factor:.2f}x real time)")
        for video, reason in summary.failures.items():
            print(f"  failed: {video}: {reason}")
    return 1 if summary.failed else 0  # a script must notice that some videos were not labeled


def _verb(verbs: argparse._SubParsersAction, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    return verbs.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def add_label_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive), @list.txt, or fsspec URLs/globs")
    p.add_argument("--model", required=True, help="run folder from 'd2e idm train'")
    p.add_argument("--out", required=True, help="output folder (one NAME.mcap + NAME.json per video)")
    p.add_argument("--glob", help="only files whose name matches this pattern inside folders, e.g. '*.mp4'")
    p.add_argument("--segment", type=float, default=120.0, help="segment length in seconds (default 120)")
    p.add_argument("--skip-start", type=float, default=0.0, help="seconds to skip at the start of each video")
    p.add_argument("--skip-end", type=float, default=0.0, help="seconds to skip at the end of each video")
    p.add_argument("--min-motion", type=float, default=5.0,
                   help="skip a segment as static (menu, pause) when fewer than this %% of its consecutive frames "
                        "change visibly (default 5; 0 labels everything)")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="leave out events the model is less sure of (0-1; a key press and its release together)")
    p.add_argument("--game", help="the videos show this training game: decide at the thresholds calibrated on it "
                                   "(default: the pooled ones, for games the model never saw)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (bf16 autocast on CUDA)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for inference (default: one per core; lower it when other jobs share the CPU)")
    p.add_argument("--shard", help="i/N: label only every N-th video starting at i (deterministic)")
    p.add_argument("--copy-video", action="store_true",
                   help="copy each video beside its labels (default: reference it by absolute path or URL)")
    p.add_argument("--owamcap", action="store_true",
                   help="also write NAME.owa.mcap (OWAMcap, for OWA's tools; confidences stay in NAME.mcap)")
    p.add_argument("--ray", action="store_true", help="run as a Ray Data pipeline (pip install 'd2e[ray]')")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--workers", type=int, default=2, help="Ray workers (each loads the model once)")
    p.add_argument("--replace", action="store_true",
                   help="relabel outputs in --out that another model made (default: refuse, to keep them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=cmd_label)


def add_label_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """``d2e label``: the alias of ``d2e idm label``."""
    p = _verb(sub, name, help_text, LABEL_EXAMPLES)
    add_label_arguments(p)
    return p


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t = _verb(verbs, "train", "train an IDM (resumes when --out holds a run)", EXAMPLES)
    t.add_argument("data", nargs="+", help="recordings: files, folders, @list.txt or fsspec URLs")
    t.add_argument("--out", required=True, help="run folder (weights, configs, split, logs)")
    t.add_argument("--preset", default="tiny", choices=["tiny", "base", "large"], help="model size (default tiny)")
    t.add_argument("--config", help="a JSON file of settings to start from (instead of a preset)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a model, data or training setting (repeatable), e.g. max_steps=4000, tau_ms=150")
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
    c = _verb(verbs, "calibrate", "re-choose a trained run's decision thresholds (pooled and per training game) on "
                                  "the held-back tail of its training recordings", EXAMPLES)
    c.add_argument("run", help="run folder from 'd2e idm train'")
    c.set_defaults(func=cmd_calibrate)
    e = _verb(verbs, "eval", "score a model and the baselines per game", EXAMPLES)
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
    add_label_arguments(_verb(verbs, "label", "pseudo-label gameplay videos with an IDM (also: d2e label)",
                              LABEL_EXAMPLES))
    return p
