"""The exact oracle against independent closed forms (d = 2, 3, 4), degenerate rows, bad input.

Tier: fast, except the d = 4 Monte Carlo comparison (``slow``: 1e7 samples per instance,
4 standard errors, seed 2026). The closed forms used here are computed independently of the
oracle's triangulation: the arc length in 2-D, the polar polygon's perimeter (Girard) and the
trivariate orthant formula in 3-D, block products and a 1-D integral for equicorrelated
orthants in 4-D.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.optimize import linprog
from scipy.spatial import ConvexHull
from scipy.stats import norm

from lowprob.errors import InputValueError, UnavailableError
from lowprob.testing.strategies import (
    feasible_weight_matrix,
    halfspace_toys,
    positive_row_scales,
    weight_matrices,
)
from lowprob.toy_models import HalfspaceToy
from lowprob.toy_models.oracle import exact_probabilities, exact_probability
from lowprob.toy_models.orthant import orthant_probability, simplicial_cone_masses

TOL = 1e-12


# -- independent closed forms ---------------------------------------------------------------
def arc_probability_2d(W: np.ndarray) -> float:
    """2-D: the rows fit in an arc of width ``span < pi`` iff feasible; then p = (pi - span)/2pi."""
    ang = np.sort(np.arctan2(W[:, 1], W[:, 0]))
    gaps = np.diff(np.concatenate([ang, [ang[0] + 2 * np.pi]]))
    span = 2 * np.pi - gaps.max()
    return max(0.0, np.pi - span) / (2 * np.pi)


def polar_perimeter_probability_3d(W: np.ndarray) -> float:
    """3-D Girard: area of a spherical polygon = 2 pi - perimeter of its polar polygon."""
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    res = linprog(np.r_[0, 0, 0, -1.0], A_ub=np.hstack([-U, np.ones((len(U), 1))]),
                  b_ub=np.zeros(len(U)), bounds=[(-1, 1)] * 3 + [(None, 1)], method="highs")
    if -res.fun <= 1e-12:
        return 0.0
    c = res.x[:3] / np.linalg.norm(res.x[:3])
    # Gnomonic projection of the rows around c (U c > 0: the rows lie in c's hemisphere).
    B = np.linalg.qr(np.column_stack([c, np.eye(3)]))[0][:, 1:3]
    P = (U / (U @ c)[:, None]) @ B
    if len(U) < 3:
        raise ValueError("use at least 3 rows")
    hull = ConvexHull(P)
    V = U[hull.vertices]  # counter-clockwise order in 2-D
    perim = sum(math.acos(np.clip(V[i] @ V[(i + 1) % len(V)], -1, 1)) for i in range(len(V)))
    return (2 * np.pi - perim) / (4 * np.pi)


def trivariate_orthant(W: np.ndarray) -> float:
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    r = U @ U.T
    return 1 / 8 + (math.asin(r[0, 1]) + math.asin(r[0, 2]) + math.asin(r[1, 2])) / (4 * math.pi)


def equicorrelated_orthant(n: int, rho: float) -> float:
    """P[Y > 0], Y ~ N(0, (1-rho) I + rho 11^T), rho >= 0: int phi(z) Phi(sqrt(rho/(1-rho)) z)^n."""
    a = math.sqrt(rho / (1 - rho))
    val, _ = integrate.quad(lambda z: norm.pdf(z) * norm.cdf(a * z) ** n, -40.0, 40.0,
                            points=[-3.0, 0.0, 3.0], epsabs=1e-16, epsrel=1e-13, limit=400)
    return val


# -- d = 2 ------------------------------------------------------------------------------------
@settings(max_examples=40)
@given(toy=halfspace_toys(d=2, m=st.integers(1, 12), feasible=True, scale_rows=True))
def test_d2_matches_arc_formula(toy):
    r = exact_probability(toy.W)
    assert abs(r.probability - arc_probability_2d(toy.W)) <= TOL
    assert r.error_bound <= 1e-14


@settings(max_examples=20)
@given(toy=halfspace_toys(d=2, m=st.integers(2, 8)))
def test_d2_random_instances(toy):
    assert abs(exact_probability(toy.W).probability - arc_probability_2d(toy.W)) <= TOL


# -- d = 3 ------------------------------------------------------------------------------------
@settings(max_examples=40)
@given(toy=halfspace_toys(d=3, m=st.integers(3, 16), feasible=True, scale_rows=True))
def test_d3_matches_polar_perimeter(toy):
    r = exact_probability(toy.W)
    assert abs(r.probability - polar_perimeter_probability_3d(toy.W)) <= TOL
    assert r.error_bound <= 1e-13


@settings(max_examples=30)
@given(toy=halfspace_toys(d=3, m=3))
def test_d3_three_rows_trivariate_formula(toy):
    assert abs(exact_probability(toy.W).probability - trivariate_orthant(toy.W)) <= TOL


# -- d = 4 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 0.1, 0.3, 0.5, 0.8, 0.95, 0.995])
def test_d4_equicorrelated_orthant(rho):
    S = (1 - rho) * np.eye(4) + rho
    L = np.linalg.cholesky(S)  # rows of L have Gram S: p(L) = P[Y > 0]
    r = exact_probability(L)
    assert abs(r.probability - equicorrelated_orthant(4, rho)) <= TOL
    assert r.error_bound <= 1e-12
    p, err = orthant_probability(S)
    assert abs(p - equicorrelated_orthant(4, rho)) <= TOL and err <= 1e-12


def test_d4_half_correlation_is_one_fifth():
    assert abs(exact_probability(np.linalg.cholesky(0.5 * np.eye(4) + 0.5)).probability - 0.2) <= TOL


@pytest.mark.parametrize("seed", range(6))
def test_d4_block_products(seed):
    rng = np.random.default_rng(seed)
    A = feasible_weight_matrix(rng, 2, 5)
    B = feasible_weight_matrix(rng, 2, 6)
    W = np.zeros((11, 4))
    W[:5, :2], W[5:, 2:] = A, B
    expect = arc_probability_2d(A) * arc_probability_2d(B)
    assert abs(exact_probability(W).probability - expect) <= TOL
    C = feasible_weight_matrix(rng, 3, 8)
    W = np.zeros((9, 4))
    W[:8, :3], W[8, 3] = C, -2.0
    expect = polar_perimeter_probability_3d(C) / 2
    assert abs(exact_probability(W).probability - expect) <= TOL


@settings(max_examples=15)
@given(toy=halfspace_toys(d=4, m=16, feasible=True), data=st.data())
def test_d4_permutation_and_scaling_invariance(toy, data):
    r = exact_probability(toy.W)
    perm = data.draw(st.permutations(list(range(16))))
    scales = data.draw(positive_row_scales(16))
    r2 = exact_probability(toy.W[perm] * scales[:, None])
    assert abs(r.probability - r2.probability) <= 1e-12 * r.probability + r.error_bound + r2.error_bound


@settings(max_examples=15)
@given(toy=halfspace_toys(d=4, m=st.integers(4, 12), feasible=True), seed=st.integers(0, 2**31))
def test_adding_a_row_never_increases_p(toy, seed):
    row = np.random.default_rng(seed).standard_normal((1, 4))
    p0 = exact_probability(toy.W)
    p1 = exact_probability(np.vstack([toy.W, row]))
    assert p1.probability <= p0.probability + p0.error_bound + p1.error_bound


def test_d4_cones_sum_to_the_whole_space_in_2x2_blocks():
    # 4 orthogonal rows: the 16 sign patterns tile R^4 and each has p = 1/16.
    total = 0.0
    for signs in np.ndindex(2, 2, 2, 2):
        total += exact_probability(np.diag(np.where(np.array(signs) == 1, 1.0, -1.0))).probability
    assert abs(total - 1.0) <= 1e-13


def test_sign_patterns_partition_random_instance():
    # Cells of a random 3-row arrangement in R^4 (2^3 sign patterns) partition space.
    W = np.random.default_rng(3).standard_normal((3, 4))
    total = sum(
        exact_probability(W * np.array(s)[:, None]).probability
        for s in [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
    )
    assert abs(total - 1.0) <= 1e-13


# -- degenerate rows ------------------------------------------------------------------------
def test_infeasible_is_exactly_zero():
    W = np.array([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    r = exact_probability(W)
    assert r.probability == 0.0 and r.log_probability == -math.inf and not r.feasible
    rng = np.random.default_rng(0)
    n_inf = 0
    for _ in range(200):
        r = exact_probability(rng.standard_normal((16, 4)))
        if not r.feasible:
            n_inf += 1
            assert r.probability == 0.0 and r.n_cones == 0
    assert n_inf > 150


def test_duplicate_and_parallel_rows():
    rng = np.random.default_rng(4)
    W = feasible_weight_matrix(rng, 4, 8)
    base = exact_probability(W).probability
    W2 = np.vstack([W, W[2], 3.5 * W[5], W[0]])
    assert abs(exact_probability(W2).probability - base) <= TOL
    # A nearly duplicate row perturbs p by a tiny amount only, and never increases it.
    W3 = np.vstack([W, W[1] + 1e-9 * rng.standard_normal(4)])
    p3 = exact_probability(W3).probability
    assert p3 <= base + TOL and abs(p3 - base) <= 1e-7


def test_zero_row_rejected():
    W = np.eye(4)
    W[2] = 0
    with pytest.raises(InputValueError, match=r"zero rows \[2\]"):
        exact_probability(W)


def test_rank_deficient_and_few_rows():
    assert exact_probability(np.array([[1.0, 2.0, 3.0, 4.0]])).probability == 0.5
    W = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert abs(exact_probability(W).probability - (np.pi - np.pi / 4) / (2 * np.pi)) <= TOL
    # Rows of a 4-D instance spanning a 3-D subspace: equal to the 3-D instance.
    rng = np.random.default_rng(5)
    C = feasible_weight_matrix(rng, 3, 7)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0][:, :3]
    assert abs(exact_probability(C @ Q.T).probability - exact_probability(C).probability) <= TOL


def test_bad_input():
    with pytest.raises(InputValueError, match="NaN or infinite"):
        exact_probability(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(InputValueError, match="NaN or infinite"):
        exact_probability(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(InputValueError, match="2-dimensional"):
        exact_probability(np.ones(4))
    with pytest.raises(InputValueError, match="shape"):
        exact_probability(np.ones((0, 4)))
    with pytest.raises(UnavailableError, match="Monte Carlo"):
        exact_probability(np.random.default_rng(0).standard_normal((16, 5)))
    with pytest.raises(UnavailableError, match="bias"):
        exact_probability(np.eye(3), b=np.ones(3))
    with pytest.raises(InputValueError, match="method"):
        exact_probability(np.eye(3), method="genz")


def test_accepts_toy_and_batches():
    toys = [HalfspaceToy(feasible_weight_matrix(np.random.default_rng(i), 3, 6)) for i in range(5)]
    ps = exact_probabilities([t.W for t in toys])
    assert ps.dtype == np.float64 and ps.shape == (5,)
    assert all(ps[i] == exact_probability(toys[i]).probability for i in range(5))
    stack = np.stack([t.W for t in toys])
    np.testing.assert_array_equal(exact_probabilities(stack), ps)


def test_simplicial_cone_masses_closed_forms():
    assert abs(simplicial_cone_masses(np.eye(4))[0] - 1 / 16) <= TOL
    R = np.array([[1.0, 1.0], [0.0, 1.0]])
    assert abs(simplicial_cone_masses(R)[0] - 1 / 8) <= TOL
    assert simplicial_cone_masses(np.ones((3, 3)))[0] == 0.0  # flat cone
    with pytest.raises(UnavailableError):
        simplicial_cone_masses(np.eye(5))


# -- d = 4 against Monte Carlo (slow) --------------------------------------------------------
def _mc(W: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n // 1_000_000):
        x = rng.standard_normal((1_000_000, W.shape[1]))
        hits += int(np.count_nonzero(np.all(x @ W.T > 0, axis=1)))
    p = hits / n
    return p, math.sqrt(p * (1 - p) / n)


@pytest.mark.slow
@pytest.mark.parametrize("idx", range(4))
def test_d4_matches_large_monte_carlo(idx):
    """1e7 samples per instance, |oracle - MC| <= 4 standard errors (seed 2026 + idx)."""
    rng = np.random.default_rng(2026 + idx)
    if idx < 2:  # random 4x16 instances conditioned on feasibility (p ~ 1e-5 .. 1e-3)
        while True:
            W = rng.standard_normal((16, 4))
            r = exact_probability(W)
            if r.probability > 1e-5:
                break
    else:  # wider cones, m = 6, p ~ 1e-2
        W = feasible_weight_matrix(rng, 4, 6)
        r = exact_probability(W)
    p, se = _mc(W, 10_000_000, seed=2026 + idx)
    assert abs(p - r.probability) <= 4 * se, (p, se, r)


def test_tilting_method_agrees_with_exact_and_handles_d5():
    """Botev tilting via method='tilting': within its 4-standard-error bound of the exact
    oracle on 4x16 instances (seed 0), exact zero for infeasible cones in d = 5, bias allowed."""
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 3:
        W = rng.standard_normal((16, 4))
        r = exact_probability(W)
        if not r.feasible:
            continue
        t = exact_probability(W, method="tilting", seed=checked)
        assert abs(t.probability - r.probability) <= t.error_bound + r.error_bound
        checked += 1
    W5 = np.vstack([np.eye(5), -np.eye(5)[:1]])
    assert exact_probability(W5, method="tilting").probability == 0.0
    t = exact_probability(np.eye(3), np.ones(3), method="tilting")
    assert abs(t.probability - norm.cdf(1.0) ** 3) <= max(t.error_bound, 1e-12)


@settings(max_examples=40)
@given(W=weight_matrices(d=2, m=5, magnitude=3.0, min_row_norm=0.1))
def test_d2_hypothesis_entries_match_arc_formula(W):
    """Hypothesis draws the entries (repeated values, zeros, parallel rows are likely)."""
    assert abs(exact_probability(W).probability - arc_probability_2d(W)) <= TOL


@settings(max_examples=25)
@given(W=weight_matrices(d=4, m=3, magnitude=3.0, min_row_norm=0.1))
def test_sign_patterns_partition_hypothesis_entries(W):
    """The 8 sign patterns of 3 (possibly degenerate) rows partition R^4 up to null sets."""
    total = sum(
        exact_probability(W * np.array([a, b, c])[:, None]).probability
        for a in (1, -1) for b in (1, -1) for c in (1, -1)
    )
    assert abs(total - 1.0) <= 1e-12
