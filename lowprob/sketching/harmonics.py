"""A real orthonormal basis of spherical harmonics on ``S^{n-1}``, evaluated exactly.

Construction (Gegenbauer "separation of the last coordinate"; Atkinson & Han,
*Spherical Harmonics and Approximations on the Unit Sphere*, 2012, section 2.11; Dai & Xu
2013, Thm 1.5.1). Write ``x = (x', t)`` with ``t = x_n``. For every degree ``k <= l`` and every
orthonormal harmonic ``S_{k,j}`` of degree ``k`` on ``S^{n-2}``, extended to the homogeneous
("solid") polynomial of degree ``k`` on ``R^{n-1}``::

    Y_{l,k,j}(x) = c_{l,k} C_{l-k}^{(alpha_k)}(t) S_{k,j}(x'),     alpha_k = k + (n-2)/2,
    c_{l,k}^{-2} = c_n h_{l-k}(alpha_k),
    h_j(alpha) = pi 2^{1-2 alpha} Gamma(j + 2 alpha) / (j! (j + alpha) Gamma(alpha)^2),

with ``c_n = Gamma(n/2)/(sqrt(pi) Gamma((n-1)/2))`` and ``h_j`` the Gegenbauer norm
(DLMF 18.3). Evaluation uses the homogeneous form ``r^j C_j^{(alpha)}(t / r)`` by the
three-term recurrence in ``(t, r^2)``, so the whole basis is a polynomial recursion with no
division by ``|x'|`` (no pole singularity). The base case ``n = 2`` is
``1, sqrt(2) Re (x_1 + i x_2)^k, sqrt(2) Im (x_1 + i x_2)^k``.

The basis is orthonormal w.r.t. the **normalised** surface measure (tests check the Gram
matrix under :func:`lowprob.sketching.sphere_quadrature.sphere_quadrature` to 1e-10).
Columns are grouped by degree ``0..L``; within a degree they are ordered by ``k`` and then
by the lower sphere's column order.
"""

from __future__ import annotations

from math import lgamma, log, pi

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.sketching.funk_hecke import funk_hecke_constant, harmonic_dimension

__all__ = ["SphericalHarmonics"]


def _log_gegenbauer_norm(j: int, alpha: float) -> float:
    """``log h_j(alpha) = log int (C_j^alpha)^2 (1-t^2)^{alpha-1/2} dt`` for ``alpha > 0``."""
    return (
        log(pi)
        + (1 - 2 * alpha) * log(2.0)
        + lgamma(j + 2 * alpha)
        - lgamma(j + 1)
        - log(j + alpha)
        - 2 * lgamma(alpha)
    )


def _offsets(n: int, L: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([harmonic_dimension(l, n) for l in range(L + 1)])]).astype(np.int64)


def _solid_harmonics(x: np.ndarray, L: int) -> np.ndarray:
    """Solid harmonics ``|x|^l Y_l(x/|x|)``, ``(N, total_dim)`` (Fortran order), columns by degree."""
    N, n = x.shape
    off = _offsets(n, L)
    out = np.empty((N, int(off[-1])), order="F")
    if n == 2:
        z = x[:, 0] + 1j * x[:, 1]
        out[:, 0] = 1.0
        zk = np.ones(N, dtype=np.complex128)
        for l in range(1, L + 1):
            zk = zk * z
            out[:, off[l]] = np.sqrt(2.0) * zk.real
            out[:, off[l] + 1] = np.sqrt(2.0) * zk.imag
        return out
    lower = _solid_harmonics(x[:, : n - 1], L)
    loff = _offsets(n - 1, L)
    t = x[:, n - 1]
    r2 = np.einsum("ij,ij->i", x, x)
    log_cn = log(funk_hecke_constant(n))
    # column of Y_{l,k,j}: off[l] + loff[k] + (lower column within degree k)
    for k in range(L + 1):
        alpha = k + (n - 2) / 2
        S = lower[:, loff[k] : loff[k + 1]]
        G_prev = np.ones(N)
        G_cur = 2 * alpha * t
        for j in range(L - k + 1):
            if j == 0:
                G = G_prev
            elif j == 1:
                G = G_cur
            else:
                G_next = (2 * (j - 1 + alpha) * t * G_cur - (j - 2 + 2 * alpha) * r2 * G_prev) / j
                G_prev, G_cur = G_cur, G_next
                G = G_cur
            c = np.exp(-0.5 * (log_cn + _log_gegenbauer_norm(j, alpha)))
            col = off[j + k] + loff[k]
            np.multiply((c * G)[:, None], S, out=out[:, col : col + S.shape[1]])
    return out


class SphericalHarmonics:
    """Real orthonormal spherical harmonics of degrees ``0..L`` on ``S^{n-1}`` (any ``n >= 2``).

    Orthonormal w.r.t. the normalised surface measure:
    ``int Y_a Y_b dsigma = delta_ab``. Attributes: ``degrees`` (``(total_dim,)`` int array,
    degree of each column), ``dims`` (``(L+1,)``, ``dim H_l``), ``total_dim``.

    Example:
        >>> sh = SphericalHarmonics(4, 3)
        >>> sh.total_dim  # 1 + 4 + 9 + 16
        30
    """

    def __init__(self, n: int, L: int) -> None:
        self.n = check_int("n", n, minimum=2)
        self.L = check_int("L", L, minimum=0)
        self.dims = np.array([harmonic_dimension(l, self.n) for l in range(self.L + 1)], dtype=np.int64)
        self.degrees = np.repeat(np.arange(self.L + 1), self.dims)
        self._offsets = np.concatenate([[0], np.cumsum(self.dims)])

    @property
    def total_dim(self) -> int:
        return int(self._offsets[-1])

    def block(self, l: int) -> slice:
        """Column slice of degree ``l``."""
        l = check_int("l", l, minimum=0)
        if l > self.L:
            raise InputValueError(f"l must be <= L={self.L}, got {l!r}.")
        return slice(int(self._offsets[l]), int(self._offsets[l + 1]))

    def evaluate(self, x: object, *, normalize: bool = False, atol: float = 1e-8) -> np.ndarray:
        """Evaluate all basis functions at points ``x`` of shape ``(N, n)``; returns ``(N, total_dim)``.

        Points must be unit vectors (within ``atol``) unless ``normalize=True``, which
        projects them radially first.
        """
        x = check_finite_array("x", x, ndim=2)
        if x.shape[1] != self.n:
            raise InputValueError(
                f"x must have shape (N, {self.n}) for harmonics on S^{self.n - 1}, got {x.shape!r}."
            )
        norms = np.linalg.norm(x, axis=1)
        if normalize:
            if np.any(norms == 0):
                raise InputValueError("x has zero rows; they cannot be projected onto the sphere.")
            x = x / norms[:, None]
        elif x.shape[0] and np.max(np.abs(norms - 1.0)) > atol:
            raise InputValueError(
                f"x rows must be unit vectors (max | |x| - 1 | = {np.max(np.abs(norms - 1.0))!r} > "
                f"atol={atol!r}); pass normalize=True to project them onto the sphere."
            )
        return _solid_harmonics(x, self.L)

    def __repr__(self) -> str:
        return f"SphericalHarmonics(n={self.n}, L={self.L}, total_dim={self.total_dim})"
