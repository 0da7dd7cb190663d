"""Navigation simulator benchmark: MiniWorld speed and the planner expert's success and SPL per task.

Prints two tables (Markdown): simulator steps/s with random actions at each image size (render included,
one process), and per task the expert's success over seeded episodes with its 95 % Wilson interval, mean
SPL, steps and seconds per episode (world generation, planning and rendering included; one process). The
numbers in docs/nav_expert.md come from this script.

    python bench/nav_sim.py                          # 50 episodes per task, 64 and 128 px (~3 minutes)
    python bench/nav_sim.py --episodes 10 --sizes 64
"""

from __future__ import annotations

import argparse
import time


def steps_per_second(task: str, size: int, steps: int) -> tuple[float, float, float]:
    """Random-action steps per wall second and per CPU second of this process (resets excluded; the CPU rate
    is what a loaded, shared machine still measures fairly), and wall seconds per reset."""
    import numpy as np

    from transfer.envs.miniworld import MiniWorldNav
    from transfer.sim import EpisodeSpec

    env = MiniWorldNav(task, size)
    rng = np.random.default_rng(0)
    for seed in range(1000, 1030):  # textures load on first use: warm up over all wall textures and layouts
        env.reset(EpisodeSpec(task, seed, seed, 10**6))
    reset_time, resets, step_time, cpu_time, done_steps = 0.0, 0, 0.0, 0.0, 0
    while done_steps < steps:
        start = time.perf_counter()
        env.reset(EpisodeSpec(task, resets + 1, resets + 1, 10**6))
        reset_time += time.perf_counter() - start
        resets += 1
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(200):
            env.step(int(rng.integers(0, 3)))
        step_time += time.perf_counter() - start
        cpu_time += time.process_time() - cpu
        done_steps += 200
    env.close()
    return done_steps / step_time, done_steps / cpu_time, reset_time / resets


def expert(task: str, episodes: int, size: int) -> dict:
    import functools

    from transfer.demos.nav_expert import NavExpert
    from transfer.envs.miniworld import MiniWorldNav
    from transfer.evaluate import run_episodes, summarize
    from transfer.nav_eval import nav_episodes

    specs = nav_episodes(task, "seen", episodes)
    cpu = time.process_time()
    results = run_episodes(functools.partial(MiniWorldNav, image_size=size), NavExpert, specs, workers=1,
                           progress=False)
    summary = summarize(results)["overall"]
    summary["cpu_seconds_per_episode"] = (time.process_time() - cpu) / len(results)
    summary["failures"] = [r.seed for r in results if not r.success]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50, help="expert episodes per task (default 50)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes (default 64 128)")
    parser.add_argument("--steps", type=int, default=2000, help="random steps per speed row (default 2000)")
    parser.add_argument("--tasks", nargs="+", default=["goal-object", "fourrooms", "maze"])
    args = parser.parse_args()

    import os

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print()
    print("| task | image | steps/s (wall) | steps per CPU s | s per reset (wall) |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        for size in args.sizes:
            rate, cpu_rate, reset = steps_per_second(task, size, args.steps)
            print(f"| {task} | {size} px | {rate:.0f} | {cpu_rate:.0f} | {reset:.3f} |", flush=True)
    print()
    size = args.sizes[0]
    print(f"| task | expert success | 95 % CI | SPL | steps | s/episode ({size} px, wall) | CPU s/episode | "
          "failed seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        s = expert(task, args.episodes, size)
        print(f"| {task} | {s['successes']}/{s['episodes']} | {100 * s['ci95'][0]:.1f}-{100 * s['ci95'][1]:.1f} % | "
              f"{s['spl']:.3f} | {s['mean_steps']:.1f} | {s['seconds_per_episode']:.3f} | "
              f"{s['cpu_seconds_per_episode']:.3f} | "
              f"{', '.join(map(str, s['failures'])) or '-'} |", flush=True)


if __name__ == "__main__":
    main()
