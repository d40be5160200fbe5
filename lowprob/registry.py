"""Plug-ins by registration (botorch's ``GetSampler.register`` pattern).

A :class:`Registry` maps keys (a method name, or a ``(step type, representation)``
pair) to callables, so adding a method is one decorated function and no caller grows
an ``if/elif`` on strings.

**Plug-in modules.** A module registers its entries when it is imported. Registries whose
entries come from *other* packages (``Registry(kind, plugins=True)``: the toy estimators, the
curve problems, the sketch views) import every module named in the ``lowprob.plugins``
entry-point group (see ``pyproject.toml``) the first time they are read, so a lower package
never imports a higher one by name, and a third-party package adds estimators by declaring::

    [project.entry-points."lowprob.plugins"]
    my_estimators = "my_package.lowprob_estimators"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from lowprob.errors import InputValueError

__all__ = ["PLUGIN_GROUP", "Registry", "load_plugins"]

T = TypeVar("T")

#: The entry-point group whose modules register plug-ins when imported.
PLUGIN_GROUP = "lowprob.plugins"
_loaded = False


def load_plugins() -> list[str]:
    """Import every module of the ``lowprob.plugins`` entry-point group (once); returns their names."""
    global _loaded
    names = [ep.value for ep in entry_points(group=PLUGIN_GROUP)]
    if not _loaded:
        _loaded = True
        for name in names:
            importlib.import_module(name)
    return names


class Registry(Generic[T]):
    """A named key -> object table with a decorator to fill it."""

    def __init__(self, kind: str, *, plugins: bool = False) -> None:
        self.kind = kind
        self.plugins = plugins
        self._items: dict[Hashable, T] = {}

    def _table(self) -> dict[Hashable, T]:
        if self.plugins and not _loaded:
            load_plugins()
        return self._items

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
            return self._table()[key]
        except KeyError:
            known = ", ".join(sorted(map(repr, self._items))) or "(none)"
            raise InputValueError(f"unknown {self.kind} {key!r}; known: {known}.") from None

    def __contains__(self, key: object) -> bool:
        return key in self._table()

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._table())

    def keys(self) -> list[Hashable]:
        return list(self._table())

    def items(self) -> list[tuple[Hashable, Any]]:
        return list(self._table().items())
