"""Tensor-Hermite activation models: the density of ``x ~ N(0, I_n)`` reweighted by the factors.

Representation (DESIGN.md section 4, "a second route"): the unnormalised density with
respect to the standard Gaussian ``gamma_n`` is ``g(x) = sum_{|alpha| <= D} c_alpha He_alpha(x)``
with probabilists' tensor Hermite polynomials ``He_alpha(x) = prod_j He_{alpha_j}(x_j)``,
which are orthogonal in ``L^2(gamma_n)`` with ``E[He_alpha He_beta] = alpha! delta``. Hence
``E_gamma[g] = c_0`` and the ``L^2(gamma)`` projection onto degree ``<= D`` is truncation.

Deduction (exact, lazy): ``g <- g . h(u . x)`` with ``h(t) = 1[t + beta > 0]``, ``|u| = 1``,
whose Hermite coefficients are ``a_0 = Phi(beta)``,
``a_b = phi(beta) He_{b-1}(-beta) / b!`` (``b >= 1``; for ``beta = 0``: ``c_0 = 1/2`` and
``c_b = phi(0) He_{b-1}(0)/b!``, odd ``b`` only). Projection onto degree ``<= D'`` of
``g . h`` only needs ``a_b`` for ``b <= D + D'`` (higher ``He_b(u . x)`` are orthogonal to
all products of degree ``<= D`` and ``<= D'`` polynomials), so it is *exact*. It is
evaluated by Clenshaw's recurrence in the operator ``T = u . x``:
``b_k = a_k g + T b_{k+1} - (k+1) b_{k+2}``, ``P_{D'}(g h) = P_{D'} b_0``, where
``x_j He_alpha = He_{alpha + e_j} + alpha_j He_{alpha - e_j}``. Components of ``b_k`` above
degree ``D' + k`` can never reach degree ``<= D'`` and are dropped, so the work arrays
have degree ``<= D + D'``. Cost: ``O((D + D') n dim_{D+D'})`` FLOPs per factor, counted
analytically from the gathers' valid entries. This is :meth:`HermiteProduct.project_clenshaw`,
kept as the reference.

Rotated line product (the default, :meth:`HermiteProduct.project`; same exact result, far
cheaper for large ``n``). With the Householder reflection ``Q = I - 2 v v^T`` mapping
``u`` to ``s e_1`` (``s = +-1``), ``y = Q x`` is again standard Gaussian and ``u . x = s y_1``.
Degree-``k`` Wick powers are covariant under orthogonal maps, ``He^{(k)}(Q x) = Q^{(x)k}
He^{(k)}(x)``; the degree-``k`` block ``c_alpha`` is the monomial coefficient vector of
``P(z) = <T, z^{(x)k}> = sum_alpha c_alpha z^alpha``, so it maps to the coefficients of
``P(Q z) = sum_j (-2 v . z)^j D_v^j P(z) / j!`` (Taylor; Horner on homogeneous coefficient
blocks, about ``5 n dim_{<=k}`` FLOPs per degree ``k``). In ``y`` the factor touches only ``y_1``, and projection onto total degree
``<= D'`` commutes with ``Q``, so for every ``alpha_rest`` (``|alpha_rest| = r``)
``c'_{(b', rest)} = sum_b M_{b' b} c_{(b, rest)}`` with
``M_{b' b} = sum_j a_j s^j E[He_b He_{b'} He_j] / b'!`` (the Hermite linearisation formula
``E[He_b He_b' He_j] = b! b'! j! / ((t-b)! (t-b')! (t-j)!)``, ``2t = b + b' + j``), costing
``2 (D - r + 1)(D' - r + 1)``; then ``Q`` is applied again. Per factor this is
``O(n sum_{k <= D} dim_{<=k})`` instead of ``O((D + D') n dim_{D+D'})``: at ``n = 16``,
``D = 4`` about ``5 x 10^5`` FLOPs instead of ``~10^8``. Equality with the Clenshaw route is tested
(``tests/test_propagation_hermite_rotation.py``, 1e-12).

Reference: the product rule is the Hermite three-term recurrence (e.g. Abramowitz and
Stegun 22.7.14); the halfspace coefficients are derived in DESIGN.md section 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import eval_hermitenorm, log_ndtr

from lowprob.propagation import executed
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import UnprojectedProduct, register_deduction
from lowprob.propagation.steps import HalfspaceStep

__all__ = [
    "HermiteBasis",
    "HermiteDensity",
    "HermiteProduct",
    "halfspace_hermite_coefficients",
    "hermite_degree_for_budget",
    "embed_hermite",
    "hermite_truncation",
]


def hermite_dimension(n: int, degree: int) -> int:
    """Number of multi-indices ``alpha in N^n`` with ``|alpha| <= degree``: ``C(degree + n, n)``."""
    return math.comb(degree + n, n) if degree >= 0 else 0


def hermite_degree_for_budget(n: int, budget: int) -> int:
    """Largest ``D`` with ``C(D + n, n) <= budget`` (``D = 0`` for ``budget = 1``)."""
    D = 0
    while hermite_dimension(n, D + 1) <= budget:
        D += 1
    return D


class HermiteBasis:
    """Multi-indices of total degree ``<= M`` in ``n`` variables, graded order, with shift tables.

    ``alpha[k]`` is the k-th multi-index (shape ``(dim, n)``); ``up[j, k]`` / ``down[j, k]``
    index ``alpha_k +- e_j`` (``-1`` when outside the set). A prefix of length
    ``hermite_dimension(n, D)`` is the degree-``<= D`` subspace.
    """

    def __init__(self, n: int, M: int) -> None:
        self.n, self.M = n, M
        alphas: list[tuple[int, ...]] = []
        for deg in range(M + 1):
            alphas.extend(_compositions(deg, n))
        self.alpha = np.array(alphas, dtype=np.int64).reshape(len(alphas), n)
        index = {a: k for k, a in enumerate(alphas)}
        dim = len(alphas)
        self.up = np.full((n, dim), -1, dtype=np.int64)
        self.down = np.full((n, dim), -1, dtype=np.int64)
        for k, a in enumerate(alphas):
            for j in range(n):
                b = list(a)
                b[j] += 1
                self.up[j, k] = index.get(tuple(b), -1)
                if a[j] > 0:
                    b[j] -= 2
                    self.down[j, k] = index[tuple(b)]
        self.factorial = np.prod([[math.factorial(int(v)) for v in row] for row in self.alpha], axis=1).astype(float)

    def dim(self, degree: int) -> int:
        return hermite_dimension(self.n, min(degree, self.M))

    def apply_T(self, c: np.ndarray, u: np.ndarray, degree_in: int, degree_out: int, flops: FlopCounter) -> np.ndarray:
        """``P_{<= degree_out}((u . x) g)`` for ``g`` given by ``c[:, :dim(degree_in)]`` (batch ``(B, .)``).

        Uses ``(x_j g)_beta = c_{beta - e_j} + (beta_j + 1) c_{beta + e_j}``.
        """
        lin, lout = self.dim(degree_in), self.dim(degree_out)
        B = c.shape[0]
        pad = np.concatenate([c[:, :lin], np.zeros((B, 1))], axis=1)
        out = np.zeros((B, lout))
        for j in range(self.n):
            dn = self.down[j, :lout]
            dn = np.where((dn >= 0) & (dn < lin), dn, lin)
            upi = self.up[j, :lout]
            upi = np.where((upi >= 0) & (upi < lin), upi, lin)
            term = pad[:, dn] + (self.alpha[:lout, j] + 1.0) * pad[:, upi]
            out += u[:, j : j + 1] * term
            flops.add(2 * np.count_nonzero(dn < lin) + 3 * np.count_nonzero(upi < lin), "hermite_T")
        return out


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    if parts == 1:
        return [(total,)]
    out = []
    for first in range(total, -1, -1):
        out.extend((first, *rest) for rest in _compositions(total - first, parts - 1))
    return out


@lru_cache(maxsize=160)  # the subspace route uses one table per active dimension
def _basis(n: int, M: int) -> HermiteBasis:
    return HermiteBasis(n, M)


def halfspace_hermite_coefficients(beta: np.ndarray | float, max_degree: int) -> np.ndarray:
    """Hermite coefficients of ``1[t + beta > 0]``: ``a_0 = Phi(beta)``, ``a_b = phi(beta) He_{b-1}(-beta)/b!``.

    ``beta`` scalar or ``(B,)``; returns shape ``beta.shape + (max_degree + 1,)``.
    """
    beta = np.asarray(beta, dtype=np.float64)
    b = np.arange(1, max_degree + 1)
    phi = np.exp(-0.5 * beta**2) / math.sqrt(2 * math.pi)
    out = np.empty(beta.shape + (max_degree + 1,))
    out[..., 0] = np.exp(log_ndtr(beta))
    lfact = np.array([math.lgamma(k + 1.0) for k in b])
    out[..., 1:] = phi[..., None] * eval_hermitenorm(b - 1, -beta[..., None]) * np.exp(-lfact)
    return out


@dataclass(frozen=True)
class HermiteDensity:
    """``g = sum_alpha c_alpha He_alpha`` with ``|alpha| <= degree``; ``coefficients (B, dim)``."""

    n: int
    degree: int
    coefficients: np.ndarray

    @classmethod
    def gaussian(cls, n: int, batch: int = 1) -> HermiteDensity:
        """The standard Gaussian itself: ``g == 1``."""
        return cls(n, 0, np.ones((batch, 1)))

    @property
    def n_terms(self) -> int:
        return int(self.coefficients.shape[1])

    def total_mass(self) -> np.ndarray:
        return self.coefficients[:, 0].copy()


@dataclass(frozen=True)
class HermiteProduct(UnprojectedProduct):
    """The exact, unevaluated product ``g . 1[u . x + beta > 0]`` (deduction output)."""

    density: HermiteDensity
    step: HalfspaceStep

    @property
    def n_terms(self) -> int:  # infinite expansion; the projector evaluates a truncation
        return np.iinfo(np.int64).max


    def project(self, degree: int, flops: FlopCounter) -> HermiteDensity:
        """``P_{<= degree}(g h)`` exactly, by the rotated line product (see module docstring).

        Falls back to :meth:`project_clenshaw` when the degree-``max(D, D')`` basis has more than
        ``2^21`` terms (the index tables would not fit comfortably).
        """
        g, D, Dp = self.density, self.density.degree, int(degree)
        n, B = g.n, g.coefficients.shape[0]
        M = max(D, Dp)
        if hermite_dimension(n, M) > 2**21:
            return self.project_clenshaw(degree, flops)
        tables = _rotation_tables(n, M)
        u = np.broadcast_to(self.step.normal, (B, n)).astype(np.float64)
        beta = np.broadcast_to(self.step.offset, (B,))
        sgn = np.where(u[:, 0] >= 0.0, -1.0, 1.0)  # Q u = sgn e_1 with |u - sgn e_1| >= 1
        w = u.copy()
        w[:, 0] -= sgn
        v = w / np.linalg.norm(w, axis=1, keepdims=True)
        flops.add(5 * n, "hermite_rotate")
        y = _householder_transform(g.coefficients, v, D, tables, flops)
        a = halfspace_hermite_coefficients(beta, D + Dp) * sgn[:, None] ** np.arange(D + Dp + 1)
        line_mat = _line_product_matrix(a, D, Dp, flops)  # (B, Dp+1, D+1)
        dim_out = hermite_dimension(n, Dp)
        out = np.zeros((B, dim_out))
        # One contraction per rest degree r: lines (b, alpha_rest) with |alpha_rest| = r have
        # exactly D - r + 1 inputs and Dp - r + 1 outputs, so nothing padded is multiplied.
        for r in range(min(D, Dp) + 1):
            lines = tables.line[tables.rest_degree == r]
            lin, lout = lines[:, : D - r + 1], lines[:, : Dp - r + 1]
            prod = executed.einsum("bpq,brq->brp", line_mat[:, : Dp - r + 1, : D - r + 1], y[:, lin], "hermite_line")
            out[:, lout.ravel()] = prod.reshape(B, -1)
            flops.add(2.0 * lines.shape[0] * (D - r + 1) * (Dp - r + 1), "hermite_line")
        return HermiteDensity(n, Dp, _householder_transform(out, v, Dp, tables, flops))

    def project_clenshaw(self, degree: int, flops: FlopCounter) -> HermiteDensity:
        """``P_{<= degree}(g h)`` exactly, by Clenshaw in ``T = u . x`` (the reference route)."""
        g, D, Dp = self.density, self.density.degree, degree
        u = np.broadcast_to(self.step.normal, (g.coefficients.shape[0], g.n))
        beta = np.broadcast_to(self.step.offset, (g.coefficients.shape[0],))
        bmax = D + Dp
        a = halfspace_hermite_coefficients(beta, bmax)  # (B, bmax+1)
        basis = _basis(g.n, D + Dp)
        B = g.coefficients.shape[0]
        cap = [min(D + bmax - k, Dp + k) for k in range(bmax + 1)] + [-1, -1]
        nxt = np.zeros((B, 0))  # b_{k+1}
        nxt2 = np.zeros((B, 0))  # b_{k+2}
        for k in range(bmax, -1, -1):
            L = basis.dim(cap[k])
            cur = np.zeros((B, L))
            lg = min(L, g.n_terms)
            cur[:, :lg] += a[:, k : k + 1] * g.coefficients[:, :lg]
            flops.add(2 * lg, "hermite_axpy")
            if nxt.shape[1]:
                cur += basis.apply_T(nxt, u, cap[k + 1], cap[k], flops)
                flops.add(L, "hermite_axpy")
            if nxt2.shape[1]:
                l2 = min(L, nxt2.shape[1])
                cur[:, :l2] -= (k + 1) * nxt2[:, :l2]
                flops.add(2 * l2, "hermite_axpy")
            nxt2, nxt = nxt, cur
        return HermiteDensity(g.n, Dp, nxt[:, : basis.dim(Dp)])


# -- the rotated ("Householder") exact product ------------------------------------------------


class _RotationTables:
    """Line tables for the product along ``y_1`` on multi-indices of degree ``<= M``.

    ``line[r_id, b]``: graded index of ``(b, alpha_rest)`` for each multi-index with
    ``alpha_1 = 0`` (``r_id`` enumerates them), ``-1`` when ``b + |alpha_rest| > M``.
    """

    def __init__(self, n: int, M: int) -> None:
        basis = _basis(n, M)
        self.n, self.M = n, M
        alpha = basis.alpha
        deg = alpha.sum(axis=1)
        rest = np.flatnonzero(alpha[:, 0] == 0)
        index = {tuple(a): i for i, a in enumerate(alpha.tolist())}
        self.line = np.full((rest.size, M + 1), -1, dtype=np.int64)
        for r_id, a in enumerate(rest):
            tail = tuple(alpha[a, 1:].tolist())
            for b in range(M + 1 - int(deg[a])):
                self.line[r_id, b] = index[(b, *tail)]
        self.rest_degree = deg[rest]
        # shift_up[r][i] = (dst, src): positions alpha (|alpha| = r, alpha_i > 0) in the degree-r
        # block and of alpha - e_i in the degree-(r-1) block (the multiplication by z_i).
        self.shift_up: list[list[tuple[np.ndarray, np.ndarray]]] = [[]]
        for r in range(1, M + 1):
            lo, hi, lo1 = hermite_dimension(n, r - 1), hermite_dimension(n, r), hermite_dimension(n, r - 2)
            pairs = []
            for i in range(n):
                dn = basis.down[i, lo:hi]
                dst = np.flatnonzero(dn >= 0)
                pairs.append((dst, dn[dst] - lo1))
            self.shift_up.append(pairs)


@lru_cache(maxsize=160)
def _rotation_tables(n: int, M: int) -> _RotationTables:
    return _RotationTables(n, M)




def _householder_transform(c: np.ndarray, v: np.ndarray, degree: int, tables: _RotationTables,
                           flops: FlopCounter) -> np.ndarray:
    """Coefficients of ``g(Q x)`` for ``g = sum c_alpha He_alpha``, ``Q = I - 2 v v^T`` (``v`` unit rows).

    Degree-``k`` Wick powers are covariant, ``He^{(k)}(Q x) = Q^{(x) k} He^{(k)}(x)``, and the
    degree-``k`` block ``c_alpha`` is exactly the monomial coefficient vector of the homogeneous
    polynomial ``P(z) = <T, z^{(x) k}> = sum_alpha c_alpha z^alpha`` of the symmetric tensor ``T``;
    so the block maps to the coefficients of ``P(Q z)``. With ``Q z = z - 2 (v . z) v`` and
    Taylor's formula, ``P(Q z) = sum_j (-2 (v . z))^j E_j(z)``, ``E_j = D_v^j P / j!``, evaluated by
    Horner in ``-2 (v . z)`` on homogeneous coefficient blocks:
    ``(D_v P)_beta = sum_i v_i (beta_i + 1) c_{beta + e_i}`` (``3 n`` FLOPs per output) and
    ``((v . z) R)_alpha = sum_i v_i R_{alpha - e_i}`` (``2 n`` per output).
    """
    n = tables.n
    basis = _basis(n, tables.M)
    off = [hermite_dimension(n, r - 1) for r in range(degree + 2)]
    B = c.shape[0]
    out = np.empty((B, off[-1]))
    out[:, :1] = c[:, :1]
    for k in range(1, degree + 1):
        E = [c[:, off[k] : off[k + 1]]]  # E_0 = P (degree k)
        for j in range(1, k + 1):  # E_j = D_v E_{j-1} / j, degree k - j
            r = k - j
            blk = slice(off[r], off[r + 1])
            prev = E[-1]
            acc = np.zeros((B, off[r + 1] - off[r]))
            for i in range(n):
                coef = executed.mul(v[:, i : i + 1], basis.alpha[blk, i] + 1.0, "hermite_rotate")
                term = executed.mul(coef, prev[:, basis.up[i, blk] - off[r + 1]], "hermite_rotate")
                acc = executed.add(acc, term, "hermite_rotate")
            E.append(executed.mul(acc, 1.0 / j, "hermite_rotate"))
            flops.add(3.0 * n * (off[r + 1] - off[r]) + (off[r + 1] - off[r]), "hermite_rotate")
        R = E[k]  # degree 0
        for j in range(k - 1, -1, -1):  # R <- E_j - 2 (v . z) R, degree k - j
            r = k - j
            prod = np.zeros((B, off[r + 1] - off[r]))
            for i, (dst, src) in enumerate(tables.shift_up[r]):
                # ((v . z) R)_alpha gets v_i R_{alpha - e_i} only where alpha_i > 0 (no padding).
                prod[:, dst] = executed.axpy(v[:, i : i + 1], R[:, src], prod[:, dst], "hermite_rotate")
            R = executed.axpy(-2.0, prod, E[j], "hermite_rotate")
            # sum_i |dst_i| = n dim_{r-1} (bijection with pairs (beta, i), |beta| = r - 1)
            flops.add(2.0 * n * (off[r] - off[r - 1]) + 2.0 * (off[r + 1] - off[r]), "hermite_rotate")
        out[:, off[k] : off[k + 1]] = R
    return out


def _line_product_matrix(a: np.ndarray, D: int, Dp: int, flops: FlopCounter) -> np.ndarray:
    """``M[., b', b] = E[He_b He_b' f] / b'!`` for ``f = sum_j a_j He_j`` (``a (B, D + Dp + 1)``).

    Uses ``E[He_b He_b' He_j] = b! b'! j! / ((s-b)! (s-b')! (s-j)!)`` for ``b + b' + j = 2 s``
    with ``s >= max(b, b', j)``, else 0 (the Hermite linearisation formula).
    """
    M = np.zeros((a.shape[0], Dp + 1, D + 1))
    lf = [math.lgamma(k + 1.0) for k in range(2 * (D + Dp) + 2)]
    for bp in range(Dp + 1):
        for b in range(D + 1):
            for j in range(abs(b - bp), b + bp + 1, 2):
                s = (b + bp + j) // 2
                w = math.exp(lf[b] + lf[j] - lf[s - b] - lf[s - bp] - lf[s - j])
                M[:, bp, b] = executed.axpy(w, a[:, j], M[:, bp, b], "hermite_line_matrix")
                flops.add(2.0, "hermite_line_matrix")
    return M


@lru_cache(maxsize=512)
def _embedding(n_from: int, n_to: int, degree: int) -> np.ndarray:
    """Positions of ``(alpha, 0, ..., 0)`` in the graded ``n_to``-variable basis, for the graded
    ``n_from``-variable multi-indices ``alpha`` of degree ``<= degree``."""
    small = _compositions_upto(n_from, degree)
    big = {a: i for i, a in enumerate(_compositions_upto(n_to, degree))}
    pad = (0,) * (n_to - n_from)
    return np.array([big[a + pad] for a in small], dtype=np.int64)


def _compositions_upto(n: int, degree: int) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    for deg in range(degree + 1):
        out.extend(_compositions(deg, n))
    return out


def embed_hermite(rep: HermiteDensity, n: int) -> HermiteDensity:
    """The same function as a density in ``n >= rep.n`` variables (it does not depend on the new
    ones: ``He_0 = 1``), exact; a scatter, so no FLOPs."""
    if n == rep.n:
        return rep
    idx = _embedding(rep.n, n, rep.degree)
    out = np.zeros((rep.coefficients.shape[0], hermite_dimension(n, rep.degree)))
    out[:, idx] = rep.coefficients
    return HermiteDensity(n, rep.degree, out)


@register_deduction(HalfspaceStep, HermiteDensity)
def _halfspace_times_hermite(rep: HermiteDensity, step: HalfspaceStep, flops: FlopCounter) -> HermiteProduct:
    """Lazy product. Densities may live on the first ``k`` coordinates only (subspace route): a
    step with more coordinates embeds the density; a step with fewer is zero-padded."""
    if step.n > rep.n:
        rep = embed_hermite(rep, step.n)
    elif step.n < rep.n:
        u = np.zeros(step.normal.shape[:-1] + (rep.n,))
        u[..., : step.n] = step.normal
        step = HalfspaceStep(u, step.offset)
    return HermiteProduct(rep, step)


def hermite_truncation(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> HermiteDensity:
    """Projector: truncate to the largest degree ``D`` with ``C(D + n, n) <= budget``.

    When the claims are only the constant (``claims.m == 0``) only ``c_0`` is kept. The degree
    is set by the claims' dimension when they have one (``claims.dim``), so a density carried in
    fewer variables (the subspace route) is truncated at the same degree as the full one.
    """
    n = rep.density.n if isinstance(rep, HermiteProduct) else rep.n
    n_claims = getattr(claims, "dim", None)
    n_deg = int(n_claims) if isinstance(n_claims, (int, np.integer)) else n
    degree = 0 if getattr(claims, "m", None) == 0 else hermite_degree_for_budget(n_deg, budget)
    if isinstance(rep, HermiteProduct):
        return rep.project(degree, flops)
    keep = hermite_dimension(n, min(degree, rep.degree))
    return HermiteDensity(n, min(degree, rep.degree), rep.coefficients[:, :keep])
