"""Fixtures for the recorder tests: a private Xvfb, the colour app, xdotool, and the recorder process.

Everything runs on a display picked by Xvfb itself (``-displayfd``), so tests never touch the user's
desktop, and with ``XDG_RUNTIME_DIR`` in a temp folder, so they never talk to a real background recorder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).with_name("colour_app.py")
ROOT = Path(__file__).resolve().parents[3]
_STARTED: list[subprocess.Popen] = []  # every process a test started, ended by the fixture if a test failed


class XServer:
    """A running Xvfb and the environment that points programs at it."""

    def __init__(self, display: str, runtime: Path):
        self.display = display
        self.env = {**os.environ, "DISPLAY": display, "XDG_RUNTIME_DIR": str(runtime),
                    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def xdo(self, *args: str | int) -> None:
        subprocess.run(["xdotool", *map(str, args)], env=self.env, check=True, timeout=10)

    def d2e(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a ``d2e`` command on this display; returns its exit status and output."""
        return subprocess.run([sys.executable, "-m", "d2e.cli", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def set_active_window(self, window_id: int) -> None:
        """Act as a window manager: announce ``window_id`` in ``_NET_ACTIVE_WINDOW`` (bare Xvfb has no WM)."""
        from Xlib import X, Xatom
        from Xlib.display import Display

        d = Display(self.display)
        try:
            root = d.screen().root
            active = d.intern_atom("_NET_ACTIVE_WINDOW")
            root.change_property(d.intern_atom("_NET_SUPPORTED"), Xatom.ATOM, 32, [active])
            root.change_property(active, Xatom.WINDOW, 32, [window_id], X.PropModeReplace)
            d.sync()
        finally:
            d.close()


def _toplevel(display: str, window_id: int) -> int:
    """The child of the root that holds ``window_id``: Tk's wrapper, which carries WM_NAME/WM_CLASS."""
    from Xlib.display import Display

    d = Display(display)
    try:
        window = d.create_resource_object("window", window_id)
        root = d.screen().root
        while True:
            parent = window.query_tree().parent
            if parent is None or parent.id == root.id:
                return int(window.id)
            window = parent
    finally:
        d.close()


class App:
    """The colour app (tests/capture/recorder/colour_app.py) as a process; ``window_id`` is its frame."""

    def __init__(self, xs: XServer, *args: str):
        pytest.importorskip("tkinter", reason="tkinter is missing (apt-get install python3-tk)")
        self.proc = subprocess.Popen([sys.executable, str(APP), *args], env=xs.env, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("ready"):
            self.close()
            raise RuntimeError(f"colour app did not start: {line!r}")
        _STARTED.append(self.proc)
        self.window_id = _toplevel(xs.display, int(line.split()[1]))

    def close(self) -> str:
        """End the app; returns what it printed after ``ready`` (``--log-keys``: the keys it received)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        rest, _ = self.proc.communicate(timeout=10)
        return rest or ""


class RecorderProc:
    """``d2e record`` as a subprocess (real CLI, real signals); stderr goes to ``log``."""

    def __init__(self, xs: XServer, out: Path, *args: str):
        self.out = out
        self.log = out.with_suffix(".stderr")
        out.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "d2e.cli", "record", str(out), *args], env=xs.env,
                                     stdout=subprocess.DEVNULL, stderr=self._log_file, cwd=ROOT)
        _STARTED.append(self.proc)
        deadline = time.monotonic() + 30
        while "capturing keyboard" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"recorder did not start:\n{self.text()}")
            time.sleep(0.05)
        time.sleep(0.3)  # first frames

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self._log_file.close()
        return rc


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XServer]:
    """A private 640x480 Xvfb for the module; skips the tests when Xvfb or xdotool is missing."""
    for tool, pkg in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {pkg})")
    pytest.importorskip("Xlib", reason="python-xlib is not installed (pip install 'd2e[record]')")
    pytest.importorskip("mss", reason="mss is not installed (pip install 'd2e[record]')")
    runtime = tmp_path_factory.mktemp("runtime")
    runtime.chmod(0o700)
    # -noreset: by default Xvfb resets whenever its last client leaves (between tests), and a client that
    # connects during the reset is refused ("Connection reset by peer"); that failed CI once.
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "640x480x24", "-nolisten", "tcp",
                             "-noreset"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    number = proc.stdout.readline().strip() if proc.stdout else ""
    if not number.isdigit():
        proc.kill()
        pytest.skip("Xvfb did not start")
    try:
        yield XServer(f":{number}", runtime)
    finally:
        for child in _STARTED:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        _STARTED.clear()
        for pid_file in runtime.glob("*.pid"):  # a background recorder left by a failed test
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        proc.terminate()
        proc.wait(timeout=10)
