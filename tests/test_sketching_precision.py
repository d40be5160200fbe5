"""Floating point, high degree and memory of the exact sketch error (closed forms, long double)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lowprob.sketching import (
    RandomHalfspaceProduct,
    SampleSketch,
    SphericalHarmonics,
    UniformSphere,
    sketch_error,
)
from lowprob.sketching.eigensystems import harmonic_moments
from lowprob.sketching.harmonics import _solid_harmonics, harmonic_rounding_bound


def _closed_form_uniform(sketch, claims) -> float:
    """For D uniform on the sphere, mu_D = lambda_0 (constant), so err = w^T K w - lambda_0."""
    P = sketch.points_and_weights()
    return float(P.weights @ claims.kernel(P.points, P.points) @ P.weights - claims.zonal.eigenvalues(0)[0])


@pytest.mark.parametrize("degree", [4, 16, 32, 64, 128])
def test_sample_sketch_uniform_s3_contains_closed_form_at_every_degree(degree: int) -> None:
    claims = RandomHalfspaceProduct(4, dim=4)
    sk = SampleSketch(UniformSphere(4), 50, seed=0)
    exact = _closed_form_uniform(sk, claims)
    rep = sketch_error(sk, claims, degree=degree)
    assert rep.lower <= exact <= rep.upper
    assert rep.upper - rep.lower > 0  # rounding is never reported as zero
    assert rep.upper - rep.lower < 1e-8 * exact  # and the bound stays tight
    assert rep.value == pytest.approx(exact, rel=1e-11)
    assert rep.diagnostics["target_moments"] == "exact"


@pytest.mark.parametrize("n,m,degree", [(3, 2, 96), (5, 3, 24)])
def test_other_spheres_contain_closed_form(n: int, m: int, degree: int) -> None:
    claims = RandomHalfspaceProduct(m, dim=n)
    sk = SampleSketch(UniformSphere(n), 30, seed=1)
    exact = _closed_form_uniform(sk, claims)
    rep = sketch_error(sk, claims, degree=degree)
    assert rep.lower <= exact <= rep.upper
    assert rep.upper - rep.lower < 1e-8 * exact


@pytest.mark.parametrize("n,L", [(3, 128), (4, 128), (5, 48)])
def test_harmonics_float64_within_rounding_model_of_long_double(n: int, L: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, n))
    x[0] = np.eye(n)[-1]  # pole
    x[1] = np.eye(n)[0]  # equator
    x[2] = np.r_[np.full(n - 1, 1e-3), 1.0]  # next to the pole (|x'| small)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    Y = _solid_harmonics(x, L)
    Y_ref = _solid_harmonics(x.astype(np.longdouble), L)
    sh = SphericalHarmonics(n, L)
    per_degree = harmonic_rounding_bound(n, L, n_points=0, weight_l1=1.0)
    err = np.abs(Y - Y_ref).astype(np.float64).max(axis=0)
    # the model keeps a margin of at least 4x over what float64 does against long double
    assert np.all(err <= per_degree[sh.degrees] / 4)
    # orthonormality at high degree: |Y_j| <= sqrt(dim H_l) (addition theorem)
    assert np.all(np.abs(Y) <= np.sqrt(sh.dims[sh.degrees]) * (1 + 1e-12))


def test_moments_and_synthesis_match_the_matrix_and_do_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 4))
    w = rng.standard_normal(37)
    c = rng.standard_normal(SphericalHarmonics(4, 10).total_dim)
    sh = SphericalHarmonics(4, 10)
    Y = sh.evaluate(x, normalize=True)
    for max_bytes in [1, 10_000, 1 << 28]:  # 1 byte: one point per chunk
        np.testing.assert_allclose(sh.moments(x, w, normalize=True, max_bytes=max_bytes), w @ Y, rtol=0, atol=1e-12)
        np.testing.assert_allclose(sh.synthesize(x, c, normalize=True, max_bytes=max_bytes), Y @ c, rtol=0, atol=1e-11)
    sh2 = SphericalHarmonics(2, 7)
    x2 = rng.standard_normal((9, 2))
    np.testing.assert_allclose(sh2.moments(x2, w[:9], normalize=True, max_bytes=1), w[:9] @ sh2.evaluate(x2, normalize=True), atol=1e-13)


def test_moments_memory_is_bounded_by_max_bytes() -> None:
    sh = SphericalHarmonics(4, 48)
    x = np.random.default_rng(0).standard_normal((1500, 4))
    w = np.full(1500, 1 / 1500)
    cap = 4 << 20
    tracemalloc.start()
    try:
        sh.moments(x, w, normalize=True, max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the full matrix would be 1500 * 40425 * 8 B = 485 MB
    assert peak < cap + 4 * sh.total_dim * 8 + (2 << 20)


def test_uniform_sphere_moments_exact_above_its_rule_degree() -> None:
    D = UniformSphere(4, degree=10)
    d = harmonic_moments(D, SphericalHarmonics(4, 40))
    assert d[0] == 1.0 and not np.any(d[1:])


def test_zonal_kernel_exact_on_the_diagonal() -> None:
    claims = RandomHalfspaceProduct(4, dim=4)
    x = np.random.default_rng(2).standard_normal((200, 4))
    K = claims.kernel(x, x)
    assert np.all(np.diag(K) == claims.zonal.profile(np.array(1.0)))
    # antipodal points: kappa(-1) = 0 for halfspace products
    assert np.all(claims.kernel(x, -x)[np.arange(200), np.arange(200)] == 0.0)
