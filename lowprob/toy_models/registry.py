"""The registry of estimators for :class:`~lowprob.toy_models.HalfspaceToy` problems.

Each entry maps a method name to a factory ``(**options) -> Estimator``. Registration goes
one way, from the package that defines an estimator into this table: the baselines
(``naive``, ``smc``) are registered here as lazy factories (their module, which needs SciPy's
statistics, is imported on first use), the propagation estimators (``kernel``, ``hermite``,
``sampling``) when :mod:`lowprob.propagation` is imported. This module imports nothing above
``lowprob.toy_models``; the ``lowprob`` command line imports the plugin packages before it runs a
command.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lowprob.errors import InputValueError
from lowprob.estimate import Estimator
from lowprob.registry import Registry

__all__ = ["TOY_ESTIMATORS", "get_toy_estimator", "lazy_factory", "toy_estimator_names"]

TOY_ESTIMATORS: Registry[Callable[..., Estimator]] = Registry("toy estimator", plugins=True)


def get_toy_estimator(name: str, **options: Any) -> Estimator:
    """Instantiate the toy estimator registered as ``name`` with ``options``."""
    if name not in TOY_ESTIMATORS:
        raise InputValueError(
            f"unknown toy estimator {name!r}; registered: {', '.join(map(repr, toy_estimator_names()))}. "
            "Estimators register when their package is imported: `import lowprob.propagation` "
            "adds 'kernel', 'hermite' and 'sampling'."
        )
    return TOY_ESTIMATORS.get(name)(**options)


def toy_estimator_names() -> list[str]:
    """The names registered so far (sorted)."""
    return sorted(map(str, TOY_ESTIMATORS.keys()))


def lazy_factory(module: str, attr: str) -> Callable[..., Estimator]:
    """A factory that imports ``module`` and instantiates ``module.attr`` on first use (no import cycle)."""

    def make(**options: Any) -> Estimator:
        return getattr(importlib.import_module(module), attr)(**options)

    make.__doc__ = f"``{module}.{attr}(**options)`` (imported on first use)."
    return make


TOY_ESTIMATORS.add("naive", lazy_factory("lowprob.toy_models.baselines", "NaiveMonteCarlo"))
TOY_ESTIMATORS.add("smc", lazy_factory("lowprob.toy_models.baselines", "SequentialMonteCarlo"))
