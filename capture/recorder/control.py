"""Control channel of a background recording: a unix socket and a pid file in the user's runtime dir.

``d2e record status|pause|resume|stop`` connect to the socket, send one JSON line and read one back.
A socket (rather than signals alone) lets ``status`` return numbers, and its 0600 mode under
``$XDG_RUNTIME_DIR`` (itself 0700) keeps other users out.

The folder is trusted only when it is ours: a real directory (not a symlink), owned by this user, mode
0700 or narrower; anything else is refused, because a folder another user can write lets them plant a
symlink where the pid file or socket goes. Without ``$XDG_RUNTIME_DIR`` it is ``/tmp/d2e-UID``, created
0700. The pid file is created with ``O_EXCL | O_NOFOLLOW`` and a stale socket is removed only if it is
a socket of ours, so no write ever follows a link.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import D2EError

Handler = Callable[[str], dict[str, Any]]
FALLBACK_BASE = Path("/tmp")  # where the control folder goes without $XDG_RUNTIME_DIR


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR``, else a private folder under /tmp; either must pass ``check_private``."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return check_private(Path(base))
    path = FALLBACK_BASE / f"d2e-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    return check_private(path)


def check_private(path: Path) -> Path:
    """``path`` itself (not through a link) is a directory of this user that no one else can enter."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise D2EError("the recorder's control folder is not a directory (a link or file is in its place)",
                       path=path, fix="remove it; d2e creates it again, private")
    if st.st_uid != os.getuid():
        raise D2EError(f"the recorder's control folder belongs to uid {st.st_uid}, not to you ({os.getuid()})",
                       path=path, fix="remove it, or set XDG_RUNTIME_DIR to a private folder of yours")
    if st.st_mode & 0o077:
        raise D2EError(f"the recorder's control folder has mode {stat.S_IMODE(st.st_mode):o}: other users can "
                       "reach it", path=path, fix=f"chmod 700 {path}")
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
        if os.path.lexists(self.sock_path) and _alive(self.sock_path):
            raise D2EError("another recording is running", path=self.sock_path,
                           fix="stop it with 'd2e record stop' first")

    def start(self) -> None:
        self.check_free()
        _remove_stale(self.sock_path, stat.S_ISSOCK)  # left by a recorder that died
        _remove_stale(self.pid_file, stat.S_ISREG)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.sock_path))
        finally:
            os.umask(old)
        sock.listen(4)
        sock.settimeout(0.2)
        self._sock = sock
        fd = os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
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


def _remove_stale(path: Path, is_kind: Callable[[int], bool]) -> None:
    """Remove what a dead recorder left at ``path``; refuse anything that is not what it left."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not is_kind(st.st_mode) or st.st_uid != os.getuid():
        raise D2EError("something else is in the place of the recorder's control file (a link, or another "
                       "user's file)", path=path, fix="remove it and start the recording again")
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
