"""Gaussian polytope probabilities: Botev's minimax exponential tilting, in float64.

A general tool (used by the halfspace-toy oracle, the propagation curves' truth and the LM
final-layer estimators), so it sits at the bottom of the package: it imports nothing from
``lowprob`` but validation and errors. (It used to live in ``lowprob.toy_models.tilting``,
which re-exports it.)

Estimates ``P[lower <= A x <= upper]`` for ``x ~ N(mean, cov)`` (``A`` is ``m x d``; bounds may
be infinite), with an unbiased estimator whose error estimate is returned with it, in log
space so that probabilities far below ``1e-300`` stay representable.

**Method** (Botev 2017, "The normal law under linear restrictions: simulation and estimation
via minimax tilting", JRSS-B 79(1), 125-148; ported from the paper, written anew here):

1. Whiten: ``x = mean + L_S xi`` with ``cov = L_S L_S^T`` and ``xi ~ N(0, I_d)``; the event is
   ``lower - A mean <= C xi <= upper - A mean`` with ``C = A L_S``.
2. *Pivoted LQ* of ``C``: rows are taken in Botev's order (Sec. 4.1: next, the row whose
   conditional marginal probability is smallest given the truncated means of the earlier
   pivots), giving ``C_perm = L Q^T`` with ``Q`` (``d x r``) orthonormal and ``L`` lower
   trapezoidal, ``r = rank C``. Rows that become linearly dependent on earlier pivots are
   *owned* by the last pivot they involve. With ``Z = Q^T xi ~ N(0, I_r)``, the event is the
   sequence of interval constraints (each row scaled so its owner coefficient is 1)
   ``Z_j in [lt_j(Z_{<j}), ut_j(Z_{<j})]``, with ``lt_j = max_k (l_k - L_k,<j Z_<j)`` and
   ``ut_j = min_k (u_k - L_k,<j Z_<j)`` over the rows ``k`` owned by ``j``.
   For ``m <= d`` and full row rank this is exactly Botev's ``cholperm``; for ``m > d``
   (e.g. a polyhedral cone with more faces than dimensions) it is the natural extension.
3. *Tilted sequential proposal* (eq. 9): ``Z_j ~ N(mu_j, 1)`` truncated to
   ``[lt_j, ut_j]``. The likelihood ratio is ``exp(psi(Z; mu))`` with (eq. 10)
   ``psi(z; mu) = sum_j [ log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2 / 2 - z_j mu_j ]``
   (``mu_r = 0``), so ``p_hat = mean exp(psi(Z_i; mu))`` is unbiased for *any* ``mu``.
4. *Minimax* ``mu`` (Sec. 3, Theorem 2): ``(x*, mu*)`` solves ``grad psi = 0``, found by a
   Newton-type root search (``scipy.optimize.root``, analytic Jacobian). ``psi(.; mu)`` is
   concave, so ``exp(psi(x*; mu*))`` is an upper bound on the probability (Sec. 3.1), reported
   as ``log_upper_bound``. If the search fails (rows owned by one pivot make ``psi``
   non-smooth when ``m > d``), the best of the unconverged iterates, ``mu = 0`` (plain
   separation of variables, Genz 1992 / GHK) and, when some pivot owns several rows, the
   tilts of the log-sum-exp-smoothed ``psi`` (:mod:`lowprob.polytope_smooth_tilt`, continuation
   in the temperature) on a fixed 512-draw pilot stream is used and ``converged`` is False:
   still unbiased, just noisier. (With ``m > d`` every extra row is generically owned by the
   last pivot, which is only checked, not sampled: on thin cones a shift of the mean often does
   not reach the cone, and the estimate stays unresolved.)

The truncated normals are drawn by inverse transform in log space (``scipy.special.
ndtri_exp``), so randomized quasi-Monte Carlo (scrambled Sobol, Botev's ``mvNqmc``) works:
``qmc=True`` splits ``n_samples`` into ``n_replicates`` independent scrambles and the error
estimate is the standard error across them; ``qmc=False`` is plain Monte Carlo with the
sample standard error.

Public API: :func:`gaussian_polytope_probability` -> :class:`PolytopeResult`;
:class:`TiltedPolytopeSampler` (weighted samples of ``x`` from the tilted proposal, for
importance-sampling corrections); :func:`log_normal_interval` (``log(Phi(b) - Phi(a))``).
The building blocks, shared with the deterministic quadrature of
:mod:`lowprob.propagation.quadrature_cloud` (one implementation): :func:`pivoted_lq` ->
:class:`PolytopeStructure`, :func:`minimax_tilt` -> :class:`TiltSolution` (with the solver's work
counters), :func:`pivot_interval`, :func:`tilted_pivot_update` (one pivot of the sequential
proposal), :func:`truncated_normal_ppf`; each takes an optional ``count`` hook
(:data:`OpCount`) that reports the operations it executes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr, logsumexp, ndtr, ndtri, ndtri_exp
from scipy.stats import qmc as _qmc

from lowprob._validation import as_generator, check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.gaussian_psi import (
    _LOG_SQRT_2PI,
    OpCount,
    PolytopeStructure,
    _tally,
    grad_from_bounds,
    jacobian_from_parts,
    log_normal_interval,
    split_tilt_vector,
)

__all__ = [
    "OpCount",
    "PolytopeResult",
    "PolytopeStructure",
    "TiltSolution",
    "TiltedPolytopeSampler",
    "gaussian_polytope_probability",
    "grad_from_bounds",
    "jacobian_from_parts",
    "log_normal_interval",
    "log_normal_le_zero",
    "minimax_tilt",
    "pivot_interval",
    "pivoted_lq",
    "split_tilt_vector",
    "tilted_pivot_update",
    "truncated_normal_ppf",
]

# --------------------------------------------------------------------------------------
# scalar Gaussian helpers
# --------------------------------------------------------------------------------------
def log_normal_le_zero(mu: object, sd: object) -> np.ndarray:
    """``log P[N(mu, sd^2) <= 0] = log Phi(-mu / sd)`` elementwise; ``sd = 0`` gives 0 or -inf."""
    mu = np.asarray(mu, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, -mu / np.where(sd > 0, sd, 1.0), np.where(mu <= 0, np.inf, -np.inf))
    return log_ndtr(z)


def truncated_normal_ppf(
    a: np.ndarray, b: np.ndarray, u: np.ndarray, *, count: OpCount | None = None
) -> np.ndarray:
    """Inverse CDF of ``N(0,1)`` truncated to ``[a, b]`` at ``u in (0,1)``, stable in the tails.

    ``a > 0``: ``Q(z) = Q(a) - u (Q(a) - Q(b))`` in log space (``ndtri_exp``); ``b < 0``: the
    mirror image with ``Phi``; otherwise ``z = ndtri(Phi(a) + u (Phi(b) - Phi(a)))``. The result
    is clipped to ``[a, b]``. ``count``: see :data:`OpCount`.
    """
    a, b, u = np.broadcast_arrays(a, b, u)
    z = np.empty(a.shape)
    pos = a > 0
    neg = b < 0
    mid = ~(pos | neg)
    _tally(count, truncnorm_ppf=a.size)
    if np.any(pos):  # Q(z) = Q(a) - u (Q(a) - Q(b))
        lqa, lqb = log_ndtr(-a[pos]), log_ndtr(-b[pos])
        t = lqa + np.log1p(-u[pos] * (-np.expm1(lqb - lqa)))
        z[pos] = -ndtri_exp(t)
    if np.any(neg):  # Phi(z) = Phi(b) - (1 - u)(Phi(b) - Phi(a))
        lpa, lpb = log_ndtr(a[neg]), log_ndtr(b[neg])
        t = lpb + np.log1p(-(1.0 - u[neg]) * (-np.expm1(lpa - lpb)))
        z[neg] = ndtri_exp(t)
    if np.any(mid):
        pa, pb = ndtr(a[mid]), ndtr(b[mid])
        z[mid] = ndtri(pa + u[mid] * (pb - pa))
    return np.clip(z, a, b)


_truncnorm_ppf = truncated_normal_ppf  # the historical private name (tests, baselines)


# --------------------------------------------------------------------------------------
# the sequential structure
# --------------------------------------------------------------------------------------
_Structure = PolytopeStructure  # historical private name


def pivoted_lq(
    C: np.ndarray, lo: np.ndarray, hi: np.ndarray, rtol: float = 1e-10, *, count: OpCount | None = None
) -> PolytopeStructure:
    """Botev's pivoted LQ of ``C`` (``m x d``) for the event ``lo <= C xi <= hi`` (module docstring, step 2).

    Next pivot: the active row with the smallest conditional interval probability given the
    truncated means ``zbar`` of the earlier pivots (Botev 2017, Sec. 4.1); rows whose residual
    falls below ``rtol`` times their norm become dependent and are owned by the last pivot they
    involve. ``count`` (:data:`OpCount`) receives the operations executed, iteration by iteration.
    """
    m, d = C.shape
    norms0 = np.linalg.norm(C, axis=1)
    _tally(count, arith=2 * m * d, elementary=m)
    R = C.copy()
    kmax = min(m, d)
    L = np.zeros((m, kmax))
    Q = np.zeros((d, kmax))
    zbar = np.zeros(kmax)
    active = np.ones(m, dtype=bool)
    owner = np.full(m, -1)
    pivots: list[int] = []
    for j in range(kmax):
        res = np.linalg.norm(R, axis=1)
        cand = active & (res > rtol * norms0)
        _tally(count, arith=2 * m * d + 2 * m, elementary=m)
        active &= cand  # rows with no residual left are dependent on earlier pivots
        if not np.any(cand):
            break
        idx = np.flatnonzero(cand)
        shift = L[idx, :j] @ zbar[:j]
        s = res[idx]
        lp = log_normal_interval((lo[idx] - shift) / s, (hi[idx] - shift) / s, count=count)
        k = int(idx[np.argmin(lp)])  # ties -> lowest index (deterministic)
        q = R[k] / res[k]
        if j:
            q -= Q[:, :j] @ (Q[:, :j].T @ q)  # re-orthogonalise
            q /= np.linalg.norm(q)
            _tally(count, arith=4 * d * j + 4 * d, elementary=1)
        Q[:, j] = q
        coef = R[idx] @ q
        L[idx, j] = coef
        R[idx] -= np.outer(coef, q)
        ni = idx.size  # shift, 4 bound ops, argmin, q, coef, rank-1 update
        _tally(count, arith=2 * ni * j + 5 * ni + d + 4 * ni * d)
        R[k] = 0.0
        active[k] = False
        owner[k] = j
        pivots.append(k)
        # truncated mean of the new pivot given the earlier means (Botev's z_j)
        tl = (lo[k] - shift[idx == k][0]) / L[k, j]
        tu = (hi[k] - shift[idx == k][0]) / L[k, j]
        w = log_normal_interval(tl, tu, count=count)
        _tally(count, arith=16, elementary=2)
        with np.errstate(invalid="ignore", over="ignore"):
            zbar[j] = float(
                np.exp(-0.5 * tl * tl - w - _LOG_SQRT_2PI) - np.exp(-0.5 * tu * tu - w - _LOG_SQRT_2PI)
            ) if np.isfinite(w) else 0.0
    r = len(pivots)
    L, Q = L[:, :r], Q[:, :r]
    # owners of dependent rows: the last pivot with a non-negligible coefficient
    for k in np.flatnonzero(owner < 0):
        row = L[k]
        big = np.flatnonzero(np.abs(row) > 1e-10 * max(np.abs(row).max(), 1e-300))
        owner[k] = int(big[-1])
    rows, los, his, index = [], [], [], []
    for j in range(r):
        ks = np.flatnonzero(owner == j)
        c = L[ks, j]
        sign = np.sign(c)
        scale = np.abs(c)
        coeffs = L[ks, :j] / c[:, None]
        lo_k = np.where(sign > 0, lo[ks], -hi[ks]) / scale
        hi_k = np.where(sign > 0, hi[ks], -lo[ks]) / scale
        # after dividing by a negative c the inequality flips: l <= cZ + ... <= u
        # becomes -u/|c| <= -(...)/|c|; coefficients already divided by c (sign included)
        rows.append(coeffs)
        los.append(lo_k)
        his.append(hi_k)
        index.append(ks)
        _tally(count, arith=ks.size * (j + 4))
    return PolytopeStructure(Q, rows, los, his, index, np.asarray(pivots, dtype=np.int64))


def pivot_interval(
    rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, Zprev: np.ndarray, *, count: OpCount | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``[lt_j, ut_j]`` for ``Z_j`` given ``Zprev`` (``(n, j)``): ``lt_j = max_k (lo_k - rows_k . Z_<j)``,
    ``ut_j = min_k (hi_k - rows_k . Z_<j)`` over the ``n_j`` rows owned by pivot ``j``
    (``rows`` ``(n_j, j)``, ``lo``, ``hi`` ``(n_j,)``); returns ``(n,)`` each."""
    n, j = Zprev.shape
    nj = lo.shape[0]
    if j == 0:
        _tally(count, arith=2 * max(nj - 1, 0))
        return np.full(n, lo.max()), np.full(n, hi.min())
    c = Zprev @ rows.T  # (n, n_j)
    with np.errstate(invalid="ignore"):
        lt = np.max(lo[None, :] - c, axis=1)
        ut = np.min(hi[None, :] - c, axis=1)
    _tally(count, arith=n * nj * (2 * j + 4))  # dot products, 2 subtractions, max and min
    return lt, ut


def _bounds(st: PolytopeStructure, j: int, Zprev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pivot_interval` for pivot ``j`` of ``st``."""
    return pivot_interval(st.rows[j], st.lo[j], st.hi[j], Zprev)


def tilted_pivot_update(
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    mu_j: float,
    Zprev: np.ndarray,
    u: np.ndarray | None,
    logw: np.ndarray,
    *,
    count: OpCount | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """One pivot of the tilted sequential proposal (Botev 2017, eqs. 9-10): ``(Z_j, log_w)``.

    ``log_w += log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2 / 2 - mu_j Z_j`` with
    ``Z_j = mu_j + F^{-1}(u)``, ``F`` the CDF of ``N(0, 1)`` truncated to
    ``[lt_j - mu_j, ut_j - mu_j]`` (:func:`pivot_interval`, :func:`truncated_normal_ppf`).
    ``u = None`` (the last pivot, ``mu_j = 0``): only the interval mass, no draw (``Z_j = None``).
    Shapes: ``Zprev (n, j)``, ``u (n,)``, ``logw (n,)``; returns new arrays.
    """
    lt, ut = pivot_interval(rows, lo, hi, Zprev, count=count)
    n = lt.shape[0]
    logw = logw + (log_normal_interval(lt - mu_j, ut - mu_j, count=count) + 0.5 * mu_j**2)
    _tally(count, arith=4 * n)  # two shifts, two additions
    if u is None:
        return None, logw
    empty = ~(lt < ut)
    lt_s = np.where(empty, 0.0, lt - mu_j)
    ut_s = np.where(empty, 1.0, ut - mu_j)
    z = mu_j + truncated_normal_ppf(lt_s, ut_s, u, count=count)
    logw = logw - mu_j * z
    _tally(count, arith=6 * n)  # comparison, two shifts, mu + F^-1, mu z, subtraction
    return z, logw


# --------------------------------------------------------------------------------------
# psi, its gradient and Jacobian (the minimax tilting equations)
# --------------------------------------------------------------------------------------
def _active_rows(st: PolytopeStructure, x: np.ndarray) -> tuple[np.ndarray, ...]:
    r = st.r
    La = np.zeros((r, r))
    Lb = np.zeros((r, r))
    lt = np.empty(r)
    ut = np.empty(r)
    for j in range(r):
        c = st.rows[j] @ x[:j] if j else np.zeros(len(st.lo[j]))
        lo = st.lo[j] - c
        hi = st.hi[j] - c
        a = int(np.argmax(lo))
        b = int(np.argmin(hi))
        lt[j], ut[j] = lo[a], hi[b]
        if j:
            La[j, :j] = st.rows[j][a]
            Lb[j, :j] = st.rows[j][b]
    return lt, ut, La, Lb


def _psi(st: PolytopeStructure, x: np.ndarray, mu: np.ndarray) -> float:
    lt, ut, _, _ = _active_rows(st, x)
    return float(np.sum(log_normal_interval(lt - mu, ut - mu) + 0.5 * mu**2 - x * mu))


def _grad_parts(st: PolytopeStructure, y: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``grad psi`` at ``y = (x_<r, mu_<r)`` and the intermediates its Jacobian reuses (``O(r^2)``)."""
    x, mu = split_tilt_vector(st.r, y)
    lt, ut, La, Lb = _active_rows(st, x)
    return grad_from_bounds(x, mu, lt, ut, La, Lb)


def _grad_jac(st: PolytopeStructure, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(grad psi, its Jacobian)`` at ``y = (x_<r, mu_<r)``."""
    grad, parts = _grad_parts(st, y)
    return grad, jacobian_from_parts(parts)


def _interior_point(
    st: PolytopeStructure, box: float = 50.0
) -> tuple[np.ndarray, float, tuple[tuple[int, int, int], ...]]:
    """Chebyshev-style interior point of ``{Z : rows}`` in ``|Z_i| <= box``; ``(Z, margin, lp_work)``.

    ``margin <= 0`` means the polytope has no interior (probability 0). ``lp_work`` lists
    ``(iterations, constraints, variables)`` of each linear program solved (HiGHS).
    """
    r = st.r
    A_ub, b_ub = [], []
    for j in range(r):
        full = np.zeros((len(st.lo[j]), r))
        full[:, :j] = st.rows[j]
        full[:, j] = 1.0
        nrm = np.linalg.norm(full, axis=1)
        for k in range(full.shape[0]):
            if np.isfinite(st.hi[j][k]):  # row . Z + t |row| <= hi
                A_ub.append(np.append(full[k], nrm[k]))
                b_ub.append(st.hi[j][k])
            if np.isfinite(st.lo[j][k]):  # -row . Z + t |row| <= -lo
                A_ub.append(np.append(-full[k], nrm[k]))
                b_ub.append(-st.lo[j][k])
    A_ub_a, b_ub_a = np.asarray(A_ub), np.asarray(b_ub)
    c = np.zeros(r + 1)
    c[-1] = -1.0
    bounds = [(-box, box)] * r + [(None, 1.0)]
    res = optimize.linprog(c, A_ub=A_ub_a, b_ub=b_ub_a, bounds=bounds, method="highs")
    work = ((int(getattr(res, "nit", 0) or 0), int(A_ub_a.shape[0]), r + 1),)
    if res.status != 0 or res.x[-1] <= 0:
        return np.zeros(r), -math.inf, work
    # second stage: the point of smallest l1 norm keeping half of that margin (the mass of an
    # unbounded cone sits near the origin, not at the box edge): variables (Z, s), |Z| <= s
    t_half = 0.5 * float(res.x[-1])
    A2 = np.hstack([A_ub_a[:, :r], np.zeros((len(b_ub_a), r))])
    b2 = b_ub_a - t_half * A_ub_a[:, -1]
    eye = np.eye(r)
    A2 = np.vstack([A2, np.hstack([eye, -eye]), np.hstack([-eye, -eye])])
    b2 = np.concatenate([b2, np.zeros(2 * r)])
    c2 = np.concatenate([np.zeros(r), np.ones(r)])
    res2 = optimize.linprog(c2, A_ub=A2, b_ub=b2, bounds=[(-box, box)] * (2 * r), method="highs")
    z = res2.x[:r] if res2.status == 0 else res.x[:r]
    work += ((int(getattr(res2, "nit", 0) or 0), int(A2.shape[0]), 2 * r),)
    return z, float(res.x[-1]), work


@dataclass(frozen=True)
class TiltSolution:
    """The minimax tilt of :func:`minimax_tilt` and the work done to find it.

    Attributes:
        x, mu: ``(r,)`` the saddle point ``x*`` and tilt ``mu*`` (``mu_{r-1} = 0``).
        converged: whether ``grad psi = 0`` was solved (else the best candidate or ``mu = 0``).
        log_upper_bound: ``psi(x*; mu*)`` (``-inf``: no interior; ``inf``: unavailable).
        grad_evaluations: evaluations of ``grad psi`` (each ``O(r^2)`` plus ``r`` interval masses).
        grad_jac_evaluations: Jacobians formed from a gradient's intermediates (each ``O(r^3)``);
            formed only when the root finder asks for one.
        psi_evaluations: evaluations of ``psi`` alone.
        root_function_evaluations, root_jacobian_evaluations: MINPACK's ``nfev`` / ``njev``
            summed over the root searches run (its own linear algebra is charged per call).
        lp_work: ``(iterations, constraints, variables)`` of each LP (interior point).
        pilot_points: tilted draws spent on the fixed pilot stream when the search failed.
        smooth_grad_jac_evaluations: evaluations of the smoothed ``(grad psi_tau, Jacobian)``
            (:func:`lowprob.polytope_smooth_tilt.smoothed_grad_jac`; failure branch only; its
            MINPACK calls are added to the ``root_*`` counters).
        smooth_candidates: smoothed tilts (one per converged temperature) put to the pilot.
        smoothed: whether the returned ``mu`` is a smoothed tilt.
        smooth_converged: whether the smoothed solve converged at its finest temperature.
    """

    x: np.ndarray
    mu: np.ndarray
    converged: bool
    log_upper_bound: float
    grad_jac_evaluations: int = 0
    grad_evaluations: int = 0
    psi_evaluations: int = 0
    root_function_evaluations: int = 0
    root_jacobian_evaluations: int = 0
    lp_work: tuple[tuple[int, int, int], ...] = ()
    pilot_points: int = 0
    smooth_grad_jac_evaluations: int = 0
    smooth_candidates: int = 0
    smoothed: bool = False
    smooth_converged: bool = False


def minimax_tilt(
    st: PolytopeStructure, *, count: OpCount | None = None, pilot_points: int = 512
) -> TiltSolution:
    """Botev's minimax tilt ``mu*`` for ``st`` (module docstring, step 4; Botev 2017, Theorem 2).

    Solves ``grad psi(x, mu) = 0`` by ``scipy.optimize.root`` (``hybr``, then ``lm``) from
    zero, or from an LP interior point when some pivot owns several rows (an empty interior
    gives ``log_upper_bound = -inf``: probability 0). On failure the candidate (or ``mu = 0``)
    with the smallest weight variance on a fixed ``pilot_points``-point pilot stream (default 512)
    is returned with ``converged = False``. ``count`` receives the pilot's operations (:data:`OpCount`); the
    solver's work is returned in the :class:`TiltSolution` counters.
    """
    r = st.r
    zero = np.zeros(r)
    if r <= 1:
        return TiltSolution(zero, zero, True, _psi(st, zero, zero), psi_evaluations=1)
    y0 = np.zeros(2 * (r - 1))
    lp_work: tuple[tuple[int, int, int], ...] = ()
    if any(len(lo) > 1 for lo in st.lo):  # dependent rows: start from an interior point
        z0, margin, lp_work = _interior_point(st)
        if margin <= 0:
            return TiltSolution(zero, zero, True, -math.inf, lp_work=lp_work)
        y0[: r - 1] = z0[: r - 1]
        y0[r - 1 :] = z0[: r - 1]
    calls = [0, 0]  # gradient evaluations, Jacobian evaluations
    nfev = njev = 0
    last: dict[str, Any] = {}

    def fun(y: np.ndarray) -> np.ndarray:
        # The Jacobian is formed only when MINPACK asks for it (``jac``), not with every
        # function value: hybrj/lmder take ~40 function values and a handful of Jacobians.
        calls[0] += 1
        g, parts = _grad_parts(st, y)
        last["y"], last["parts"] = y.copy(), parts
        return g

    def jac(y: np.ndarray) -> np.ndarray:
        calls[1] += 1
        if "y" not in last or not np.array_equal(last["y"], y):
            fun(y)
        return jacobian_from_parts(last["parts"])

    candidates = []
    for method in ("hybr", "lm"):
        try:
            with np.errstate(all="ignore"):
                sol = optimize.root(fun, y0, jac=jac, method=method)
            nfev += int(getattr(sol, "nfev", 0) or 0)
            njev += int(getattr(sol, "njev", 0) or 0)
            y = sol.x
            g = fun(y)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(g))):
            continue
        if np.max(np.abs(g)) < 1e-6:
            break
        candidates.append(y)
    else:
        # No exact solution (rows owned by one pivot make psi non-smooth). Every mu keeps the
        # estimator unbiased; pick the candidate (or mu = 0) with the smallest variance on a
        # fixed pilot stream that is independent of the caller's samples.
        # Several rows per pivot: add the tilts of the log-sum-exp-smoothed psi (continuation in
        # the temperature, lowprob.polytope_smooth_tilt) as candidates.
        smooth = None
        if lp_work:
            from lowprob.polytope_smooth_tilt import smooth_minimax_tilt

            smooth = smooth_minimax_tilt(st, y0)
            nfev += smooth.root_function_evaluations
            njev += smooth.root_jacobian_evaluations
        n_plain = 1 + len(candidates)
        best, best_var, best_i = np.zeros(2 * (r - 1)), math.inf, 0
        U = np.random.default_rng(0).random((check_int("pilot_points", pilot_points, minimum=2), r))
        pilot = 0
        for i, y in enumerate([np.zeros(2 * (r - 1)), *candidates, *(smooth.candidates if smooth else ())]):
            mu = np.zeros(r)
            mu[: r - 1] = y[r - 1 :]
            _, lw = _sample_Z(st, mu, U, count=count)
            pilot += U.shape[0]
            if not np.any(np.isfinite(lw)):
                continue
            lm = float(logsumexp(lw) - math.log(U.shape[0]))
            v = float(np.var(np.exp(lw - lm)))
            if v < best_var:
                best, best_var, best_i = y, v, i
        mu = np.zeros(r)
        mu[: r - 1] = best[r - 1 :]
        return TiltSolution(
            zero, mu, False, math.inf, grad_evaluations=calls[0], grad_jac_evaluations=calls[1],
            root_function_evaluations=nfev, root_jacobian_evaluations=njev, lp_work=lp_work, pilot_points=pilot,
            smooth_grad_jac_evaluations=smooth.grad_jac_evaluations if smooth else 0,
            smooth_candidates=len(smooth.candidates) if smooth else 0, smoothed=best_i >= n_plain,
            smooth_converged=bool(smooth and smooth.converged and smooth.converged[-1]),
        )
    x = np.zeros(r)
    mu = np.zeros(r)
    x[: r - 1], mu[: r - 1] = y[: r - 1], y[r - 1 :]
    return TiltSolution(
        x,
        mu,
        True,
        _psi(st, x, mu),
        grad_evaluations=calls[0],
        grad_jac_evaluations=calls[1],
        psi_evaluations=1,
        root_function_evaluations=nfev,
        root_jacobian_evaluations=njev,
        lp_work=lp_work,
    )


def _solve_tilting(st: PolytopeStructure) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """``(x*, mu*, converged, log_upper_bound)`` of :func:`minimax_tilt`."""
    t = minimax_tilt(st)
    return t.x, t.mu, t.converged, t.log_upper_bound


def _sample_Z(
    st: PolytopeStructure, mu: np.ndarray, U: np.ndarray, *, count: OpCount | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sequential tilted draws from uniforms ``U`` (``(n, r)``): ``(Z (n, r), log_w (n,))``."""
    n, r = U.shape[0], st.r
    Z = np.zeros((n, r))
    logw = np.zeros(n)
    for j in range(r):
        z, logw = tilted_pivot_update(
            st.rows[j],
            st.lo[j],
            st.hi[j],
            float(mu[j]),
            Z[:, :j],
            U[:, min(j, U.shape[1] - 1)],
            logw,
            count=count,
        )
        Z[:, j] = z
    logw[~np.isfinite(logw)] = -np.inf
    return Z, logw


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolytopeResult:
    """A Gaussian polytope probability, in log space, with its Monte Carlo error estimate.

    The one result type of every polytope estimator: Botev tilting here, and the final-layer
    estimators of :mod:`lowprob.lm_bridge.whitebox.polytope` (top-K tilting with an IS
    correction, ADF, product model), which fill the fields they know.

    Attributes:
        log_probability: natural log of the estimate (``-inf`` when the polytope is empty).
        relative_error: standard error / estimate (0 for exact or deterministic answers,
            ``inf`` when a sampler saw no hit).
        method: e.g. ``"exact"`` (rank <= 1), ``"tilting-qmc"``, ``"tilting-mc"``, ``"adf"``.
        log_upper_bound: ``psi(x*; mu*)``, an upper bound on ``log P`` (``inf`` if unavailable).
        n_samples: samples used (0 for exact or deterministic answers).
        rank: the rank ``r`` of the constraint system after whitening (0 if not computed).
        converged: whether the minimax equations were solved (else ``mu = 0``).
        flops: counted floating-point operations beyond the tilting itself (e.g. exact checks).
        diagnostics: method-specific details.

    ``probability`` and ``std_error`` are derived (``probability`` underflows to 0 below
    ``exp(-745)``; use ``log_probability``).
    """

    log_probability: float
    relative_error: float
    method: str
    log_upper_bound: float = math.inf
    n_samples: int = 0
    rank: int = 0
    converged: bool = True
    flops: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def probability(self) -> float:
        return math.exp(self.log_probability) if self.log_probability > -745 else 0.0

    @property
    def std_error(self) -> float:
        """``probability * relative_error`` (0 for an exact 0, ``inf`` when unknown)."""
        p, rel = self.probability, self.relative_error
        if p > 0:
            return p * rel
        return 0.0 if rel == 0 else math.inf

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation interval ``p +- z se`` clipped at 0 (linear scale)."""
        if not 0 < level < 1:
            raise InputValueError(f"level must lie in (0, 1), got {level!r}.")
        z = float(ndtri(0.5 + level / 2))
        return max(
            self.probability - z * self.std_error, 0.0
        ), self.probability + z * self.std_error

    def log_confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The same interval in log space, computed from the relative error (no underflow)."""
        if not 0 < level < 1:
            raise InputValueError(f"level must lie in (0, 1), got {level!r}.")
        z = float(ndtri(0.5 + level / 2))
        rel = self.relative_error
        lo = self.log_probability + math.log(1 - z * rel) if z * rel < 1 else -math.inf
        return lo, self.log_probability + math.log1p(z * rel)


def _check_bounds(name: str, value: object, m: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"{name} must be a numeric array, got {value!r}: {exc}") from exc
    if arr.ndim == 0:
        arr = np.full(m, float(arr))
    if arr.shape != (m,):
        raise InputValueError(
            f"{name} must have shape ({m},) (one per row of A), got {arr.shape!r}."
        )
    if np.any(np.isnan(arr)):
        raise InputValueError(f"{name} contains NaN; use -inf / inf for a missing bound.")
    return arr


def _check_cov(cov: object, d: int, regularization: float) -> np.ndarray:
    """Cholesky factor of ``cov + regularization * mean(diag) * I``; raise if not positive definite."""
    S = check_finite_array("cov", cov, shape=(d, d))
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * max(np.abs(S).max(initial=0.0), 1e-300)):
        raise InputValueError("cov must be symmetric; pass (cov + cov.T) / 2.")
    if regularization < 0 or not math.isfinite(regularization):
        raise InputValueError(f"regularization must be finite and >= 0, got {regularization!r}.")
    S = 0.5 * (S + S.T)
    if regularization > 0:
        S = S + regularization * max(float(np.mean(np.diag(S))), 1e-300) * np.eye(d)
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        ev = float(np.linalg.eigvalsh(S)[0])
        raise InputValueError(
            f"cov is singular or indefinite (smallest eigenvalue {ev!r}); pass "
            "regularization=1e-6 (adds that fraction of the mean variance to the diagonal), "
            "or project x onto the range of cov first."
        ) from None


class TiltedPolytopeSampler:
    """Weighted draws of ``x ~ N(mean, cov)`` from Botev's tilted proposal for a polytope.

    ``sample(n, seed)`` returns ``(x, log_w)`` with ``x`` of shape ``(n, d)`` inside the
    polytope ``{lower <= A x <= upper}`` (up to rounding) and ``E[exp(log_w) f(x)] =
    E_{N(mean, cov)}[1_polytope(x) f(x)]`` for every integrable ``f``: this is the proposal
    for importance-sampling corrections with further constraints. The component of ``xi``
    orthogonal to the constraint rows is drawn exactly from its Gaussian law.

    Args: as :func:`gaussian_polytope_probability`.
    """

    def __init__(
        self,
        A: object,
        lower: object,
        upper: object,
        mean: object | None = None,
        cov: object | None = None,
        *,
        regularization: float = 0.0,
        rtol: float = 1e-10,
    ) -> None:
        A = check_finite_array("A", A, ndim=2)
        m, d = A.shape
        if m < 1 or d < 1:
            raise InputValueError(
                f"A must have at least one row and column, got shape {A.shape!r}."
            )
        lo = _check_bounds("lower", lower, m)
        hi = _check_bounds("upper", upper, m)
        if np.any(lo > hi):
            bad = int(np.flatnonzero(lo > hi)[0])
            raise InputValueError(
                f"lower must be <= upper elementwise; row {bad} has lower={lo[bad]!r} > upper={hi[bad]!r}."
            )
        mean_ = np.zeros(d) if mean is None else check_finite_array("mean", mean, shape=(d,))
        L_S = np.eye(d) if cov is None else _check_cov(cov, d, float(regularization))
        self.d, self.m = d, m
        self.mean = mean_
        self.L_S = L_S
        C = A @ L_S
        shift = A @ mean_
        lo, hi = lo - shift, hi - shift
        norms = np.linalg.norm(C, axis=1)
        zero = norms <= 1e-300
        # rows with no randomness are deterministic constraints 0 in [lo, hi]
        self.infeasible = bool(np.any(zero & ((lo > 0) | (hi < 0))))
        keep = ~zero
        self._all_rows_deterministic = not np.any(keep)
        if self.infeasible or self._all_rows_deterministic:
            self.structure = None
            self.x_star = self.mu = np.zeros(0)
            self.converged, self.log_upper_bound = True, (-math.inf if self.infeasible else 0.0)
            return
        self.structure = pivoted_lq(C[keep], lo[keep], hi[keep], rtol)
        self.x_star, self.mu, self.converged, self.log_upper_bound = _solve_tilting(self.structure)

    @property
    def rank(self) -> int:
        return 0 if self.structure is None else self.structure.r

    def _log_weights_from_uniforms(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.structure is not None
        return _sample_Z(self.structure, self.mu, U)

    def sample(self, n: int, *, seed: object = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` tilted draws: ``x`` ``(n, d)`` and ``log_w`` ``(n,)`` (``-inf`` = weight 0)."""
        n = check_int("n", n, minimum=1)
        rng = as_generator(seed)
        if self.structure is None:
            xi = rng.standard_normal((n, self.d))
            lw = np.full(n, -np.inf if self.infeasible else 0.0)
            return self.mean + xi @ self.L_S.T, lw
        st = self.structure
        Z, logw = self._log_weights_from_uniforms(rng.random((n, st.r)))
        eta = rng.standard_normal((n, self.d))
        xi = Z @ st.Q.T + eta - (eta @ st.Q) @ st.Q.T
        return self.mean + xi @ self.L_S.T, logw

    def probability(
        self,
        n_samples: int = 2**14,
        *,
        seed: object = None,
        qmc: bool = True,
        n_replicates: int = 16,
    ) -> PolytopeResult:
        """Estimate the polytope probability (see :func:`gaussian_polytope_probability`)."""
        n_samples = check_int("n_samples", n_samples, minimum=2)
        n_replicates = check_int("n_replicates", n_replicates, minimum=2)
        rng = as_generator(seed)
        diag = {"x_star": self.x_star.tolist(), "mu": self.mu.tolist()}
        if self.structure is None:
            lp = -math.inf if self.infeasible else 0.0
            return PolytopeResult(lp, 0.0, "exact", log_upper_bound=lp, diagnostics=diag)
        st = self.structure
        if st.r == 1 or self.log_upper_bound == -math.inf:
            # rank 1 is a single interval; an upper bound of 0 means no interior (LP check)
            lp = (
                float(log_normal_interval(st.lo[0].max(), st.hi[0].min()))
                if st.r == 1
                else -math.inf
            )
            return PolytopeResult(lp, 0.0, "exact", log_upper_bound=lp, rank=st.r, diagnostics=diag)
        dim = st.r - 1  # the last pivot is integrated exactly, never sampled
        if qmc:
            per = max(n_samples // n_replicates, 1)
            reps = []
            for _ in range(n_replicates):
                sob = _qmc.Sobol(dim, scramble=True, seed=rng)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # n not a power of 2
                    U = sob.random(per)
                U = np.clip(U, 1e-16, 1 - 1e-16)
                _, lw = _sample_Z(st, self.mu, np.column_stack([U, np.full(per, 0.5)]))
                reps.append(logsumexp(lw) - math.log(per))
            reps_a = np.asarray(reps)
            lp = float(logsumexp(reps_a) - math.log(n_replicates))
            used = per * n_replicates
            if np.isfinite(lp):
                rel = float(np.std(np.exp(reps_a - lp), ddof=1) / math.sqrt(n_replicates))
            else:
                rel = math.inf  # the LP found an interior, but no draw hit it: unresolved, not 0
            method = "tilting-qmc"
        else:
            U = rng.random((n_samples, st.r))
            _, lw = _sample_Z(st, self.mu, U)
            lp = float(logsumexp(lw) - math.log(n_samples))
            used = n_samples
            if np.isfinite(lp):
                rel = float(np.std(np.exp(lw - lp), ddof=1) / math.sqrt(n_samples))
            else:
                rel = math.inf  # the LP found an interior, but no draw hit it: unresolved, not 0
            method = "tilting-mc"
        return PolytopeResult(
            log_probability=lp,
            relative_error=rel,
            log_upper_bound=float(self.log_upper_bound),
            n_samples=used,
            rank=st.r,
            method=method,
            converged=self.converged,
            diagnostics=diag,
        )


def gaussian_polytope_probability(
    A: object,
    lower: object,
    upper: object,
    mean: object | None = None,
    cov: object | None = None,
    *,
    n_samples: int = 2**14,
    seed: object = None,
    qmc: bool = True,
    n_replicates: int = 16,
    regularization: float = 0.0,
) -> PolytopeResult:
    """``P[lower <= A x <= upper]`` for ``x ~ N(mean, cov)`` by Botev's minimax tilting.

    Args:
        A: ``(m, d)`` finite constraint matrix (any ``m``; ``m > d`` is allowed).
        lower, upper: ``(m,)`` bounds (or scalars), ``-inf`` / ``inf`` allowed, ``lower <= upper``.
            A half-space ``a . x + c > 0`` is ``lower = -c, upper = inf``.
        mean: ``(d,)`` (default 0). cov: ``(d, d)`` symmetric positive definite (default ``I``).
        n_samples: total samples (split over ``n_replicates`` scrambles when ``qmc``).
        seed: int, None or ``numpy.random.Generator``.
        qmc: randomized quasi-Monte Carlo (scrambled Sobol) if True, plain MC otherwise.
        regularization: add ``regularization * mean(diag(cov))`` to the diagonal; with the
            default 0 a singular ``cov`` raises :class:`~lowprob.errors.InputValueError`.

    Returns:
        :class:`PolytopeResult` (estimate, log, standard error, upper bound, diagnostics).

    Reference: Botev (2017), JRSS-B 79(1), eqs. (9)-(10), Theorem 2; ``mvNqmc`` for the QMC.
    """
    sampler = TiltedPolytopeSampler(A, lower, upper, mean, cov, regularization=regularization)
    return sampler.probability(n_samples, seed=seed, qmc=qmc, n_replicates=n_replicates)
