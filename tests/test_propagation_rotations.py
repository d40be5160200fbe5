"""Fast rotated harmonic products on S^3 (``lowprob.propagation.rotations``, ``quaternion_density``).

Tier: fast. Exact identities are checked to 1e-12 (round-off): Wigner ``D`` matrices are unitary
homomorphisms, the fixed ``d(pi/2)`` is orthogonal, the Euler form reproduces ``D(V)^T C``, the
coupled (Gelfand--Tsetlin) basis is unitary and its line matrices satisfy the half/half
identity ``m + S m S = I``. The rotated product equals the reference Clenshaw product of
:mod:`lowprob.propagation.harmonic_density` on random coefficients (functions compared at
random points after converting bases by an exact least-squares fit) and end to end on
random instances.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.harmonic_density import HarmonicDensity, HarmonicProduct
from lowprob.propagation.quaternion_density import (
    QuaternionHarmonicDensity,
    QuaternionHarmonicProduct,
    coupled_basis,
    evaluate_density,
    line_matrix,
)
from lowprob.propagation.rotations import (
    apply_rotation_transpose,
    euler_angles,
    quaternion,
    wigner_d,
    wigner_d_half_pi,
)
from lowprob.propagation.steps import HalfspaceStep
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.toy_models.registry import get_toy_estimator


def _unit(rng, shape):
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("l", [0, 1, 2, 5, 9])
def test_wigner_d_unitary_homomorphism_and_euler_form(l):
    rng = np.random.default_rng(l)
    U, V = quaternion(_unit(rng, (2, 4)))
    DU, DV = wigner_d(l, U), wigner_d(l, V)
    assert np.max(np.abs(DU @ DU.conj().T - np.eye(l + 1))) < 1e-12
    assert np.max(np.abs(DU @ DV - wigner_d(l, U @ V))) < 1e-12
    d = wigner_d_half_pi(l)
    assert np.max(np.abs(d @ d.T - np.eye(l + 1))) < 1e-12
    C = rng.standard_normal((1, l + 1, l + 1)) + 1j * rng.standard_normal((1, l + 1, l + 1))
    got = apply_rotation_transpose(C, l, euler_angles(U[None]), FlopCounter())[0]
    assert np.max(np.abs(got - DU.T @ C[0])) < 1e-12


@pytest.mark.parametrize("l", [1, 4, 7])
def test_coupled_basis_unitary_and_line_matrices(l):
    blocks, pre = coupled_basis(l)
    assert pre > 0
    assert sum(b.p.size for b in blocks) == (l + 1) ** 2
    for b in blocks:
        assert np.max(np.abs(b.E @ b.EH - np.eye(b.p.size))) < 1e-12
    for k in range(l + 1):
        m = line_matrix(k, l)
        S = np.diag((-1.0) ** np.arange(l + 1 - k))
        assert np.max(np.abs(m + S @ m @ S - np.eye(l + 1 - k))) < 1e-12  # hemispheres add to the identity
        assert np.max(np.abs(m - m.T)) < 1e-14


def _random_density(rng, degrees, B):
    blocks = {l: rng.standard_normal((B, l + 1, l + 1)) + 1j * rng.standard_normal((B, l + 1, l + 1)) for l in degrees}
    frame = quaternion(_unit(rng, (B, 4)))
    rep = QuaternionHarmonicDensity(tuple(degrees), blocks, frame)
    return rep


@pytest.mark.parametrize("degrees, new_degrees", [((0, 1, 2, 3), (0, 1, 2, 3)), ((0, 1, 3), (0, 1, 2, 4, 5)), ((0, 2, 5), (0, 1))])
def test_rotated_product_equals_clenshaw_on_random_coefficients(degrees, new_degrees):
    rng = np.random.default_rng(len(degrees) + 10 * len(new_degrees))
    B = 2
    rep = _random_density(rng, degrees, B)
    u = _unit(rng, (B, 4))
    step = HalfspaceStep(normal=u, offset=np.zeros(B))
    rot = QuaternionHarmonicProduct(rep, step).project(tuple(new_degrees), FlopCounter())
    # the same (complex-valued) function in the real harmonic basis, by an exact fit on points
    L = max(degrees)
    sh = SphericalHarmonics(4, L)
    pts = _unit(rng, (6 * sh.total_dim, 4))
    Ysh = sh.evaluate(pts)
    vals = evaluate_density(rep, pts)  # real part of g; g is real only for conjugate-symmetric C
    coef, *_ = np.linalg.lstsq(Ysh, vals.T, rcond=None)
    assert np.max(np.abs(Ysh @ coef - vals.T)) < 1e-9  # the fit is exact: same function space
    ref = HarmonicProduct(HarmonicDensity(4, tuple(range(L + 1)), np.ascontiguousarray(coef.T)), step)
    out = ref.project(tuple(new_degrees), FlopCounter())
    test_pts = _unit(rng, (200, 4))
    Lp = max(new_degrees)
    ref_vals = SphericalHarmonics(4, Lp).evaluate(test_pts) @ out.coefficients.T
    got_vals = evaluate_density(rot, test_pts)
    assert np.max(np.abs(got_vals - ref_vals.T)) < 1e-10 * max(1.0, np.max(np.abs(ref_vals)))


@pytest.mark.parametrize("K", [5, 30, 91])
def test_kernel_estimates_equal_clenshaw_route(K):
    W = np.random.default_rng(K).standard_normal((4, 10, 4))
    fast = get_toy_estimator("kernel").estimate_batch(W, K)
    ref = get_toy_estimator("kernel_clenshaw").estimate_batch(W, K)
    assert np.max(np.abs(fast.values - ref.values)) < 1e-12
    if K >= 30:  # below that the rotation overhead exceeds Clenshaw's (K = 5: 4.1e3 vs 2.6e3 FLOPs)
        assert np.all(fast.flops < ref.flops)


def test_uniform_density_and_mass():
    rep = QuaternionHarmonicDensity.uniform(3)
    assert rep.n_terms == 1 and np.allclose(rep.total_mass(), 1.0)
    assert np.allclose(evaluate_density(rep, _unit(np.random.default_rng(0), (5, 4))), 1.0)


def test_high_degree_rotation_refuses_when_inaccurate():
    """The binomial Wigner expansion is orthogonal to < 1e-10 up to l ~ 45; beyond, it raises."""
    from lowprob.errors import NumericalError

    d = wigner_d_half_pi(40)
    assert np.max(np.abs(d @ d.T - np.eye(41))) < 1e-10
    with pytest.raises(NumericalError, match="kernel_clenshaw"):
        wigner_d_half_pi(60)
