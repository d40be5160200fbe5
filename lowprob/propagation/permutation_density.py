"""Low-degree slice sketches for permanents (the ``perm-slice`` scheme).

Sufficient statistic. After rows ``0..i-1`` the density ``g_i(sigma) = prod_{r<i} C[r, sigma(r)]``
enters every later expectation only through the set ``A = sigma([i])`` of used columns:
given ``A``, ``sigma|_[i]`` and ``sigma|_R`` are independent and uniform. So the state is

    G_i(A) = E[g_i | sigma([i]) = A] = perm(C[:i, A]) / i!     (A an i-subset),

with ``G_0 = 1``, ``G_{i+1}(A') = (i+1)^-1 sum_{j in A'} C[i, j] G_i(A' \\ {j})`` and
``p = G_n([n])`` (the exact recursion is the ``O(2^n n)`` subset DP); ``E_A G_i(A) = E g_i``.

Representation (:class:`SliceDensity`). ``G(A) = sum_{|T| = L, T in A} h(T)`` for the
``C(n, L)`` subsets ``T`` of size ``L = min(L_max, i, n - i)``: exactly the functions of degree
``<= L`` on the slice, ``V_0 + ... + V_L`` of the permutation module
(:mod:`lowprob.sketching.johnson`). The claim kernel of the remaining random rows is
``S_n``-invariant with eigenvalues strictly decreasing in ``j`` (checked for every
``n <= 22``, ``tests/test_permanent_sketch.py``), so keeping ``V_{<=L}`` is keeping the top
components; ``L >= n/2`` is exact.

Deduction + projection (exact L^2(uniform on (i+1)-subsets) projection, no enumeration of
subsets). With ``q(v) = C(n - v, i + 1 - v) / C(n, i + 1)`` (the probability that a fixed
``v``-set lies in a random ``(i+1)``-subset), ``u = |T u T'|`` and ``c(S) = sum_{j in S} c_j``:

    <phi_T', G'> = (i+1)^-1 sum_T h(T) [ q(u) (c(T') - c(T n T')) + q(u+1) (c_tot - c(T u T')) ],
    h' = Gamma^-1 b,   Gamma(T'_1, T'_2) = q(|T'_1 u T'_2|).

The ``c(T n T')`` term is a sum over columns ``j`` of sub-blocks restricted to ``T, T' ni j``.
Instance-independent matrices (``q`` tables, ``Gamma^-1``) are cached precomputation.

FLOPs (analytic, per instance per row): ``4 N_a N_b + sum_j 2 |T' ni j| |T ni j| + 2 N_b^2 +
O(N_a + N_b)`` with ``N_a = C(n, L_i)``, ``N_b = C(n, L_{i+1})``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import UnprojectedProduct, register_deduction
from lowprob.propagation.product_steps import RowStep
from lowprob.sketching.johnson import subsets
from lowprob.sketching.product_claims import RandomRowProduct

__all__ = ["SliceDensity", "SliceProduct", "slice_degree_projector"]


@dataclass(frozen=True)
class SliceDensity:
    """``G(A) = sum_{|T| = degree, T in A} h[:, T]`` on ``i``-subsets; ``h (B, C(n, degree))``."""

    n: int
    i: int
    degree: int
    h: np.ndarray

    @classmethod
    def initial(cls, n: int, batch: int = 1) -> SliceDensity:
        """Before any row: ``G(empty set) = 1``."""
        return cls(check_int("n", n, minimum=1), 0, 0, np.ones((check_int("batch", batch, minimum=1), 1)))

    @property
    def n_terms(self) -> int:
        return int(self.h.shape[1])

    def total_mass(self) -> np.ndarray:
        """``E_A G(A) = sum_T h(T) P[T in A] = C(n-L, i-L)/C(n, i) sum_T h(T)``."""
        n, i, L = self.n, self.i, self.degree
        return self.h.sum(axis=1) * (math.comb(n - L, i - L) / math.comb(n, i))

    def values(self) -> np.ndarray:
        """``G(A)`` on every ``i``-subset (lexicographic): ``(B, C(n, i))`` (for checks)."""
        A = subsets(self.n, self.i)
        T = subsets(self.n, self.degree)
        inc = np.array([[set(t) <= set(a) for t in T.tolist()] for a in A.tolist()], dtype=np.float64)
        return self.h @ inc.T


@dataclass(frozen=True)
class _Tables:
    QD: np.ndarray  # q(u) - q(u+1), (Nb, Na)
    Q1: np.ndarray  # q(u+1), (Nb, Na)
    Ginv: np.ndarray  # (Nb, Nb)
    Ia: np.ndarray  # (Na, n) float incidence
    blocks: tuple[tuple[int, np.ndarray, np.ndarray, np.ndarray], ...]  # per column j: j, rows, cols, QD sub-block
    flops: float


@lru_cache(maxsize=256)
def _tables(n: int, i: int, La: int, Lb: int) -> _Tables:
    Ta, Tb = subsets(n, La), subsets(n, Lb)
    Ia = np.zeros((Ta.shape[0], n))
    Ib = np.zeros((Tb.shape[0], n))
    for r, t in enumerate(Ta):
        Ia[r, t] = 1.0
    for r, t in enumerate(Tb):
        Ib[r, t] = 1.0
    top = i + 1
    q = np.array([math.comb(n - v, top - v) / math.comb(n, top) if v <= top else 0.0 for v in range(n + 2)])
    u = (La + Lb - Ib @ Ia.T).astype(np.int64)
    QD, Q1 = q[u] - q[u + 1], q[u + 1]
    ub = (2 * Lb - Ib @ Ib.T).astype(np.int64)
    G = q[ub]
    Ginv = np.linalg.inv(G)
    blocks = []
    for j in range(n):
        rows = np.flatnonzero(Ib[:, j])
        cols = np.flatnonzero(Ia[:, j])
        if rows.size and cols.size:
            blocks.append((j, rows, cols, QD[np.ix_(rows, cols)]))
    pre = 2.0 * Ib.shape[0] * Ia.shape[0] * n + 2.0 * Ib.shape[0] ** 3
    return _Tables(QD, Q1, Ginv, Ia, tuple(blocks), pre)


@dataclass(frozen=True)
class SliceProduct(UnprojectedProduct):
    """The exact, unevaluated ``G' = (i+1)^-1 sum_{j in A'} c_j G(A' \\ {j})`` (deduction output)."""

    density: SliceDensity
    step: RowStep

    @property
    def n_terms(self) -> int:
        return np.iinfo(np.int64).max


    def project(self, degree: int, flops: FlopCounter) -> SliceDensity:
        """The L^2 projection of ``G'`` onto degree ``<= degree`` functions on ``(i+1)``-subsets."""
        g = self.density
        n, i, La, Lb = g.n, g.i, g.degree, degree
        tb = _tables(n, i, La, Lb)
        flops.precomputation = max(flops.precomputation, tb.flops)
        B = g.h.shape[0]
        c = np.broadcast_to(self.step.row, (B, n))  # (B, n)
        hT = g.h.T  # (Na, B)
        Na, Nb = tb.QD.shape[1], tb.QD.shape[0]
        cT = tb.Ia @ c.T  # c(T), (Na, B)
        cTp = subsets_incidence(n, Lb) @ c.T  # c(T'), (Nb, B)
        ctot = c.sum(axis=1)  # (B,)
        b = cTp * (tb.QD @ hT) + tb.Q1 @ (hT * (ctot[None, :] - cT))
        fl = 4.0 * Na * Nb + 2.0 * (La * Na + Lb * Nb) + 3.0 * Nb + 2.0 * Na
        for j, rows, cols, blk in tb.blocks:
            b[rows] -= (blk @ hT[cols]) * c[:, j][None, :]
            fl += 2.0 * rows.size * cols.size + 2.0 * rows.size
        hnew = (tb.Ginv @ b).T / (i + 1)
        fl += 2.0 * Nb * Nb + Nb
        flops.add(fl, "slice_projection")
        return SliceDensity(n, i + 1, Lb, hnew)


@lru_cache(maxsize=64)
def subsets_incidence(n: int, size: int) -> np.ndarray:
    """``(C(n, size), n)`` 0/1 float incidence matrix of the ``size``-subsets."""
    T = subsets(n, size)
    inc = np.zeros((T.shape[0], n))
    for r, t in enumerate(T):
        inc[r, t] = 1.0
    return inc


@register_deduction(RowStep, SliceDensity)
def _row_times_slice(rep: SliceDensity, step: RowStep, flops: FlopCounter) -> SliceProduct:
    if step.n != rep.n:
        raise InputValueError(f"step has n={step.n!r} but the density lives on n={rep.n!r}.")
    if step.index != rep.i:
        raise InputValueError(f"rows must be processed in order: expected row {rep.i}, got {step.index!r}.")
    return SliceProduct(rep, step)


def slice_degree_projector(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> SliceDensity:
    """Keep ``V_0..V_L`` with ``L`` the largest degree with ``C(n, L) <= budget`` (and ``L <= min(i, n-i)``).

    ``claims`` must be :class:`~lowprob.sketching.product_claims.RandomRowProduct` on the new
    slice (its eigenvalues decrease in ``j``, so this prefix is the top-ranked set).
    """
    if not isinstance(claims, RandomRowProduct):
        raise InputValueError(f"slice_degree_projector needs RandomRowProduct claims, got {claims!r}.")
    if not isinstance(rep, SliceProduct):
        raise InputValueError(f"slice_degree_projector projects a SliceProduct, got {type(rep).__name__!r}.")
    n, i1 = rep.density.n, rep.density.i + 1
    if claims.n != n or claims.i != i1:
        raise InputValueError(f"claims {claims!r} do not live on the {i1}-subsets of {n} columns.")
    L = 0
    while L + 1 <= min(i1, n - i1) and math.comb(n, L + 1) <= budget:
        L += 1
    return rep.project(L, flops)
