"""``d2e demo --quick``: the README's main job, end to end, as CI's smoke test of every finished stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_quick_runs_every_stage(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("ale_py")
    run = subprocess.run([sys.executable, "-m", "d2e.cli", "demo", "--quick", "--seconds", "4", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "d2e demo finished" in run.stdout
    for line in ("owamcap_lossless: True", "recovered_ok: True", "idm_trained: True"):
        assert line in run.stdout
    labels = list((tmp_path / "labels").glob("*.mcap"))
    assert len(labels) == 1 and (tmp_path / "idm" / "model.safetensors").exists()
