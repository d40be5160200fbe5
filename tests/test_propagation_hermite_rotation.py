"""The rotated (Householder) Hermite product equals the Clenshaw product, exactly.

Tier: fast. Two independent exact routes to ``P_{<= D'}(g . 1[u . x + beta > 0])`` must agree to
round-off (tolerance 1e-12 relative to the coefficient scale), for random ``g``, ``u``, ``beta``,
including ``u = +-e_1`` (the Householder sign choice) and degree changes in both directions.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.hermite_density import HermiteDensity, HermiteProduct, hermite_dimension
from lowprob.propagation.steps import HalfspaceStep


@pytest.mark.parametrize("n, D, Dp", [(2, 5, 5), (3, 0, 3), (4, 3, 3), (4, 2, 4), (5, 4, 2), (6, 3, 3), (16, 2, 2)])
def test_rotated_product_equals_clenshaw(n, D, Dp):
    rng = np.random.default_rng([n, D, Dp])
    B = 4
    c = rng.standard_normal((B, hermite_dimension(n, D)))
    u = rng.standard_normal((B, n))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u[0], u[1] = np.eye(n)[0], -np.eye(n)[0]
    beta = 0.7 * rng.standard_normal(B)
    beta[2] = 0.0
    prod = HermiteProduct(HermiteDensity(n, D, c), HalfspaceStep(normal=u, offset=beta))
    f_rot, f_cl = FlopCounter(), FlopCounter()
    rot = prod.project(Dp, f_rot).coefficients
    ref = prod.project_clenshaw(Dp, f_cl).coefficients
    assert rot.shape == ref.shape == (B, hermite_dimension(n, Dp))
    assert np.max(np.abs(rot - ref)) < 1e-12 * max(1.0, np.max(np.abs(ref)))
    assert f_rot.online > 0 and "hermite_rotate" in f_rot.by_label


@pytest.mark.parametrize("n, m, K, bias", [(4, 7, 35, False), (6, 4, 84, True), (8, 8, 165, False), (5, 12, 56, True)])
def test_subspace_route_equals_full(n, m, K, bias):
    """In the QR frame the density after i steps depends on i coordinates: same estimates, fewer FLOPs."""
    from lowprob.toy_models.registry import get_toy_estimator

    rng = np.random.default_rng([n, m, K])
    W = rng.standard_normal((3, m, n))
    sub = get_toy_estimator("hermite")
    full = get_toy_estimator("hermite_full")
    if bias:
        from lowprob.toy_models.halfspace import HalfspaceToy

        toy = HalfspaceToy(W[0], 0.3 * rng.standard_normal(m))
        a, b = sub.estimate(toy, K), full.estimate(toy, K)
        assert abs(a.value - b.value) < 1e-12 * max(1.0, abs(b.value))
        assert max(a.diagnostics["terms_per_step"]) <= K
    else:
        a, b = sub.estimate_batch(W, K), full.estimate_batch(W, K)
        assert np.max(np.abs(a.values - b.values)) < 1e-12
        if m >= n >= 8:
            assert a.flops[0] < 0.6 * b.flops[0]
