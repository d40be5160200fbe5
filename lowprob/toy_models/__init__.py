"""Toy problems with known answers: the halfspace toy (+ exact oracle), random MLPs, random products.

Names are imported lazily (PEP 562 ``__getattr__``) so that ``lowprob toy exact`` does not pay
for SciPy's statistics module, which only the baselines (minimax tilting) need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from lowprob.toy_models.baselines import NaiveMonteCarlo, SequentialMonteCarlo
    from lowprob.toy_models.halfspace import (
        HalfspaceFactor,
        HalfspaceStep,
        HalfspaceToy,
        as_halfspace_toy,
    )
    from lowprob.toy_models.instance_stats import (
        InstanceStats,
        instance_statistics,
        wendel_feasibility_probability,
    )
    from lowprob.toy_models.oracle import OracleResult, exact_probabilities, exact_probability
    from lowprob.toy_models.orthant import orthant_probability, simplicial_cone_masses
    from lowprob.toy_models.random_mlp import RandomMLP

_WHERE = {
    "NaiveMonteCarlo": "baselines",
    "SequentialMonteCarlo": "baselines",
    "HalfspaceFactor": "halfspace",
    "HalfspaceToy": "halfspace",
    "HalfspaceStep": "halfspace",
    "as_halfspace_toy": "halfspace",
    "InstanceStats": "instance_stats",
    "instance_statistics": "instance_stats",
    "wendel_feasibility_probability": "instance_stats",
    "OracleResult": "oracle",
    "exact_probabilities": "oracle",
    "exact_probability": "oracle",
    "orthant_probability": "orthant",
    "simplicial_cone_masses": "orthant",
    "RandomMLP": "random_mlp",
}

__all__ = [
    "HalfspaceFactor",
    "HalfspaceStep",
    "HalfspaceToy",
    "InstanceStats",
    "NaiveMonteCarlo",
    "OracleResult",
    "RandomMLP",
    "SequentialMonteCarlo",
    "as_halfspace_toy",
    "exact_probabilities",
    "exact_probability",
    "instance_statistics",
    "orthant_probability",
    "simplicial_cone_masses",
    "wendel_feasibility_probability",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
