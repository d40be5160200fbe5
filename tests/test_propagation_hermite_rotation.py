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
