"""Gaussian mass of simplicial cones and Gaussian orthant probabilities, in float64.

A simplicial cone with rays ``r_1..r_d`` (the columns of an invertible ``d x d`` matrix
``R``) is ``cone(R) = {R t : t >= 0}``. Its standard-Gaussian mass is the orthant
probability ``P[R^{-1} x >= 0]``, ``x ~ N(0, I_d)``; conversely the orthant probability of
``Y ~ N(0, S)`` is the mass of ``cone(L^{-1})`` with ``S = L L^T`` (:func:`orthant_probability`).

Closed forms (columns normalised to unit length first; the mass is invariant to positive
column scaling):

* ``d = 1``: ``1/2``.
* ``d = 2``: ``angle(r_1, r_2) / (2 pi)``.
* ``d = 3``: solid angle ``/ (4 pi)``, with the Van Oosterom–Strackee formula
  ``tan(Omega/2) = |r_1 . (r_2 x r_3)| / (1 + r_1.r_2 + r_2.r_3 + r_3.r_1)``
  (Van Oosterom & Strackee 1983, IEEE Trans. Biomed. Eng. 30(2), eq. 8).

Smooth simplex formula for ``d = 4`` (DESIGN.md section 3, *derived*): put ``t = s u``
with ``s > 0`` and ``u`` on the standard simplex ``Delta = {u >= 0, sum u = 1}`` in
``integral_{t >= 0} phi_d(R t) |det R| dt`` and integrate ``s`` out::

    P = |det R| * Gamma(d/2) * 2^(d/2 - 1) * (2 pi)^(-d/2) * integral_Delta |R u|^(-d) du.

The integrand is smooth and bounded on ``Delta`` because the cone is pointed. We map the
cube ``[0,1]^(d-1)`` onto ``Delta`` with the collapsed (Duffy) coordinates
``u_1 = y_1, u_k = y_k prod_{j<k}(1 - y_j), u_d = prod_j (1 - y_j)`` (Jacobian
``prod_k (1 - y_k)^(d-1-k)``) and use a tensor Gauss–Legendre rule.

**Error bound.** Each cone is integrated with ``n_lo = 12`` and ``n_hi = 20`` points per axis;
``|I_hi - I_lo|`` bounds the error of ``I_lo`` and, because Gauss–Legendre converges
geometrically for analytic integrands (Trefethen 2008, SIAM Review 50(1), Thm 4.5), is a
conservative bound on the error of the reported ``I_hi``. A cone whose bound exceeds
``rtol = 1e-13`` times its mass (pieces at bisection depth ``k`` get ``2^-k`` of that
allowance, so the total stays within ``rtol``) is bisected along its widest edge (the two sub-cones
share the normalised mid-ray) and integrated again, up to ``max_rounds`` times; whatever
is left is reported with its (larger) bound and a :class:`~lowprob.errors.NumericalWarning`.
The reported bound adds a floating-point rounding term ``64 eps * mass`` per cone.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

from lowprob._validation import check_finite_array
from lowprob.errors import InputValueError, NumericalWarning, UnavailableError

__all__ = [
    "MAX_QUADRATURE_DIM",
    "orthant_probability",
    "simplicial_cone_masses",
]

#: Largest dimension for which the quadrature rule is offered (``n^(d-1)`` nodes per cone).
MAX_QUADRATURE_DIM = 4

_EPS = np.finfo(np.float64).eps
_RULES = {4: (12, 20)}  # (n_lo, n_hi) Gauss–Legendre points per axis


@lru_cache(maxsize=16)
def _duffy_simplex_rule(dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``u`` (``(n^(dim-1), dim)``, on the standard simplex) and weights ``w`` for
    ``integral_Delta f(u) du ~= sum_k w_k f(u_k)``: the tensor Gauss–Legendre rule with ``n``
    points per axis on ``[0,1]^(dim-1)``, mapped by the collapsed (Duffy) coordinates and
    multiplied by their Jacobian (the weights sum to ``1/(dim-1)!``). Cached; read-only arrays.
    Also the reference rule of :class:`lowprob.sketching.measures.SphericalCone`.
    """
    x, wx = np.polynomial.legendre.leggauss(n)
    y = 0.5 * (x + 1.0)
    wy = 0.5 * wx
    k = dim - 1
    ys = np.stack([g.ravel() for g in np.meshgrid(*([y] * k), indexing="ij")], axis=1)
    ws = np.prod(np.stack([g.ravel() for g in np.meshgrid(*([wy] * k), indexing="ij")], axis=1), axis=1)
    u = np.empty((ys.shape[0], dim))
    rest = np.ones(ys.shape[0])
    for j in range(k):
        u[:, j] = ys[:, j] * rest
        rest = rest * (1.0 - ys[:, j])
    u[:, k] = rest
    # Jacobian of the collapsed map: prod_j (1 - y_j)^(k-1-j), j = 0..k-1.
    jac = np.ones(ys.shape[0])
    for j in range(k):
        jac *= (1.0 - ys[:, j]) ** (k - 1 - j)
    w = ws * jac
    u.setflags(write=False)
    w.setflags(write=False)
    return u, w


@lru_cache(maxsize=16)
def _duffy_rule(dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic features of simplex nodes and weights for ``integral_Delta f(u) du``.

    Returns ``(F, w)``: ``F`` is ``(dim (dim+1)/2, n^(dim-1))`` with rows ``u_i u_j`` (``i <= j``,
    off-diagonal rows doubled) so that ``u^T G u = vech(G) @ F``; ``w`` are the weights of
    :func:`_duffy_simplex_rule`.
    """
    u, w = _duffy_simplex_rule(dim, n)
    iu = np.triu_indices(dim)
    F = u[:, iu[0]] * u[:, iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
    return np.ascontiguousarray(F.T), w


def _constant(d: int) -> float:
    return math.gamma(d / 2) * 2.0 ** (d / 2 - 1) * (2 * math.pi) ** (-d / 2)


def _simplex_integral(gram: np.ndarray, n: int) -> np.ndarray:
    """``integral_Delta (u^T G u)^(-d/2) du`` for each Gram matrix in ``gram`` (k, d, d)."""
    d = gram.shape[-1]
    F, w = _duffy_rule(d, n)
    iu = np.triu_indices(d)
    q = gram[:, iu[0], iu[1]] @ F  # (k, p)
    if d == 4:
        f = 1.0 / (q * q)
    else:
        f = q ** (-d / 2)
    return f @ w


def _quadrature_masses(
    R: np.ndarray, *, rtol: float, max_rounds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Masses and bounds for unit-column cones ``R`` (k, d, d), d = 4, adaptive bisection."""
    k, d, _ = R.shape
    const = _constant(d)
    mass = np.zeros(k)
    err = np.zeros(k)
    owner = np.arange(k)
    cur = R
    for rnd in range(max_rounds + 1):
        if cur.shape[0] == 0:
            break
        det = np.abs(np.linalg.det(cur))
        gram = np.einsum("kia,kib->kab", cur, cur)
        n_lo, n_hi = _RULES[d]
        lo = _simplex_integral(gram, n_lo)
        hi = _simplex_integral(gram, n_hi)
        m_hi = const * det * hi
        e_hi = const * det * np.abs(hi - lo)
        if rnd == 0:
            budget = rtol * m_hi  # each original cone's error allowance
        # A piece at bisection depth rnd may use 2^-rnd of its cone's allowance; the
        # depths of the leaves of a binary tree satisfy sum 2^-depth <= 1 (Kraft).
        allowed = budget[owner] * 0.5**rnd
        done = e_hi <= allowed
        if rnd == max_rounds:
            if not np.all(done):
                warnings.warn(
                    f"simplicial cone quadrature did not reach rtol={rtol:g} after {max_rounds} "
                    f"bisection rounds; the reported error bound is {float(e_hi.sum()):.3g}.",
                    NumericalWarning,
                    stacklevel=3,
                )
            done[:] = True
        np.add.at(mass, owner[done], m_hi[done])
        np.add.at(err, owner[done], e_hi[done] + 64 * _EPS * m_hi[done])
        todo = ~done
        if not np.any(todo):
            break
        cur, owner = _bisect_widest_edge(cur[todo], owner[todo])
    return mass, err


def _bisect_widest_edge(R: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each cone into two along the pair of rays with the widest angle."""
    k, d, _ = R.shape
    gram = np.einsum("kia,kib->kab", R, R)
    iu = np.triu_indices(d, 1)
    pair = np.argmin(gram[:, iu[0], iu[1]], axis=1)
    a, b = iu[0][pair], iu[1][pair]
    rows = np.arange(k)
    mid = R[rows, :, a] + R[rows, :, b]
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    left = R.copy()
    right = R.copy()
    left[rows, :, b] = mid
    right[rows, :, a] = mid
    return np.concatenate([left, right]), np.concatenate([owner, owner])


def _closed_form_masses(R: np.ndarray) -> np.ndarray:
    """Exact masses for unit-column cones ``R`` (k, d, d), d <= 3."""
    d = R.shape[-1]
    if d == 1:
        return np.full(R.shape[0], 0.5)
    if d == 2:
        dot = np.einsum("ki,ki->k", R[:, :, 0], R[:, :, 1])
        det = np.abs(R[:, 0, 0] * R[:, 1, 1] - R[:, 0, 1] * R[:, 1, 0])
        return np.arctan2(det, dot) / (2 * math.pi)
    a, b, c = R[:, :, 0], R[:, :, 1], R[:, :, 2]
    triple = np.abs(np.einsum("ki,ki->k", a, np.cross(b, c)))
    denom = 1.0 + np.einsum("ki,ki->k", a, b) + np.einsum("ki,ki->k", b, c)
    denom = denom + np.einsum("ki,ki->k", c, a)
    omega = 2.0 * np.arctan2(triple, denom)
    return omega / (4 * math.pi)


def _masses_unchecked(
    R: np.ndarray, *, rtol: float = 1e-13, max_rounds: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Masses and absolute error bounds of cones ``R`` (k, d, d) with non-zero columns."""
    R = R / np.linalg.norm(R, axis=1, keepdims=True)
    k, d, _ = R.shape
    if k == 0:
        return np.zeros(0), np.zeros(0)
    if d <= 3:
        mass = _closed_form_masses(R)
        return mass, 16 * d * _EPS * np.maximum(mass, _EPS)
    return _quadrature_masses(R, rtol=rtol, max_rounds=max_rounds)


def simplicial_cone_masses(
    rays: object, *, rtol: float = 1e-13, max_rounds: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Standard-Gaussian mass of simplicial cones, with absolute error bounds.

    Args:
        rays: ``(d, d)`` or ``(k, d, d)``; the *columns* of each matrix are the cone's rays.
            Singular matrices (flat cones) have mass 0.
        rtol: relative accuracy requested from the ``d = 4`` quadrature.
        max_rounds: bisection rounds allowed for cones that miss ``rtol``.

    Returns:
        ``(mass, error_bound)``, each of shape ``(k,)`` (or scalars for a single cone),
        float64. For ``d <= 3`` the bound is a rounding bound on the closed form.
    """
    R = check_finite_array("rays", rays)
    single = R.ndim == 2
    if single:
        R = R[None]
    if R.ndim != 3 or R.shape[1] != R.shape[2] or R.shape[1] < 1:
        raise InputValueError(f"rays must have shape (d, d) or (k, d, d), got {R.shape!r}.")
    d = R.shape[1]
    if d > MAX_QUADRATURE_DIM:
        raise UnavailableError(
            f"simplicial_cone_masses supports d <= {MAX_QUADRATURE_DIM}, got d={d!r}; "
            "use Monte Carlo or Botev's minimax-tilting estimator for larger d."
        )
    norms = np.linalg.norm(R, axis=1)
    flat = np.any(norms == 0, axis=1)
    mass = np.zeros(R.shape[0])
    err = np.zeros(R.shape[0])
    ok = ~flat
    if np.any(ok):
        Rn = R[ok] / norms[ok][:, None, :]
        sv = np.linalg.svd(Rn, compute_uv=False)
        nonsing = sv[:, -1] > 1e-14 * sv[:, 0]
        idx = np.flatnonzero(ok)[nonsing]
        mass[idx], err[idx] = _masses_unchecked(Rn[nonsing], rtol=rtol, max_rounds=max_rounds)
    if single:
        return mass[0], err[0]  # type: ignore[return-value]
    return mass, err


def orthant_probability(cov: object, *, rtol: float = 1e-13) -> tuple[float, float]:
    """``P[Y >= 0]`` for ``Y ~ N(0, cov)``, ``d <= 4``, with an absolute error bound.

    With ``cov = L L^T`` (Cholesky), ``Y = L x`` and ``{L x >= 0} = cone(L^{-1})``, so this is
    :func:`simplicial_cone_masses` of ``L^{-1}``. Unlike Genz's QMC
    (``scipy.stats.multivariate_normal.cdf``), the error is controlled relative to the mass,
    also for nearly singular ``cov``.

    Returns:
        ``(probability, error_bound)``.
    """
    S = check_finite_array("cov", cov, ndim=2)
    if S.shape[0] != S.shape[1]:
        raise InputValueError(f"cov must be square, got shape {S.shape!r}.")
    if not np.allclose(S, S.T, rtol=1e-12, atol=1e-14 * np.abs(S).max(initial=0.0)):
        raise InputValueError("cov must be symmetric; pass (cov + cov.T) / 2.")
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise InputValueError(
            "cov must be positive definite (Cholesky failed); for a singular covariance, "
            "project onto its range first."
        ) from None
    R = np.linalg.inv(L)
    p, e = simplicial_cone_masses(R, rtol=rtol)
    return float(p), float(e)
