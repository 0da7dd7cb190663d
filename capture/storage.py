"""Paths and files: local paths and fsspec URLs read the same way, outputs appear only when complete.

Readers open ``s3://``/``gs://``/``http(s)://``/``memory://`` URLs through fsspec as seekable files, so
MCAP's index lets them fetch only the chunks they need instead of the whole file. Writers go through
``atomic_output``: a temp file beside the target that is renamed into place only after it is finished,
so an interrupted conversion never leaves a half file that looks finished.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import D2EError


def is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def local_path(path: str | os.PathLike) -> Path:
    text = str(path)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def open_read(path: str | os.PathLike) -> IO[bytes]:
    """A seekable binary file for a local path or an fsspec URL; a clear error when it is missing."""
    if is_url(path):
        import fsspec

        try:
            return fsspec.open(str(path), "rb").open()
        except FileNotFoundError as exc:
            raise D2EError("no such file", path=path, fix="check the URL") from exc
    p = local_path(path)
    try:
        p.stat()
    except FileNotFoundError:
        raise D2EError("no such file", path=p, fix="check the path") from None
    except OSError as exc:  # a symlink loop, a path through a file, no permission
        raise D2EError(f"cannot open it ({exc.strerror})", path=p, fix="check the path") from None
    if p.is_dir():
        raise D2EError("is a directory, expected a .mcap file", path=p)
    try:
        return open(p, "rb")
    except OSError as exc:
        raise D2EError(f"cannot open it ({exc.strerror})", path=p, fix="check the file's permissions") from None


def file_size(path: str | os.PathLike) -> int:
    if is_url(path):
        import fsspec

        fs, _, (p,) = fsspec.get_fs_token_paths(str(path))
        return int(fs.size(p))
    return local_path(path).stat().st_size


def sibling(path: str | os.PathLike, suffix: str) -> str:
    """``dir/NAME.mcap`` -> ``dir/NAME<suffix>`` for local paths and URLs alike."""
    text = str(path)
    base = text[: -len(".mcap")] if text.endswith(".mcap") else text
    return base + suffix


def exists(path: str | os.PathLike) -> bool:
    if is_url(path):
        import fsspec

        fs, _, (p,) = fsspec.get_fs_token_paths(str(path))
        return bool(fs.exists(p))
    return local_path(path).exists()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it to ``path`` only if the block succeeds."""
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(paths: list[str | os.PathLike], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """``atomic_output`` for files that belong together (a recording's ``.mcap`` and ``.mkv``): every
    target is checked before anything is written, and all are renamed into place only when the block
    succeeds, so a failure leaves no half pair behind and a rerun starts clean."""
    targets = [local_path(p) for p in paths]
    for target in targets:
        if target.exists() and not overwrite:
            raise D2EError("output already exists", path=target, fix="choose another name or pass --force")
        if target.is_dir():
            raise D2EError("output is a directory", path=target, fix="name a file")
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two local paths name the same file (through links too); False for a path that cannot be
    resolved (a symlink loop) or URLs."""
    if is_url(a) or is_url(b):
        return str(a) == str(b)
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def expand_inputs(inputs: list[str] | tuple[str, ...], suffixes: tuple[str, ...], pattern: str | None = None
                  ) -> list[str]:
    """Files, folders (searched recursively for ``suffixes``), ``@list.txt`` files (one path or URL a
    line) and fsspec URLs or URL globs -> a sorted, de-duplicated list of paths/URLs."""
    import fnmatch

    out: list[str] = []
    for item in inputs:
        if item.startswith("@"):
            lines = Path(item[1:]).read_text().splitlines()
            out += expand_inputs([x.strip() for x in lines if x.strip() and not x.startswith("#")], suffixes, pattern)
        elif is_url(item):
            if any(c in item for c in "*?["):
                import fsspec

                _fs, _, paths = fsspec.get_fs_token_paths(item)
                protocol = item.split("://", 1)[0]
                out += [f"{protocol}://{p}" for p in paths]
            else:
                out.append(item)
        elif os.path.isdir(item):
            for root, _dirs, files in os.walk(item):
                out += [os.path.join(root, f) for f in files if f.lower().endswith(suffixes)
                        and (pattern is None or fnmatch.fnmatch(f, pattern))]
        else:
            out.append(item)
    return sorted(dict.fromkeys(out))
