"""Funk–Hecke eigenvalues, Gegenbauer tables, harmonic bases and sphere quadrature (closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import eval_chebyt, eval_gegenbauer, eval_legendre

from lowprob.errors import InputTypeError, InputValueError
from lowprob.sketching.funk_hecke import (
    funk_hecke_eigenvalues,
    gegenbauer_table,
    halfspace_product_profile,
    harmonic_dimension,
    zonal_from_eigenvalues,
)
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.sphere_quadrature import sphere_quadrature, sphere_quadrature_size


def test_gegenbauer_table_matches_scipy() -> None:
    t = np.linspace(-1, 1, 41)
    P = gegenbauer_table(30, 2, t)
    np.testing.assert_allclose(P, np.stack([eval_chebyt(l, t) for l in range(31)]), atol=1e-12)
    P = gegenbauer_table(30, 3, t)
    np.testing.assert_allclose(P, np.stack([eval_legendre(l, t) for l in range(31)]), atol=1e-12)
    for n in (4, 5, 7):
        a = (n - 2) / 2
        P = gegenbauer_table(25, n, t)
        ref = np.stack([eval_gegenbauer(l, a, t) / eval_gegenbauer(l, a, 1.0) for l in range(26)])
        np.testing.assert_allclose(P, ref, atol=1e-11)
    assert gegenbauer_table(3, 4, np.zeros((2, 5))).shape == (4, 2, 5)


def test_harmonic_dimension() -> None:
    assert [harmonic_dimension(l, 4) for l in range(6)] == [(l + 1) ** 2 for l in range(6)]
    assert [harmonic_dimension(l, 3) for l in range(6)] == [2 * l + 1 for l in range(6)]
    assert [harmonic_dimension(l, 2) for l in range(4)] == [1, 2, 2, 2]
    # dim of degree-<=L polynomials on S^{n-1} = C(L+n-1, n-1) + C(L+n-2, n-1)
    from math import comb

    for n in (3, 4, 5, 6):
        L = 7
        assert sum(harmonic_dimension(l, n) for l in range(L + 1)) == comb(L + n - 1, n - 1) + comb(L + n - 2, n - 1)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_funk_hecke_polynomial_profile_exact(n: int) -> None:
    """A polynomial zonal kernel: Funk–Hecke must equal the kernel matrix's eigenvalues under an
    exact quadrature rule (W^1/2 K W^1/2 has the operator's nonzero spectrum exactly), to 1e-12."""
    profile = lambda t: ((1 + t) / 2) ** 3  # noqa: E731
    lam = funk_hecke_eigenvalues(profile, n, 6, rule="jacobi", quad_order=20)
    lam_angle = funk_hecke_eigenvalues(profile, n, 6)
    np.testing.assert_allclose(lam, lam_angle, atol=1e-14)
    assert np.all(np.abs(lam[4:]) < 1e-14)
    X, w = sphere_quadrature(n, 6)
    s = np.sqrt(w)
    ev = np.sort(np.linalg.eigvalsh(s[:, None] * profile(X @ X.T) * s[None, :]))[::-1]
    fh = np.sort(np.repeat(lam[:4], [harmonic_dimension(l, n) for l in range(4)]))[::-1]
    np.testing.assert_allclose(ev[: fh.size], fh, atol=1e-12)
    assert np.all(np.abs(ev[fh.size :]) < 1e-12)


@pytest.mark.parametrize("m", [1, 2, 8, 15])
def test_halfspace_eigenvalues_converged_and_trace(m: int) -> None:
    """Doubling the quadrature changes nothing above 1e-12 * lambda_0 up to degree 80 (stable recurrences), and
    the addition theorem reproduces kappa(t) away from t = 1 while sum dim_l lambda_l -> kappa(1)."""
    p = halfspace_product_profile(m)
    lam = funk_hecke_eigenvalues(p, 4, 80)
    lam2 = funk_hecke_eigenvalues(p, 4, 80, quad_order=1000)
    np.testing.assert_allclose(lam, lam2, rtol=0, atol=1e-12 * lam[0])
    t = np.array([-0.5, 0.0, 0.3])
    if m >= 2:
        np.testing.assert_allclose(zonal_from_eigenvalues(lam, 4, t), p(t), rtol=1e-3, atol=1e-4 * p(np.array(1.0)))
    dims = np.array([harmonic_dimension(l, 4) for l in range(81)])
    assert np.sum(dims * lam) <= p(np.array(1.0)) * (1 + 1e-12)
    assert np.sum(dims * lam) >= 0.9 * p(np.array(1.0))


@pytest.mark.parametrize("n", [3, 4, 5])
def test_m1_even_degrees_vanish(n: int) -> None:
    lam = funk_hecke_eigenvalues(halfspace_product_profile(1), n, 60)
    assert abs(lam[0] - 0.25) < 1e-13  # kappa_1 mean: E[(pi - theta)/(2 pi)] = 1/4
    assert np.max(np.abs(lam[2::2])) < 1e-15
    assert np.all(lam[1::2] > 0)


@pytest.mark.parametrize("n,D,m", [(3, 40, 1), (3, 40, 2), (3, 40, 8), (4, 14, 2)])
def test_funk_hecke_matches_kernel_matrix_eigs(n: int, D: int, m: int) -> None:
    """Top-20 eigenvalues of W^1/2 K W^1/2 on a product rule match Funk–Hecke to 5e-3 * lambda_0
    (the kernel is only Lipschitz at t = 1, which limits the point-set discretisation)."""
    p = halfspace_product_profile(m)
    X, w = sphere_quadrature(n, D)
    s = np.sqrt(w)
    ev = np.sort(np.linalg.eigvalsh(s[:, None] * p(np.clip(X @ X.T, -1, 1)) * s[None, :]))[::-1]
    lam = funk_hecke_eigenvalues(p, n, 12)
    fh = np.sort(np.repeat(lam, [harmonic_dimension(l, n) for l in range(13)]))[::-1]
    np.testing.assert_allclose(ev[:20], fh[:20], rtol=0, atol=5e-3 * lam[0])


def test_funk_hecke_bad_input() -> None:
    with pytest.raises(InputTypeError):
        funk_hecke_eigenvalues(3.0, 4, 5)  # type: ignore[arg-type]
    with pytest.raises(InputValueError, match="rule"):
        funk_hecke_eigenvalues(np.cos, 4, 5, rule="simpson")
    with pytest.raises(InputValueError, match="n"):
        funk_hecke_eigenvalues(np.cos, 1, 5)
    with pytest.raises(InputValueError, match="NaN"):
        funk_hecke_eigenvalues(lambda t: np.where(t > 0, np.nan, t), 4, 3)
    with pytest.raises(InputValueError, match="L"):
        gegenbauer_table(-1, 4, np.zeros(3))


# ----------------------------------------------------------------------------- quadrature
@given(n=st.integers(2, 5), D=st.integers(0, 9), seed=st.integers(0, 2**31 - 1))
def test_sphere_quadrature_exact_for_random_polynomials(n: int, D: int, seed: int) -> None:
    """Monomials x^a of total degree <= D integrate to the closed form
    prod Gamma((a_i+1)/2) Gamma(n/2) / (Gamma((|a|+n)/2) pi^{n/2}) (all a_i even), else 0."""
    from math import gamma, pi

    X, w = sphere_quadrature(n, D)
    assert X.shape == (sphere_quadrature_size(n, D), n)
    assert abs(w.sum() - 1) < 1e-13 and np.all(w > 0)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    rng = np.random.default_rng(seed)
    a = rng.multinomial(rng.integers(0, D + 1), np.full(n, 1.0 / n))
    got = float(w @ np.prod(X**a, axis=1))
    if np.any(a % 2):
        exact = 0.0
    else:
        exact = np.prod([gamma((ai + 1) / 2) for ai in a]) * gamma(n / 2) / (gamma((a.sum() + n) / 2) * pi ** (n / 2))
    assert abs(got - exact) < 1e-13


# ----------------------------------------------------------------------------- harmonics
@pytest.mark.parametrize("n,L", [(2, 12), (3, 16), (4, 10), (5, 6)])
def test_harmonics_orthonormal_under_exact_rule(n: int, L: int) -> None:
    sh = SphericalHarmonics(n, L)
    X, w = sphere_quadrature(n, 2 * L)
    Y = sh.evaluate(X)
    assert Y.shape == (X.shape[0], sh.total_dim)
    G = (Y * w[:, None]).T @ Y
    assert np.max(np.abs(G - np.eye(sh.total_dim))) < 1e-10
    assert sh.total_dim == sum(harmonic_dimension(l, n) for l in range(L + 1))
    assert np.array_equal(np.bincount(sh.degrees), sh.dims)


@pytest.mark.parametrize("n", [3, 4])
def test_harmonics_addition_theorem_and_degree(n: int) -> None:
    """sum_{j in block l} Y_lj(x) Y_lj(y) = dim_l P_l(x . y), and each column is a harmonic of
    exact degree l (Funk–Hecke with profile P_l' picks out only degree l' == l)."""
    L = 8
    sh = SphericalHarmonics(n, L)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, n))
    Y = sh.evaluate(x, normalize=True)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    P = gegenbauer_table(L, n, u @ u.T)
    for l in range(L + 1):
        b = sh.block(l)
        np.testing.assert_allclose(Y[:, b] @ Y[:, b].T, sh.dims[l] * P[l], atol=1e-11)


def test_harmonics_bad_input() -> None:
    sh = SphericalHarmonics(4, 3)
    with pytest.raises(InputValueError, match="shape"):
        sh.evaluate(np.ones((3, 3)))
    with pytest.raises(InputValueError, match="unit"):
        sh.evaluate(np.ones((3, 4)))
    with pytest.raises(InputValueError, match="NaN"):
        sh.evaluate(np.full((1, 4), np.nan))
    with pytest.raises(InputValueError, match="l must be"):
        sh.block(4)
    with pytest.raises(InputValueError):
        SphericalHarmonics(1, 3)
