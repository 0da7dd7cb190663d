"""``d2e label``: the command over ``idm.label`` (see its docstring for what a run does)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from capture.errors import D2EError

EXAMPLES = """examples:
  d2e label videos/ --model runs/idm --out labels/
  d2e label videos/ --model runs/idm --out labels/ --shard 0/4        # one of 4 machines
  d2e label @list.txt --model runs/idm --out labels/ --ray             # local Ray cluster, 2 workers
  d2e label s3://bucket/gameplay/*.mp4 --model runs/idm --out labels/ --ray --ray-address auto
  d2e label videos/ --model runs/idm --out labels/ --skip-start 30 --skip-end 30 --segment 120

A rerun with the same --out skips finished videos and segments; Ctrl-C is safe at any time.
"""


def cmd_label(args: argparse.Namespace) -> int:
    from .label import LabelOptions, foreign_outputs, run_local, run_ray, select_shard
    from .labeler import load_labeler, model_info
    from .sources import discover

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    if args.threads:  # on a shared machine torch's one-thread-per-core default oversubscribes the CPU
        import torch

        torch.set_num_threads(args.threads)
    videos = select_shard(discover(args.inputs, args.glob), args.shard)
    if not videos:
        raise D2EError("no videos found", path=" ".join(args.inputs),
                       fix="pass video files, folders, @list.txt or URLs (suffixes: mp4, mkv, webm, flv, mov...)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = model_info(args.model)
    foreign = foreign_outputs(out, info)
    if foreign and not args.replace:
        raise D2EError(f"{len(foreign)} finished output(s) here were made by another model (e.g. {foreign[0]})",
                       path=out, fix="use a new --out folder, or --replace to relabel them with this model")
    opts = LabelOptions(segment_s=args.segment, skip_start_s=args.skip_start, skip_end_s=args.skip_end,
                        min_motion=args.min_motion, image_size=info["image_size"], copy_video=args.copy_video,
                        owamcap=args.owamcap)
    print(f"labeling {len(videos)} video(s) with {info['model_id']} ({info['kind']}, config {info['config_hash']})"
          f" -> {out}", file=sys.stderr)
    if args.ray:
        model, device, batch = args.model, args.device, args.batch_size
        summary = run_ray(videos, out, lambda: load_labeler(model, device=device, batch_size=batch), opts, info,
                          address=args.ray_address, num_workers=args.workers,
                          gpus_per_worker=1.0 if args.device.startswith("cuda") else 0.0)
    else:
        labeler = load_labeler(args.model, device=args.device, batch_size=args.batch_size)
        summary = run_local(videos, out, labeler, opts, info, progress=not args.quiet)
    report = {**asdict(summary), "realtime_factor": summary.realtime_factor}
    (out / "run_summary.json").write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"done: {summary.labeled} labeled, {summary.skipped_done} already done, {summary.failed} failed; "
              f"{summary.labeled_hours * 3600:.1f} s of video in {summary.seconds:.1f} s "
              f"({summary.realtime_factor:.2f}x real time)")
        for video, reason in summary.failures.items():
            print(f"  failed: {video}: {reason}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive), @list.txt, or fsspec URLs/globs")
    p.add_argument("--model", required=True, help="checkpoint folder from 'd2e idm train'")
    p.add_argument("--out", required=True, help="output folder (one NAME.mcap + NAME.json per video)")
    p.add_argument("--glob", help="only files whose name matches this pattern inside folders, e.g. '*.mp4'")
    p.add_argument("--segment", type=float, default=120.0, help="segment length in seconds (default 120)")
    p.add_argument("--skip-start", type=float, default=0.0, help="seconds to skip at the start of each video")
    p.add_argument("--skip-end", type=float, default=0.0, help="seconds to skip at the end of each video")
    p.add_argument("--min-motion", type=float, default=5.0,
                   help="skip a segment as static (menu, pause) when fewer than this %% of its consecutive frames "
                        "change visibly (default 5; 0 labels everything)")
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
    return p
