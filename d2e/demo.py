"""``d2e demo``: the whole D2E loop from one command, on embedded defaults, ending in an HTML report.

Stages, each one the commands a user would type (printed as they run, recorded in the report):

1. a sample recording: inspected, validated, crashed with SIGKILL and recovered, round-tripped through OWAMcap;
2. real games (Breakout, Pong, ViZDoom health_gathering) played by the intent players, with exact inputs;
3. a tiny IDM trained on them and scored on new recordings of the same games, beside the state oracle (the
   ceiling) and random presses at the true rate (chance);
4. those recordings as web videos, pseudo-labeled by the IDM and scored against their kept truth;
5. a VAPT trunk pretrained on the recordings and the pseudo-labels;
6. navigation (MiniWorld) and LIBERO: expert demos, fine-tuning from scratch and from the trunk, evaluation;
7. ``report.html``: every number against its chance level and ceiling, plots, rollouts, commands.

Every stage is resumable: rerunning with the same ``--out`` skips what is done (``demo.json`` records it).
Defaults fit about 15 minutes on a 2-core CPU (faster with a GPU); the budgets are far below what the benchmarks
under ``bench/`` use, so the numbers show the system working, not its best; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capture.demo import run_format_demo, step
from capture.errors import D2EError
from transfer.evaluate import overall_result


@dataclass
class Budget:
    """How much of each stage a run does (normal: ~15 CPU minutes; quick: a smoke run for CI)."""

    minutes: float = 1.0  # gameplay per training recording
    test_minutes: float = 0.5
    idm_steps: int = 300
    pretrain_steps: int = 120
    nav_demos: int = 30
    nav_steps: int = 300
    nav_episodes: int = 16
    nav_max_steps: int = 200  # per evaluation episode; the expert needs about 75
    libero_demos: int = 2
    libero_steps: int = 150
    libero_episodes: int = 2
    max_tokens: int = 768

    @classmethod
    def quick(cls) -> Budget:
        return cls(minutes=0.1, test_minutes=0.1, idm_steps=8, pretrain_steps=4, nav_demos=3, nav_steps=4,
                   nav_episodes=2, nav_max_steps=40, libero_demos=1, libero_steps=3, libero_episodes=1, max_tokens=256)


GAMES = [("ale", "--game", "Breakout", "breakout"), ("ale", "--game", "Pong", "pong"),
         ("vizdoom", "--scenario", "health_gathering", "health_gathering")]


class Demo:
    """The run folder and its ``demo.json``: what is done, what each stage measured, the commands it ran."""

    def __init__(self, out: Path, budget: Budget, mode: str):
        self.out, self.budget = out, budget
        self.path = out / "demo.json"
        self.state: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.state.update(mode=mode, machine=f"{os.cpu_count()} CPU cores, {platform.machine()}")
        self.state.setdefault("started", datetime.datetime.now().isoformat(timespec="seconds"))
        self.state.setdefault("stages", {})
        self.commands: list[str] = []
        self.t0 = time.perf_counter()

    def save(self) -> None:
        from capture.storage import atomic_output

        with atomic_output(self.path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.state, indent=1))

    def d2e(self, *args: str, capture: bool = False) -> str:
        """Run a d2e command as a user would (printed, recorded for the report)."""
        shown = "d2e " + " ".join(str(a).replace(str(self.out) + "/", "") for a in args)
        print(f"$ {shown}", flush=True)
        self.commands.append(shown)
        run = subprocess.run([sys.executable, "-m", "d2e.cli", *map(str, args)], text=True, cwd=self.out,
                             stdout=subprocess.PIPE if capture else None)
        if run.returncode:
            raise D2EError(f"'{shown}' failed with exit code {run.returncode} (its message is above)", path=self.out,
                           fix=f"fix what it says, then rerun 'd2e demo --out {self.out}': finished stages are kept")
        return run.stdout if capture else ""

    def stage(self, name: str, title: str, number: int, total: int, work) -> dict[str, Any]:
        """Run one stage unless a previous run finished it; one line per stage with elapsed time and ETA."""
        done = self.state["stages"].get(name)
        if done is not None:
            print(f"[{number}/{total}] {title}: done in an earlier run, skipped", flush=True)
            return done
        elapsed = time.perf_counter() - self.t0
        left = sum(PLAN[n] for n in list(PLAN)[number - 1:]) * (0.05 if self.state["mode"] == "quick" else 1)
        step(f"[{number}/{total}] {title} (elapsed {elapsed / 60:.1f} min, about {left / 60:.0f} min to go)")
        self.commands = []
        t = time.perf_counter()
        result = {**work(self), "seconds": round(time.perf_counter() - t, 1), "commands": self.commands}
        self.state["stages"][name] = result
        self.save()
        return result


# Rough seconds per stage at the default budget on a 2-core CPU, for the ETA.
PLAN = {"format": 5, "games": 20, "idm": 205, "label": 30, "pretrain": 105, "nav": 200, "libero": 300, "report": 15}


def _format(demo: Demo) -> dict[str, Any]:
    return run_format_demo(demo.out / "format", seconds=4.0)


def _games(demo: Demo) -> dict[str, Any]:
    from capture.format import RecordingReader

    b = demo.budget
    for engine, flag, game, _name in GAMES:
        demo.d2e("generate", engine, flag, game, "--minutes", b.minutes, "--recordings", 2, "--seed", 1,
                 "--out", "games/train", "--force")
        demo.d2e("generate", engine, flag, game, "--minutes", b.test_minutes, "--seed", 11, "--out", "games/test",
                 "--force")
    rows = []
    for split in ("train", "test"):
        for _e, _f, _g, name in GAMES:
            recs = sorted((demo.out / "games" / split).glob(f"*{name}-s*.mcap"))  # e.g. doom-health_gathering-s1
            seconds = events = raw = size = 0.0
            for rec in recs:
                with RecordingReader(rec) as r:
                    counts = r.counts()
                    first, last = r.time_range()
                    seconds += (last - first) / 1e9
                    events += sum(n for t, n in counts.items() if t in ("keyboard", "mouse", "mouse/raw"))
                    width = (r.meta.capture_region or {}).get("width", 0)
                    height = (r.meta.capture_region or {}).get("height", 0)
                    raw += counts.get("screen", 0) * width * height * 3
                    size += rec.stat().st_size + rec.with_suffix(".mkv").stat().st_size
            rows.append({"game": name, "split": split, "recordings": len(recs), "seconds": round(seconds, 1),
                         "events_per_second": round(events / max(seconds, 1e-9), 1),
                         "compression": round(raw / max(size, 1), 1)})
    return {"recordings": rows}


def _idm(demo: Demo) -> dict[str, Any]:
    b = demo.budget
    demo.d2e("idm", "train", "games/train", "--out", "idm", "--set", f"max_steps={b.idm_steps}", "--set",
             f"max_tokens={b.max_tokens}", "--restart")
    demo.d2e("idm", "eval", "--model", "idm", "games/test", "--out", "idm/eval.json", "--markdown", "idm/eval.md")
    result = json.loads((demo.out / "idm" / "eval.json").read_text())
    tests = sorted((demo.out / "games" / "test").glob("breakout*.mcap"))
    keys = {str(vk): name for vk, name in ((0x25, "left"), (0x27, "right"), (0x20, "space"))}
    return {"run": "idm", "eval": "idm/eval.json", "games": {g: f["seen"] for g, f in result["games"].items()},
            "strip": {"recording": str(tests[0]), "model": "idm", "game": "breakout", "keys": keys, "seconds": 4,
                      "image_size": 64} if tests else None}


def _label(demo: Demo) -> dict[str, Any]:
    for rec in sorted((demo.out / "games" / "test").glob("*.mcap")):
        demo.d2e("export-web", f"games/test/{rec.name}", "-o", f"web/{rec.stem}.mp4", "--width", "320",
                 "--bitrate", "400000", "--force")
    summary = json.loads(demo.d2e("label", "web", "--model", "idm", "--out", "labels", "--json", "--replace",
                                  capture=True))
    truths = [f"web/{p.name}" for p in sorted((demo.out / "web").glob("*.truth.mcap"))]
    scores = json.loads(demo.d2e("idm", "eval", "--labels", "labels", *truths, "--json", capture=True))
    per_game = scores["per_game"]["pseudo_labels"]
    keyed = [s["press_f1"] for g, s in per_game.items() if s.get("press_f1") is not None]
    idm_eval = json.loads((demo.out / "idm" / "eval.json").read_text())["per_game"]
    chance = [s.get("press_f1") for g, s in idm_eval.get("random_at_rate", {}).items() if g in per_game]
    return {"video_seconds": round(summary["labeled_hours"] * 3600, 1), "seconds": round(summary["seconds"], 1),
            "realtime_factor": round(summary["realtime_factor"], 2), "events": None,
            "press_f1": sum(keyed) / len(keyed) if keyed else None,
            "chance_press_f1": sum(c for c in chance if c is not None) / max(1, len(chance))}


def _pretrain(demo: Demo) -> dict[str, Any]:
    b = demo.budget
    demo.d2e("pretrain", "games/train", "--pseudo", "labels", "--pseudo-weight", "0.3", "--out", "pretrain",
             "--set", f"max_steps={b.pretrain_steps}", "--set", f"max_tokens={b.max_tokens}", "--restart")
    summary = json.loads((demo.out / "pretrain" / "train_summary.json").read_text())
    return {"runs": {"ground truth + pseudo-labels": summary}, "paths": {"ground truth + pseudo-labels": "pretrain"}}


# The folders of a simulator's ceiling (the privileged expert's demos) and chance (a random policy) in a demo run.
EXPERT = {"nav": "nav/demos/goal-object", "libero": "libero/demos/libero_object"}
CHANCE = {"nav": "nav/eval/random"}


def reference(out: Path, sim: str, which: dict[str, str]) -> dict[str, Any] | None:
    """The overall results of a simulator's expert or chance run in a demo folder (None when it was not run)."""
    return overall_result(out / which[sim]) if sim in which else None


def _said(output: str, what: str) -> None:
    """One line for a command whose --json output went to its results file."""
    doc = json.loads(output)
    overall = doc.get("summary", doc)["overall"]  # generate-demos wraps its summary, eval prints it alone
    lo, hi = overall["ci95"]
    print(f"  {what}: {overall['successes']}/{overall['episodes']} succeeded (95 % CI {lo:.0%}-{hi:.0%})", flush=True)


def _nav(demo: Demo) -> dict[str, Any]:
    if importlib.util.find_spec("miniworld") is None:
        print("navigation skipped: pip install 'd2e[nav]'")
        return {"skipped": "pip install 'd2e[nav]'"}
    b = demo.budget
    _said(demo.d2e("transfer", "nav", "generate-demos", "--env", "goal-object", "--episodes", b.nav_demos, "--out",
                   "nav/demos", "--workers", 2, "--json", capture=True), "expert demos")
    evals, runs = {}, {}
    for arm, extra in (("scratch", []), ("pretrained", ["--pretrained", "pretrain"])):
        demo.d2e("transfer", "nav", "finetune", "nav/demos/goal-object", "--out", f"nav/runs/{arm}", "--set",
                 f"max_steps={b.nav_steps}", "--restart", *extra)
        _said(demo.d2e("transfer", "nav", "eval", "--model", f"nav/runs/{arm}", "--env", "goal-object", "--split",
                 "unseen", "--episodes", b.nav_episodes, "--workers", 2, "--videos", 1, "--out", f"nav/eval/{arm}",
                 "--json", "--max-steps", b.nav_max_steps, capture=True), arm)
        evals[arm], runs[arm] = f"nav/eval/{arm}", f"nav/runs/{arm}"
    _said(demo.d2e("transfer", "nav", "eval", "--policy", "random", "--env", "goal-object", "--split", "unseen",
                   "--episodes", b.nav_episodes, "--workers", 2, "--out", CHANCE["nav"], "--max-steps", b.nav_max_steps,
                   "--json", capture=True),
          "chance (random turns and moves)")
    return {"evals": evals, "runs": runs,
            "note": f"Goal-object navigation on {b.nav_episodes} layouts no demo used, at most {b.nav_max_steps} steps "
                    f"each (the expert needs about 75); {b.nav_demos} expert demos, {b.nav_steps} fine-tuning steps "
                    "per arm (bench/transfer_nav.py runs the full comparison)."}


def _libero(demo: Demo) -> dict[str, Any]:
    if importlib.util.find_spec("libero") is None:
        print("LIBERO skipped: pip install 'd2e[libero]'")
        return {"skipped": "pip install 'd2e[libero]'"}
    b = demo.budget
    _said(demo.d2e("transfer", "libero", "generate-demos", "--suite", "libero_object", "--tasks", 0, "--per-task",
                   b.libero_demos, "--image-size", 64, "--out", "libero/demos", "--json", capture=True), "expert demos")
    evals, runs = {}, {}
    for arm, extra in (("scratch", []), ("pretrained", ["--pretrained", "pretrain"])):
        demo.d2e("transfer", "libero", "finetune", "libero/demos/libero_object", "--out", f"libero/runs/{arm}",
                 "--set", f"max_steps={b.libero_steps}", "--restart", *extra)
        _said(demo.d2e("transfer", "libero", "eval", "--model", f"libero/runs/{arm}", "--suite", "libero_object",
                 "--tasks", 0, "--init-states", b.libero_episodes, "--workers", 2, "--videos", 1, "--out",
                 f"libero/eval/{arm}", "--json", capture=True), arm)
        evals[arm], runs[arm] = f"libero/eval/{arm}", f"libero/runs/{arm}"
    return {"evals": evals, "runs": runs,
            "note": f"libero_object task 0 from its first {b.libero_episodes} fixed init states; {b.libero_demos} "
                    f"expert demos from fresh placements, {b.libero_steps} fine-tuning steps per arm. CPU-sized: "
                    "bench/transfer_libero.py runs the real comparison."}


def summary_lines(state: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """The results a newcomer should read first, each beside its chance level and ceiling."""
    lines: list[dict[str, Any]] = []
    stages = state["stages"]
    if "idm" in stages:
        per_game = json.loads((out / stages["idm"]["eval"]).read_text())["per_game"]

        def mean(method: str, metric: str) -> float | None:
            vals = [s.get(metric) for s in per_game.get(method, {}).values() if s.get(metric) is not None]
            return sum(vals) / len(vals) if vals else None

        f1, chance, ceiling = mean("idm", "press_f1"), mean("random_at_rate", "press_f1"), mean("oracle", "press_f1")
        above = f1 is not None and chance is not None and f1 > chance
        lines.append({"what": "IDM key-press F1 (+-50 ms) on new recordings", "value": f1, "chance": chance,
                      "ceiling": ceiling, "reading": ("above chance" if above else "NOT above chance")
                      + " (chance: random presses at the true rate; ceiling: keys read from the game state)"})
        lines.append({"what": "IDM per-key F1 (key-down state per 50 ms)", "value": mean("idm", "per_key_f1"),
                      "chance": mean("always_held", "per_key_f1"), "ceiling": mean("oracle", "per_key_f1"),
                      "reading": "chance here: every key held all the time"})
        lines.append({"what": "IDM mouse Pearson x (health_gathering)",
                      "value": per_game.get("idm", {}).get("health_gathering", {}).get("pearson_x"),
                      "chance": 0.0, "ceiling": per_game.get("oracle", {}).get("health_gathering", {}).get("pearson_x"),
                      "reading": "correlation of predicted and true mouse motion per 50 ms"})
    if "label" in stages:
        lab = stages["label"]
        lines.append({"what": "pseudo-labeling speed (x real time)", "value": lab["realtime_factor"], "chance": "-",
                      "ceiling": "-", "reading": "at least 1 means labeling keeps up with the video"})
        lines.append({"what": "pseudo-label key-press F1 on web-video copies", "value": lab["press_f1"],
                      "chance": lab["chance_press_f1"], "ceiling": "-",
                      "reading": "the same model through d2e label, after re-encoding"})
    for sim, label in (("nav", "navigation success"), ("libero", "LIBERO success")):
        st = stages.get(sim, {})
        expert, chance = reference(out, sim, EXPERT), reference(out, sim, CHANCE)
        for arm, folder in st.get("evals", {}).items():
            res = overall_result(out / folder)
            lines.append({"what": f"{label}, {arm}", "value": res["success_rate"],
                          "chance": chance["success_rate"] if chance else "-",
                          "ceiling": expert["success_rate"] if expert else "-",
                          "reading": f"{res['episodes']} episodes, 95 % CI {100 * res['ci95'][0]:.0f}-"
                                     f"{100 * res['ci95'][1]:.0f} %; ceiling: the privileged expert"
                                     + ("; chance: a random policy" if chance else "")})
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="d2e-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    budget = Budget.quick() if args.quick else Budget()
    if args.minutes:
        budget.minutes = args.minutes
    demo = Demo(out.resolve(), budget, "quick" if args.quick else "default")
    print(f"d2e demo: working in {demo.out} (rerun with --out {demo.out} to resume)")
    stages = [("format", "a sample recording: validate, crash, recover, OWAMcap", _format),
              ("games", "real games played by the intent players, with exact inputs", _games),
              ("idm", "a tiny inverse dynamics model, scored against chance and the state oracle", _idm),
              ("label", "held-out gameplay as web videos, pseudo-labeled", _label),
              ("pretrain", "VAPT: a policy trunk pretrained on recordings + pseudo-labels", _pretrain),
              ("nav", "navigation transfer: scratch vs pretrained", _nav),
              ("libero", "LIBERO transfer: scratch vs pretrained", _libero)]
    for number, (name, title, work) in enumerate(stages, start=1):
        demo.stage(name, title, number, len(stages) + 1, work)
    demo.state["summary"] = summary_lines(demo.state, demo.out)
    # the work of every stage, whichever run did it (a resumed run adds only what it did)
    demo.state["seconds"] = sum(stage.get("seconds", 0) for stage in demo.state["stages"].values())
    demo.state["configs"] = {name: json.loads((demo.out / path).read_text()) for name, path in
                             (("IDM", "idm/config.json"), ("IDM data", "idm/data.json"),
                              ("pretraining", "pretrain/config.json")) if (demo.out / path).exists()}
    demo.save()
    step(f"[{len(stages) + 1}/{len(stages) + 1}] the report")
    from .report import write_report

    report = write_report(demo.out)
    step("summary")
    for line in demo.state["summary"]:
        value = line["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        extras = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in
                           (("chance", line["chance"]), ("ceiling", line["ceiling"])) if v not in ("-", None))
        print(f"  {line['what']}: {shown}" + (f" ({extras})" if extras else "") + f"  - {line['reading']}")
    print(f"\nd2e demo finished in {(time.perf_counter() - demo.t0) / 60:.1f} min (the stages took "
          f"{demo.state['seconds'] / 60:.1f} min in all); open {report}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="run folder (default: a new temp folder); rerun with it to resume")
    p.add_argument("--minutes", type=float, help="minutes of gameplay per training recording (default 1)")
    p.add_argument("--quick", action="store_true", help="smallest settings for every stage (a smoke run, ~3 min)")
    p.set_defaults(func=cmd_demo)
    return p
