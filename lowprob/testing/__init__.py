"""Property-based verification of low-probability estimators (the public test kit).

* :mod:`lowprob.testing.strategies`: hypothesis strategies for halfspace-toy instances.
* :mod:`lowprob.testing.checks`: reusable checks (oracle agreement within the stated error,
  relative MSE over several instances that no constant estimator passes,
  budget respected, determinism under a seed, row-permutation / positive-scaling invariance,
  monotonicity in the half-spaces, bad-input errors).
* :class:`EstimatorContract`: a pytest mixin; subclass it, define ``make_estimator()``, and
  inherit the invariant tests. See docs/toy.md for a worked example.

The checks need only numpy; the strategies and the contract's property tests need hypothesis
(``pip install 'lowprob[test]'``), imported when first used.
"""

from lowprob.testing.checks import (
    EstimatorCheckError,
    Tolerance,
    check_agrees_with_oracle,
    check_budget_respected,
    check_deterministic,
    check_estimate,
    check_monotone_in_halfspaces,
    check_nmse_across_instances,
    check_permutation_invariance,
    check_rejects_bad_input,
    check_scaling_invariance,
    oracle_probability,
)
from lowprob.testing.contract import EstimatorContract
from lowprob.testing.instances import feasible_weight_matrix

__all__ = [
    "EstimatorCheckError",
    "EstimatorContract",
    "Tolerance",
    "check_agrees_with_oracle",
    "check_budget_respected",
    "check_deterministic",
    "check_estimate",
    "check_monotone_in_halfspaces",
    "check_nmse_across_instances",
    "check_permutation_invariance",
    "check_rejects_bad_input",
    "check_scaling_invariance",
    "feasible_weight_matrix",
    "oracle_probability",
]
