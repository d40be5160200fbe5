"""Tests of the smoothed minimax tilt (lowprob/polytope_smooth_tilt.py) and its hook in
:func:`lowprob.gaussian_polytope.minimax_tilt`'s failure branch.

Oracles: the definition of the soft bounds (inside the true interval, within ``tau log n``),
central finite differences for the analytic gradient and Jacobian, plain Monte Carlo (``2^21``
draws, fixed seed) for a cone whose exact tilt fails, and the old failure branch (smoothing
switched off) on fixed hard cones. Monte Carlo comparisons use a 4-sigma tolerance on the
combined standard error.
"""

from __future__ import annotations

import dataclasses
import math
from unittest import mock

import numpy as np
import pytest

import lowprob.polytope_smooth_tilt as S
from lowprob.errors import InputValueError
from lowprob.gaussian_polytope import TiltedPolytopeSampler, minimax_tilt, pivoted_lq
from lowprob.propagation.quadrature_estimator import tilt_flops
from lowprob.toy_models.instance_law import sample_q1


def _cone(W: np.ndarray):
    m = W.shape[0]
    return np.zeros(m), np.full(m, np.inf)


def _no_smoothing():
    """The failure branch as it was before the smoothed solver (no smoothed candidates)."""
    return mock.patch.object(
        S, "smooth_minimax_tilt", lambda st, y0, **kw: S.SmoothTiltResult((), (), ())
    )


def test_smoothed_interval_is_inside_the_true_one():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, j = int(rng.integers(2, 9)), int(rng.integers(1, 6))
        rows = rng.standard_normal((n, j))
        lo = np.where(rng.random(n) < 0.4, -np.inf, rng.standard_normal(n))
        hi = np.where(np.isfinite(lo), np.inf, rng.standard_normal(n))
        x = rng.standard_normal(j)
        c = rows @ x
        lt_true, ut_true = np.max(lo - c), np.min(hi - c)
        for tau in (1.0, 0.3, 0.01):
            lt, ut, *_ = S.smoothed_pivot_interval(rows, lo, hi, x, tau)
            n_lo, n_hi = int(np.isfinite(lo).sum()), int(np.isfinite(hi).sum())
            assert lt >= lt_true and ut <= ut_true
            if n_lo:
                assert lt <= lt_true + tau * math.log(n_lo) + 1e-12
            if n_hi:
                assert ut >= ut_true - tau * math.log(n_hi) - 1e-12


def test_smoothed_grad_and_jacobian_match_finite_differences():
    W = np.random.default_rng(1).standard_normal((16, 8))
    st = pivoted_lq(W, *_cone(W))
    r = st.r
    assert max(len(lo) for lo in st.lo) > 1  # a pivot owns several rows
    # a point inside the cone (the LP point of minimax_tilt's search) and a moderate tilt
    from lowprob.gaussian_polytope import _interior_point

    z0, margin, _ = _interior_point(st)
    assert margin > 0
    y = np.concatenate([z0[: r - 1], 0.5 * z0[: r - 1]])
    tau, h = 0.3, 1e-6
    psi = lambda v: S.smoothed_psi(st, np.append(v[: r - 1], 0.0), np.append(v[r - 1 :], 0.0), tau)  # noqa: E731
    g, J = S.smoothed_grad_jac(st, y, tau)
    E = np.eye(y.size)
    g_fd = np.array([(psi(y + h * e) - psi(y - h * e)) / (2 * h) for e in E])
    J_fd = np.column_stack(
        [
            (
                S.smoothed_grad_jac(st, y + h * e, tau)[0]
                - S.smoothed_grad_jac(st, y - h * e, tau)[0]
            )
            / (2 * h)
            for e in E
        ]
    )
    np.testing.assert_allclose(g, g_fd, rtol=1e-5, atol=1e-6 * np.abs(g).max())
    np.testing.assert_allclose(J, J_fd, rtol=1e-4, atol=1e-5 * np.abs(J).max())
    # psi_tau is concave in x for fixed mu: the x-x block is negative semidefinite
    n = r - 1
    assert np.linalg.eigvalsh(0.5 * (J[:n, :n] + J[:n, :n].T)).max() <= 1e-8 * np.abs(J).max()


def test_smoothed_tilt_is_used_when_the_exact_tilt_fails_and_agrees_with_monte_carlo():
    # a cone from the size-biased law Q1 (p ~ 3e-4, so plain MC resolves it) whose exact solve fails
    W = sample_q1(8, 16, 1, 3)[0]
    lo, hi = _cone(W)
    sol = minimax_tilt(pivoted_lq(W, lo, hi))
    assert not sol.converged and sol.smoothed
    assert sol.smooth_grad_jac_evaluations > 0 and sol.smooth_candidates >= 1
    res = TiltedPolytopeSampler(W, lo, hi).probability(2**14, seed=11)
    assert math.isfinite(res.relative_error) and res.relative_error < 0.05
    rng = np.random.default_rng(12)
    hits = sum(
        int(np.count_nonzero(np.all(rng.standard_normal((2**19, 8)) @ W.T > 0, axis=1)))
        for _ in range(4)
    )
    p_mc = hits / 2**21
    se_mc = math.sqrt(p_mc * (1 - p_mc) / 2**21)
    assert abs(res.probability - p_mc) <= 4 * math.hypot(res.std_error, se_mc)


# (m, d, seed of np.random.default_rng(seed).standard_normal((m, d))): feasible cones where the
# exact tilt fails and the old fallback was unresolved or one-draw-dominated (relative error
# >= 0.96) at 1024 RQMC points
HARD = [(16, 8, 1), (16, 8, 10), (16, 8, 23), (32, 16, 10), (32, 16, 23)]


@pytest.mark.parametrize("m,d,seed", HARD)
def test_hard_cones_are_resolved(m, d, seed):
    W = np.random.default_rng(seed).standard_normal((m, d))
    lo, hi = _cone(W)
    with _no_smoothing():
        old = TiltedPolytopeSampler(W, lo, hi).probability(1024, seed=0)
    assert not math.isfinite(old.relative_error) or old.relative_error > 0.9  # the failure it fixes
    new = TiltedPolytopeSampler(W, lo, hi)
    assert not new.converged
    res = new.probability(4096, seed=0)
    assert math.isfinite(res.relative_error) and res.relative_error < 0.5
    # the old estimate, where finite, is far below (a single hit) and never above the new one by
    # more than its own stated error would allow
    if math.isfinite(old.relative_error):
        assert old.log_probability <= res.log_probability + math.log1p(4 * res.relative_error)


def test_m_le_d_is_untouched():
    # no pivot owns several rows: the smoothed solver never runs and the result is bit-identical
    W = np.random.default_rng(2).standard_normal((6, 8))
    lo, hi = _cone(W)
    sol = minimax_tilt(pivoted_lq(W, lo, hi))
    assert sol.converged and sol.smooth_grad_jac_evaluations == 0 and not sol.smoothed
    a = TiltedPolytopeSampler(W, lo, hi).probability(2**10, seed=3)
    with _no_smoothing():
        b = TiltedPolytopeSampler(W, lo, hi).probability(2**10, seed=3)
    assert a.log_probability == b.log_probability and a.relative_error == b.relative_error


def test_tilt_flops_count_the_smoothed_work():
    W = np.random.default_rng(1).standard_normal((16, 8))
    st = pivoted_lq(W, *_cone(W))
    sol = minimax_tilt(st, pilot_points=128)
    assert sol.smooth_grad_jac_evaluations > 0
    f, _ = tilt_flops(st, sol, 128)
    f0, _ = tilt_flops(st, dataclasses.replace(sol, smooth_grad_jac_evaluations=0), 128)
    assert f > f0 > 0


def test_bad_input_raises():
    W = np.random.default_rng(1).standard_normal((16, 8))
    st = pivoted_lq(W, *_cone(W))
    with pytest.raises(InputValueError, match="y0 must have shape"):
        S.smooth_minimax_tilt(st, np.zeros(3))
    with pytest.raises(InputValueError, match="temperatures"):
        S.smooth_minimax_tilt(st, np.zeros(2 * (st.r - 1)), temperatures=(1.0, -0.1))
    with pytest.raises(InputValueError, match="tau must be > 0"):
        S.smoothed_pivot_interval(np.ones((2, 1)), np.zeros(2), np.full(2, np.inf), np.ones(1), 0.0)
