"""``d2e demo --quick``: the README's main job end to end (CI's smoke test of every stage), and its report
rendered by a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# the module's first test also runs the quick demo (about 4 minutes alone on 2 cores; longer on a busy machine)
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("ale_py")
    out = tmp_path_factory.mktemp("demo")
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "demo", "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=1700)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "d2e demo finished" in run.stdout
    for noise in ("GPU available", "litlogger", "Tip:"):
        assert noise not in run.stdout + run.stderr, noise
    return out


def test_every_stage_ran_and_a_rerun_skips_them(demo_run: Path) -> None:
    state = json.loads((demo_run / "demo.json").read_text())
    assert {"format", "games", "idm", "label", "pretrain", "nav", "libero"} <= set(state["stages"])
    assert all(s.get("commands") is not None for s in state["stages"].values())
    assert all(row["recordings"] > 0 and row["seconds"] > 0 for row in state["stages"]["games"]["recordings"])
    again = subprocess.run([sys.executable, "-m", "d2e.cli", "demo", "--quick", "--out", str(demo_run)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("done in an earlier run, skipped") == 7


def test_report_numbers_are_the_json_results(demo_run: Path) -> None:
    state = json.loads((demo_run / "demo.json").read_text())
    page = (demo_run / "report.html").read_text()
    idm = json.loads((demo_run / state["stages"]["idm"]["eval"]).read_text())
    for game, scores in idm["per_game"]["idm"].items():
        if scores.get("press_f1") is not None:
            assert f"{scores['press_f1']:.3f}" in page, game
    for line in state["summary"]:
        if isinstance(line["value"], float):
            assert f"{line['value']:.3f}" in page, line["what"]
    for command in state["stages"]["idm"]["commands"]:
        assert command.replace("<", "&lt;") in page
    # the README's Results table: the same summary, with the chance and ceiling of each transfer result
    table = subprocess.run([sys.executable, "-m", "d2e.cli", "report", str(demo_run), "--markdown"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    rows = [r for r in table.stdout.splitlines() if r.startswith("| ") and not r.startswith("| result")]
    assert len(rows) == len(state["summary"])
    for row, line in zip(rows, state["summary"]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == line["what"]
        if isinstance(line["value"], float):
            assert cells[1] == f"{line['value']:.3f}"
    nav = [line for line in state["summary"] if line["what"].startswith("navigation")]
    assert nav and all(isinstance(line["chance"], float) and line["ceiling"] == 1.0 for line in nav)
    libero = [line for line in state["summary"] if line["what"].startswith("LIBERO")]
    assert libero and all(isinstance(line["ceiling"], float) for line in libero)


def test_the_report_renders_in_headless_chromium(demo_run: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    page = demo_run / "report.html"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    loaded = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert loaded and loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 3, loaded  # every image drew
    assert "Uncaught" not in dom.stderr  # no script errors
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.stat().st_size > 20_000, run.stderr[-2000:]
