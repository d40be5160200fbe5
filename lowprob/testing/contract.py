"""``EstimatorContract``: a pytest mixin that gives any toy estimator the invariant tests.

Subclass it in a ``Test*`` class, supply :meth:`EstimatorContract.make_estimator`, and set the
class attributes that describe the estimator; every ``test_*`` method below is inherited::

    from lowprob.testing import EstimatorContract, Tolerance
    from lowprob.toy_models.baselines import NaiveMonteCarlo

    class TestNaive(EstimatorContract):
        budget = 20_000
        tolerance = Tolerance(k_sigma=4, variance="binomial")
        invariance = "exact"          # same seed -> same samples -> identical answers

        def make_estimator(self):
            return NaiveMonteCarlo()

(the pattern of linear_operator's ``LinearOperatorTestCase``). Tests pick problems from fixed
seeds and hypothesis draws with ``derandomize=True``, so runs are reproducible.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from lowprob.estimate import Estimator
from lowprob.testing.checks import (
    Tolerance,
    check_agrees_with_oracle,
    check_budget_respected,
    check_deterministic,
    check_monotone_in_halfspaces,
    check_nmse_across_instances,
    check_permutation_invariance,
    check_rejects_bad_input,
    check_scaling_invariance,
    oracle_probability,
)
from lowprob.testing.instances import feasible_weight_matrix
from lowprob.toy_models.halfspace import HalfspaceToy

__all__ = ["EstimatorContract"]


class EstimatorContract:
    """Mixin with the invariant tests for a halfspace-toy estimator.

    Class attributes (override as needed):
        budget: budget passed to ``estimate``.
        seed: base seed (problems and estimator calls derive from it).
        d, m: problem size for the generated instances (``d <= 4`` for the oracle).
        kind: ``"exact"`` (deterministic, states ``diagnostics["error_bound"]``),
            ``"unbiased"``/``"consistent"`` (sampling with ``std_error``) or ``"approximate"``
            (deterministic approximation; give ``tolerance.rtol``/``atol``).
        tolerance: the agreement rule (:class:`~lowprob.testing.Tolerance`).
        invariance: ``"exact"`` (permuted/scaled problems give equal answers up to
            ``invariance_rtol``) or ``"statistical"`` (within ``tolerance`` of each other: use
            it for sampling methods and for order-dependent approximations).
        deterministic: the same integer seed reproduces the estimate exactly.
        min_probability: lower bound on ``p`` for the instances used in agreement tests.
        n_problems: instances in the per-instance oracle-agreement test.
        n_agreement: instances in the relative-MSE test (their ``p`` must spread enough that
            every constant estimator fails it; the check refuses the configuration otherwise).
        nmse_tolerance: the largest relative MSE ``sum (hat p - p)^2 / sum p^2`` allowed over
            those instances (at most a quarter of the best constant's).
        max_examples: hypothesis examples per property test.
        device: for estimators with a device (e.g. torch); available to ``make_estimator``.
    """

    budget: ClassVar[int] = 20_000
    seed: ClassVar[int] = 0
    d: ClassVar[int] = 4
    m: ClassVar[int] = 8
    kind: ClassVar[Literal["exact", "unbiased", "consistent", "approximate"]] = "unbiased"
    tolerance: ClassVar[Tolerance] = Tolerance(k_sigma=4.0)
    invariance: ClassVar[Literal["exact", "statistical"]] = "statistical"
    invariance_rtol: ClassVar[float] = 1e-9
    deterministic: ClassVar[bool] = True
    min_probability: ClassVar[float] = 1e-3
    n_problems: ClassVar[int] = 3
    n_agreement: ClassVar[int] = 8
    nmse_tolerance: ClassVar[float] = 0.05
    max_examples: ClassVar[int] = 4
    device: ClassVar[str] = "cpu"

    # -- to supply ----------------------------------------------------------------------
    def make_estimator(self) -> Estimator:
        raise NotImplementedError(f"{type(self).__name__} must define make_estimator().")

    # -- problems (override to test on your own instances) --------------------------------
    def make_problem(self, index: int = 0) -> HalfspaceToy:
        """A feasible ``(m, d)`` instance with ``p >= min_probability``, fixed by ``seed, index``."""
        rng = np.random.default_rng([self.seed, index, 7919])
        for _ in range(10_000):
            W = feasible_weight_matrix(rng, self.d, self.m)
            if self.min_probability <= 0 or self.oracle(HalfspaceToy(W))[0] >= self.min_probability:
                return HalfspaceToy(W)
        raise RuntimeError(f"no instance with p >= {self.min_probability} found; lower min_probability.")

    def oracle(self, problem: HalfspaceToy) -> tuple[float, float]:
        """``(p, error_bound)`` for ``problem`` (default: the exact oracle)."""
        return oracle_probability(problem)

    def _invariance_tolerance(self) -> Tolerance:
        if self.invariance == "exact":
            return Tolerance(k_sigma=0.0, rtol=self.invariance_rtol, atol=1e-300, variance="none")
        return self.tolerance

    def _property(self, body: Any, **strategies: Any) -> None:
        from hypothesis import HealthCheck, given, settings

        wrapped = settings(
            max_examples=self.max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(**strategies)(body))
        wrapped()

    # -- the inherited tests --------------------------------------------------------------
    def test_budget_respected(self) -> None:
        check_budget_respected(self.make_estimator(), self.make_problem(0), self.budget, seed=self.seed)

    def test_deterministic_under_seed(self) -> None:
        if not self.deterministic:
            import pytest

            pytest.skip("estimator declares deterministic = False")
        check_deterministic(self.make_estimator(), self.make_problem(0), self.budget, seed=self.seed)

    def test_agrees_with_oracle(self) -> None:
        est = self.make_estimator()
        for i in range(self.n_problems):
            check_agrees_with_oracle(
                est, self.make_problem(i), self.budget, seed=self.seed + i,
                tolerance=self.tolerance, oracle=self.oracle,
            )

    def test_relative_mse_across_instances(self) -> None:
        """Several instances, a relative tolerance: no constant estimator passes this."""
        check_nmse_across_instances(
            self.make_estimator(), [self.make_problem(i) for i in range(self.n_agreement)],
            self.budget, seed=self.seed, nmse_tolerance=self.nmse_tolerance, oracle=self.oracle,
        )

    def test_infeasible_instance_gives_zero(self) -> None:
        # w and -w: the open cone is empty, p = 0 exactly.
        rng = np.random.default_rng([self.seed, 99])
        W = rng.standard_normal((self.m, self.d))
        W[1] = -W[0]
        est = self.make_estimator()
        check_agrees_with_oracle(
            est, HalfspaceToy(W), self.budget, seed=self.seed,
            tolerance=self.tolerance, oracle=self.oracle,
        )

    def test_row_permutation_invariance(self) -> None:
        from lowprob.testing.strategies import row_permutations

        est, problem, tol = self.make_estimator(), self.make_problem(0), self._invariance_tolerance()

        def body(perm: list[int]) -> None:
            check_permutation_invariance(est, problem, self.budget, perm, seed=self.seed, tolerance=tol)

        self._property(body, perm=row_permutations(self.m))

    def test_positive_row_scaling_invariance(self) -> None:
        from lowprob.testing.strategies import positive_row_scales

        est, problem, tol = self.make_estimator(), self.make_problem(0), self._invariance_tolerance()

        def body(scales: np.ndarray) -> None:
            check_scaling_invariance(est, problem, self.budget, scales, seed=self.seed, tolerance=tol)

        self._property(body, scales=positive_row_scales(self.m))

    def test_adding_halfspace_never_increases_p(self) -> None:
        from hypothesis import strategies as st

        est, problem = self.make_estimator(), self.make_problem(0)
        tol = self.tolerance if self.kind != "exact" else self._invariance_tolerance()

        def body(seed: int) -> None:
            row = np.random.default_rng(seed).standard_normal((1, self.d))
            check_monotone_in_halfspaces(est, problem, self.budget, row, seed=self.seed, tolerance=tol)

        self._property(body, seed=st.integers(0, 2**32 - 1))

    def test_rejects_bad_budget_and_seed(self) -> None:
        check_rejects_bad_input(self.make_estimator(), self.make_problem(0), budget=self.budget)
