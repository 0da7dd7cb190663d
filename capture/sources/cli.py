"""``d2e generate`` (real games played by a policy -> recordings) and ``d2e export-web``."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

EXAMPLES = {
    "generate": """examples:
  d2e generate ale --game Breakout --minutes 2 --out data/
  d2e generate ale --game MsPacman --minutes 5 --recordings 4 --workers 2 --out data/
  d2e generate ale --game Pong --episodes 3 --minutes 10 --out data/   # one recording per game played
  d2e generate vizdoom --scenario health_gathering --minutes 2 --out data/
  d2e generate vizdoom --scenario deathmatch --sensitivity 12 --out data/
  d2e generate ale --game Breakout --policy random --out data/   # random keys (the old ground truth)
  d2e generate ale --list                                  # the bundled games
""",
    "export-web": """examples:
  d2e export-web data/breakout-s0.mcap -o web/breakout.mp4
  d2e export-web data/doom-s0.mcap -o web/doom.webm --width 256 --fps 30 --bitrate 300000
""",
}


def make_env(source: str, options: dict[str, Any]):
    """The game and its player: ``policy`` None or "intent" (the default), "random", or MODULE:FACTORY."""
    if source == "ale":
        from .ale import AleEnv, default_policy, random_policy

        env = AleEnv(options["game"])
    else:
        from .vizdoom import DoomEnv, default_policy, random_policy  # type: ignore[assignment]

        env = DoomEnv(options["scenario"], sensitivity=options.get("sensitivity", 8.0), wad=options.get("wad"),
                      doom_map=options.get("map"))
    spec = options.get("policy") or "intent"
    if spec == "intent":
        return env, default_policy(env)
    if spec == "random":
        return env, random_policy(env)
    return env, load_policy(spec)(env)


def load_policy(spec: str):
    """``"package.module:factory"`` -> the factory; ``factory(env)`` returns a policy (``reset(seed)``,
    ``step(t_ns) -> Intent``, deterministic given the seed), e.g. a scripted or learned player."""
    import importlib

    from ..errors import D2EError

    module, _, name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name or "policy")
    except (ImportError, AttributeError) as exc:
        raise D2EError(f"cannot load policy {spec!r} ({exc})", fix="pass MODULE:FACTORY where FACTORY(env) returns "
                       "an object with reset(seed) and step(t_ns) -> capture.sources.policy.Intent") from exc
    return factory


def policy_name(spec: str | None) -> str:
    """What the recording metadata calls the player: "intent", "random" (human-like timing, random keys) or
    the user's MODULE:FACTORY."""
    return spec or "intent"


def generate_one(source: str, options: dict[str, Any], path: str, seconds: float, seed: int, fps: float,
                 overwrite: bool, one_episode: bool = False, progress: Any = None) -> dict[str, Any]:
    """One recording; top-level so worker processes can run it. ``progress(fraction)`` is called as it goes."""
    from .base import record_game

    env, policy = make_env(source, options)
    result = record_game(env, policy, path, seconds=seconds, seed=seed, fps=fps, source=source,
                         overwrite=overwrite, one_episode=one_episode, progress=progress,
                         policy_name=policy_name(options.get("policy")))
    return {**asdict(result), "steps_per_second": result.steps_per_second}


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import D2EError

    if args.list:
        if args.source == "ale":
            from .ale import available_games

            print("\n".join(available_games()))
        else:
            from .vizdoom import available_scenarios

            print("\n".join(available_scenarios()))
        return 0
    if not args.out:
        raise D2EError("--out is required", fix="e.g. --out data/")
    if args.source == "ale":
        if not args.game:
            raise D2EError("--game is required for ale", fix="e.g. --game Breakout (see --list)")
        from .ale import rom_id

        options: dict[str, Any] = {"game": args.game, "policy": args.policy}
        stem = rom_id(args.game)
    else:
        options = {"scenario": args.scenario, "sensitivity": args.sensitivity, "wad": args.wad, "map": args.map,
                   "policy": args.policy}
        stem = f"doom-{args.scenario}"
    make_env(args.source, options)  # fail fast on a bad game/scenario, before any worker starts
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    one_episode = args.episodes is not None
    count = args.episodes if one_episode else args.recordings
    jobs = [(str(out / f"{stem}-s{args.seed + i}.mcap"), args.seed + i) for i in range(count)]
    results = []
    # progress in seconds of gameplay: in-process runs report as they go, worker processes per recording
    seconds = args.minutes * 60
    bar = tqdm(total=round(len(jobs) * seconds), unit="s", disable=None, desc=f"generating {stem}")
    if args.workers > 1 and len(jobs) > 1:
        import multiprocessing

        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(generate_one, args.source, options, p, seconds, s, args.fps, args.force,
                                   one_episode) for p, s in jobs]
            for f in as_completed(futures):
                results.append(f.result())
                bar.update(round(seconds))
    else:
        for i, (p, s) in enumerate(jobs):
            def progress(fraction: float, i: int = i) -> None:
                bar.n = round((i + fraction) * seconds)
                bar.refresh()

            results.append(generate_one(args.source, options, p, seconds, s, args.fps, args.force, one_episode,
                                        progress))
            bar.n = round((i + 1) * seconds)
            bar.refresh()
    bar.close()
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for r in sorted(results, key=lambda r: r["path"]):
            print(f"wrote {r['path']}: {r['frames']} frames, {r['events']} events, {r['episodes']} episode restarts, "
                  f"{r['steps_per_second']:.0f} env steps/s")
    return 0


def cmd_export_web(args: argparse.Namespace) -> int:
    from .webvideo import export_web_video

    result = export_web_video(args.recording, args.output, width=args.width, height=args.height, fps=args.fps,
                              bitrate=args.bitrate, overwrite=args.force)
    if args.json:
        print(json.dumps(asdict(result), indent=1))
    else:
        print(f"wrote {result.video} ({result.frames} frames, {result.width}x{result.height} at {result.fps:g} fps)"
              f" and its ground truth {result.truth}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    if name == "generate":
        p.add_argument("source", choices=["ale", "vizdoom"], help="which game engine")
        p.add_argument("--game", help="ALE game, e.g. Breakout, Pong, SpaceInvaders, MsPacman, Enduro, Seaquest")
        p.add_argument("--scenario", default="health_gathering", help="ViZDoom scenario (basic, deathmatch, ...)")
        p.add_argument("--wad", help="ViZDoom: a WAD file to play instead of the scenario's")
        p.add_argument("--map", help="ViZDoom: map name in the WAD, e.g. MAP01")
        p.add_argument("--sensitivity", type=float, default=8.0, help="ViZDoom: mouse counts per degree of turn")
        p.add_argument("--minutes", type=float, default=2.0, help="length of each recording")
        p.add_argument("--recordings", type=int, default=1, help="how many recordings (seeds seed, seed+1, ...)")
        p.add_argument("--episodes", type=int,
                       help="instead: this many recordings of one episode each (--minutes caps each one)")
        p.add_argument("--seed", type=int, default=0, help="seed of the first recording (game and policy)")
        p.add_argument("--fps", type=float, default=20.0, help="video frame rate of the recordings")
        p.add_argument("--policy", help="who plays: 'intent' (default: steers by the game state with human "
                                        "reaction times), 'random' (random keys with human timing), or your own "
                                        "MODULE:FACTORY, FACTORY(env) -> policy")
        p.add_argument("--workers", type=int, default=1, help="processes generating recordings in parallel")
        p.add_argument("--out", help="output folder")
        p.add_argument("--list", action="store_true", help="list the bundled games/scenarios and exit")
        p.set_defaults(func=cmd_generate)
    else:
        p.add_argument("recording", help="a recording (.mcap with its video)")
        p.add_argument("-o", "--output", required=True, help="output video: .mp4, .webm or .mkv")
        p.add_argument("--width", type=int, help="output width (keeps the aspect if --height is not given)")
        p.add_argument("--height", type=int, help="output height")
        p.add_argument("--fps", type=float, help="output frame rate (default: the recording's)")
        p.add_argument("--bitrate", type=int, help="target bitrate in bits/s (default: constant quality)")
        p.set_defaults(func=cmd_export_web)
    return p
