"""Progress bars for long work (tqdm, to stderr, silenced when not a TTY unless forced)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["progress"]

T = TypeVar("T")


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool | None = None
) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar; ``enabled=None`` shows it only on an interactive stderr."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr)
