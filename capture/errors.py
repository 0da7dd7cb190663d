"""User-facing errors: one line that names the file, the position and the likely fix.

The CLI prints ``D2EError`` as that one line and exits with status 2; anything else is a bug and keeps
its traceback. Library callers catch ``D2EError`` to tell bad input from broken code.
"""

from __future__ import annotations


class D2EError(Exception):
    """Bad input or a bad request: ``path`` and ``where`` locate it, ``fix`` says what to do."""

    def __init__(self, problem: str, *, path: object = None, where: str | None = None, fix: str | None = None):
        self.problem, self.path, self.where, self.fix = problem, path, where, fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if self.where:
            parts.append(self.where)
        text = ": ".join(parts + [self.problem]) if parts else self.problem
        if self.fix:
            text += f" ({self.fix})"
        return text


class MissingExtraError(D2EError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"this feature needs the '{module}' package",
            fix=f"install it with: pip install 'd2e[{extra}]'",
        )


def require(module: str, extra: str):
    """Import an optional dependency or raise a MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
