"""Plug-ins by registration (botorch's ``GetSampler.register`` pattern).

A :class:`Registry` maps keys (a method name, or a ``(step type, representation)``
pair) to callables, so adding a method is one decorated function and no caller grows
an ``if/elif`` on strings.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from lowprob.errors import InputValueError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named key -> object table with a decorator to fill it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[Hashable, T] = {}

    def register(self, key: Hashable, *, overwrite: bool = False) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if key in self._items and not overwrite:
                raise InputValueError(f"{self.kind} {key!r} is already registered.")
            self._items[key] = obj
            return obj

        return deco

    def add(self, key: Hashable, obj: T, *, overwrite: bool = False) -> T:
        return self.register(key, overwrite=overwrite)(obj)

    def get(self, key: Hashable) -> T:
        try:
            return self._items[key]
        except KeyError:
            known = ", ".join(sorted(map(repr, self._items))) or "(none)"
            raise InputValueError(f"unknown {self.kind} {key!r}; known: {known}.") from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._items)

    def keys(self) -> list[Hashable]:
        return list(self._items)

    def items(self) -> list[tuple[Hashable, Any]]:
        return list(self._items.items())
