"""Walsh analysis on the cube ``{-1, 1}^n``: characters, levels, Krawtchouk polynomials,
and the eigenvalues of Hamming-distance (claim) kernels.

* Walsh characters ``chi_S(x) = prod_{v in S} x_v`` for ``S`` a subset of ``{0..n-1}``,
  encoded as an integer bit mask; they are orthonormal in ``L^2`` of the uniform measure.
  Level ``l`` is ``{chi_S : |S| = l}``, of dimension ``C(n, l)``.
* Krawtchouk polynomials ``K_l(d; n) = sum_j (-1)^j C(d, j) C(n - d, l - j)``, i.e.
  ``K_l(|z|) = sum_{|S| = l} chi_S(z)`` for ``z`` with ``|z|`` entries equal to ``-1``.
  Orthogonality: ``sum_d C(n, d) K_l(d) K_r(d) = 2^n C(n, l) delta_{lr}``.
* A kernel that depends on the Hamming distance only, ``k(x, y) = h(d(x, y))``, is
  diagonal in the Walsh basis: as an operator on ``L^2(uniform)``,
  ``(K f)(x) = E_y k(x, y) f(y)``, each ``chi_S`` with ``|S| = l`` is an eigenfunction with

      lambda_l = E_z h(|z|) chi_S(z) = 2^-n sum_d h(d) K_l(d) C(n, d) / C(n, l)

  (per function), and ``h(d) = sum_l lambda_l K_l(d)`` (the Walsh expansion of the kernel).

For the random 3-SAT claims after ``i`` of ``k`` clauses, ``h = kappa^m`` with ``m = k - i``
(:func:`lowprob.toy_models.sat.clause_pair_kernel`), DESIGN.md section 4.

Reference: MacWilliams & Sloane, *The Theory of Error-Correcting Codes* (1977), ch. 5 §7
(Krawtchouk polynomials); O'Donnell, *Analysis of Boolean Functions* (2014), ch. 1-2.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError

__all__ = [
    "hamming_kernel_eigenvalues",
    "krawtchouk_table",
    "level_masks",
    "popcount",
    "walsh_characters",
]


@lru_cache(maxsize=64)
def _krawtchouk(n: int) -> np.ndarray:
    K = np.zeros((n + 1, n + 1), dtype=object)
    for l in range(n + 1):
        for d in range(n + 1):
            K[l, d] = sum((-1) ** j * math.comb(d, j) * math.comb(n - d, l - j) for j in range(l + 1))
    return K


def krawtchouk_table(n: int, *, exact: bool = False) -> np.ndarray:
    """``K[l, d] = K_l(d; n)`` for ``l, d = 0..n``: ``(n + 1, n + 1)`` (Python ints if ``exact``)."""
    n = check_int("n", n, minimum=0)
    K = _krawtchouk(n)
    return K.copy() if exact else K.astype(np.float64)


def hamming_kernel_eigenvalues(profile: object, n: int) -> np.ndarray:
    """Per-function eigenvalues ``lambda_l``, ``l = 0..n``, of ``k(x, y) = h(d(x, y))`` on ``{-1,1}^n``.

    Args:
        profile: ``h(d)`` for ``d = 0..n``, shape ``(n + 1,)``.
        n: dimension of the cube.

    Returns:
        ``(n + 1,)`` float64: ``lambda_l = 2^-n sum_d C(n, d) h(d) K_l(d) / C(n, l)``.
    """
    n = check_int("n", n, minimum=1)
    h = np.asarray(profile, dtype=np.float64)
    if h.shape != (n + 1,):
        raise InputValueError(f"profile must have shape ({n + 1},), got {h.shape!r}.")
    binom = np.array([math.comb(n, d) for d in range(n + 1)], dtype=np.float64)
    return krawtchouk_table(n) @ (binom * h) / 2.0**n / binom


def popcount(masks: object) -> np.ndarray:
    """``|S|`` for integer masks (any shape), int64."""
    return np.bitwise_count(np.asarray(masks, dtype=np.uint64)).astype(np.int64)


def level_masks(n: int, levels: tuple[int, ...] | list[int]) -> np.ndarray:
    """Sorted int64 masks of every ``S`` with ``|S|`` in ``levels`` (``sum C(n, l)`` of them)."""
    n = check_int("n", n, minimum=1)
    if n > 62:
        raise InputValueError(f"Walsh masks are int64 bit masks: n must be <= 62, got {n!r}.")
    out = []
    for l in sorted(set(int(v) for v in levels)):
        if not 0 <= l <= n:
            raise InputValueError(f"levels must lie in 0..{n}, got {l!r}.")
        out.extend(sum(1 << v for v in S) for S in itertools.combinations(range(n), l))
    return np.sort(np.array(out, dtype=np.int64))


def walsh_characters(x: object, masks: object) -> np.ndarray:
    """``chi_S(x_i)`` for points ``x (N, n)`` with entries +-1 and masks ``(M,)``: ``(N, M)``."""
    X = np.asarray(x)
    if X.ndim != 2 or not np.all(np.abs(X) == 1):
        raise InputValueError(f"x must be an (N, n) array of +-1, got shape {X.shape!r}.")
    n = X.shape[1]
    S = np.asarray(masks, dtype=np.int64).reshape(-1)
    bits = ((S[:, None] >> np.arange(n)) & 1).astype(bool)  # (M, n)
    neg = (X < 0).astype(np.int64)  # (N, n)
    parity = (neg @ bits.T.astype(np.int64)) & 1
    return 1.0 - 2.0 * parity
