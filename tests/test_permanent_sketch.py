"""Harmonic analysis on the slice for permanents: Johnson-scheme eigenvalues against direct
computation, the claim kernel (PSD, against sampled claims, decreasing eigenvalues), and the
slice sketch (exact recursion, L^2-optimal projection, exact at L >= n/2)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.permutation_density import SliceDensity, SliceProduct
from lowprob.propagation.product_steps import RandomRowStep, RowStep
from lowprob.sketching.johnson import (
    eberlein,
    johnson_kernel_eigenvalues,
    permanent_claim_profile,
    slice_component_dimension,
    subsets,
)
from lowprob.sketching.product_claims import RandomRowProduct
from lowprob.sketching.pullback import pullback
from lowprob.toy_models.permanent import random_binary_matrices, ryser_permanent


def _indicators(n: int, i: int) -> np.ndarray:
    A = subsets(n, i)
    X = np.zeros((A.shape[0], n))
    for r, a in enumerate(A):
        X[r, a] = 1
    return X


@pytest.mark.parametrize(("n", "i"), [(6, 2), (7, 3), (8, 5)])
def test_johnson_eigenvalues_against_direct_computation(n, i):
    claims = RandomRowProduct(n - i, n)
    X = _indicators(n, i)
    Kop = claims.kernel(X, X) / X.shape[0]
    ev = np.sort(np.linalg.eigvalsh(Kop))[::-1]
    lam = claims.eigenvalues()
    r = min(i, n - i)
    want = np.sort(np.repeat(lam, [slice_component_dimension(n, j) for j in range(r + 1)]))[::-1]
    np.testing.assert_allclose(ev, want, atol=1e-14, rtol=1e-10)
    assert ev.min() > -1e-14  # PSD
    # Eberlein polynomials: E_t(0) is the number of sets at distance t
    for t in range(r + 1):
        assert eberlein(n, i, t, 0) == math.comb(i, t) * math.comb(n - i, t)


def test_claim_eigenvalues_strictly_decrease_for_every_size():
    for n in range(2, 23):
        for i in range(1, n):
            lam = johnson_kernel_eigenvalues(permanent_claim_profile(n, i), n, i)
            assert np.all(np.diff(lam) < 0), (n, i, lam)


def test_claim_kernel_matches_sampled_claims():
    n, i = 5, 2
    claims = RandomRowProduct(n - i, n)
    X = _indicators(n, i)
    V = claims.sample_values(X, 1500, seed=2)
    K_mc = V.T @ V / V.shape[0]
    se = np.sqrt(np.var(V[:, :, None] * V[:, None, :], axis=0) / V.shape[0])
    assert np.all(np.abs(K_mc - claims.kernel(X, X)) <= 5 * se + 1e-12)


def test_pullback_random_row():
    c = pullback(RandomRowProduct(2, 6), RandomRowStep(6))
    assert isinstance(c, RandomRowProduct) and (c.m, c.i) == (3, 3)


def _exact_G(C: np.ndarray, i: int) -> np.ndarray:
    """``G_i(A) = perm(C[:i, A]) / i!`` on every i-subset (lexicographic)."""
    return np.array([ryser_permanent(C[:i][:, list(a)]) / math.factorial(i) if i else 1.0
                     for a in subsets(C.shape[0], i).tolist()])


def test_projection_is_the_l2_projection_onto_low_degree():
    n, L = 7, 2
    C = random_binary_matrices(n, seed=4)
    g = SliceDensity.initial(n)
    for i in range(3):  # exact steps (L >= i)
        g = SliceProduct(g, RowStep(C[i], i)).project(min(L, i + 1, n - i - 1), FlopCounter())
    np.testing.assert_allclose(g.values()[0], _exact_G(C, 3), atol=1e-14)
    # step 4 with degree 2 < min(4, 3) = 3: compare to a dense least-squares projection
    out = SliceProduct(g, RowStep(C[3], 3)).project(L, FlopCounter())
    exact4 = _exact_G(C, 4)
    A4 = subsets(n, 4).tolist()
    T = subsets(n, L).tolist()
    Phi = np.array([[set(t) <= set(a) for t in T] for a in A4], dtype=float)
    h_ls, *_ = np.linalg.lstsq(Phi, exact4, rcond=None)
    np.testing.assert_allclose(Phi @ out.h[0], Phi @ h_ls, atol=1e-13)
    assert out.total_mass()[0] == pytest.approx(exact4.mean(), abs=1e-15)  # degree 0 is kept exactly


def test_full_degree_is_exact_and_batched():
    n = 8
    C = random_binary_matrices(n, seed=1, batch=3)
    from lowprob.propagation.product_estimators import PermanentSlice

    res = PermanentSlice().estimate_batch(C, math.comb(n, n // 2), seed=0)
    want = [ryser_permanent(c) / math.factorial(n) for c in C]
    np.testing.assert_allclose(res.values, want, atol=1e-15)


def test_subsets_lexicographic():
    assert subsets(4, 2).tolist() == [list(s) for s in itertools.combinations(range(4), 2)]
    assert subsets(4, 0).shape == (1, 0)
