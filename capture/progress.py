"""Progress bars for long operations: on a terminal only, so pipes and logs stay clean."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "msg") -> Iterator[T]:
    """``tqdm`` on stderr when it is a terminal (``disable=None``), a plain pass-through otherwise."""
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit=unit, disable=None, leave=False, dynamic_ncols=True,
                    unit_scale=True)
