"""LIBERO benchmark: the scripted expert's success per task, and what simulation and rendering cost.

Two tables (Markdown), the numbers in docs/libero_expert.md:

- ``--expert``: per task, the expert's success over N fresh placements (the demos' distribution; seeds as
  ``generate-demos --seed 0`` uses them) and/or the first K fixed init states (evaluation's), planned
  without cameras, with 95 % Wilson intervals, mean steps and seconds per episode. Resumable: episodes are
  logged under ``--out`` (one folder per suite and episode kind) and a rerun skips finished ones.
- ``--speed``: steps/s without rendering (the expert planning), with agentview + wrist and agentview
  alone at 128 px and both at 64 px (random actions, every frame read; and 2 of every 4, as a chunked
  policy reads them), seconds per recorded demo (plan + replay with both cameras) and per
  evaluation episode (expert closed loop; it reads no image), in wall and CPU seconds of this process.

    python bench/libero_sim.py --expert --suites libero_object libero_spatial --fresh 10 --workers 2
    python bench/libero_sim.py --expert --suites libero_goal libero_10 --fresh 10 --init-states 10
    python bench/libero_sim.py --speed
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path


def expert_table(suite: str, kind: str, count: int, out: Path, workers: int) -> dict:
    from transfer.demos.libero_expert import LiberoExpert, expert_gap
    from transfer.demos.libero_generate import demo_seed
    from transfer.envs.libero import fresh_episode, init_state_episodes, make_env, suite_tasks
    from transfer.evaluate import run_episodes, summarize

    tasks = suite_tasks(suite)
    if kind == "fresh":
        specs = [fresh_episode(t, i, demo_seed(0, t.number, i)) for t in tasks for i in range(count)]
    else:
        specs = [s for t in tasks for s in init_state_episodes(t, count)]
    results = run_episodes(functools.partial(make_env, cameras=()), LiberoExpert, specs, workers=workers,
                           out_dir=out / f"{suite}-{kind}")
    summary = summarize(results)
    summary["gaps"] = {t.key: gap for t in tasks if (gap := expert_gap(t))}
    summary["numbers"] = {t.key: t.number for t in tasks}
    return summary


def print_expert(tables: dict[tuple[str, str], dict]) -> None:
    print("| suite | episodes | task | success | 95 % CI | mean steps | s/episode (planning) |")
    print("|---|---|---|---|---|---|---|")
    for (suite, kind), summary in tables.items():
        for task, g in sorted(summary["tasks"].items(), key=lambda item: summary["numbers"][item[0]]):
            name = f"{summary['numbers'][task]}: {task.split('/', 1)[1]}" + (" (no expert)" if task in summary["gaps"]
                                                                               else "")
            print(f"| {suite} | {kind} | {name} | {g['successes']}/{g['episodes']} | "
                  f"{100 * g['ci95'][0]:.0f}-{100 * g['ci95'][1]:.0f} % | {g['mean_steps']:.0f} | "
                  f"{g['seconds_per_episode']:.1f} |")
        g = summary["overall"]
        print(f"| {suite} | {kind} | **all** | **{g['successes']}/{g['episodes']}** | {100 * g['ci95'][0]:.0f}-"
              f"{100 * g['ci95'][1]:.0f} % | {g['mean_steps']:.0f} | {g['seconds_per_episode']:.1f} |")


def _timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def speed(task_key: str, steps: int) -> list[tuple[str, float, float, str]]:
    import tempfile

    import numpy as np

    from transfer.demos.libero_expert import LiberoExpert, ReplayPolicy, plan_episode
    from transfer.demos.libero_generate import record_demo
    from transfer.envs.libero import LiberoEnv, find_task, fresh_episode, init_state_episodes
    from transfer.evaluate import run_episode

    task = find_task(task_key)
    rows = []
    twin = LiberoEnv(task, cameras=())
    plan, wall, cpu = _timed(plan_episode, twin, fresh_episode(task, 0, 1))
    rows.append(("expert planning, no rendering", plan.steps / wall, plan.steps / cpu, "steps/s"))
    twin.close()
    rng = np.random.default_rng(0)

    def run(env: LiberoEnv, read_every: int) -> None:
        for k in range(steps):  # images render when read: read them as a policy would
            obs = env.step(rng.uniform(-1, 1, 7))[0]
            if k % read_every < 2:
                [obs[key] for key in obs]

    for cameras, size, every, what in ((("agentview", "wrist"), 128, 1, "every frame"),
                                       (("agentview",), 128, 1, "every frame"),
                                       (("agentview", "wrist"), 64, 1, "every frame"),
                                       (("agentview", "wrist"), 64, 4, "2 of 4 frames, as a policy executing 4 of "
                                                                          "each chunk reads them")):
        env = LiberoEnv(task, cameras=cameras, image_size=size)
        env.reset(init_state_episodes(task, 1)[0])
        _, wall, cpu = _timed(run, env, every)
        rows.append((f"random actions, {' + '.join(cameras)} at {size} px, {what}", steps / wall, steps / cpu,
                     "steps/s"))
        env.close()
    env = LiberoEnv(task, cameras=("agentview", "wrist"), image_size=128)
    with tempfile.TemporaryDirectory() as tmp:
        result, wall, cpu = _timed(record_demo, env, None, fresh_episode(task, 1, 2), cache_dir=tmp)
    rows.append((f"one demo ({result.steps} steps, plan + replay with both cameras, saved)", wall, cpu, "s"))
    spec = init_state_episodes(task, 1)[0]
    result, wall, cpu = _timed(run_episode, env, LiberoExpert(env), spec)
    rows.append((f"one eval episode, expert (it reads no image, so none is rendered; {result.steps} steps)", wall,
                 cpu, "s"))
    result, wall, cpu = _timed(run_episode, env, ReplayPolicy(env), spec)
    rows.append((f"one eval episode, replay policy (plan included, {result.steps} steps)", wall, cpu, "s"))
    env.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expert", action="store_true", help="the expert's success table")
    parser.add_argument("--speed", action="store_true", help="the cost table")
    parser.add_argument("--suites", nargs="+", default=["libero_object", "libero_spatial"])
    parser.add_argument("--fresh", type=int, default=10, help="fresh placements per task (0: none)")
    parser.add_argument("--init-states", type=int, default=0, help="fixed init states per task (0: none)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="bench_out/libero", help="episode logs (resumable)")
    parser.add_argument("--task", default="libero_object/0", help="task of the speed table")
    parser.add_argument("--steps", type=int, default=60, help="random steps per rendering measurement")
    args = parser.parse_args()
    if args.expert:
        tables = {}
        for suite in args.suites:
            for kind, count in (("fresh", args.fresh), ("init", args.init_states)):
                if count:
                    tables[(suite, kind)] = expert_table(suite, kind, count, Path(args.out), args.workers)
        print_expert(tables)
    if args.speed:
        print("| measurement | wall | CPU | unit |")
        print("|---|---|---|---|")
        for name, wall, cpu, unit in speed(args.task, args.steps):
            print(f"| {name} | {wall:.1f} | {cpu:.1f} | {unit} |")


if __name__ == "__main__":
    main()
