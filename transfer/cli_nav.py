"""``d2e transfer nav VERB``: navigation demos, fine-tuning and evaluation.

Each verb is a thin layer over a function a user can call from Python: ``generate-demos`` over
``transfer.demos.nav_generate.generate_demos``, ``finetune`` over ``transfer.finetune.finetune``, ``eval`` over
``transfer.nav_eval.evaluate_nav``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_finetune import add_finetune_verb

TASK_HELP = "MiniWorld task: goal-object (an object named in the instruction among 5 distractors, multi-room " \
            "layouts), fourrooms or maze (MiniWorld's FourRooms / MazeS3 red box)"

EXAMPLES = {
    "generate-demos": """examples:
  d2e transfer nav generate-demos --env goal-object --episodes 200 --seed 0 --out demos/
  d2e transfer nav generate-demos --env fourrooms --episodes 50 --out demos/ --image-size 128 --workers 2
  d2e transfer nav generate-demos --env maze --episodes 50 --out demos/ --json   # report as JSON

Writes demos/ENV/<instruction>_demo.hdf5 (LIBERO's HDF5 layout: obs/rgb, obs/state, actions 0-3 =
turn_left, turn_right, forward, done) and results.json/results.md with the expert's success rate and SPL.
Only successful episodes are kept; a killed run resumes; a finished one is skipped (--force redoes it).
Seeds must stay below 1000000 (the unseen evaluation layouts start there).
""",
    "finetune": """examples:
  d2e transfer nav finetune demos/goal-object --out runs/nav-scratch                      # from scratch
  d2e transfer nav finetune demos/goal-object --pretrained runs/vapt --out runs/nav-vapt  # from a VAPT trunk
  d2e transfer nav finetune demos/goal-object --out runs/nav-scratch --set max_steps=4000 # any setting

The policy sees the RGB frames (history 2), the GPS+compass state and the instruction, and picks one of
turn_left, turn_right, forward, done. The same budget (--set max_steps, batch_size, lr) for every arm.
""",
    "eval": """examples:
  d2e transfer nav eval --model runs/nav-vapt --env goal-object --split unseen --episodes 200 --out results/nav
  d2e transfer nav eval --policy expert --env goal-object --split unseen --episodes 100 --out results/nav-expert
  d2e transfer nav eval --policy random --env fourrooms --split seen --episodes 50 --out results/nav-random --videos 4

Splits: seen = seeds 0..N-1 (the layouts generate-demos uses by default), unseen = seeds 1000000..1000000+N-1.
Writes OUT/results.json and OUT/results.md (success rate with its 95 % Wilson interval, SPL), one JSON line
per episode in OUT/episodes.jsonl (a rerun with the same OUT skips finished episodes) and OUT/videos/*.mp4.
""",
}


def cmd_generate_demos(args: argparse.Namespace) -> int:
    from .demos.nav_generate import generate_demos

    doc = generate_demos(args.env, args.out, episodes=args.episodes, seed=args.seed, image_size=args.image_size,
                         workers=args.workers, max_steps=args.max_steps, force=args.force)
    if args.json:
        print(json.dumps({"summary": doc["summary"], "demo_files": doc["meta"]["demo_files"]}, indent=1))
    else:
        folder = Path(args.out) / args.env
        print((folder / "results.md").read_text(), end="")
        files = doc["meta"]["demo_files"]
        print(f"\n{sum(files.values())} demos in {len(files)} files under {folder}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .nav_eval import evaluate_nav

    doc = evaluate_nav(args.env, args.split, args.episodes, args.out, policy=args.policy, model=args.model,
                       workers=args.workers, videos=args.videos, image_size=args.image_size, max_steps=args.max_steps)
    if args.json:
        print(json.dumps(doc["summary"], indent=1))
    else:
        print((Path(args.out) / "results.md").read_text(), end="")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="goal-object", help=TASK_HELP + " (default: goal-object)")
    p.add_argument("--episodes", type=int, required=True, help="how many episodes")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--image-size", type=int, default=64,
                   help="square RGB observation size in pixels (default 64; a --model uses its own)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--max-steps", type=int, help="step limit per episode (default: the task's)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def add_verbs(groups: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    from .nav_eval import POLICIES, SPLITS  # light: no simulator import

    p = groups.add_parser(name, help=help_text, description=help_text)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    gen_help = "run the planner expert and store its successful episodes as demos"
    gen = verbs.add_parser("generate-demos", help=gen_help, description=gen_help, epilog=EXAMPLES["generate-demos"],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(gen)
    gen.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    gen.add_argument("--force", action="store_true", help="regenerate a task that is already finished")
    gen.set_defaults(func=cmd_generate_demos)

    eval_help = "success rate (95 %% CI) and SPL of a policy on seeded seen/unseen layouts"
    ev = verbs.add_parser("eval", help=eval_help, description=eval_help, epilog=EXAMPLES["eval"],
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(ev)
    ev.add_argument("--policy", default="expert", choices=POLICIES, help="who acts (default expert)")
    ev.add_argument("--model", help="a fine-tuned run ('d2e transfer nav finetune') acts instead of --policy")
    ev.add_argument("--split", default="unseen", choices=list(SPLITS), help="which layouts (default unseen)")
    ev.add_argument("--videos", type=int, default=0, help="record this many episodes as mp4 (default 0)")
    ev.set_defaults(func=cmd_eval)
    add_finetune_verb(verbs, "nav", EXAMPLES["finetune"])
    return p
