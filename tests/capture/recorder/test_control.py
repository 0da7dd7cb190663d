"""The recorder's control folder: private (0700, ours) or refused; no write follows a planted link."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from capture.errors import D2EError
from capture.recorder import control
from capture.recorder.control import ControlServer, runtime_dir, send
from d2e.cli import main


@pytest.fixture
def no_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No XDG_RUNTIME_DIR: the folder goes under a private stand-in for /tmp."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    base = tmp_path / "tmp"
    base.mkdir(mode=0o777)
    base.chmod(0o1777)  # like /tmp: everyone may create entries in it
    monkeypatch.setattr(control, "FALLBACK_BASE", base)
    return base / f"d2e-{os.getuid()}"


def test_created_private(no_xdg: Path) -> None:
    assert runtime_dir() == no_xdg
    assert stat.S_IMODE(no_xdg.lstat().st_mode) == 0o700


def test_a_wider_mode_is_refused(no_xdg: Path) -> None:
    no_xdg.mkdir(mode=0o700)
    no_xdg.chmod(0o777)
    with pytest.raises(D2EError, match="mode 777: other users can reach it.*chmod 700"):
        runtime_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_another_owner_is_refused(no_xdg: Path) -> None:
    no_xdg.mkdir(mode=0o700)
    os.chown(no_xdg, 54321, -1)
    with pytest.raises(D2EError, match="belongs to uid 54321"):
        runtime_dir()


def test_a_symlink_in_its_place_is_refused(no_xdg: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    no_xdg.symlink_to(elsewhere)
    with pytest.raises(D2EError, match="not a directory"):
        runtime_dir()


def test_xdg_runtime_dir_is_checked_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert main(["record", "status"]) == 2  # by the command a user types: one line, exit 2
    err = capsys.readouterr().err
    assert "other users can reach it" in err and len(err.strip().splitlines()) == 1


def test_the_pid_file_never_follows_a_planted_link(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (runtime / "d2e-record.pid").symlink_to(victim)
    server = ControlServer(lambda cmd: {"ok": True})
    with pytest.raises(D2EError, match="something else is in the place"):
        server.start()
    server.close()
    assert victim.read_text() == "precious" and (runtime / "d2e-record.pid").is_symlink()


def test_a_stale_socket_is_replaced_and_the_server_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(runtime / "d2e-record.sock"))  # bound, never listening: a recorder that died
    stale.close()
    (runtime / "d2e-record.pid").write_text("999999\n")
    server = ControlServer(lambda cmd: {"ok": True, "cmd": cmd})
    server.start()
    try:
        assert send("status") == {"ok": True, "cmd": "status"}
        assert stat.S_IMODE((runtime / "d2e-record.sock").lstat().st_mode) == 0o600
        pid_file = runtime / "d2e-record.pid"
        assert stat.S_IMODE(pid_file.lstat().st_mode) == 0o600 and pid_file.read_text() == f"{os.getpid()}\n"
    finally:
        server.close()
    assert not (runtime / "d2e-record.sock").exists()
