"""Backward claims: the pullback through a step equals sampling the composed function.

Tier: fast. Seeded Monte Carlo: empirical kernels of sampled composed claims within 4
standard errors of the pulled-back model's exact kernel.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.errors import InputValueError
from lowprob.propagation.steps import HalfspaceStep, RandomHalfspaceStep
from lowprob.sketching.claims import MultipliedClaims, RandomHalfspaceProduct
from lowprob.sketching.pullback import pullback

S = 40_000


def _points(n, k, seed):
    x = np.random.default_rng(seed).standard_normal((k, n))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _assert_kernel_matches(vals, K, k_sigma=4.0):
    emp = vals.T @ vals / vals.shape[0]
    se = np.sqrt(np.maximum(K * (1 - K), 1e-12) / vals.shape[0])  # products of 0/1 claims
    assert np.all(np.abs(emp - K) <= k_sigma * se + 1e-12)


@pytest.mark.parametrize("m", [0, 1, 3])
def test_pullback_through_random_step_equals_composed_sampling(m):
    n = 4
    C = RandomHalfspaceProduct(m, n)
    pulled = pullback(C, RandomHalfspaceStep(n))
    assert isinstance(pulled, RandomHalfspaceProduct) and pulled.m == m + 1
    x = _points(n, 6, m)
    rng = np.random.default_rng([m, 1])
    f = C.sample_values(x, S, seed=rng)  # f ~ C at the points
    v = rng.standard_normal((S, n))  # the random step F_v(x) = 1[v . x >= 0]
    composed = f * (x @ v.T >= 0).T  # f o step = F_v . f
    _assert_kernel_matches(composed, pulled.kernel(x, x))


def test_pullback_through_known_step_equals_composed_sampling():
    n = 4
    C = RandomHalfspaceProduct(2, n)
    step = HalfspaceStep(np.array([1.0, -0.5, 0.2, 0.3]))
    pulled = pullback(C, step)
    assert isinstance(pulled, MultipliedClaims)
    x = _points(n, 8, 7)
    composed = C.sample_values(x, S, seed=3) * step(x)[None, :]
    _assert_kernel_matches(composed, pulled.kernel(x, x))


def test_random_step_pullback_needs_matching_dimension():
    with pytest.raises(InputValueError, match="dim"):
        pullback(RandomHalfspaceProduct(1, 4), RandomHalfspaceStep(3))
