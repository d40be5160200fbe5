"""Spherical-harmonic activation models for products of zonal factors (the ``kernel`` scheme).

Representation. For ``x`` uniform on ``S^{n-1}`` (equivalently Gaussian: only directions
matter for homogeneous half-spaces) the unnormalised density of the surviving mass is
``g = sum_{l in S} sum_j c_{l,j} Y_{l,j}``, with the real orthonormal harmonics of
:class:`lowprob.sketching.harmonics.SphericalHarmonics` (normalised surface measure
``sigma``); the kept set ``S`` is a set of whole degree blocks. ``E_sigma[g] = c_{0,0}``.

Deduction (exact): ``g <- g . h(u . x)`` with ``h(t) = 1[t >= 0]``. By Funk--Hecke
``h(u . x) = sum_l a_l P_l(u . x)``, ``a_l = dim_l lambda_l(h)``,
``lambda_l(h) = c_n int_0^1 P_l(t) (1 - t^2)^{(n-3)/2} dt`` (``a_0 = 1/2``; even ``l > 0``
vanish), with ``P_l`` the Gegenbauer polynomial normalised by ``P_l(1) = 1``. The product
is kept lazy (:class:`HarmonicProduct`) until the projector asks for its coefficients on
degree blocks ``S'``. Because ``g Y`` has degree ``<= L + L'`` for ``Y`` in ``S'``, only
``a_l`` with ``l <= L + L'`` matter, so ``P_{S'}(g h) = P_{S'}(g h_{L+L'})`` exactly. That
finite sum is evaluated by Clenshaw's recurrence in the multiplication operator
``T = u . x = sum_j u_j X_j`` (``P_{k+1} = A_k t P_k + B_k P_{k-1}``)::

    b_k = a_k g + A_k T b_{k+1} + B_{k+1} b_{k+2},   P_{S'}(g h) = P_{S'} b_0,

where ``(X_j)_{ab} = int x_j Y_a Y_b dsigma`` are exact coupling coefficients (nonzero only
between degrees ``l`` and ``l +- 1``, sparse in this Gelfand--Tsetlin-type basis), and
components of ``b_k`` above degree ``L' + k`` are dropped because they can never reach
degree ``<= L'``. No point cloud is involved in the online computation.

Coupling coefficients (instance-independent precomputation, reported separately).
``x_j Y_{l,i}`` is a polynomial of degree ``l + 1`` lying exactly in ``H_{l+1} + H_{l-1}``;
its coefficients are recovered by an over-determined interpolation (least squares on
``~2 (dim_{l+1} + dim_{l-1})`` fixed unisolvent nodes). This is an algebraic identity, not
a sample average: the fit residual is checked to be at round-off (``< 1e-9``), else
:class:`~lowprob.errors.NumericalError`.

FLOPs (analytic, per instance): ``2 nnz`` per sparse product, ``2 dim`` per axpy.

References: Funk--Hecke and the addition theorem: Atkinson & Han, *Spherical Harmonics
and Approximations on the Unit Sphere* (2012), Thm 2.22; Clenshaw (1955); DESIGN.md sec. 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import roots_legendre

from lowprob._validation import check_int
from lowprob.errors import InputValueError, NumericalError, UnavailableError
from lowprob.propagation import executed
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import UnprojectedProduct, register_deduction
from lowprob.propagation.steps import HalfspaceStep
from lowprob.sketching.funk_hecke import funk_hecke_constant, gegenbauer_table, harmonic_dimension
from lowprob.sketching.harmonics import SphericalHarmonics

__all__ = [
    "HarmonicDensity",
    "HarmonicProduct",
    "MultiplicationOperators",
    "harmonic_block_projector",
    "halfspace_zonal_coefficients",
    "multiplication_operators",
    "select_blocks",
]


def _dims(n: int, L: int) -> np.ndarray:
    return np.array([harmonic_dimension(l, n) for l in range(L + 1)], dtype=np.int64)


def _prefix(n: int, L: int) -> int:
    return int(_dims(n, L).sum()) if L >= 0 else 0


def halfspace_zonal_coefficients(n: int, N: int) -> np.ndarray:
    """``a_l = dim_l c_n int_0^1 P_l(t)(1-t^2)^{(n-3)/2} dt``, ``l = 0..N``: ``1[u.x >= 0] = sum a_l P_l(u.x)``.

    Integrated in the angle, ``c_n int_0^{pi/2} P_l(cos th) sin^{n-2} th dth``, a trigonometric
    polynomial, by Gauss--Legendre with ``N + n + 64`` nodes (converges to round-off).
    """
    q = N + n + 64
    z, w = roots_legendre(q)
    th = 0.25 * np.pi * (z + 1.0)
    w = 0.25 * np.pi * w * np.sin(th) ** (n - 2)
    lam = funk_hecke_constant(n) * (gegenbauer_table(N, n, np.cos(th)) @ w)
    lam[2::2] = 0.0  # exact: P_l even => integral over the half sphere is half of 0
    return lam * _dims(n, N)


@dataclass(frozen=True)
class MultiplicationOperators:
    """Sparse ``X_j`` (``j < n``) on harmonics of degree ``<= L``: ``(X_j)_{ab} = int x_j Y_a Y_b dsigma``.

    ``X[j]`` is CSR of shape ``(dim_{<=L}, dim_{<=L})`` (the ``(L, L+1)`` couplings are absent,
    so apply it only to inputs of degree ``< L`` when the output must be exact).
    ``precomputation_flops`` counts the least-squares fits.
    """

    n: int
    L: int
    X: tuple[sp.csr_matrix, ...]
    precomputation_flops: float
    _slices: dict = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slices", {})

    def stacked(self, rows: int, cols: int) -> tuple[sp.csr_matrix, int]:
        """``[X_0; ...; X_{n-1}]`` restricted to ``[:rows, :cols]`` each (``(n rows, cols)`` CSR) and its nnz."""
        key = (rows, cols)
        if key not in self._slices:
            mat = sp.csr_matrix(sp.vstack([x[:rows, :cols] for x in self.X]))
            self._slices[key] = (mat, int(mat.nnz))
        return self._slices[key]


@lru_cache(maxsize=8)
def multiplication_operators(n: int, L: int) -> MultiplicationOperators:
    """Exact coupling coefficients ``int x_j Y_a Y_b dsigma`` for degrees ``<= L`` (cached)."""
    n = check_int("n", n, minimum=2)
    L = check_int("L", L, minimum=0)
    dims = _dims(n, L)
    off = np.concatenate([[0], np.cumsum(dims)])
    total = int(off[-1])
    rows: list[list[np.ndarray]] = [[] for _ in range(n)]
    cols: list[list[np.ndarray]] = [[] for _ in range(n)]
    vals: list[list[np.ndarray]] = [[] for _ in range(n)]
    rng = np.random.default_rng(20261128)  # fixed interpolation nodes (any unisolvent set works)
    pre = 0.0
    for l in range(L):
        sh = SphericalHarmonics(n, l + 1)
        basis_cols = [sh.block(l + 1)] + ([sh.block(l - 1)] if l >= 1 else [])
        ncols = sum(s.stop - s.start for s in basis_cols)
        P = 2 * ncols + 16
        x = rng.standard_normal((P, n))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        Y = sh.evaluate(x)
        A = np.concatenate([Y[:, s] for s in basis_cols], axis=1)
        Yl = Y[:, sh.block(l)]
        rhs = np.concatenate([x[:, j : j + 1] * Yl for j in range(n)], axis=1)
        coef, *_ = np.linalg.lstsq(A, rhs, rcond=None)
        resid = float(np.max(np.abs(A @ coef - rhs))) if rhs.size else 0.0
        if resid > 1e-9:
            raise NumericalError(f"coupling fit for degree {l} on S^{n - 1} has residual {resid!r}.")
        pre += 2.0 * P * ncols**2 + 2.0 * P * ncols * rhs.shape[1]
        up = coef[: int(dims[l + 1])]  # (dim_{l+1}, n * dim_l)
        d_l = int(dims[l])
        for j in range(n):
            U = up[:, j * d_l : (j + 1) * d_l]
            U = np.where(np.abs(U) > 1e-11, U, 0.0)
            r, c = np.nonzero(U)
            v = U[r, c]
            # block (l+1, l) and its transpose (l, l+1): X_j is symmetric.
            rows[j] += [r + off[l + 1], c + off[l]]
            cols[j] += [c + off[l], r + off[l + 1]]
            vals[j] += [v, v]
    X = []
    for j in range(n):
        if rows[j]:
            r, c, v = (np.concatenate(a) for a in (rows[j], cols[j], vals[j]))
        else:
            r = c = np.zeros(0, dtype=np.int64)
            v = np.zeros(0)
        X.append(sp.csr_matrix((v, (r, c)), shape=(total, total)))
    return MultiplicationOperators(n, L, tuple(X), pre)


@dataclass(frozen=True)
class HarmonicDensity:
    """``g = sum_{l in degrees} sum_j c_{l,j} Y_{l,j}``; ``coefficients (B, dim_{<= max(degrees)})``.

    Blocks not in ``degrees`` are stored as zeros (and not counted in ``n_terms``).
    """

    n: int
    degrees: tuple[int, ...]
    coefficients: np.ndarray

    @classmethod
    def uniform(cls, n: int, batch: int = 1) -> HarmonicDensity:
        """The uniform distribution on ``S^{n-1}``: ``g == 1``."""
        return cls(check_int("n", n, minimum=2), (0,), np.ones((check_int("batch", batch, minimum=1), 1)))

    @property
    def max_degree(self) -> int:
        return max(self.degrees)

    @property
    def n_terms(self) -> int:
        return int(sum(harmonic_dimension(l, self.n) for l in self.degrees))

    def total_mass(self) -> np.ndarray:
        return self.coefficients[:, 0].copy()


@dataclass(frozen=True)
class HarmonicProduct(UnprojectedProduct):
    """The exact, unevaluated product ``g . 1[u . x >= 0]`` (deduction output)."""

    density: HarmonicDensity
    step: HalfspaceStep

    @property
    def n_terms(self) -> int:  # an infinite expansion until projected
        return np.iinfo(np.int64).max


    def project(self, degrees: tuple[int, ...], flops: FlopCounter) -> HarmonicDensity:
        """``P_{S'}(g h)`` exactly (Clenshaw in ``T = u . x``; see module docstring)."""
        g = self.density
        n, Lg, Lp = g.n, g.max_degree, max(degrees)
        B = g.coefficients.shape[0]
        u = np.broadcast_to(self.step.normal, (B, n))
        N = Lg + Lp
        a = halfspace_zonal_coefficients(n, N)
        ops = multiplication_operators(n, max(N, 1))
        flops.precomputation = max(flops.precomputation, ops.precomputation_flops)
        cap = [min(Lg + N - k, Lp + k) for k in range(N + 1)]
        # Work in the (dim, B) layout: one column per instance (contiguous for sparse @ dense).
        nxt = np.zeros((0, B))
        nxt2 = np.zeros((0, B))
        gc = np.ascontiguousarray(g.coefficients.T)
        uT = np.ascontiguousarray(u.T)  # (n, B)
        for k in range(N, -1, -1):
            dim = _prefix(n, cap[k])
            lg = min(dim, gc.shape[0])
            if nxt.shape[0]:
                Ak = 1.0 if k == 0 else (2 * k + n - 2) / (k + n - 2)
                stacked, nnz = ops.stacked(dim, nxt.shape[0])
                prod = executed.spmm(stacked, nxt, "harmonic_T").reshape(n, dim, B)
                cur = executed.mul(prod[0], uT[0], "harmonic_T")
                for j in range(1, n):
                    cur = executed.axpy(uT[j], prod[j], cur, "harmonic_T")
                if Ak != 1.0:
                    cur = executed.mul(cur, Ak, "harmonic_T")
                flops.add(2 * nnz + 2 * n * dim + (dim if Ak != 1.0 else 0), "harmonic_T")
            else:
                cur = np.zeros((dim, B))
            if a[k] != 0.0:
                cur[:lg] = executed.axpy(a[k], gc[:lg], cur[:lg], "harmonic_axpy")
                flops.add(2 * lg, "harmonic_axpy")
            if nxt2.shape[0]:
                Bk1 = -(k + 1) / (k + 1 + n - 2)
                l2 = min(dim, nxt2.shape[0])
                cur[:l2] = executed.axpy(Bk1, nxt2[:l2], cur[:l2], "harmonic_axpy")
                flops.add(2 * l2, "harmonic_axpy")
            nxt2, nxt = nxt, cur
        nxt = nxt.T
        out = nxt[:, : _prefix(n, Lp)].copy()
        off = np.concatenate([[0], np.cumsum(_dims(n, Lp))])
        for l in range(Lp + 1):
            if l not in degrees:
                out[:, off[l] : off[l + 1]] = 0.0
        return HarmonicDensity(n, tuple(sorted(degrees)), out)


@register_deduction(HalfspaceStep, HarmonicDensity)
def _halfspace_times_harmonic(rep: HarmonicDensity, step: HalfspaceStep, flops: FlopCounter) -> HarmonicProduct:
    if not step.homogeneous:
        raise UnavailableError(
            "the harmonic (kernel) scheme needs homogeneous half-spaces (offset 0): with a bias the "
            "problem is not a function of directions only. Use the 'hermite' or 'sampling' scheme."
        )
    if step.n != rep.n:
        raise InputValueError(f"step has n={step.n!r} but the density lives on n={rep.n!r}.")
    return HarmonicProduct(rep, step)


def select_blocks(eigenvalues: np.ndarray, n: int, budget: int, *, rtol: float = 1e-12) -> tuple[int, ...]:
    """Whole degree blocks in decreasing order of ``eigenvalues[l]``, while ``sum dim_l <= budget``.

    Blocks with ``lambda_l <= rtol * lambda_max`` are invisible to the claims and never kept;
    the ranking stops at the first block that does not fit. Degree 0 is always kept.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    order = np.argsort(-lam, kind="stable")
    keep, used = [], 0
    for l in order:
        l = int(l)
        if lam[l] <= rtol * lam.max() and l != 0:
            break
        d = harmonic_dimension(l, n)
        if used + d > budget:
            break
        keep.append(l)
        used += d
    if 0 not in keep:
        keep.append(0)
    return tuple(sorted(keep))


@lru_cache(maxsize=4096)
def _blocks_for(n: int, m: int, budget: int) -> tuple[int, ...]:
    from lowprob.sketching.funk_hecke import funk_hecke_eigenvalues, halfspace_product_profile

    if m == 0:
        return (0,)
    Lc = 0
    while _prefix(n, Lc + 1) <= budget:
        Lc += 1
    lam = funk_hecke_eigenvalues(halfspace_product_profile(m), n, max(Lc, 0))
    return select_blocks(lam, n, budget)


def harmonic_block_projector(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> HarmonicDensity:
    """Projector: keep the degree blocks ranked by the claims' Funk--Hecke eigenvalues within ``budget``.

    ``claims`` must be zonal on the sphere: a :class:`~lowprob.sketching.claims.RandomHalfspaceProduct`
    (ranked by ``((pi - arccos t)/(2 pi))^m``, cached) or any object whose ``zonal`` kernel has
    ``eigenvalues(L)``.
    """
    n = rep.density.n if isinstance(rep, HarmonicProduct) else rep.n
    m = getattr(claims, "m", None)
    if m is not None and type(claims).__name__ == "RandomHalfspaceProduct":
        degrees = _blocks_for(n, int(m), int(budget))
    else:
        zonal = getattr(claims, "zonal", None)
        if zonal is None:
            raise InputValueError(f"harmonic_block_projector needs zonal claims, got {claims!r}.")
        Lc = 0
        while _prefix(n, Lc + 1) <= budget:
            Lc += 1
        degrees = select_blocks(zonal.eigenvalues(Lc), n, budget)
    if isinstance(rep, HarmonicProduct):
        return rep.project(degrees, flops)
    out = rep.coefficients[:, : _prefix(n, max(degrees))].copy()
    off = np.concatenate([[0], np.cumsum(_dims(n, max(degrees)))])
    for l in range(max(degrees) + 1):
        if l not in degrees or l not in rep.degrees:
            out[:, off[l] : off[l + 1]] = 0.0
    return HarmonicDensity(n, degrees, out)
