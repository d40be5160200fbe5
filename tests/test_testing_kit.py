"""The public test kit catches broken estimators (and passes good ones).

Tier: fast. Each broken estimator below violates exactly one property; the matching check
must raise EstimatorCheckError, so the kit's checks are not vacuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprob._validation import as_generator, check_budget
from lowprob.errors import BudgetError
from lowprob.estimate import Cost, Estimate
from lowprob.testing import (
    EstimatorCheckError,
    EstimatorContract,
    Tolerance,
    check_agrees_with_oracle,
    check_budget_respected,
    check_deterministic,
    check_estimate,
    check_monotone_in_halfspaces,
    check_permutation_invariance,
    check_rejects_bad_input,
    check_scaling_invariance,
)
from lowprob.testing.strategies import halfspace_toys, weight_matrices
from lowprob.toy_models import HalfspaceToy
from lowprob.toy_models.baselines import NaiveMonteCarlo
from lowprob.toy_models.oracle import exact_probability


@dataclass
class OracleEstimator:
    """A correct deterministic estimator (the oracle), optionally broken in one way."""

    bias: float = 1.0
    overspend: int = 0
    noisy: bool = False
    order_dependent: bool = False
    validate: bool = True
    name: str = "oracle"

    def estimate(self, problem, budget, *, seed=None):
        if self.validate:
            budget = check_budget(budget)
            as_generator(seed)
        r = exact_probability(problem.W)
        p = r.probability * self.bias
        if self.noisy:
            p *= 1 + 1e-3 * np.random.default_rng().random()  # ignores the seed
        if self.order_dependent:
            p *= 1 + 0.1 * abs(problem.W[0, 0])
        return Estimate.from_value(
            p,
            std_error=None,
            cost=Cost(samples=budget + self.overspend, seconds=0.0),
            method=self.name,
            budget=budget,
            diagnostics={"error_bound": r.error_bound},
        )


PROBLEM = HalfspaceToy(np.array([[1.0, 0.2, 0.1], [0.3, 1.0, -0.2], [0.1, -0.3, 1.0], [1.0, 1.0, 1.0]]))
EXACT = Tolerance(k_sigma=0, rtol=1e-12, variance="none")


def test_good_estimator_passes_all_checks():
    est = OracleEstimator()
    check_agrees_with_oracle(est, PROBLEM, 10, tolerance=EXACT)
    check_budget_respected(est, PROBLEM, 10)
    check_deterministic(est, PROBLEM, 10)
    check_permutation_invariance(est, PROBLEM, 10, [3, 1, 0, 2], tolerance=EXACT)
    check_scaling_invariance(est, PROBLEM, 10, [1e-3, 2.0, 5.0, 1e3], tolerance=EXACT)
    check_monotone_in_halfspaces(est, PROBLEM, 10, np.array([[0.0, 0.0, 1.0]]), tolerance=EXACT)
    check_rejects_bad_input(est, PROBLEM)


def test_biased_estimator_fails_agreement():
    with pytest.raises(EstimatorCheckError, match="differs from the oracle"):
        check_agrees_with_oracle(OracleEstimator(bias=1.01), PROBLEM, 10, tolerance=EXACT)


def test_overspending_estimator_fails_budget():
    with pytest.raises(EstimatorCheckError, match="> budget"):
        check_budget_respected(OracleEstimator(overspend=1), PROBLEM, 10)


def test_nondeterministic_estimator_fails():
    with pytest.raises(EstimatorCheckError, match="same seed"):
        check_deterministic(OracleEstimator(noisy=True), PROBLEM, 10, seed=3)


def test_order_dependent_estimator_fails_permutation():
    with pytest.raises(EstimatorCheckError, match="row permutation"):
        check_permutation_invariance(
            OracleEstimator(order_dependent=True), PROBLEM, 10, [1, 0, 2, 3], tolerance=EXACT
        )


def test_scale_dependent_estimator_fails_scaling():
    with pytest.raises(EstimatorCheckError, match="scaling"):
        check_scaling_invariance(
            OracleEstimator(order_dependent=True), PROBLEM, 10, [3.0, 1.0, 1.0, 1.0], tolerance=EXACT
        )


def test_increasing_estimator_fails_monotonicity():
    @dataclass
    class Grows(OracleEstimator):
        def estimate(self, problem, budget, *, seed=None):
            e = super().estimate(problem, budget, seed=seed)
            return Estimate.from_value(e.value * problem.m, std_error=None, cost=e.cost, method="grows")

    with pytest.raises(EstimatorCheckError, match="adding 1 half-space"):
        check_monotone_in_halfspaces(Grows(), PROBLEM, 10, np.array([[0.0, 0.0, 1.0]]), tolerance=EXACT)


def test_unvalidated_estimator_fails_bad_input():
    with pytest.raises(EstimatorCheckError, match="accepted"):
        check_rejects_bad_input(OracleEstimator(validate=False), PROBLEM)


def test_check_estimate_rejects_non_estimates_and_bad_logs():
    with pytest.raises(EstimatorCheckError):
        check_estimate(0.5)
    bad = Estimate(value=0.5, log_value=0.0, std_error=None, cost=Cost(), method="x")
    with pytest.raises(EstimatorCheckError, match="log_value"):
        check_estimate(bad)


def test_binomial_tolerance_covers_zero_hit_naive():
    # p ~ 1e-5 with 1000 samples: naive sees no hits, plug-in std_error = 0, but the binomial
    # sigma sqrt(p/N) ~ 1e-4 makes 0 an acceptable answer at k = 4.
    rng = np.random.default_rng(1)
    while True:
        W = rng.standard_normal((16, 4))
        if 1e-6 < exact_probability(W).probability < 1e-4:
            break
    toy = HalfspaceToy(W)
    check_agrees_with_oracle(NaiveMonteCarlo(), toy, 1000, tolerance=Tolerance(variance="binomial"))
    with pytest.raises(EstimatorCheckError):
        check_agrees_with_oracle(NaiveMonteCarlo(), toy, 1000, tolerance=Tolerance(variance="reported"))


@settings(max_examples=10)
@given(toy=halfspace_toys(d=st.integers(2, 4), m=st.integers(1, 12), feasible=True, scale_rows=True))
def test_feasible_strategy_is_feasible(toy):
    assert exact_probability(toy.W).probability > 0


@settings(max_examples=5)
@given(toy=halfspace_toys(d=3, m=6, feasible=False))
def test_infeasible_strategy_is_infeasible(toy):
    assert exact_probability(toy.W).probability == 0.0


@settings(max_examples=5)
@given(toy=halfspace_toys(d=3, m=5, feasible=True, min_probability=1e-2))
def test_min_probability_strategy(toy):
    assert exact_probability(toy.W).probability >= 1e-2


@settings(max_examples=10)
@given(W=weight_matrices(d=3, m=4))
def test_weight_matrices_are_valid(W):
    assert W.shape == (4, 3) and np.all(np.isfinite(W))
    HalfspaceToy(W)  # no zero rows


class TestOracleAsEstimatorContract(EstimatorContract):
    """The kit applied to a deterministic exact estimator (``kind='exact'``)."""

    kind = "exact"
    budget = 10
    d = 3
    m = 6
    tolerance = Tolerance(k_sigma=0.0, rtol=1e-12, variance="none")
    invariance = "exact"

    def make_estimator(self):
        return OracleEstimator()


def test_contract_requires_make_estimator():
    with pytest.raises(NotImplementedError, match="make_estimator"):
        EstimatorContract().make_estimator()


def test_budget_error_is_value_error():
    with pytest.raises(ValueError):
        OracleEstimator().estimate(PROBLEM, 0, seed=0)
    assert issubclass(BudgetError, ValueError)
    assert math.isfinite(OracleEstimator().estimate(PROBLEM, 1, seed=0).log_value)


# ---------------------------------------------------------------- constants fail every contract
@dataclass
class ConstantEstimator:
    """Returns ``value`` whatever the problem (a well-formed Estimate with an honest cost)."""

    value: float
    name: str = "constant"

    def estimate(self, problem, budget, *, seed=None):
        budget = check_budget(budget)
        as_generator(seed)
        return Estimate.from_value(self.value, std_error=0.0, cost=Cost(samples=1), method=self.name, budget=budget)


def _contract_classes():
    import test_propagation_contract as tpc  # module objects: their Test* classes are not re-collected
    import test_toy_baselines as ttb

    return [tpc.TestKernelContract, tpc.TestHermiteContract, tpc.TestSamplingContract,
            ttb.TestNaiveContract, ttb.TestSMCContract, TestOracleAsEstimatorContract]


@pytest.mark.parametrize("index", range(6))
def test_constant_and_zero_estimators_fail_each_contract(index):
    """Every constant c fails: c = 0, c = 0.01 (the old one-instance atol loophole) and the best
    constant c* = sum p^2 / sum p for the contract's own instances."""
    cls = _contract_classes()[index]
    truths = np.array([cls().oracle(cls().make_problem(i))[0] for i in range(cls.n_agreement)])
    for c in (0.0, 0.01, float((truths**2).sum() / truths.sum())):
        broken = type(f"Constant{cls.__name__}", (cls,), {"make_estimator": lambda self, c=c: ConstantEstimator(c)})
        with pytest.raises(EstimatorCheckError, match="relative MSE"):
            broken().test_relative_mse_across_instances()


def test_nmse_check_refuses_instances_a_constant_could_pass():
    toy = HalfspaceToy(np.eye(4))  # p = 1/16 for each copy: no spread at all
    with pytest.raises(EstimatorCheckError, match="do not discriminate"):
        from lowprob.testing import check_nmse_across_instances

        check_nmse_across_instances(OracleEstimator(), [toy, toy, toy], 10, nmse_tolerance=0.01)
