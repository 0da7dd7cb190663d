"""Control channel of a background recording: a unix socket and a pid file in the user's runtime dir.

``d2e record status|pause|resume|stop`` connect to the socket, send one JSON line and read one back.
A socket (rather than signals alone) lets ``status`` return numbers, and its 0600 mode under
``$XDG_RUNTIME_DIR`` (itself 0700) keeps other users out.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import D2EError

Handler = Callable[[str], dict[str, Any]]


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR``, else a private folder under /tmp."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base)
    path = Path(f"/tmp/d2e-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def socket_path(name: str = "d2e-record") -> Path:
    return runtime_dir() / f"{name}.sock"


def pid_path(name: str = "d2e-record") -> Path:
    return runtime_dir() / f"{name}.pid"


def _alive(path: Path) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        s.connect(str(path))
        return True
    return False


class ControlServer:
    """Serves ``status``/``pause``/``resume``/``stop`` to ``handler`` on a thread; one recorder per name."""

    def __init__(self, handler: Handler, name: str = "d2e-record"):
        self.handler = handler
        self.sock_path, self.pid_file = socket_path(name), pid_path(name)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def check_free(self) -> None:
        """Refuse before anything is recorded if another recorder answers on this socket."""
        if self.sock_path.exists() and _alive(self.sock_path):
            raise D2EError("another recording is running", path=self.sock_path,
                           fix="stop it with 'd2e record stop' first")

    def start(self) -> None:
        self.check_free()
        if self.sock_path.exists():  # left by a recorder that died
            self.sock_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.sock_path))
        finally:
            os.umask(old)
        sock.listen(4)
        sock.settimeout(0.2)
        self._sock = sock
        fd = os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        self._thread = threading.Thread(target=self._serve, name="d2e-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(2.0)
                    line = conn.makefile("r").readline()
                    cmd = json.loads(line).get("cmd", "") if line.strip() else ""
                    reply = self.handler(cmd)
                except Exception as exc:  # noqa: BLE001 - a bad client must not stop the recording
                    reply = {"ok": False, "error": str(exc)}
                with contextlib.suppress(OSError):
                    conn.sendall((json.dumps(reply) + "\n").encode())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is None:  # never bound: the socket there, if any, is another recorder's
            return
        self._sock.close()
        for path in (self.sock_path, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def send(cmd: str, name: str = "d2e-record", timeout: float = 5.0) -> dict[str, Any]:
    """Send one command to the running recorder and return its JSON reply."""
    path = socket_path(name)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
            data = s.makefile("r").readline()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise D2EError("no recording is running", path=path, fix="start one with 'd2e record OUT'") from exc
    return json.loads(data) if data.strip() else {"ok": False, "error": "no reply"}
