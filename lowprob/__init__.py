"""lowprob: low-probability estimation from a model's internals.

Subpackages:
    sketching    claim distributions, claim kernels, K-term sketches and their exact error
    propagation  steps, deduction-projection loops, forward activation / backward claim models, estimators
    toy_models   halfspace toy (+ exact oracle), random MLPs, random-product problems
    lm_bridge    transformer adapters, token distributions, LPE methods, ground truth, scoring
    testing      property-based verification kit for estimators
"""

from typing import TYPE_CHECKING, Any

from lowprob.errors import (
    BudgetError,
    InputTypeError,
    InputValueError,
    LowprobError,
    NumericalError,
    NumericalWarning,
    UnavailableError,
)

if TYPE_CHECKING:  # pragma: no cover
    from lowprob.estimate import Cost, Estimate, Estimator

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``Cost``/``Estimate``/``Estimator`` are loaded on first use, so that ``lowprob --help``
    # (which imports ``lowprob.cli`` and ``lowprob.errors`` only) does not import numpy.
    if name in ("Cost", "Estimate", "Estimator"):
        from lowprob import estimate

        value = getattr(estimate, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowprob' has no attribute {name!r}")

__all__ = [
    "BudgetError",
    "Cost",
    "Estimate",
    "Estimator",
    "InputTypeError",
    "InputValueError",
    "LowprobError",
    "NumericalError",
    "NumericalWarning",
    "UnavailableError",
    "__version__",
]
