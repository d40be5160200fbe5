"""One K-term type: what the propagation loop produces is a sketch, measured by sketch_error at any step."""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.errors import InputValueError
from lowprob.propagation.harmonic_density import HarmonicDensity, harmonic_block_projector
from lowprob.propagation.loop import Representation, backward_claims, propagate
from lowprob.propagation.sample_cloud import SampleCloud, drop_dead_samples
from lowprob.propagation.steps import RandomHalfspaceStep, halfspace_steps
from lowprob.sketching import (
    KTerm,
    RandomHalfspaceProduct,
    SampleSketch,
    SphericalCone,
    UniformSphere,
    as_sketch,
    sketch_error,
)
from lowprob.toy_models.orthant import simplicial_cone_masses

N_DIM, M_CLAIMS = 4, 2


def _cone() -> tuple[np.ndarray, SphericalCone, float]:
    W = np.random.default_rng(5).standard_normal((N_DIM, N_DIM))
    cone = SphericalCone(W)
    mass, _ = simplicial_cone_masses(np.linalg.inv(W))
    return W, cone, float(mass)


def test_every_sketch_is_a_loop_representation() -> None:
    sk = SampleSketch(UniformSphere(4), 10, seed=0)
    assert isinstance(sk, Representation) and isinstance(sk, KTerm)
    assert sk.n_terms == 10 and sk.total_mass() == pytest.approx(1.0)


def test_sample_cloud_after_propagate_matches_an_independent_monte_carlo_of_its_error() -> None:
    """err(M) = w^T K w - 2 w^T z + ||mu_D||^2; z and ||mu_D||^2 re-estimated from 20000 fresh cone
    points (batch means over 20 batches); agreement within 4 standard errors + the reported width."""
    W, cone, p = _cone()
    steps = halfspace_steps(W)
    trace = propagate(
        SampleCloud.gaussian(N_DIM, 2000, seed=1), steps, projector=drop_dead_samples,
        claims=[None] * len(steps), budget=2000,
    )
    claims = RandomHalfspaceProduct(M_CLAIMS, dim=N_DIM)
    rep = sketch_error(trace.final, claims, target=cone.scaled(p), degree=48)
    assert rep.lower <= rep.value <= rep.upper
    X, w = trace.final.points, trace.final.weights
    wKw = float(w @ claims.kernel(X, X) @ w)
    Y = cone.sample(20000, seed=2)
    parts, mu2s = [], []
    for b in np.array_split(np.arange(20000), 20):
        Yb = Y[b]
        Kyy = claims.kernel(Yb, Yb)
        mu2s.append((Kyy.sum() - np.trace(Kyy)) / (len(b) * (len(b) - 1)))
        parts.append(-2 * p * float(w @ claims.kernel(X, Yb).mean(axis=1)) + p**2 * mu2s[-1])
    parts = np.array(parts)
    mc, se = wKw + parts.mean(), parts.std(ddof=1) / np.sqrt(parts.size)
    assert abs(rep.value - mc) <= 4 * se + (rep.upper - rep.lower)
    # and the error is of the size sampling theory says: E err = (p kappa(1) - ||mu_D||^2) / N
    expected = (p * claims.zonal.trace() - p**2 * float(np.mean(mu2s))) / 2000
    assert 0.1 * expected < rep.value < 10 * expected


def test_harmonic_state_at_every_step_is_measured_and_improves_with_budget() -> None:
    W, cone, p = _cone()
    steps = halfspace_steps(W)
    claims = RandomHalfspaceProduct(M_CLAIMS, dim=N_DIM)
    # project every step for the claims we measure with (the estimator's backward path would
    # keep only degree 0 at the last step: it needs the mass alone)
    claims_path = backward_claims(claims, [RandomHalfspaceStep(N_DIM)] * len(steps))
    assert claims_path[-1] is claims
    # step 0: the uniform state is exactly its target
    rep0 = sketch_error(HarmonicDensity.uniform(N_DIM), claims, target=UniformSphere(N_DIM), degree=8)
    assert rep0.value == 0.0 and rep0.lower == 0.0 and rep0.upper < 1e-13
    errors = []
    for budget in (30, 140, 385):
        trace = propagate(HarmonicDensity.uniform(N_DIM), steps, projector=harmonic_block_projector,
                          claims=claims_path, budget=budget)
        rep = sketch_error(trace.final, claims, target=cone.scaled(p), degree=24)
        assert rep.lower <= rep.value <= rep.upper
        errors.append(rep.value)
    assert errors[0] > errors[1] > errors[2]


def test_views_refuse_what_they_cannot_represent() -> None:
    claims = RandomHalfspaceProduct(M_CLAIMS, dim=N_DIM)
    with pytest.raises(InputValueError, match="target is required"):
        sketch_error(SampleCloud.gaussian(N_DIM, 5, seed=0), claims)
    with pytest.raises(InputValueError, match="batched HarmonicDensity"):
        as_sketch(HarmonicDensity.uniform(N_DIM, batch=3), UniformSphere(N_DIM))
    with pytest.raises(InputValueError, match="no sketch view"):
        as_sketch(object(), UniformSphere(N_DIM))
    sk = SampleSketch(UniformSphere(4), 10, seed=0)
    with pytest.raises(InputValueError, match="already sketches"):
        as_sketch(sk, UniformSphere(4))


def test_hermite_state_view_is_its_exact_direction_law():
    """HermiteDensity -> HarmonicSketch of the law of x/|x| under g(x) N(0, I)(dx): checked
    against 200 000 Gaussian draws (E_gamma[f(x) g(x)] for a half-space claim f, 4 standard
    errors); the Gaussian itself views as exactly uniform; the error falls with the degree."""
    from numpy.polynomial.hermite_e import hermeval

    from lowprob.propagation.hermite_density import HermiteBasis, HermiteDensity, hermite_truncation

    W, cone, p = _cone()
    claims = RandomHalfspaceProduct(M_CLAIMS, dim=N_DIM)
    assert sketch_error(HermiteDensity.gaussian(N_DIM), claims, target=UniformSphere(N_DIM), degree=8).value < 1e-25
    errors = []
    for budget in (15, 70, 330):
        trace = propagate(HermiteDensity.gaussian(N_DIM), halfspace_steps(W), projector=hermite_truncation,
                          claims=[None] * N_DIM, budget=budget)
        view = as_sketch(trace.final, cone.scaled(p))
        assert view.total_mass() == pytest.approx(float(trace.value[0]), rel=1e-12)
        rep = sketch_error(trace.final, claims, target=cone.scaled(p), degree=24)
        assert rep.lower <= rep.value <= rep.upper
        errors.append(rep.value)
    assert errors[0] > errors[1] > errors[2]
    # independent check of the direction law on the last state
    st = trace.final
    x = np.random.default_rng(11).standard_normal((200_000, N_DIM))
    alpha = HermiteBasis(N_DIM, st.degree).alpha
    g = sum(c * np.prod([hermeval(x[:, j], np.eye(a[j] + 1)[a[j]]) for j in range(N_DIM)], axis=0)
            for a, c in zip(alpha, st.coefficients[0], strict=True))
    u = np.array([0.3, -0.5, 0.8, 0.1])
    f = lambda y: (y @ u > 0).astype(float)  # noqa: E731
    mc = f(x) * g
    assert abs(view.expect(f, quad_degree=80) - mc.mean()) < 4 * mc.std() / np.sqrt(mc.size) + 1e-4
