"""Closed forms: m = 2, 3 arcsine laws; exactness of the harmonic and Hermite products.

Tier: fast. Kinds: closed forms (kernel/hermite convergence, the Hermite series identity),
an independent exact hemisphere quadrature for the harmonic coupling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import roots_legendre

from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.harmonic_density import (
    HarmonicDensity,
    HarmonicProduct,
    halfspace_zonal_coefficients,
)
from lowprob.propagation.hermite_density import halfspace_hermite_coefficients
from lowprob.propagation.steps import HalfspaceStep
from lowprob.propagation.toy_estimators import HermiteEstimator, KernelEstimator
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.sphere_quadrature import sphere_quadrature
from lowprob.toy_models.halfspace import HalfspaceToy


def _unit_rows(W):
    return W / np.linalg.norm(W, axis=1, keepdims=True)


def p2(W):
    u = _unit_rows(W)
    return 0.25 + math.asin(u[0] @ u[1]) / (2 * math.pi)


def p3(W):
    u = _unit_rows(W)
    G = u @ u.T
    return 0.125 + sum(math.asin(G[i, j]) for i, j in [(0, 1), (0, 2), (1, 2)]) / (4 * math.pi)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("m, closed", [(2, p2), (3, p3)])
def test_kernel_converges_to_arcsine_law(n, m, closed):
    rng = np.random.default_rng([n, m, 11])
    for _ in range(2):
        W = rng.standard_normal((m, n))
        p = closed(W)
        budgets = [5, 55, 204] if n == 4 else [4, 25, 121]
        errs = [abs(KernelEstimator().estimate(HalfspaceToy(W), K, seed=0).value - p) for K in budgets]
        # tolerance: the truncated indicator converges slowly (about 1/K); 1e-3 absolute and a
        # 4x reduction from the smallest budget (measured: errors 1e-4..5.4e-4, reductions 4.8x..10x).
        assert errs[-1] < 1e-3, errs
        assert errs[-1] < errs[0] / 4 or errs[0] < 1e-12, errs


@pytest.mark.parametrize("m, closed", [(2, p2), (3, p3)])
def test_hermite_converges_to_arcsine_law(m, closed):
    rng = np.random.default_rng([m, 12])
    W = rng.standard_normal((m, 4))
    p = closed(W)
    errs = [abs(HermiteEstimator().estimate(HalfspaceToy(W), K, seed=0).value - p) for K in (5, 70, 495)]
    assert errs[-1] < 3e-3 and errs[-1] < errs[0] / 4, errs


def test_hermite_m2_equals_its_series_exactly():
    """After truncation at degree D, p_hat = sum_{b<=D} c_b^2 b! rho^b (Mehler)."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((2, 4))
    rho = float(_unit_rows(W)[0] @ _unit_rows(W)[1])
    for D, K in [(3, 35), (6, 210)]:
        c = halfspace_hermite_coefficients(0.0, D)
        series = sum(c[b] ** 2 * math.factorial(b) * rho**b for b in range(D + 1))
        assert HermiteEstimator().estimate(HalfspaceToy(W), K, seed=0).value == pytest.approx(series, abs=1e-13)


def test_zonal_coefficients_closed_form():
    # n = 4: lambda_1 = c_4 int_0^1 t sqrt(1-t^2) dt = (2/pi)(1/3); a_1 = dim_1 lambda_1 = 4 lambda_1.
    a = halfspace_zonal_coefficients(4, 6)
    assert a[0] == pytest.approx(0.5, abs=1e-15)
    assert a[1] == pytest.approx(4 * 2 / (3 * math.pi), abs=1e-14)
    assert np.all(a[2::2] == 0)
    # n = 3 (Legendre): lambda_l = (1/2) int_0^1 P_l dt; lambda_3 = -1/16; a_3 = 7 lambda_3.
    assert halfspace_zonal_coefficients(3, 3)[3] == pytest.approx(-7 / 16, abs=1e-14)


def _hemisphere_rule(n, D, u):
    """Independent exact rule on {u . x >= 0}: Gauss-Legendre in the polar angle (analytic integrand,
    converged to round-off) times the exact product rule on S^{n-2}, rotated so the pole is u."""
    z, w = roots_legendre(D + 80)
    th = 0.25 * np.pi * (z + 1)
    wt = 0.25 * np.pi * w * np.sin(th) ** (n - 2)
    xi, wxi = sphere_quadrature(n - 1, D)
    pts = np.concatenate(
        [np.cos(th)[:, None, None] * np.ones((1, xi.shape[0], 1)),
         np.sin(th)[:, None, None] * xi[None]], axis=2).reshape(-1, n)
    wts = (wt[:, None] * wxi[None]).reshape(-1)
    wts /= 2 * wt.sum() * 0 + _full_sphere_norm(n)
    # rotation taking e_1 to u (Householder)
    e = np.zeros(n)
    e[0] = 1.0
    v = e - u
    H = np.eye(n) - 2 * np.outer(v, v) / (v @ v) if np.linalg.norm(v) > 1e-12 else np.eye(n)
    return pts @ H.T, wts


def _full_sphere_norm(n):
    z, w = roots_legendre(200)
    th = 0.5 * np.pi * (z + 1)
    return float(0.5 * np.pi * w @ np.sin(th) ** (n - 2))


@pytest.mark.parametrize("n, L, Lp", [(3, 4, 5), (4, 4, 3), (5, 2, 3)])
def test_harmonic_product_is_the_exact_hemisphere_projection(n, L, Lp):
    rng = np.random.default_rng([n, L])
    sh = SphericalHarmonics(n, max(L, Lp))
    dimL = int(sum(sh.dims[: L + 1]))
    c = rng.standard_normal((1, dimL))
    g = HarmonicDensity(n, tuple(range(L + 1)), c)
    u = rng.standard_normal(n)
    u /= np.linalg.norm(u)
    out = HarmonicProduct(g, HalfspaceStep(u)).project(tuple(range(Lp + 1)), FlopCounter())
    X, w = _hemisphere_rule(n, L + Lp + 2, u)
    Y = sh.evaluate(X)
    gvals = Y[:, :dimL] @ c[0]
    ref = Y[:, : out.coefficients.shape[1]].T @ (w * gvals)
    np.testing.assert_allclose(out.coefficients[0], ref, atol=1e-11)
