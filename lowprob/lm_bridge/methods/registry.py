"""The LM-method registry: ``@register_lm_method("name")`` adds a method to every bench.

A registered object is a class (or any callable) that, called with keyword
hyperparameters, returns an estimator with ``estimate(problem, budget, *, seed) ->
Estimate`` (:class:`lowprob.Estimator`). ``lowprob lm bench`` and ``lowprob lm estimate``
look methods up here, so a new method is one decorated class in any imported module.

Plug-ins outside this package are found by :func:`load_lm_plugins`: every submodule of
``lowprob.lm_bridge.methods``, the ``lowprob.lm_methods`` entry-point group, modules named
in the ``LOWPROB_LM_PLUGINS`` environment variable (comma-separated) and modules passed
explicitly (``lowprob lm bench --plugin my.module``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, TypeVar

from lowprob.errors import InputValueError
from lowprob.estimate import Estimator
from lowprob.registry import Registry

__all__ = [
    "LM_METHODS",
    "available_lm_methods",
    "load_lm_plugins",
    "make_lm_method",
    "register_lm_method",
]

LM_METHODS: Registry[Callable[..., Estimator]] = Registry("LM method")

F = TypeVar("F", bound=Callable[..., Any])

_BUILTIN_PLUGIN_PACKAGES = ("lowprob.lm_bridge.methods", "lowprob.lm_bridge.whitebox")
_loaded: set[str] = set()


def register_lm_method(name: str, *, overwrite: bool = False) -> Callable[[F], F]:
    """Class decorator: register ``cls`` under ``name`` and set ``cls.name = name``."""
    if not isinstance(name, str) or not name:
        raise InputValueError(f"an LM method name must be a non-empty string, got {name!r}.")

    def deco(obj: F) -> F:
        if isinstance(obj, type) and not getattr(obj, "name", None):
            obj.name = name  # type: ignore[attr-defined]
        return LM_METHODS.register(name, overwrite=overwrite)(obj)

    return deco


def load_lm_plugins(modules: Iterable[str] = ()) -> list[str]:
    """Import every source of LM methods (see the module docstring); returns what was imported."""
    names: list[str] = []
    for pkg_name in _BUILTIN_PLUGIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names += [f"{pkg_name}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    try:
        names += [ep.value.split(":")[0] for ep in metadata.entry_points(group="lowprob.lm_methods")]
    except Exception:  # pragma: no cover - broken metadata should not break the bench
        pass
    names += [m.strip() for m in os.environ.get("LOWPROB_LM_PLUGINS", "").split(",") if m.strip()]
    names += list(modules)
    done = []
    for name in names:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                raise InputValueError(
                    f"LM method plug-in module {name!r} was not found; check the module path."
                ) from exc
            raise
        _loaded.add(name)
        done.append(name)
    return done


def available_lm_methods() -> list[str]:
    """Names of all registered LM methods (after loading plug-ins)."""
    load_lm_plugins()
    return [str(k) for k in LM_METHODS.keys()]


def make_lm_method(name: str, **params: Any) -> Estimator:
    """Instantiate the registered method ``name`` with keyword hyperparameters."""
    load_lm_plugins()
    factory = LM_METHODS.get(name)
    try:
        return factory(**params)
    except TypeError as exc:
        raise InputValueError(f"bad hyperparameters {params!r} for LM method {name!r}: {exc}") from exc
