"""The sampling path through the loop is unbiased (seeded Monte Carlo against the exact oracle).

Tier: fast. Tolerance: 4 standard errors of the mean over independent seeded runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.propagation.toy_estimators import SamplingEstimator
from lowprob.testing import feasible_weight_matrix
from lowprob.toy_models.halfspace import HalfspaceToy
from lowprob.toy_models.oracle import exact_probability


def test_sampling_through_the_loop_is_unbiased():
    W = np.array([[1.0, 0.2, 0.1, 0.0], [0.1, 1.0, -0.3, 0.2], [0.0, 0.4, 1.0, 0.1],
                  [0.3, -0.2, 0.1, 1.0], [0.5, 0.5, 0.5, 0.5]])
    p = exact_probability(W).probability
    assert 0.01 < p < 0.5
    rng = np.random.default_rng(20261128)
    N, R = 2000, 300
    est = SamplingEstimator()
    vals = np.array([est.estimate(HalfspaceToy(W), N, seed=rng).value for _ in range(R)])
    se_mean = np.sqrt(p * (1 - p) / (N * R))
    assert abs(vals.mean() - p) < 4 * se_mean
    # the per-run variance is the binomial p(1-p)/N (chi-square, 300 dof: within 25 %)
    assert abs(vals.var(ddof=1) / (p * (1 - p) / N) - 1) < 0.25


def test_sampling_batch_matches_single_runs_in_distribution_and_costs():
    """A batch of B copies of one instance gives i.i.d. binomial estimates, like B single runs:
    both means within 4 standard errors of the exact p, both variances within 40 % of p(1-p)/N
    (chi-square with 199 dof: sd 10 %), and the two means within 4 standard errors of each other."""
    toy = HalfspaceToy(feasible_weight_matrix(np.random.default_rng(1), 4, 6))
    p = exact_probability(toy.W).probability
    assert 0.005 < p < 0.5  # a feasible instance (a random one may have p = 0: nothing to compare)
    N, B = 2000, 200
    e = SamplingEstimator().estimate(toy, 5000, seed=3)
    assert e.cost.samples == 5000
    # live samples shrink: FLOPs are below the no-pruning count 6 * 5000 * (2*4 + 2)
    assert 5000 * 10 <= e.cost.flops < 6 * 5000 * 10
    res = SamplingEstimator().estimate_batch(np.repeat(toy.W[None], B, axis=0), N, seed=3)
    assert res.values.shape == (B,) and res.terms == N
    rng = np.random.default_rng(4)
    single = np.array([SamplingEstimator().estimate(toy, N, seed=rng).value for _ in range(B)])
    var = p * (1 - p) / N
    for vals in (res.values, single):
        assert abs(vals.mean() - p) < 4 * np.sqrt(var / B)
        assert abs(vals.var(ddof=1) / var - 1) < 0.4
    assert abs(res.values.mean() - single.mean()) < 4 * np.sqrt(2 * var / B)


def test_common_random_numbers_via_base_samples():
    from lowprob.propagation.loop import propagate
    from lowprob.propagation.sample_cloud import SampleCloud, drop_dead_samples
    from lowprob.propagation.steps import halfspace_steps
    from lowprob.propagation.toy_estimators import random_product_claims

    toy = HalfspaceToy.random(3, 4, seed=2)
    x = np.random.default_rng(0).standard_normal((1000, 3))
    tr = propagate(SampleCloud.gaussian(3, 1000, base_samples=x), halfspace_steps(toy.W),
                   projector=drop_dead_samples, claims=random_product_claims(3, 4), budget=1000)
    assert tr.value == pytest.approx(np.mean(toy.event(x)), abs=1e-15)
