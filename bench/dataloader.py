"""Data pipeline benchmark: generation speed per source, and training-window throughput.

Prints env steps/s for each game source, then frames/s and windows/s served at 128 px with 0, 1 and 2
DataLoader workers (spawned), from native-resolution game recordings and from 1280x720 desktop
recordings. Targets on a 2-core machine: >= 3000 frames/s from games, >= 1000 frames/s from 720p.

    python bench/dataloader.py              # ~2 minutes
    python bench/dataloader.py --seconds 20 --batches 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def generation(folder: Path, seconds: float) -> list[tuple[str, float, float]]:
    from capture.sources.ale import AleEnv
    from capture.sources.ale import default_policy as ale_policy
    from capture.sources.base import record_game
    from capture.sources.vizdoom import DoomEnv
    from capture.sources.vizdoom import default_policy as doom_policy

    rows = []
    for name, env, policy in [("ale Breakout", (e := AleEnv("Breakout")), ale_policy(e)),
                              ("ale MsPacman", (e2 := AleEnv("MsPacman")), ale_policy(e2)),
                              ("vizdoom health_gathering", (d := DoomEnv("health_gathering")), doom_policy(d))]:
        r = record_game(env, policy, folder / f"{name.replace(' ', '_')}.mcap", seconds=seconds, seed=0,
                        source=name.split()[0])
        rows.append((name, r.steps_per_second, r.seconds / r.wall_s))
    return rows


def throughput(paths: list[str], workers: int, batches: int, size: int = 128, frames: int = 8,
               stride: int | None = None) -> tuple[float, float]:
    """Frames/s and windows/s through the training loader (``make_loader``: block-shuffled, spawned
    workers, padded tokens), both label forms included; worker start-up is not timed."""
    from core.config import DataConfig
    from core.data.dataset import WindowDataset
    from core.data.index import index_recordings, keys_of
    from core.data.loader import make_loader

    entries = index_recordings(paths)
    ds = WindowDataset(entries, DataConfig(frames=frames, image_size=size, keys=keys_of(entries)), stride=stride)
    loader = make_loader(ds, batch_size=16, shuffle=True, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n = 0
    t = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += batch["frames"].shape[0]
    dt = time.perf_counter() - t
    return n * frames / dt, n / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each generated recording")
    parser.add_argument("--batches", type=int, default=40, help="batches of 16 windows timed per setting")
    parser.add_argument("--stride", type=int, default=None,
                        help="grid points between window starts (default: 8, no overlap, as in training)")
    args = parser.parse_args()

    from capture.synthetic import write_synthetic_recording

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gen = generation(folder, args.seconds)
        print("| source | env steps/s | x real time |")
        print("|---|---|---|")
        for name, sps, rt in gen:
            print(f"| {name} | {sps:,.0f} | {rt:.1f} |")
        games = sorted(str(p) for p in folder.glob("*.mcap"))
        desktop = [str(write_synthetic_recording(folder / f"desk{i}.mcap", seconds=min(args.seconds, 30),
                                                 size=(1280, 720), seed=i)) for i in range(2)]
        print("\n| recordings | workers | frames/s (128 px) | windows/s (8 frames) |")
        print("|---|---|---|---|")
        for label, paths in (("games (native res)", games), ("desktop 1280x720", desktop)):
            for workers in (0, 1, 2):
                fps, wps = throughput(paths, workers, args.batches, stride=args.stride)
                print(f"| {label} | {workers} | {fps:,.0f} | {wps:,.1f} |")


if __name__ == "__main__":
    main()
