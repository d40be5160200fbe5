"""The registry of estimators for :class:`~lowprob.toy_models.HalfspaceToy` problems.

Each entry maps a method name to a factory ``(**options) -> Estimator``. Baselines live in
``lowprob.toy_models``; the propagation estimators (``kernel``, ``hermite``, ``sampling``)
register themselves from ``lowprob.propagation`` and are loaded on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lowprob.estimate import Estimator
from lowprob.registry import Registry

__all__ = ["TOY_ESTIMATORS", "get_toy_estimator", "toy_estimator_names"]

TOY_ESTIMATORS: Registry[Callable[..., Estimator]] = Registry("toy estimator")

# Modules whose import registers more toy estimators (optional: skipped if absent).
_PLUGIN_MODULES = (
    "lowprob.toy_models.baselines",
    "lowprob.propagation.toy_estimators",
    "lowprob.propagation.product_estimators",
)


def _load_plugins() -> None:
    for name in _PLUGIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def get_toy_estimator(name: str, **options: Any) -> Estimator:
    """Instantiate the toy estimator registered as ``name`` with ``options``."""
    _load_plugins()
    return TOY_ESTIMATORS.get(name)(**options)


def toy_estimator_names() -> list[str]:
    _load_plugins()
    return sorted(map(str, TOY_ESTIMATORS.keys()))
