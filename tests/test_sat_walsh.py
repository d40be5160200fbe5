"""Walsh analysis on the cube: Krawtchouk identities, claim-kernel eigenvalues and PSD,
exact clause expansions, and the round trip of sketch errors by enumeration (small cubes)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import backward_claims, propagate
from lowprob.propagation.product_steps import ClauseStep, RandomClauseStep, clause_steps
from lowprob.propagation.walsh_density import (
    WalshDensity,
    clause_walsh_terms,
    exact_level_eigenvalues,
    walsh_level_projector,
    walsh_topk_projector,
)
from lowprob.sketching.product_claims import RandomClauseProduct
from lowprob.sketching.pullback import pullback
from lowprob.sketching.walsh import (
    hamming_kernel_eigenvalues,
    krawtchouk_table,
    level_masks,
    walsh_characters,
)
from lowprob.toy_models.sat import SatProblem, count_satisfying


def _cube(n: int) -> np.ndarray:
    return (((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1).astype(np.float64)


@pytest.mark.parametrize("n", [1, 4, 9])
def test_krawtchouk_orthogonality_exact(n):
    K = krawtchouk_table(n, exact=True)
    for l, r in itertools.product(range(n + 1), repeat=2):
        s = sum(math.comb(n, d) * K[l, d] * K[r, d] for d in range(n + 1))
        assert s == (2**n * math.comb(n, l) if l == r else 0)


def test_krawtchouk_is_a_sum_of_characters():
    n = 6
    X = _cube(n)
    K = krawtchouk_table(n)
    for l in range(n + 1):
        chars = walsh_characters(X, level_masks(n, [l])).sum(axis=1)
        d = (X < 0).sum(axis=1)
        np.testing.assert_array_equal(chars, K[l, d])


def test_walsh_characters_orthonormal():
    n = 5
    W = walsh_characters(_cube(n), level_masks(n, range(n + 1)))
    np.testing.assert_allclose(W.T @ W / 2**n, np.eye(2**n), atol=1e-14)


@pytest.mark.parametrize("m", [1, 2, 7])
def test_claim_kernel_eigenvalues_against_direct_computation(m):
    n = 6
    claims = RandomClauseProduct(m, n)
    X = _cube(n)
    Kmat = claims.kernel(X, X) / 2**n  # the integral operator on L^2(uniform)
    lam = claims.eigenvalues()
    lam_exact = np.array(exact_level_eigenvalues(n, m))
    np.testing.assert_allclose(lam, lam_exact, rtol=1e-10, atol=1e-16)
    ev = np.sort(np.linalg.eigvalsh(Kmat))[::-1]
    want = np.sort(np.repeat(lam, [math.comb(n, l) for l in range(n + 1)]))[::-1]
    np.testing.assert_allclose(ev, want, atol=1e-13)
    # Walsh characters are the eigenvectors, level by level
    for l in range(n + 1):
        chi = walsh_characters(X, level_masks(n, [l]))
        np.testing.assert_allclose(Kmat @ chi, lam[l] * chi, atol=1e-13)
    assert ev.min() >= -1e-13  # PSD
    # m = 1: only levels <= 3 (a clause is a degree-3 polynomial)
    if m == 1:
        assert np.all(lam[4:] < 1e-15)


def test_claim_kernel_matches_sampled_claims():
    n, m = 5, 3
    claims = RandomClauseProduct(m, n)
    X = _cube(n)[::3]
    V = claims.sample_values(X, 20_000, seed=1)
    K_mc = V.T @ V / V.shape[0]
    K = claims.kernel(X, X)
    se = np.sqrt(K * (1 - K) / V.shape[0])  # f(x)f(y) is 0/1
    assert np.all(np.abs(K_mc - K) <= 5 * se + 1e-12)


def test_hamming_eigenvalues_reconstruct_profile():
    n = 8
    h = np.random.default_rng(0).random(n + 1)
    lam = hamming_kernel_eigenvalues(h, n)
    np.testing.assert_allclose(krawtchouk_table(n).T @ lam, h, rtol=1e-12)


def test_clause_walsh_terms_reproduce_the_clause():
    n = 5
    X = _cube(n)
    for lits in ([1, -3, 5], [-2, -4, 1], [2, 2, -2], [4]):
        masks, coef = clause_walsh_terms(np.array(lits))
        vals = walsh_characters(X, masks) @ coef
        np.testing.assert_allclose(vals, ClauseStep(np.array(lits), n)(X), atol=1e-15)


def test_pullback_through_random_clause_and_known_clause():
    c = pullback(RandomClauseProduct(2, 7), RandomClauseStep(7))
    assert isinstance(c, RandomClauseProduct) and c.m == 3
    step = ClauseStep(np.array([1, -2, 3]), 7)
    X = _cube(7)[:20]
    mc = pullback(RandomClauseProduct(2, 7), step)
    np.testing.assert_allclose(mc.kernel(X, X), np.outer(step(X), step(X)) * RandomClauseProduct(2, 7).kernel(X, X))
    cl = backward_claims(RandomClauseProduct(0, 7), [RandomClauseStep(7)] * 4)
    assert [x.m for x in cl] == [3, 2, 1, 0]


def test_full_walsh_propagation_is_exact():
    prob = SatProblem.random(8, 30, seed=2)
    steps = clause_steps(8, prob.literals)
    claims = backward_claims(RandomClauseProduct(0, 8), [RandomClauseStep(8)] * prob.k)
    tr = propagate(WalshDensity.uniform(8), steps, projector=walsh_level_projector, claims=claims, budget=2**8)
    assert float(tr.value[0]) == pytest.approx(count_satisfying(prob) / 2**8, abs=1e-14)


@pytest.mark.parametrize("projector", [walsh_level_projector, walsh_topk_projector])
def test_sketch_error_round_trip_by_enumeration(projector):
    """``sum_S lambda_|S| (g_S - g~_S)^2`` equals ``E_f (E_M f - E_D f)^2`` computed on all 2^n points."""
    n, m = 6, 9
    prob = SatProblem.random(n, 5, seed=4)
    X = _cube(n)
    g_vals = prob.evaluate(X)  # exact density after 5 clauses (uniform base)
    masks = level_masks(n, range(n + 1))
    coef = walsh_characters(X, masks).T @ g_vals / 2**n
    full = WalshDensity(n, masks, coef[None, :], tuple(range(n + 1)))
    claims = RandomClauseProduct(m, n)
    sk = projector(full, claims, 30, FlopCounter())
    assert sk.n_terms <= 30
    # spectral form
    lam = claims.eigenvalues()
    kept = dict(zip(sk.masks.tolist(), sk.coefficients[0].tolist(), strict=True))
    diff = coef - np.array([kept.get(int(s), 0.0) for s in masks])
    pc = np.array([bin(int(s)).count("1") for s in masks])
    spectral = float(np.sum(lam[pc] * diff**2))
    # enumeration form: Delta^T K Delta / 4^n over all points
    delta = g_vals - sk.evaluate(X)[0]
    enum = float(delta @ claims.kernel(X, X) @ delta) / 4**n
    assert spectral == pytest.approx(enum, rel=1e-9)
    # Monte Carlo over sampled claims (seed 0, 40k claims, 5 standard errors)
    F = claims.sample_values(X, 40_000, seed=0)
    e = (F @ delta / 2**n) ** 2
    assert abs(e.mean() - enum) <= 5 * e.std() / np.sqrt(e.size)
    # the kernel-ranked sketch is never worse than keeping the first 30 masks in index order
    naive = coef.copy()
    naive[30:] = 0
    assert spectral <= float(np.sum(lam[pc] * (coef - naive) ** 2)) + 1e-15


def test_topk_is_optimal_among_sparse_sketches():
    n, m = 5, 4
    prob = SatProblem.random(n, 3, seed=1)
    X = _cube(n)
    masks = level_masks(n, range(n + 1))
    coef = walsh_characters(X, masks).T @ prob.evaluate(X) / 2**n
    full = WalshDensity(n, masks, coef[None, :], None)
    claims = RandomClauseProduct(m, n)
    lam = claims.eigenvalues()[[bin(int(s)).count("1") for s in masks]]
    K = 4
    sk = walsh_topk_projector(full, claims, K, FlopCounter())
    err = float(np.sum(lam * coef**2) - np.sum(lam[np.searchsorted(masks, sk.masks)] * sk.coefficients[0] ** 2))
    rng = np.random.default_rng(0)
    for _ in range(200):
        keep = rng.choice(masks.size, K, replace=False)
        other = float(np.sum(lam * coef**2) - np.sum(lam[keep] * coef[keep] ** 2))
        assert err <= other + 1e-15


def test_coset_product_equals_term_by_term_product():
    """The coset algorithm (distinct variables) and the 2^w-term sum give the same product."""
    from lowprob.propagation.walsh_density import WalshProduct
    from lowprob.toy_models.sat import random_clauses

    rng = np.random.default_rng(0)
    n = 9
    masks = level_masks(n, (0, 1, 2, 3))
    g = WalshDensity(n, masks, rng.standard_normal((3, masks.size)), (0, 1, 2, 3))
    prod = WalshProduct(g, ClauseStep(random_clauses(n, 1, seed=rng, batch=3)[:, 0, :], n))
    out = level_masks(n, (0, 1, 2, 4))
    f_coset, f_terms = FlopCounter(), FlopCounter()
    np.testing.assert_allclose(prod.on(out, f_coset), prod._on_terms(out, f_terms), atol=1e-14)
    assert f_coset.online < f_terms.online
    # the adaptive support (one instance) agrees with the product on every set
    sparse = np.sort(rng.choice(2**n, 40, replace=False)).astype(np.int64)
    g1 = WalshDensity(n, sparse, rng.standard_normal((1, 40)), None)
    p1 = WalshProduct(g1, ClauseStep(random_clauses(n, 1, seed=rng)[0], n))
    cand, vals = p1.support(FlopCounter())
    every = level_masks(n, range(n + 1))
    dense = np.zeros(2**n)
    dense[cand] = vals
    np.testing.assert_allclose(dense[every], p1._on_terms(every, FlopCounter())[0], atol=1e-14)
