"""EstimatorContract for the #3-SAT estimators (sat-walsh, sat-walsh-topk, sat-sampling).

The contract's halfspace-specific properties are replaced by their SAT analogues: clause
order (permutation invariance), variable relabelling and sign flips (the "scaling"
symmetry of the cube), adding a clause never increases p, and an unsatisfiable formula
gives 0. Tolerances are chosen so that the constant estimator ``E p = (7/8)^k`` fails them
(checked below)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from lowprob.estimate import Cost, Estimate
from lowprob.testing import EstimatorContract, Tolerance, check_agrees_with_oracle
from lowprob.testing.checks import (
    EstimatorCheckError,
    _compare,
    _run,
)
from lowprob.toy_models.registry import get_toy_estimator
from lowprob.toy_models.sat import SatProblem, count_satisfying, sat_instance_statistics

N, K_CLAUSES = 10, 30


def _sat_oracle(problem: SatProblem) -> tuple[float, float]:
    return count_satisfying(problem) / 2**problem.n, 0.0


class SatContract(EstimatorContract):
    """The contract with SAT problems and SAT metamorphic properties."""

    n: ClassVar[int] = N
    k: ClassVar[int] = K_CLAUSES
    min_probability = 5e-3
    n_problems = 2
    max_examples = 3

    def make_problem(self, index: int = 0) -> SatProblem:
        rng = np.random.default_rng([self.seed, index, 104729])
        for _ in range(1000):
            prob = SatProblem.random(self.n, self.k, seed=rng)
            if self.oracle(prob)[0] >= self.min_probability:
                return prob
        raise RuntimeError("no instance found")

    def oracle(self, problem: SatProblem) -> tuple[float, float]:
        return _sat_oracle(problem)

    def test_infeasible_instance_gives_zero(self) -> None:
        import itertools

        unsat = [(s1 * 1, s2 * 2, s3 * 3) for s1, s2, s3 in itertools.product([1, -1], repeat=3)]
        prob = SatProblem(self.n, tuple(unsat) + self.make_problem(0).clauses)
        check_agrees_with_oracle(self.make_estimator(), prob, self.budget, seed=self.seed,
                                 tolerance=Tolerance(k_sigma=0.0, atol=1e-12, variance="none"), oracle=self.oracle)

    def test_row_permutation_invariance(self) -> None:
        est, prob, tol = self.make_estimator(), self.make_problem(0), self._invariance_tolerance()
        for s in range(self.max_examples):
            perm = np.random.default_rng(s).permutation(prob.k)
            _compare(_run(est, prob, self.budget, self.seed),
                     _run(est, SatProblem(prob.n, tuple(prob.clauses[i] for i in perm)), self.budget, self.seed),
                     tol, "clause permutation")

    def test_positive_row_scaling_invariance(self) -> None:
        # the cube's symmetries: relabel variables and flip signs (x_v -> -x_v) consistently
        est, prob, tol = self.make_estimator(), self.make_problem(0), self._invariance_tolerance()
        for s in range(self.max_examples):
            rng = np.random.default_rng(s)
            relabel = rng.permutation(prob.n) + 1
            flip = rng.choice([-1, 1], size=prob.n)
            new = tuple(tuple(int(np.sign(t) * flip[abs(t) - 1] * relabel[abs(t) - 1]) for t in c) for c in prob.clauses)
            _compare(_run(est, prob, self.budget, self.seed), _run(est, SatProblem(prob.n, new), self.budget, self.seed),
                     tol, "variable relabelling / sign flips")

    def test_adding_halfspace_never_increases_p(self) -> None:
        est, prob = self.make_estimator(), self.make_problem(0)
        tol = self.tolerance
        for s in range(self.max_examples):
            extra = SatProblem.random(prob.n, 1, seed=s).clauses
            _compare(_run(est, prob, self.budget, self.seed),
                     _run(est, SatProblem(prob.n, prob.clauses + extra), self.budget, self.seed),
                     tol, "adding a clause", one_sided=True)


class TestSatWalshLevels(SatContract):
    budget = 638  # levels 0..5 of 2^10 = 1024
    nmse_tolerance = 0.005  # measured 5.2e-4 on the 8 contract instances; a constant reaches 0.156
    kind = "approximate"
    tolerance = Tolerance(k_sigma=0.0, rtol=0.15, atol=1e-4, variance="none")
    invariance = "exact"
    invariance_rtol = 1e-9

    def make_estimator(self):
        return get_toy_estimator("sat-walsh")

    def test_row_permutation_invariance(self) -> None:  # order matters for a truncated sketch
        self.invariance = "statistical"
        super().test_row_permutation_invariance()

    def test_exact_at_full_budget(self) -> None:
        prob = self.make_problem(1)
        est = self.make_estimator().estimate(prob, 2**N)
        assert est.value == pytest.approx(self.oracle(prob)[0], abs=1e-13)


class TestSatWalshTopK(SatContract):
    budget = 300
    nmse_tolerance = 0.02  # measured 2.4e-3; a constant reaches 0.156
    kind = "approximate"
    tolerance = Tolerance(k_sigma=0.0, rtol=0.15, atol=1e-4, variance="none")
    invariance = "statistical"

    def make_estimator(self):
        return get_toy_estimator("sat-walsh-topk")

    def _invariance_tolerance(self) -> Tolerance:
        # two sketches of the same p, each within rtol = 0.15 of it, differ by at most 0.3
        return Tolerance(k_sigma=0.0, rtol=0.3, atol=2e-4, variance="none")


class TestSatSampling(SatContract):
    budget = 20_000
    nmse_tolerance = 0.02  # measured 2.1e-3 (seeded); a constant reaches 0.156
    tolerance = Tolerance(k_sigma=4.0, variance="binomial")

    def make_estimator(self):
        return get_toy_estimator("sat-sampling")


class _Constant:
    name = "constant"

    def estimate(self, problem, budget, *, seed=None):
        st = sat_instance_statistics(problem.n, problem.k)
        return Estimate.from_value(st.mean_p, std_error=None, cost=Cost(samples=1), method=self.name, budget=budget)


@pytest.mark.parametrize("cls", [TestSatWalshLevels, TestSatWalshTopK])
def test_constant_estimator_fails_the_tolerance(cls):
    contract = cls()
    failures = 0
    for i in range(contract.n_problems):
        try:
            check_agrees_with_oracle(_Constant(), contract.make_problem(i), contract.budget,
                                     tolerance=contract.tolerance, oracle=contract.oracle)
        except EstimatorCheckError:
            failures += 1
    assert failures == contract.n_problems


def test_estimators_reject_other_problems():
    from lowprob.errors import LowprobError

    with pytest.raises(LowprobError):
        get_toy_estimator("sat-walsh").estimate(np.zeros((3, 3)), 10)


def test_sampling_budget_beyond_memory_raises_before_allocating():
    from lowprob.errors import BudgetError

    with pytest.raises(BudgetError, match="GiB"):
        get_toy_estimator("sat-sampling").estimate(SatProblem.random(24, 10, seed=0), 10**9, seed=0)
