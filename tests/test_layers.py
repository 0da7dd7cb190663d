"""The import graph runs one way: capture <- core <- idm, pretrain, transfer <- d2e; capture never imports torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"capture": 0, "core": 1, "idm": 2, "pretrain": 2, "transfer": 2, "d2e": 3}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_no_package_imports_a_package_above_it_or_beside_it() -> None:
    wrong = []
    for package, layer in LAYERS.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path) & set(LAYERS):
                if name != package and LAYERS[name] >= layer:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong


def test_capture_imports_neither_torch_nor_any_stage() -> None:
    for path in (ROOT / "capture").rglob("*.py"):
        assert not {"torch", "pytorch_lightning", "core", "idm", "pretrain", "transfer"} & _imports(path), path
    code = ("import sys, importlib, pkgutil, capture\n"
            "for m in pkgutil.walk_packages(capture.__path__, 'capture.'):\n"
            "    importlib.import_module(m.name)\n"
            "above = ('torch', 'core', 'idm', 'pretrain', 'transfer')\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in above))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_d2e_info_starts_without_torch() -> None:
    code = "import sys; from d2e.cli import build_parser; build_parser(['info']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
