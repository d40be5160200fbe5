"""Harmonic analysis on the slice (the permutation module ``M^{(n-i, i)}`` of ``S_n``).

Functions on the ``i``-subsets ``A`` of ``{0..n-1}`` form the permutation module
``M^{(n-i,i)} = V_0 + V_1 + ... + V_r`` (``r = min(i, n - i)``), with ``V_j`` the Specht module
``S^{(n-j,j)}`` of dimension ``C(n, j) - C(n, j - 1)``. ``V_0 + ... + V_L`` is the space of
"degree <= L" functions ``A -> sum_{|T| = L, T in A} h(T)`` (spanned by the
``C(n, L)`` subset indicators ``phi_T(A) = 1[T in A]``; a basis when ``L <= r``).

A kernel that is invariant under ``S_n`` depends on the distance ``t = |A \\ B|`` only (the
Johnson scheme ``J(n, i)``), and is diagonal in the ``V_j``. With ``A_t`` the distance-``t``
adjacency matrix, ``A_t`` acts on ``V_j`` as the Eberlein polynomial

    E_t(j) = sum_h (-1)^h C(j, h) C(i - j, t - h) C(n - i - j, t - h),

so ``k(A, B) = h(t)`` has the per-function ``L^2(uniform)`` eigenvalue
``lambda_j = C(n, i)^-1 sum_t h(t) E_t(j)`` on ``V_j``.

Permanent claims (*derived*). After ``i`` of ``n`` rows of a {0,1} matrix, with the
``m = n - i`` remaining rows i.i.d. uniform, the claim on the set ``A = sigma([i])`` of used
columns is ``F(A) = perm(C_R[:, A^c]) / m!``, and
``E_C F(A) F(B) = 4^-m sum_s C(u, s) / (m)_s`` with ``u = |A^c n B^c| = m - t`` and
``(m)_s`` the falling factorial (pair two independent uniform bijections and count their
agreements: ``E 2^{agree} = sum_s P[agree on a given s-set] C(m, s)``).

Reference: Delsarte, *An algebraic approach to the association schemes of coding theory*
(1973), §4.2 (Johnson scheme, Eberlein polynomials); Filmus, *An orthogonal basis for
functions over a slice of the Boolean hypercube* (2016).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError

__all__ = [
    "eberlein",
    "johnson_kernel_eigenvalues",
    "permanent_claim_profile",
    "slice_component_dimension",
    "subsets",
]


def _check(n: int, i: int) -> tuple[int, int]:
    n = check_int("n", n, minimum=1)
    i = check_int("i", i, minimum=0)
    if i > n:
        raise InputValueError(f"i must be <= n = {n}, got {i!r}.")
    return n, i


def eberlein(n: int, i: int, t: int, j: int) -> int:
    """``E_t(j)``: eigenvalue of the distance-``t`` matrix of ``J(n, i)`` on ``V_j`` (exact int)."""
    n, i = _check(n, i)
    return sum(
        (-1) ** h * math.comb(j, h) * math.comb(i - j, t - h) * math.comb(n - i - j, t - h)
        for h in range(0, min(j, t) + 1)
    )


def slice_component_dimension(n: int, j: int) -> int:
    """``dim V_j = C(n, j) - C(n, j - 1)``."""
    return math.comb(n, j) - (math.comb(n, j - 1) if j > 0 else 0)


def johnson_kernel_eigenvalues(profile: object, n: int, i: int) -> np.ndarray:
    """Per-function eigenvalues ``lambda_j``, ``j = 0..min(i, n-i)``, of ``k(A, B) = h(|A \\ B|)``.

    ``profile``: ``h(t)`` for ``t = 0..min(i, n - i)``. Returns float64 ``(min(i, n-i) + 1,)``.
    """
    n, i = _check(n, i)
    r = min(i, n - i)
    h = np.asarray(profile, dtype=np.float64)
    if h.shape != (r + 1,):
        raise InputValueError(f"profile must have shape ({r + 1},) (t = 0..{r}), got {h.shape!r}.")
    E = np.array([[eberlein(n, i, t, j) for t in range(r + 1)] for j in range(r + 1)], dtype=np.float64)
    return E @ h / math.comb(n, i)


def permanent_claim_profile(n: int, i: int) -> np.ndarray:
    """``h(t) = 4^-m sum_s C(m - t, s) / (m)_s`` (``m = n - i``) for ``t = 0..min(i, n - i)``."""
    n, i = _check(n, i)
    m = n - i
    r = min(i, m)
    out = []
    for t in range(r + 1):
        u = m - t
        acc = Fraction(0)
        falling = 1
        for s in range(u + 1):
            if s > 0:
                falling *= m - s + 1
            acc += Fraction(math.comb(u, s), falling)
        out.append(float(acc / 4**m))
    return np.array(out)


def subsets(n: int, size: int) -> np.ndarray:
    """All ``size``-subsets of ``{0..n-1}`` in lexicographic order, as an ``(C(n, size), size)`` int array."""
    n = check_int("n", n, minimum=0)
    size = check_int("size", size, minimum=0)
    if size > n:
        return np.zeros((0, size), dtype=np.int64)
    if size == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.array(list(itertools.combinations(range(n), size)), dtype=np.int64).reshape(-1, size)
