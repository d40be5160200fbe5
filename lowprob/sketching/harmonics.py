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
(DLMF 18.3). So ``Y_{l,k,j} = q_{l-k}(t) S_{k,j}(x') / sqrt(c_n)`` with ``q_j = C_j / sqrt(h_j)``
the *orthonormal* Gegenbauer polynomials, which are evaluated by their own three-term
recurrence (Gautschi 2004, Table 1.1)::

    t q_{j-1} = b_j q_j + b_{j-1} q_{j-2},   b_j = sqrt(j (j+2 alpha-1) / ((j+alpha)(j+alpha-1))) / 2,

in the homogeneous form ``r^j q_j(t / r)`` (replace ``b_{j-1} q_{j-2}`` by ``b_{j-1} r^2 q_{j-2}``),
so the whole basis is a polynomial recursion with no division by ``|x'|`` (no pole
singularity). Every intermediate value stays of the size of the result (``|Y| <= sqrt(dim H_l)``):
no ``Gamma`` ratios of size ``10^50`` and no ``exp`` of large ``lgamma`` differences, whose
round-off (``~ 1e-13`` at degree 64) was the instability of the unnormalised recurrence.
The base case ``n = 2`` is ``1, sqrt(2) Re (x_1 + i x_2)^k, sqrt(2) Im (x_1 + i x_2)^k``.

Floating point: the tests compare float64 against the same recursion in ``long double``
(``2^-64``) up to degree 128 and check the a-priori bound :func:`harmonic_rounding_bound`,
which :func:`lowprob.sketching.sketch_error.sketch_error` adds to its bounds.

Memory: :meth:`SphericalHarmonics.evaluate` returns the whole ``(N, total_dim)`` matrix
(``total_dim ~ L^{n-1}``). :meth:`SphericalHarmonics.moments` (``w^T Y``) and
:meth:`SphericalHarmonics.synthesize` (``Y c``) never form it: they walk the blocks
``q_j(t) S_k`` of the top level and hold, per chunk of points, only the lower sphere's
harmonics, so their working memory is at most ``max_bytes`` (default 256 MiB) plus the
``(total_dim,)`` result.

The basis is orthonormal w.r.t. the **normalised** surface measure (tests check the Gram
matrix under :func:`lowprob.sketching.sphere_quadrature.sphere_quadrature` to 1e-10).
Columns are grouped by degree ``0..L``; within a degree they are ordered by ``k`` and then
by the lower sphere's column order.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import exp, lgamma, pi, sqrt

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.sketching.funk_hecke import funk_hecke_constant, harmonic_dimension

__all__ = ["DEFAULT_MAX_BYTES", "SphericalHarmonics", "harmonic_rounding_bound"]

DEFAULT_MAX_BYTES = 1 << 28
"""Default working-memory cap (256 MiB) of :meth:`SphericalHarmonics.moments` and ``synthesize``."""

SQRT2 = sqrt(2.0)


def _offsets(n: int, L: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([harmonic_dimension(l, n) for l in range(L + 1)])]).astype(np.int64)


def _recurrence_coefficients(alpha: float, J: int, dtype: np.dtype = np.float64) -> np.ndarray:
    """``b_1..b_J`` of the orthonormal Gegenbauer recurrence ``t q_{j-1} = b_j q_j + b_{j-1} q_{j-2}``.

    ``b_j = sqrt(j (j + 2 alpha - 1) / ((j + alpha) (j + alpha - 1))) / 2`` (the Jacobi matrix of
    the weight ``(1 - t^2)^{alpha - 1/2}``; Gautschi, *Orthogonal Polynomials*, 2004, Table 1.1).
    Index 0 is unused (set to 0).
    """
    j = np.arange(J + 1, dtype=dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = 0.5 * np.sqrt(j * (j + 2 * alpha - 1) / ((j + alpha) * (j + alpha - 1)))
    b[0] = 0.0
    return b


def _q0_values(n: int, L: int, dtype: np.dtype = np.float64) -> np.ndarray:
    """``q_0(alpha_k) / sqrt(c_n) = (c_n h_0(alpha_k))^{-1/2}`` for ``k = 0..L``, ``alpha_k = k + (n-2)/2``.

    ``h_0(alpha) = sqrt(pi) Gamma(alpha + 1/2) / Gamma(alpha + 1)``; the ratio of Gammas is
    carried by the exact recurrence ``R(alpha + 1) = R(alpha) (alpha + 1/2) / (alpha + 1)``
    (relative error ``~ k u``; no large ``lgamma`` differences).
    """
    a0 = (n - 2) / 2
    R = np.empty(L + 1, dtype=dtype)
    R[0] = exp(lgamma(a0 + 0.5) - lgamma(a0 + 1.0))
    for k in range(1, L + 1):
        a = a0 + k - 1
        R[k] = R[k - 1] * (a + 0.5) / (a + 1.0)
    return 1.0 / np.sqrt(R * (funk_hecke_constant(n) * sqrt(pi)))


def _blocks(x: np.ndarray, L: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(column, q, S)`` with ``Y[:, column : column + S.shape[1]] = q[:, None] * S``.

    ``x``: ``(N, n)`` with ``n >= 3``. ``S`` is a block of the lower sphere's solid harmonics
    (materialised once, ``(N, dim of degrees <= L on S^{n-2})``), ``q`` the homogeneous
    orthonormal Gegenbauer factor ``r^j q_j(t / r) / sqrt(c_n)`` of shape ``(N,)``.
    """
    N, n = x.shape
    off = _offsets(n, L)
    lower = _solid_harmonics(x[:, : n - 1], L)
    loff = _offsets(n - 1, L)
    t = x[:, n - 1]
    r2 = np.einsum("ij,ij->i", x, x)
    q0 = _q0_values(n, L, x.dtype)
    for k in range(L + 1):
        alpha = k + (n - 2) / 2
        b = _recurrence_coefficients(alpha, L - k, x.dtype)
        S = lower[:, loff[k] : loff[k + 1]]
        q_prev = np.zeros(N, dtype=x.dtype)
        q_cur = np.full(N, q0[k], dtype=x.dtype)
        for j in range(L - k + 1):
            if j > 0:
                q_next = (t * q_cur - (b[j - 1] * r2) * q_prev) / b[j]
                q_prev, q_cur = q_cur, q_next
            yield int(off[j + k] + loff[k]), q_cur, S


def _solid_harmonics(x: np.ndarray, L: int) -> np.ndarray:
    """Solid harmonics ``|x|^l Y_l(x/|x|)``, ``(N, total_dim)`` (Fortran order), columns by degree."""
    N, n = x.shape
    off = _offsets(n, L)
    out = np.empty((N, int(off[-1])), order="F", dtype=x.dtype)
    if n == 2:
        # sqrt(2) Re/Im (x_1 + i x_2)^l by the real rotation recurrence (works in any float dtype)
        c, s = np.ones(N, dtype=x.dtype), np.zeros(N, dtype=x.dtype)
        out[:, 0] = 1.0
        for l in range(1, L + 1):
            c, s = c * x[:, 0] - s * x[:, 1], c * x[:, 1] + s * x[:, 0]
            out[:, off[l]] = SQRT2 * c
            out[:, off[l] + 1] = SQRT2 * s
        return out
    for col, q, S in _blocks(x, L):
        np.multiply(q[:, None], S, out=out[:, col : col + S.shape[1]])
    return out


def _chunk_rows(n: int, L: int, max_bytes: int) -> int:
    """Points per chunk so that one chunk's working set stays below ``max_bytes``."""
    lower = int(_offsets(n - 1, L)[-1]) if n >= 3 else 2 * L + 1
    per_point = 8 * (2 * lower + 2 * (L + 1) + 8)
    return max(1, int(max_bytes) // per_point)


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
        return _solid_harmonics(self._points(x, normalize, atol), self.L)

    def _points(self, x: object, normalize: bool, atol: float) -> np.ndarray:
        x = check_finite_array("x", x, ndim=2)
        if x.shape[1] != self.n:
            raise InputValueError(
                f"x must have shape (N, {self.n}) for harmonics on S^{self.n - 1}, got {x.shape!r}."
            )
        norms = np.linalg.norm(x, axis=1)
        if normalize:
            if np.any(norms == 0):
                raise InputValueError("x has zero rows; they cannot be projected onto the sphere.")
            return x / norms[:, None]
        if x.shape[0] and np.max(np.abs(norms - 1.0)) > atol:
            raise InputValueError(
                f"x rows must be unit vectors (max | |x| - 1 | = {np.max(np.abs(norms - 1.0))!r} > "
                f"atol={atol!r}); pass normalize=True to project them onto the sphere."
            )
        return x

    def moments(
        self, x: object, weights: object, *, normalize: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> np.ndarray:
        """``sum_i w_i Y(x_i)``, shape ``(total_dim,)``, without forming ``Y`` (see module docstring).

        Args:
            x: ``(N, n)`` points (unit vectors unless ``normalize``).
            weights: ``(N,)`` finite, possibly signed.
            max_bytes: working-memory cap; points are processed in chunks of
                ``max_bytes / (8 (2 D_{n-1} + 2 L + 10))`` with ``D_{n-1}`` the lower sphere's
                ``total_dim`` (at least one point per chunk).
        """
        x = self._points(x, normalize, 1e-8)
        w = check_finite_array("weights", weights, shape=(x.shape[0],))
        max_bytes = check_int("max_bytes", max_bytes, minimum=1)
        out = np.zeros(self.total_dim, dtype=np.result_type(x.dtype, w.dtype))
        step = _chunk_rows(self.n, self.L, max_bytes)
        for s in range(0, x.shape[0], step):
            xs, ws = x[s : s + step], w[s : s + step]
            if self.n == 2:
                out += ws @ _solid_harmonics(xs, self.L)
                continue
            for col, q, S in _blocks(xs, self.L):
                out[col : col + S.shape[1]] += (ws * q) @ S
        return out

    def synthesize(
        self, x: object, coefficients: object, *, normalize: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> np.ndarray:
        """``sum_j c_j Y_j(x_i)``, shape ``(N,)``, without forming ``Y`` (same memory rule as :meth:`moments`)."""
        x = self._points(x, normalize, 1e-8)
        c = check_finite_array("coefficients", coefficients, shape=(self.total_dim,))
        max_bytes = check_int("max_bytes", max_bytes, minimum=1)
        out = np.zeros(x.shape[0], dtype=np.result_type(x.dtype, c.dtype))
        step = _chunk_rows(self.n, self.L, max_bytes)
        for s in range(0, x.shape[0], step):
            xs = x[s : s + step]
            if self.n == 2:
                out[s : s + step] = _solid_harmonics(xs, self.L) @ c
                continue
            acc = np.zeros(xs.shape[0], dtype=out.dtype)
            for col, q, S in _blocks(xs, self.L):
                acc += q * (S @ c[col : col + S.shape[1]])
            out[s : s + step] = acc
        return out

    def __repr__(self) -> str:
        return f"SphericalHarmonics(n={self.n}, L={self.L}, total_dim={self.total_dim})"


def harmonic_rounding_bound(n: int, L: int, *, n_points: int, weight_l1: float) -> np.ndarray:
    """Per-degree bound on the float64 error of one moment ``sum_i w_i Y_j(x_i)`` (``j`` of degree ``l``).

    Model: every computed ``Y_j(x)`` (input points normalised in float64) is within
    ``4 (L + n)^2 u sqrt(dim H_l)`` of the exact value (``u = 2^-53``; the tests measure at most
    ~1/8 of this against a ``long double`` evaluation of the same recursion up to ``L = 128``),
    and the sum over ``n_points`` points adds ``n_points u ||w||_1 sqrt(dim H_l)``
    (``|Y_j| <= sqrt(dim H_l)``, the addition theorem). Returns shape ``(L + 1,)``.
    """
    u = np.finfo(np.float64).eps / 2
    dims = np.array([harmonic_dimension(l, n) for l in range(L + 1)], dtype=np.float64)
    return float(weight_l1) * np.sqrt(dims) * (4.0 * (L + n) ** 2 + n_points + 2) * u
