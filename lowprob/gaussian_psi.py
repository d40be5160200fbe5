"""Botev's ``psi`` and its derivatives from pivot bounds, and the stable Gaussian interval mass.

The lowest layer of the polytope code, shared by the exact minimax tilt
(:mod:`lowprob.gaussian_polytope`) and the smoothed one (:mod:`lowprob.polytope_smooth_tilt`),
so that neither imports the other's module at load time:

* :func:`log_normal_interval`: ``log(Phi(b) - Phi(a))``, stable in both tails (Botev 2017,
  appendix, ``lnNpr``);
* :func:`grad_from_bounds` / :func:`jacobian_from_parts`: the gradient and Jacobian of
  ``psi(x; mu) = sum_j [log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2/2 - x_j mu_j]``
  (Botev 2017, eq. 10) given the pivot bounds and their row gradients;
* :class:`PolytopeStructure`: the pivoted LQ's output (built by
  :func:`lowprob.gaussian_polytope.pivoted_lq`);
* :data:`OpCount`: the optional operation tally the quadrature sketches turn into executed FLOPs.

Reference: Botev (2017), JRSS-B 79(1) 125-148.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

__all__ = ["OpCount", "PolytopeStructure", "grad_from_bounds", "jacobian_from_parts", "log_normal_interval", "split_tilt_vector"]

#: Optional operation tally ``count(kind, n)``: ``n`` operations of ``kind`` were executed, ``kind``
#: one of ``"arith"`` (scalar add, multiply, compare), ``"elementary"`` (``exp``, ``log``, ``sqrt``),
#: ``"interval_mass"`` (one element of :func:`log_normal_interval`) or ``"truncnorm_ppf"`` (one
#: element of :func:`truncated_normal_ppf`). The functions below call it with the sizes of the
#: arrays they actually process; :mod:`lowprob.propagation.quadrature_cloud` turns the tallies
#: into executed FLOPs with its stated per-evaluation constants.
OpCount = Callable[[str, float], None]


def _tally(count: OpCount | None, **ops: float) -> None:
    if count is not None:
        for kind, n in ops.items():
            if n:
                count(kind, float(n))


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0`` (Maechler 2012)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x > -math.log(2.0)
    with np.errstate(divide="ignore"):
        out[small] = np.log(-np.expm1(x[small]))
        out[~small] = np.log1p(-np.exp(x[~small]))
    return out


def log_normal_interval(a: object, b: object, *, count: OpCount | None = None) -> np.ndarray:
    """``log(Phi(b) - Phi(a))`` elementwise for ``a <= b`` (``-inf`` where ``a >= b``).

    Stable in both tails: for ``a > 0`` it uses upper tails ``log Q``, for ``b < 0`` lower
    tails ``log Phi``, and ``log1p(-Phi(a) - Q(b))`` when the interval straddles 0
    (Botev 2017, appendix, ``lnNpr``). ``count`` (optional, :data:`OpCount`) receives the
    operations executed, branch by branch.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.full(a.shape, -np.inf)
    ok = a < b
    pos = ok & (a > 0)
    neg = ok & (b < 0)
    mid = ok & ~(pos | neg)
    _tally(count, interval_mass=a.size)
    if np.any(pos):
        la, lb = log_ndtr(-a[pos]), log_ndtr(-b[pos])
        out[pos] = la + _log1mexp(lb - la)
    if np.any(neg):
        la, lb = log_ndtr(a[neg]), log_ndtr(b[neg])
        out[neg] = lb + _log1mexp(la - lb)
    if np.any(mid):
        out[mid] = np.log1p(-ndtr(a[mid]) - ndtr(-b[mid]))
    return out


@dataclass
class PolytopeStructure:
    """Output of the pivoted LQ (:func:`lowprob.gaussian_polytope.pivoted_lq`): per pivot ``j`` the rows it owns.

    With ``Z = Q^T xi ~ N(0, I_r)`` the event is ``lo[j] <= Z_j + rows[j] @ Z_<j <= hi[j]``
    for every ``j`` (each owned row scaled so that its coefficient on ``Z_j`` is 1), i.e.
    ``Z_j in [lt_j, ut_j]`` with the bounds of :func:`lowprob.gaussian_polytope.pivot_interval`.
    """

    Q: np.ndarray  # (d, r) orthonormal
    rows: list[np.ndarray]  # rows[j]: (n_j, j) coefficients on Z_<j
    lo: list[np.ndarray]  # (n_j,)
    hi: list[np.ndarray]  # (n_j,)
    row_index: list[np.ndarray]  # original constraint indices owned by pivot j
    pivots: np.ndarray  # (r,) original index of each pivot row

    @property
    def r(self) -> int:
        return int(self.Q.shape[1])


def split_tilt_vector(r: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, mu)`` of length ``r`` from ``y = (x_<r-1, mu_<r-1)`` (``x_{r-1} = mu_{r-1} = 0``)."""
    x = np.zeros(r)
    mu = np.zeros(r)
    x[: r - 1], mu[: r - 1] = y[: r - 1], y[r - 1 :]
    return x, mu


def grad_from_bounds(
    x: np.ndarray, mu: np.ndarray, lt: np.ndarray, ut: np.ndarray, La: np.ndarray, Lb: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``grad psi`` (length ``2(r-1)``) given the pivot bounds ``lt, ut`` at ``x`` and their row
    gradients ``La, Lb`` (``r x r``), and the intermediates :func:`jacobian_from_parts` reuses.

    ``psi = sum_j [log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2/2 - x_j mu_j]`` (Botev 2017,
    eq. 10); shared by the exact tilt (bounds = max/min of the owned rows) and the smoothed one
    (:mod:`lowprob.polytope_smooth_tilt`, log-sum-exp bounds). ``parts[-1]`` is ``log(Phi - Phi)``.
    """
    n = len(x) - 1
    al, be = lt - mu, ut - mu
    w = log_normal_interval(al, be)
    with np.errstate(over="ignore", invalid="ignore"):
        pl = np.where(np.isfinite(al), np.exp(-0.5 * al**2 - w - _LOG_SQRT_2PI), 0.0)
        pu = np.where(np.isfinite(be), np.exp(-0.5 * be**2 - w - _LOG_SQRT_2PI), 0.0)
    alf = np.where(np.isfinite(al), al, 0.0)
    bef = np.where(np.isfinite(be), be, 0.0)
    P = pl - pu
    gx = -mu + La.T @ pl - Lb.T @ pu
    gmu = mu - x + P
    grad = np.concatenate([gx[:n], gmu[:n]])
    return grad, (La, Lb, pl, pu, alf, bef, w)


def jacobian_from_parts(parts: tuple[np.ndarray, ...]) -> np.ndarray:
    """The ``2(r-1) x 2(r-1)`` Jacobian of ``grad psi`` from :func:`grad_from_bounds`' intermediates
    (``O(r^3)``), for bounds affine in ``x`` (the smoothed tilt adds its curvature term)."""
    La, Lb, pl, pu, alf, bef, _ = parts
    r = len(pl)
    n = r - 1
    pl_a, pl_b = -alf * pl + pl**2, -pl * pu
    pu_a, pu_b = pu * pl, -bef * pu - pu**2
    P_a, P_b = pl_a - pu_a, pl_b - pu_b
    dpl_mu, dpu_mu = -(pl_a + pl_b), -(pu_a + pu_b)
    eye = np.eye(r)
    J_xx = -(La.T @ (pl_a[:, None] * La) + La.T @ (pl_b[:, None] * Lb)) + (
        Lb.T @ (pu_a[:, None] * La) + Lb.T @ (pu_b[:, None] * Lb)
    )
    J_xmu = -eye + La.T * dpl_mu[None, :] - Lb.T * dpu_mu[None, :]
    J_mux = -eye - P_a[:, None] * La - P_b[:, None] * Lb
    J_mumu = np.diag(1.0 - P_a - P_b)
    return np.block([[J_xx[:n, :n], J_xmu[:n, :n]], [J_mux[:n, :n], J_mumu[:n, :n]]])
