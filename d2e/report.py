"""``d2e report RUN_DIR``: one self-contained HTML page of what a ``d2e demo`` run made and measured.

Everything on the page is read from the run's JSON results (``demo.json`` and the files it names), so the page
and the numbers cannot disagree: the dataset, the IDM against chance and its ceiling (the state oracle), a
strip of held-out frames with the true and the predicted key events under them, training curves, labeling
speed, transfer success rates with 95 % intervals and rollout GIFs, and the exact commands and configs.
Images are embedded (base64 PNG/GIF), so the file can be mailed or attached as it is.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from d2e.demo import CHANCE, EXPERT, reference
from transfer.evaluate import overall_result

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1080px;margin:2em auto;padding:0 1em;color:#1d1d1f}
h1{font-size:1.7em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f6}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.92em}.good{color:#0a7c2f;font-weight:600}.bad{color:#b3261e;font-weight:600}
pre{background:#f6f6f8;padding:.7em;overflow-x:auto;font-size:.85em}img{max-width:100%}
.gifs img{margin:.3em;border:1px solid #ccc;width:200px;image-rendering:pixelated}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if str(c).startswith('<') else _fmt(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def training_curves(run: Path, title: str) -> str:
    """Loss (and accuracy where logged) against step, from the run's CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for log in sorted((run / "logs").glob("version_*/metrics.csv")):
        with open(log) as f:
            for row in csv.DictReader(f):
                for key, value in row.items():
                    if value and key not in ("epoch", "step") and any(w in key for w in ("loss", "acc")):
                        series.setdefault(key, []).append((int(row["step"]), float(value)))
    if not series:
        return f"<p class='note'>{html.escape(title)}: no training log.</p>"
    losses = {k: v for k, v in series.items() if "loss" in k and k.split("/")[1] == "loss"}
    accs = {k: v for k, v in series.items() if "acc" in k}
    fig, axes = plt.subplots(1, 2 if accs else 1, figsize=(9 if accs else 5, 2.8), squeeze=False)
    for ax, group, label in ((axes[0, 0], losses, "loss"), *(((axes[0, 1], accs, "accuracy"),) if accs else ())):
        for key, points in sorted(group.items()):
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="." if key.startswith("val") else None, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def event_strip(frames: np.ndarray, times: list[int], truth: list[Any], pred: list[Any], keys: dict[int, str],
                title: str) -> str:
    """A strip of frames with the true and predicted key-down state drawn under each (one row per key)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.grid import TICK_NS
    from idm.metrics import Window, key_events, key_state_ticks

    window = Window(times[0], times[-1] + TICK_NS)
    cols = [str(vk) for vk in keys]
    true_state = key_state_ticks(key_events(truth), window, cols)
    pred_state = key_state_ticks(key_events(pred), window, cols)
    shown = np.linspace(0, len(frames) - 1, min(10, len(frames))).astype(int)
    fig = plt.figure(figsize=(10, 2.2 + 0.35 * len(keys)))
    grid = fig.add_gridspec(2, len(shown), height_ratios=[2.2, 0.35 * 2 * len(keys) + 0.3])
    for j, k in enumerate(shown):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(frames[k], interpolation="nearest")
        ax.set_title(f"{(times[k] - times[0]) / 1e9:.2f} s", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    rows = [state[:, i] for i in range(len(keys)) for state in (true_state, pred_state)]
    ax.imshow(np.array(rows, float), aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, len(times) / 20, len(rows), 0))
    ax.set_yticks([r + 0.5 for r in range(len(rows))])
    ax.set_yticklabels([f"{name} {who}" for name in keys.values() for who in ("truth", "IDM")], fontsize=7)
    ax.set_xlabel("seconds (black: key down)")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def gif(video: Path, width: int = 200, max_frames: int = 120) -> str:
    """An mp4 rollout as an embedded animated GIF (browsers without H.264 still play it)."""
    import av
    from PIL import Image

    images = []
    with av.open(str(video)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k >= max_frames:
                break
            img = Image.fromarray(frame.to_ndarray(format="rgb24"))
            images.append(img.resize((width, round(width * img.height / img.width))))
    if not images:
        return ""
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(video.name)}" src="data:image/gif;base64,{data}">'


def _section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>" + "".join(parts)


def render(run_dir: str | Path) -> str:
    """The report's HTML for a demo run folder."""
    run = Path(run_dir)
    path = run / "demo.json"
    if not path.exists():
        raise D2EError("no demo.json", path=run, fix="pass the --out folder of a 'd2e demo' run")
    demo = json.loads(path.read_text())
    stages = demo.get("stages", {})
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>D2E demo report</title><style>{STYLE}</style>"
           "</head><body>", "<h1>D2E demo report</h1>",
           f"<p class='note'>{html.escape(demo.get('started', ''))} &middot; {demo.get('seconds', 0):.0f} s on "
           f"{html.escape(demo.get('machine', ''))} &middot; mode: {html.escape(demo.get('mode', ''))}</p>"]
    out.append(_summary(demo))
    for name, stage in stages.items():
        renderer = RENDERERS.get(name)
        if renderer is not None:
            out.append(renderer(run, stage))
    out.append(_section("Commands and configs", "<p class='note'>Every number above came from these commands, "
                        "run in this order (rerunning <code>d2e demo --out</code> skips finished stages).</p>",
                        "<pre>" + html.escape("\n".join(c for s in stages.values() for c in s.get("commands", [])))
                        + "</pre>", *(f"<h3>{html.escape(n)}</h3><pre>{html.escape(json.dumps(c, indent=1))}</pre>"
                                      for n, c in demo.get("configs", {}).items())))
    # marks the page once every image has loaded (the report test reads it from headless Chromium's DOM)
    out.append("<script>window.addEventListener('load',()=>{const i=[...document.images];document.body.dataset"
               ".images=i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length;});</script>")
    out.append("</body></html>")
    return "\n".join(out)


def _summary(demo: dict[str, Any]) -> str:
    rows = [[line["what"], line["value"], line.get("chance", "-"), line.get("ceiling", "-"), line.get("reading", "")]
            for line in demo.get("summary", [])]
    return _section("Summary", _table(["result", "value", "chance", "ceiling", "what it means"], rows))


def _dataset(run: Path, stage: dict[str, Any]) -> str:
    rows = [[r["game"], r["split"], r["recordings"], r["seconds"], r["events_per_second"], r["compression"]]
            for r in stage.get("recordings", [])]
    return _section("Dataset", "<p class='note'>Real games played by the intent players, recorded with exact "
                    "ground-truth inputs (60 Hz ALE, 35 Hz ViZDoom; video on the 20 Hz grid).</p>",
                    _table(["game", "split", "recordings", "seconds", "events/s", "compression (raw RGB / file)"],
                           rows))


def _idm(run: Path, stage: dict[str, Any]) -> str:
    result = json.loads((run / stage["eval"]).read_text())
    per_game = result["per_game"]
    rows = []
    for game, facts in result["games"].items():
        for method in ("idm", "oracle", "random_at_rate", "always_held", "optical_flow"):
            s = per_game.get(method, {}).get(game)
            if s:
                rows.append([game, "seen" if facts["seen"] else "held out", method, s.get("press_f1"),
                             s.get("of_oracle"), s.get("x_chance"), s.get("per_key_f1"), s.get("keyboard_accuracy"),
                             s.get("pearson_x")])
    parts = ["<p class='note'>Press F1: a predicted key press within &plusmn;50 ms of a true one. The oracle reads "
             "the keys from the game's own state (what a perfect IDM could know); chance presses at random at the "
             "true rate; always-held never lets go.</p>",
             _table(["game", "", "method", "press F1", "of oracle", "x chance", "per-key F1", "D2E key acc.",
                     "mouse Pearson x"], rows),
             training_curves(run / stage["run"], "IDM training")]
    if stage.get("strip"):
        parts.append(stage["strip_html"] if "strip_html" in stage else _strip(run, stage["strip"]))
    return _section("Inverse dynamics model", *parts)


def _strip(run: Path, strip: dict[str, Any]) -> str:
    from core.config import DataConfig
    from core.data.dataset import WindowDataset
    from core.data.index import index_recordings
    from idm.predict import load_labeler

    entry = index_recordings([strip["recording"]])[0]
    n = min(entry.grid_len, int(strip.get("seconds", 4) * 20))
    data = DataConfig(frames=8, image_size=strip.get("image_size", 64))
    times, frames = WindowDataset([entry], data).frames(0, 0, n)
    from capture.format import RecordingReader

    with RecordingReader(entry.path) as r:
        truth = list(r.iter(topics=["keyboard"]))
    pred = [e for e, _c in load_labeler(run / strip["model"])(frames, [int(t) for t in times])]
    keys = {int(k): name for k, name in strip["keys"].items()}
    return event_strip(frames, [int(t) for t in times], truth, pred, keys,
                       f"held-out {strip['game']} video: true and predicted keys")


def _labels(run: Path, stage: dict[str, Any]) -> str:
    rows = [[stage.get("video_seconds"), stage.get("seconds"), stage.get("realtime_factor"), stage.get("events"),
             stage.get("press_f1"), stage.get("chance_press_f1")]]
    return _section("Pseudo-labeling", "<p class='note'>Held-out gameplay exported as a web video (the truth dropped, "
                    "re-encoded), labeled by the IDM with <code>d2e label</code>, scored against the kept truth.</p>",
                    _table(["video s", "labeling s", "x real time", "events", "press F1", "chance press F1"], rows))


def _pretrain(run: Path, stage: dict[str, Any]) -> str:
    rows = [[name, s["steps"], s["seconds"], s["metrics"].get("val/loss"), s["metrics"].get("val/token_acc"),
             s["metrics"].get("val/event_type_acc")] for name, s in stage.get("runs", {}).items()]
    curves = "".join(training_curves(run / path, f"pretraining: {name}")
                     for name, path in stage.get("paths", {}).items())
    return _section("VAPT pretraining", _table(["trunk", "steps", "seconds", "val next-event loss", "val token acc.",
                                                "val event-type acc."], rows), curves)


def _transfer(sim: str, title: str):
    def render_transfer(run: Path, stage: dict[str, Any]) -> str:
        rows, gifs = [], []
        for arm, folder in stage.get("evals", {}).items():
            res = overall_result(run / folder)
            rows.append([arm, res["episodes"], f"{100 * res['success_rate']:.1f} %",
                         f"{100 * res['ci95'][0]:.1f}-{100 * res['ci95'][1]:.1f} %", res.get("spl"),
                         res.get("seconds_per_episode")])
            gifs += [f"<figure>{gif(v)}<figcaption>{html.escape(arm)}: {html.escape(v.stem)}</figcaption></figure>"
                     for v in sorted((run / folder / "videos").glob("*.mp4"))[:2]]
        for who, which in (("chance (random policy)", CHANCE), ("expert (privileged, demos)", EXPERT)):
            ref = reference(run, sim, which)
            if ref:
                rows.append([who, ref["episodes"], f"{100 * ref['success_rate']:.1f} %",
                             f"{100 * ref['ci95'][0]:.1f}-{100 * ref['ci95'][1]:.1f} %", ref.get("spl"), "-"])
        note = f"<p class='note'>{html.escape(stage.get('note', ''))}</p>"
        return _section(title, note, _table(["policy", "episodes", "success", "95 % CI", "SPL", "s/episode"], rows),
                        *(training_curves(run / p, f"fine-tuning: {arm}") for arm, p in stage.get("runs", {}).items()),
                        f"<div class='gifs'>{''.join(gifs)}</div>")
    return render_transfer


RENDERERS = {"games": _dataset, "idm": _idm, "label": _labels, "pretrain": _pretrain,
             "nav": _transfer("nav", "Navigation transfer (MiniWorld)"),
             "libero": _transfer("libero", "LIBERO transfer")}


def write_report(run_dir: str | Path) -> Path:
    from capture.storage import atomic_output

    out = Path(run_dir) / "report.html"
    with atomic_output(out, overwrite=True) as tmp:
        tmp.write_text(render(run_dir))
    return out


def markdown(run_dir: str | Path) -> str:
    """The summary as a Markdown table (what the README's Results section is made from), from ``demo.json``."""
    path = Path(run_dir) / "demo.json"
    if not path.exists():
        raise D2EError("no demo.json", path=run_dir, fix="pass the --out folder of a 'd2e demo' run")
    demo = json.loads(path.read_text())
    if not demo.get("summary"):
        raise D2EError("the demo has not finished (no summary in demo.json)", path=path,
                       fix=f"rerun 'd2e demo --out {run_dir}' to finish it")
    lines = [f"`d2e demo` ({demo.get('mode', 'default')} budget), {demo.get('seconds', 0) / 60:.1f} min on "
             f"{demo.get('machine', 'an unknown machine')}, {demo.get('started', '')[:10]}:", "",
             "| result | value | chance | ceiling | what it means |", "|---|---|---|---|---|"]
    lines += [f"| {r['what']} | {_fmt(r['value'])} | {_fmt(r.get('chance'))} | {_fmt(r.get('ceiling'))} | "
              f"{r.get('reading', '')} |" for r in demo["summary"]]
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown(args.run_dir))
        return 0
    print(f"wrote {write_report(args.run_dir)}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="the --out folder of a 'd2e demo' run")
    p.add_argument("--markdown", action="store_true",
                   help="print the summary as a Markdown table instead of writing report.html (the README's Results)")
    p.set_defaults(func=cmd_report)
    return p
