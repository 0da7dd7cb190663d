"""``d2e transfer libero VERB``: LIBERO demos, fine-tuning and evaluation.

Each verb is a thin layer over a function a user can call from Python: ``generate-demos`` over
``transfer.demos.libero_generate.generate_demos``, ``eval`` over ``transfer.libero_eval.evaluate_libero``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_finetune import add_finetune_verb

EXAMPLES = {
    "generate-demos": """examples:
  d2e transfer libero generate-demos --suite libero_object --per-task 20 --out demos/
  d2e transfer libero generate-demos --suite libero_spatial --tasks 0 4 --per-task 5 --out demos/ --workers 2
  d2e transfer libero generate-demos --suite libero_object --per-task 20 --out demos/ --image-size 224 \\
      --cameras agentview

Writes demos/SUITE/<task name>_demo.hdf5 (the official LIBERO layout: obs/agentview_rgb, obs/eye_in_hand_rgb
in LIBERO's raw orientation, obs/ee_pos, obs/ee_ori, obs/gripper_states, obs/joint_states, actions, states,
rewards, dones) and results.json/results.md with the expert's success rate per task and for the suite.
Every demo starts from a freshly sampled placement (never a benchmark init state, which eval uses); only
episodes the simulator's check_success() accepts are kept. A killed run resumes; a finished task is skipped
(--force redoes the suite). Rendering dominates the cost (~7 steps/s with two 128 px cameras on a CPU).
""",
    "finetune": """examples:
  d2e transfer libero finetune demos/libero_object --out runs/object-scratch                  # from scratch
  d2e transfer libero finetune demos/libero_object --pretrained runs/vapt --out runs/object-vapt
  d2e transfer libero finetune official/libero_object/ --out runs/object-official            # LIBERO's own HDF5
  d2e transfer libero finetune demos/libero_object --out runs/object-scratch --set max_steps=6000 --set chunk=8

The policy sees both cameras (history 2), the proprio state and the instruction, and predicts a chunk of
7-D actions (L1, OpenVLA-OFT's recipe). The same budget (--set max_steps, batch_size, lr) for every arm.
""",
    "eval": """examples:
  d2e transfer libero eval --model runs/object-vapt --suite libero_object --init-states 10 --out results/vapt
  d2e transfer libero eval --policy expert --suite libero_object --init-states 10 --out results/object-expert
  d2e transfer libero eval --policy random --suite libero_spatial --tasks 0 1 --init-states 5 --out results/rand
  d2e transfer libero eval --policy replay --suite libero_object --workers 2 --videos 4 --out results/replay

Episodes are the benchmark's fixed init states (the first --init-states K of each task's 50) with the
suite's horizon (spatial 220, object 280, goal 300, libero_10 520 steps). Policies: expert (the scripted
expert, privileged state), replay (the expert's plan made without cameras, replayed blind: the demo
pipeline), random (uniform actions). Writes OUT/results.json and OUT/results.md (success rate per task and
overall with 95 % Wilson intervals), one JSON line per episode in OUT/episodes.jsonl (a rerun with the same
OUT skips finished episodes) and OUT/videos/*.mp4 for --videos K episodes.
""",
}


def cameras(text: str) -> tuple[str, ...]:
    """``agentview,wrist`` -> ``("agentview", "wrist")``."""
    from .envs.libero import CAMERAS

    names = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in names if c not in CAMERAS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"cameras are a comma-separated subset of {','.join(CAMERAS)}, "
                                         f"got {text!r}")
    return names


def cmd_generate_demos(args: argparse.Namespace) -> int:
    from .demos.libero_generate import generate_demos

    doc = generate_demos(args.suite, args.out, tasks=args.tasks, per_task=args.per_task, image_size=args.image_size,
                         cameras=args.cameras, workers=args.workers, seed=args.seed, max_attempts=args.max_attempts,
                         force=args.force)
    if args.json:
        print(json.dumps({"summary": doc["summary"], "demo_files": doc["meta"]["demo_files"],
                          "no_expert": doc["meta"]["no_expert"]}, indent=1))
    else:
        folder = Path(args.out) / args.suite
        print((folder / "results.md").read_text(), end="")
        print(f"\n{len(doc['meta']['demo_files'])} demo files under {folder}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .libero_eval import evaluate_libero

    doc = evaluate_libero(args.suite, args.out, policy=args.policy, model=args.model, tasks=args.tasks,
                          init_states=args.init_states, workers=args.workers, videos=args.videos,
                          image_size=args.image_size, cameras=args.cameras, seed=args.seed)
    if args.json:
        print(json.dumps(doc["summary"], indent=1))
    else:
        print((Path(args.out) / "results.md").read_text(), end="")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from .envs.libero import DEFAULT_CAMERAS, SUITES  # light: LIBERO itself is imported when a verb runs

    p.add_argument("--suite", required=True, choices=SUITES, help="LIBERO suite")
    p.add_argument("--tasks", type=int, nargs="+", metavar="N", help="task numbers in the suite (default: all)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--image-size", type=int, default=128, help="square camera image size in pixels (default 128)")
    p.add_argument("--cameras", type=cameras, default=DEFAULT_CAMERAS,
                   help="cameras to render, comma-separated: agentview,wrist (default both)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def add_verbs(groups: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    from .libero_eval import POLICIES  # light: no simulator import

    p = groups.add_parser(name, help=help_text, description=help_text)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    gen_help = "run the scripted expert on fresh placements and store its successful episodes as demos"
    gen = verbs.add_parser("generate-demos", help=gen_help, description=gen_help, epilog=EXAMPLES["generate-demos"],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(gen)
    gen.add_argument("--per-task", type=int, default=20, help="demos per task (default 20)")
    gen.add_argument("--max-attempts", type=int, help="episodes tried per task at most (default 2 x per-task + 5)")
    gen.add_argument("--force", action="store_true", help="regenerate the suite's folder from scratch")
    gen.set_defaults(func=cmd_generate_demos)

    eval_help = "success rate (95 %% CI) of a policy over the benchmark's fixed init states"
    ev = verbs.add_parser("eval", help=eval_help, description=eval_help.replace("%%", "%"), epilog=EXAMPLES["eval"],
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(ev)
    ev.add_argument("--policy", default="expert", choices=POLICIES, help="who acts (default expert)")
    ev.add_argument("--model", help="a fine-tuned run ('d2e transfer libero finetune') acts instead of --policy "
                                    "(rendered at its own image size and cameras)")
    ev.add_argument("--init-states", type=int, metavar="K", help="first K fixed init states per task (default all 50)")
    ev.add_argument("--videos", type=int, default=0, help="record this many episodes as mp4 (default 0)")
    ev.set_defaults(func=cmd_eval)
    add_finetune_verb(verbs, "libero", EXAMPLES["finetune"])
    return p
