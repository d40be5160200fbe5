"""Sketches and their exact error: the properties of issue 3 (closed forms, hypothesis, seeded MC)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprob.errors import InputValueError, LowprobError
from lowprob.sketching.claims import FiniteClaims, KernelClaims, RandomHalfspaceProduct
from lowprob.sketching.eigensystems import HarmonicEigensystem
from lowprob.sketching.kernels import NotPSDError, RBFKernel
from lowprob.sketching.measures import GaussianMixture, SphericalCone, UniformSphere, WeightedPoints
from lowprob.sketching.nystrom import NystromEigensystem
from lowprob.sketching.sketch_error import (
    kernel_mean,
    kernel_mean_norm2,
    sampled_sketch_error,
    sketch_error,
)
from lowprob.sketching.sketches import (
    GaussianMomentSketch,
    InfeasibleQPError,
    KernelSketch,
    QuadratureSketch,
    SampleSketch,
)

CONE = SphericalCone.random(4, seed=0, order=24)


def _discrete_sphere(n_pts: int, seed: int, dim: int = 4) -> WeightedPoints:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_pts, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.uniform(0.2, 1.0, n_pts)
    return WeightedPoints(x, w / w.sum(), on_sphere=True)


def _gmm() -> GaussianMixture:
    return GaussianMixture(
        [0.5, 0.3, 0.2],
        [[0.0, 0.0], [2.0, 1.0], [-1.5, 2.0]],
        [np.eye(2) * 0.5, [[0.3, 0.1], [0.1, 0.2]], np.eye(2) * 0.8],
        order=12,
    )


# ------------------------------------------------------------------ KernelSketch properties
@settings(max_examples=15)
@given(m=st.integers(1, 8), K=st.integers(1, 60), seed=st.integers(0, 10**6))
def test_kernel_sketch_exact_on_kept_span(m: int, K: int, seed: int) -> None:
    """E_M f = E_D f (to 1e-10) for random f in the span of the kept harmonics."""
    C = RandomHalfspaceProduct(m, 4)
    ks = KernelSketch(CONE, C, K)
    assert 1 <= ks.K <= K
    beta = np.random.default_rng(seed).standard_normal(ks.K)
    sh = ks.eigensystem.sh

    def f(x: np.ndarray) -> np.ndarray:
        return sh.evaluate(x, normalize=True)[:, ks.columns] @ beta

    assert abs(ks.expect(f) - CONE.expect(f)) < 1e-10 * (1 + np.abs(beta).sum())


@settings(max_examples=15)
@given(m=st.integers(1, 15), K=st.integers(1, 200))
def test_kernel_sketch_error_formula_and_bounds(m: int, K: int) -> None:
    """err = sum_{j not kept} lambda_j <g, phi_j>^2 (to 1e-9 relative at the eigensystem's degree),
    err <= lambda_{K+1} ||g||^2, and (K+1) lambda_{K+1} <= tr C."""
    C = RandomHalfspaceProduct(m, 4)
    ks = KernelSketch(CONE, C, K)
    eig = ks.eigensystem
    rep = sketch_error(ks, C, degree=eig.L)
    assert rep.diagnostics["sketch_tail"] == 0.0
    assert abs(rep.diagnostics["low_degree"] - ks.eigen_error()) <= 1e-9 * ks.eigen_error() + 1e-13 * C.zonal.trace()
    n_kept_clusters = sum(1 for c in eig.clusters if np.isin(c, ks.columns).all())
    lam_next = eig.cluster_values[n_kept_clusters] if n_kept_clusters < len(eig.clusters) else 0.0
    assert rep.upper <= lam_next * CONE.density_norm2 * (1 + 1e-9) + rep.diagnostics["target_tail_bound"]
    assert (ks.K + 1) * lam_next <= eig.trace * (1 + 1e-12)
    # whole eigenspaces: every cluster is either fully kept or fully dropped
    for c in eig.clusters:
        assert np.isin(c, ks.columns).all() or not np.isin(c, ks.columns).any()


def test_kernel_sketch_nystrom_exact_on_discrete_target() -> None:
    """On a discrete D used as its own base measure the Nyström eigensystem is exact, so the exact
    MMD equals sum_{j not kept} lambda_j c_j^2 to 1e-12, and the sketch reproduces E_D f on the span."""
    D = _discrete_sphere(60, 1)
    C = RandomHalfspaceProduct(3, 4)
    for K in (1, 5, 20, 59):
        ks = KernelSketch(D, C, K)
        assert isinstance(ks.eigensystem, NystromEigensystem)
        rep = sketch_error(ks, C)
        assert rep.method.startswith("mmd")
        assert abs(rep.value - ks.eigen_error()) < 1e-12 * C.zonal.trace()
        beta = np.random.default_rng(K).standard_normal(ks.K)
        f = lambda x, b=beta, k=ks: k.eigensystem.functions(x)[:, k.columns] @ b  # noqa: E731
        assert abs(ks.expect(f) - D.expect(f)) < 1e-9


def test_kernel_sketch_gmm_rbf_decreases() -> None:
    D = _gmm()
    C = KernelClaims(RBFKernel(2, lengthscale=0.8))
    errs = [KernelSketch(D, C, K).error(C) for K in (2, 8, 32)]
    assert errs[0] > errs[1] > errs[2] >= 0
    # keeping every non-null Nyström eigenfunction reproduces D's order-12 Gauss–Hermite rule, so the
    # exact (closed-form) error is only that rule's MMD error: < 1e-6 * k(x, x)
    ks = KernelSketch(D, C, KernelSketch(D, C, 1).eigensystem.available)
    assert ks.error(C) < 1e-6


# ------------------------------------------------------------------ exact error vs brute force
@pytest.mark.parametrize("kind", ["sample", "quad-signed", "kernel-nystrom", "gauss"])
def test_exact_error_matches_sampled_claims_discrete(kind: str) -> None:
    """Exact error vs the average of (E_M f - E_D f)^2 over 20 000 sampled halfspace claims (seed 11),
    within 4 standard errors; D discrete so E_D f is exact."""
    D = _discrete_sphere(80, 2)
    C = RandomHalfspaceProduct(2, 4)
    sk = {
        "sample": lambda: SampleSketch(D, 12, seed=3),
        "quad-signed": lambda: QuadratureSketch(D, C, 12, candidates=D.points),
        "kernel-nystrom": lambda: KernelSketch(D, C, 10),
        "gauss": lambda: GaussianMomentSketch(D, order=4),
    }[kind]()
    exact = sk.error(C)
    mc, se = sampled_sketch_error(sk, C, 20_000, seed=11)
    assert abs(mc - exact) < 4 * se, (mc, exact, se)


def test_exact_error_matches_sampled_claims_rbf() -> None:
    D = _gmm()
    C = KernelClaims(RBFKernel(2, lengthscale=0.8))
    for sk in (SampleSketch(D, 10, seed=0), QuadratureSketch(D, C, 10, points="herding", weights="simplex")):
        exact = sk.error(C)
        mc, se = sampled_sketch_error(sk, C, 20_000, seed=12)
        assert abs(mc - exact) < 4 * se, (mc, exact, se)


def test_finite_claims_error_is_definition() -> None:
    D = _gmm()
    fs = [lambda x: x[:, 0], lambda x: x[:, 0] * x[:, 1], lambda x: np.sin(x[:, 1])]
    C = FiniteClaims(fs, [0.5, 0.25, 0.25], dim=2)
    s = SampleSketch(D, 7, seed=1)
    ref = sum(w * (np.mean(f(s.points)) - D.expect(f)) ** 2 for f, w in zip(fs, C.weights, strict=True))
    assert abs(s.error(C) - ref) < 1e-15
    # the kernel route (Nyström over D) agrees with the definition-route value of that sketch
    ks = KernelSketch(D, C, 3)
    assert ks.error(C) < 1e-20 + 1e-12  # rank-3 kernel: 3 eigenfunctions reproduce every claim


def test_rbf_gmm_closed_form_matches_quadrature() -> None:
    D = _gmm()
    C = KernelClaims(RBFKernel(2, lengthscale=0.6, variance=1.7))
    x = np.random.default_rng(0).standard_normal((7, 2))
    Q = GaussianMixture(D.mix, D.means, D.covs, order=30).quadrature()
    np.testing.assert_allclose(kernel_mean(C, D, x), C.kernel(x, Q.points) @ Q.weights, rtol=1e-7)  # order-30 GH
    assert abs(kernel_mean_norm2(C, D) - Q.weights @ C.kernel(Q.points, Q.points) @ Q.weights) < 1e-8


# ------------------------------------------------------------------ SampleSketch rate
def test_sample_sketch_mean_error_is_variance_over_K() -> None:
    """Mean exact error over 400 seeds = E_f Var_D(f) / K within 4 standard errors (D discrete)."""
    D = _discrete_sphere(50, 4)
    C = RandomHalfspaceProduct(2, 4)
    K = 8
    errs = np.array([SampleSketch(D, K, seed=s).error(C) for s in range(400)])
    expected = SampleSketch(D, K, seed=0).expected_error(C)
    assert abs(errs.mean() - expected) < 4 * errs.std(ddof=1) / np.sqrt(errs.size)


@pytest.mark.slow
def test_sample_sketch_rate_on_cone_spectral() -> None:
    """Same on the cone with the spectral exact error (degree 24): 300 seeds, K = 20, 4 SE."""
    C = RandomHalfspaceProduct(2, 4)
    K = 20
    errs = np.array([SampleSketch(CONE, K, seed=s).error(C, degree=24) for s in range(300)])
    expected = SampleSketch(CONE, K, seed=0).expected_error(C, degree=24)
    assert abs(errs.mean() - expected) < 4 * errs.std(ddof=1) / np.sqrt(errs.size)


@pytest.mark.slow
def test_spectral_error_matches_sampled_claims_on_cone() -> None:
    """Spectral exact error (inside its bounds) vs 5 000 sampled claims on the cone (seed 13), within
    4 SE + 2% (the order-32 cone rule integrates the discontinuous claims only approximately)."""
    D = SphericalCone(CONE.W, order=32)
    C = RandomHalfspaceProduct(2, 4)
    for sk in (SampleSketch(D, 15, seed=5), QuadratureSketch(D, C, 15, n_candidates=512, degree=24)):
        rep = sk.error_report(C, degree=24)
        mc, se = sampled_sketch_error(sk, C, 5_000, seed=13)
        assert rep.lower - 4 * se - 0.02 * mc <= mc <= rep.upper + 4 * se + 0.02 * mc, (mc, rep, se)


# ------------------------------------------------------------------ quadrature + gaussian
def test_quadrature_weights_optimal_order() -> None:
    """At fixed points, signed weights have the smallest MMD, simplex next, uniform largest."""
    D = _discrete_sphere(100, 5)
    C = RandomHalfspaceProduct(3, 4)
    for pts in ("greedy", "herding"):
        e = {w: QuadratureSketch(D, C, 15, points=pts, weights=w, candidates=D.points).error(C) for w in ("signed", "simplex", "uniform")}
        assert e["signed"] <= e["simplex"] * (1 + 1e-6) + 1e-15
        assert e["simplex"] <= e["uniform"] * (1 + 1e-6) + 1e-15
    q = QuadratureSketch(D, C, 15, weights="simplex", candidates=D.points)
    assert np.all(q.weights >= 0) and abs(q.weights.sum() - 1) < 1e-6


def test_gaussian_moment_sketch_matches_moments() -> None:
    D = _gmm()
    g = GaussianMomentSketch(D, order=5)
    mu, cov = D.moments()
    assert g.K == 5
    np.testing.assert_allclose([g.expect(lambda x, i=i: x[:, i]) for i in range(2)], mu, atol=1e-12)
    second = np.array([[g.expect(lambda x, i=i, j=j: x[:, i] * x[:, j]) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(second, cov + np.outer(mu, mu), atol=1e-12)


def test_deterministic_sketches_beat_sampling_on_cone() -> None:
    """At K ~ 30 on the cone with m = 2, kernel and greedy-quadrature sketches have lower exact
    error than the *expected* error of 30 samples."""
    C = RandomHalfspaceProduct(2, 4)
    base = SampleSketch(CONE, 30, seed=0).expected_error(C, degree=20)
    assert KernelSketch(CONE, C, 30).error(C, degree=20) < base
    assert QuadratureSketch(CONE, C, 30, n_candidates=512, degree=20).error(C, degree=20) < base


# ------------------------------------------------------------------ bad input
def test_bad_input() -> None:
    C = RandomHalfspaceProduct(2, 4)
    with pytest.raises(InputValueError, match="K"):
        SampleSketch(CONE, 0)
    with pytest.raises(InputValueError, match="K"):
        KernelSketch(CONE, C, 0)
    with pytest.raises(InputValueError, match="larger than the available basis"):
        KernelSketch(CONE, C, 10**4, eigensystem=HarmonicEigensystem(C.zonal, 5))
    with pytest.raises(InputValueError, match="larger than the available basis"):
        KernelSketch(CONE, RandomHalfspaceProduct(1, 4), 40, eigensystem=HarmonicEigensystem(RandomHalfspaceProduct(1, 4).zonal, 4))
    with pytest.raises(InputValueError, match="larger than the available basis"):
        QuadratureSketch(CONE, C, 20, candidates=CONE.sample(10, seed=0))
    with pytest.raises(InputValueError, match="dimension mismatch"):
        KernelSketch(CONE, RandomHalfspaceProduct(2, 3), 5)
    with pytest.raises(InputValueError, match="dimension mismatch"):
        SampleSketch(CONE, 5, seed=0).error(RandomHalfspaceProduct(2, 3))
    bad = KernelClaims(lambda x, y: -np.exp(-((x @ y.T) ** 2)), dim=2)
    with pytest.raises(NotPSDError, match="positive semi-definite"):
        KernelSketch(_gmm(), bad, 3)
    D = _discrete_sphere(40, 6)
    with pytest.raises(InfeasibleQPError, match="infeasible"):
        QuadratureSketch(D, C, 10, weights="simplex", max_weight=0.05, candidates=D.points)
    with pytest.raises(InputValueError, match="points must be"):
        QuadratureSketch(D, C, 3, points="random")
    with pytest.raises(LowprobError):
        SampleSketch(CONE, 3, seed=1.5)
    with pytest.raises(InputValueError, match="Measure"):
        SampleSketch(np.zeros((3, 4)), 3)  # type: ignore[arg-type]


def test_uniform_sphere_errors_vanish_for_kernel_sketch() -> None:
    """D = uniform sphere has g = 1, so every K >= 1 kernel sketch (degree 0 kept) is exact."""
    D = UniformSphere(4, degree=10)
    C = RandomHalfspaceProduct(3, 4)
    assert KernelSketch(D, C, 1).error(C, degree=10) < 1e-25


def test_nested_quadrature_equals_direct() -> None:
    """QuadratureSketch.nested shares one selection run; each member equals the direct K-point sketch."""
    D = _discrete_sphere(60, 7)
    C = RandomHalfspaceProduct(2, 4)
    for pts in ("greedy", "herding"):
        nest = QuadratureSketch.nested(D, C, [3, 9], points=pts, n_candidates=60, seed=2)
        for s in nest:
            direct = QuadratureSketch(D, C, s.K, points=pts, n_candidates=60, seed=2)
            np.testing.assert_array_equal(s.points, direct.points)
            np.testing.assert_allclose(s.weights, direct.weights, atol=1e-12)


def test_sampled_kernel_claims_error_close_to_exact() -> None:
    """Claims known only by a sampler: the error under the Monte Carlo kernel (4 000 claims, seed 0)
    is within 10 % of the exact-kernel error of the same claim law, and the method says so."""
    from lowprob.sketching.claims import SampledClaims

    def sampler(rng: np.random.Generator):
        u = rng.standard_normal((2, 4))
        return lambda x: np.all(x @ u.T > 0, axis=1) * 1.0

    D = _discrete_sphere(60, 8)
    S = SampledClaims(sampler, dim=4, kernel_samples=4000)
    sk = SampleSketch(D, 10, seed=4)
    rep = sketch_error(sk, S)
    exact = sk.error(RandomHalfspaceProduct(2, 4))
    assert "Monte Carlo" in rep.method
    assert abs(rep.value - exact) < 0.1 * exact


def test_spherical_cone_warns_when_its_rule_misses_the_exact_mass():
    """Seed 4 gives a cone where the default 24-point rule is 1.2% off the certified mass."""
    import warnings as _w

    from lowprob.errors import NumericalWarning
    from lowprob.sketching.measures import SphericalCone
    from lowprob.toy_models.orthant import simplicial_cone_masses

    cone = SphericalCone.random(4, seed=4)
    with pytest.warns(NumericalWarning, match="pass a larger order"):
        _ = cone.mass
    exact = float(simplicial_cone_masses(cone.rays)[0])
    with _w.catch_warnings():
        _w.simplefilter("error", NumericalWarning)
        fine = SphericalCone(cone.W, order=64).mass  # a larger order fixes it: no warning
    assert abs(fine - exact) <= 1e-3 * exact
