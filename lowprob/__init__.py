"""lowprob: low-probability estimation from a model's internals.

Subpackages:
    sketching    claim distributions, claim kernels, K-term sketches and their exact error
    propagation  steps, deduction-projection loops, forward activation / backward claim models, estimators
    toy_models   halfspace toy (+ exact oracle), random MLPs, random-product problems
    lm_bridge    transformer adapters, token distributions, LPE methods, ground truth, scoring
    testing      property-based verification kit for estimators
"""

from lowprob.errors import (
    BudgetError,
    InputTypeError,
    InputValueError,
    LowprobError,
    NumericalError,
    NumericalWarning,
    UnavailableError,
)
from lowprob.estimate import Cost, Estimate, Estimator

__version__ = "0.1.0"

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
