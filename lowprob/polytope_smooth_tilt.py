"""A smoothed minimax tilt for polytopes whose pivots own several rows (``m > d``).

When a pivot ``j`` of :func:`lowprob.gaussian_polytope.pivoted_lq` owns several rows, its interval
``[lt_j, ut_j] = [max_k (lo_k - rows_k . x_<j), min_k (hi_k - rows_k . x_<j)]`` is a non-smooth
function of ``x``, Botev's ``psi`` (2017, eq. 10) is non-smooth, and the Newton-type root search
of :func:`lowprob.gaussian_polytope.minimax_tilt` often fails (typically on thin polyhedral cones
``{W x > 0}`` with ``W`` ``m x d``, ``m > d``). Any tilt ``mu`` keeps the estimator unbiased, so
this module only has to produce a *good* ``mu``.

**Smoothing.** Replace the max and min of the owned rows by log-sum-exps at temperature ``tau``:

    lt_j^tau(x) = tau log sum_k exp((lo_k - rows_k . x) / tau)   >= lt_j(x),
    ut_j^tau(x) = -tau log sum_k exp(-(hi_k - rows_k . x) / tau) <= ut_j(x),

with ``lt_j^tau - lt_j <= tau log n_j`` (and the same for ``ut``): the smoothed interval lies
*inside* the true one and tends to it as ``tau -> 0``. (Pivot 0, whose bounds do not depend on
``x``, keeps its exact interval.) ``lt^tau`` is convex and ``ut^tau`` concave in ``x``, and
``w(a, b) = log(Phi(b) - Phi(a))`` is concave, decreasing in ``a`` and increasing in ``b``, so

    psi_tau(x; mu) = sum_j [ w(lt_j^tau(x) - mu_j, ut_j^tau(x) - mu_j) + mu_j^2 / 2 - x_j mu_j ]

stays concave in ``x`` for fixed ``mu`` (Botev's Sec. 3.1 argument goes through). Its gradient is
Botev's with the active rows replaced by the softmax-weighted rows
``La_j = sum_k s_k rows_k`` (``s = softmax((lo - rows . x)/tau)``) and ``Lb_j`` (softmax of
``-(hi - rows . x)/tau``); its Jacobian adds the curvature of the soft bounds to the ``x x``
block, ``-sum_j (pl_j Cov_s(rows) + pu_j Cov_s'(rows)) / tau`` (negative semidefinite;
``pl, pu`` the normal densities at the interval ends over the interval mass).

**Continuation.** ``grad psi_tau = 0`` is solved by ``scipy.optimize.root`` (``hybr``, analytic
Jacobian) for a decreasing sequence of temperatures, each warm-started from the previous
solution; the first temperature is chosen so that the smoothed interval is non-empty at the
starting point (``tau_0 log(n_lo n_hi) <= width / 2``). Each converged ``mu_tau`` is a candidate
tilt; :func:`lowprob.gaussian_polytope.minimax_tilt` validates them against its other candidates
on its fixed pilot stream. The smoothing is a device to *find* ``mu``; the estimator that uses it
is Botev's, exact and unbiased, with its replicate error.

**Limitation.** Generically every row beyond the first ``r`` is owned by the *last* pivot, which
the estimator integrates exactly but only as a check of those rows; the sampled pivots keep unit
variance. On thin cones with ``m >> d`` no tilt (smoothed or not) may then put a pilot draw inside
the cone, and the estimate stays unresolved (``benchmarks/RESULTS-truth.md``: ~9 % of feasible
``32 x 8`` and ``32 x 16`` cones at ``2^14`` points).

Reference: Botev (2017), "The normal law under linear restrictions: simulation and estimation
via minimax tilting", JRSS-B 79(1), 125-148 (eqs. 9-10, Theorem 2); the log-sum-exp smoothing of
a max is Nesterov (2005), "Smooth minimization of non-smooth functions", Math. Program. 103.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from lowprob.errors import InputValueError
from lowprob.gaussian_psi import (
    PolytopeStructure,
    grad_from_bounds,
    jacobian_from_parts,
    log_normal_interval,
    split_tilt_vector,
)

__all__ = [
    "DEFAULT_TEMPERATURES",
    "SmoothTiltResult",
    "smooth_minimax_tilt",
    "smoothed_grad_jac",
    "smoothed_pivot_interval",
]


_OUTSIDE = 1e10  # the residual reported outside the smoothed domain

#: temperatures of the continuation, as multiples of the starting temperature ``tau_0``
DEFAULT_TEMPERATURES: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01)


def _soft_max(v: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """``(tau log sum exp(v / tau), softmax(v / tau))``; ``(-inf, 0)`` if every ``v`` is ``-inf``."""
    top = float(np.max(v))
    if not math.isfinite(top):
        return top, np.zeros_like(v) if top == -math.inf else np.where(v == top, 1.0, 0.0)
    e = np.exp((v - top) / tau)
    s = float(e.sum())
    return top + tau * math.log(s), e / s


def smoothed_pivot_interval(
    rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, x_prev: np.ndarray, tau: float
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Soft interval of one pivot at ``x_prev`` (``(j,)``): ``(lt, ut, La, Lb, Hl, Hu)``.

    ``lt = tau log sum_k exp((lo_k - rows_k . x)/tau)``, ``ut = -tau log sum_k exp(-(hi_k -
    rows_k . x)/tau)`` (module docstring), so ``max_k(...) <= lt <= max_k(...) + tau log n`` and
    ``min_k(...) - tau log n <= ut <= min_k(...)``. ``-La`` / ``-Lb`` (``(j,)``) are the gradients of
    ``lt`` / ``ut`` in ``x``; ``Hl = Cov_s(rows) / tau`` and ``-Hu`` (``(j, j)``) their Hessians.
    """
    if not tau > 0:
        raise InputValueError(f"tau must be > 0, got {tau!r}.")
    j = x_prev.shape[0]
    c = rows @ x_prev if j else np.zeros(lo.shape[0])
    lt, sl = _soft_max(lo - c, tau)
    m_ut, su = _soft_max(-(hi - c), tau)
    ut = -m_ut
    La = sl @ rows if j else np.zeros(0)
    Lb = su @ rows if j else np.zeros(0)
    if j:
        Hl = ((rows * sl[:, None]).T @ rows - np.outer(La, La)) / tau
        Hu = ((rows * su[:, None]).T @ rows - np.outer(Lb, Lb)) / tau
    else:
        Hl = Hu = np.zeros((0, 0))
    return lt, ut, La, Lb, Hl, Hu


def _smoothed_terms(st: PolytopeStructure, x: np.ndarray, tau: float) -> tuple[np.ndarray, ...]:
    r = st.r
    lt, ut = np.empty(r), np.empty(r)
    La, Lb = np.zeros((r, r)), np.zeros((r, r))
    H = [np.zeros((0, 0))] * r
    Hu_list = [np.zeros((0, 0))] * r
    for j in range(r):
        if j == 0 or st.lo[j].shape[0] == 1:  # exact bounds: constant, or one affine row
            c = st.rows[j] @ x[:j] if j else np.zeros(st.lo[j].shape[0])
            lt[j], ut[j] = float(np.max(st.lo[j] - c)), float(np.min(st.hi[j] - c))
            if j:
                La[j, :j] = Lb[j, :j] = st.rows[j][0]
            continue
        lt[j], ut[j], la, lb, hl, hu = smoothed_pivot_interval(
            st.rows[j], st.lo[j], st.hi[j], x[:j], tau
        )
        La[j, :j], Lb[j, :j] = la, lb
        H[j], Hu_list[j] = hl, hu
    return lt, ut, La, Lb, H, Hu_list  # type: ignore[return-value]


def smoothed_psi(st: PolytopeStructure, x: np.ndarray, mu: np.ndarray, tau: float) -> float:
    """``psi_tau(x; mu)`` (module docstring); ``x, mu`` of shape ``(r,)``."""
    lt, ut, *_ = _smoothed_terms(st, x, tau)
    return float(np.sum(log_normal_interval(lt - mu, ut - mu) + 0.5 * mu**2 - x * mu))


def smoothed_grad_jac(
    st: PolytopeStructure, y: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad psi_tau, its Jacobian)`` at ``y = (x_<r-1, mu_<r-1)`` (``x_{r-1}, mu_{r-1} = 0``).

    Botev's (2017, eq. 10) gradient with softmax-weighted rows plus the soft bounds' curvature
    in the ``x x`` block (module docstring). Outside the smoothed domain (an empty interval) the
    result is non-finite.
    """
    _, g, J = _psi_grad_jac(st, y, tau)
    return g, J


def _psi_grad_jac(
    st: PolytopeStructure, y: np.ndarray, tau: float
) -> tuple[float, np.ndarray, np.ndarray]:
    x, mu = split_tilt_vector(st.r, y)
    lt, ut, La, Lb, Hl, Hu = _smoothed_terms(st, x, tau)
    grad, parts = grad_from_bounds(x, mu, lt, ut, La, Lb)
    J = jacobian_from_parts(parts)
    pl, pu, w = parts[2], parts[3], parts[-1]
    for j in range(1, st.r):  # curvature of the soft bounds (the x-x block is J[:n, :n])
        if Hl[j].size:
            J[:j, :j] -= pl[j] * Hl[j] + pu[j] * Hu[j]
    psi = float(np.sum(w + 0.5 * mu**2 - x * mu))
    return psi, grad, J


@dataclass(frozen=True)
class SmoothTiltResult:
    """Output of :func:`smooth_minimax_tilt`.

    Attributes:
        candidates: ``y = (x_<r-1, mu_<r-1)`` solving ``grad psi_tau = 0`` (to ``tol``), one per
            temperature that converged, coarse to fine; empty when no start is interior.
        temperatures: the temperatures tried, in order (over the starts tried).
        converged: per temperature tried, whether its root search converged.
        grad_jac_evaluations: evaluations of :func:`smoothed_grad_jac`.
        root_function_evaluations, root_jacobian_evaluations: MINPACK's ``nfev`` / ``njev``.
    """

    candidates: tuple[np.ndarray, ...]
    temperatures: tuple[float, ...]
    converged: tuple[bool, ...]
    grad_jac_evaluations: int = 0
    root_function_evaluations: int = 0
    root_jacobian_evaluations: int = 0


def _start_temperature(st: PolytopeStructure, x: np.ndarray) -> float:
    """``tau_0 = min(1, min_j width_j / (2 log(n_lo,j n_hi,j)))`` at ``x`` (``(r,)``): the smoothed
    intervals stay non-empty there (each soft bound moves by at most ``tau log n``); ``nan`` if
    some exact interval is already empty at ``x``."""
    tau = 1.0
    for j in range(1, st.r):
        lo, hi = st.lo[j], st.hi[j]
        if lo.shape[0] < 2:
            continue
        c = st.rows[j] @ x[:j]
        width = float(np.min(hi - c) - np.max(lo - c))
        if not width > 0:
            return math.nan
        shrink = math.log(max(int(np.sum(np.isfinite(lo))), 1)) + math.log(
            max(int(np.sum(np.isfinite(hi))), 1)
        )
        if shrink > 0 and math.isfinite(width):
            tau = min(tau, 0.5 * width / shrink)
    return tau


def smooth_minimax_tilt(
    st: PolytopeStructure,
    y0: np.ndarray,
    *,
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES,
    tol: float = 1e-6,
) -> SmoothTiltResult:
    """Minimax tilts of the log-sum-exp-smoothed ``psi_tau`` by continuation in ``tau`` (module docstring).

    Args:
        st: the pivoted structure (:func:`lowprob.gaussian_polytope.pivoted_lq`), rank ``r >= 2``.
        y0: ``(2 (r - 1),)`` start ``(x_<r-1, mu_<r-1)``, its ``x`` strictly inside the polytope
            (e.g. the LP interior point of :func:`~lowprob.gaussian_polytope.minimax_tilt`).
        temperatures: multiples of ``tau_0`` (the largest temperature at which every smoothed
            interval is non-empty at ``y0``, at most 1), decreasing.
        tol: a saddle is accepted when ``max |grad psi_tau| < tol``.

    Returns:
        :class:`SmoothTiltResult`: the converged tilts coarse to fine from the first start whose
        finest temperature converged (or, if none converged, the last in-domain iterate), and
        the work counters. Starts: ``y0``, then ``y0`` scaled to ``|x| = sqrt(r)`` when ``|x_0| >
        2 sqrt(r)`` (the LP point of a cone lies far out, the mass near radius ``sqrt(r)``); a start
        is skipped if some interval is empty there. Each temperature is solved by
        ``scipy.optimize.root`` (``hybr``, then ``lm``; at most ``20 (2 (r - 1) + 1)`` evaluations
        each), warm-started from the previous temperature's root.
    """
    r = st.r
    y0 = np.asarray(y0, dtype=np.float64)
    if r < 2 or y0.shape != (2 * (r - 1),):
        raise InputValueError(
            f"y0 must have shape (2 (r - 1),) = ({2 * (r - 1)},) with r >= 2, got {y0.shape!r}."
        )
    if not temperatures or any(not (t > 0) for t in temperatures):
        raise InputValueError(
            f"temperatures must be a non-empty tuple of positive numbers, got {temperatures!r}."
        )
    n = r - 1
    budget = {"hybr": "maxfev", "lm": "maxiter"}
    max_evaluations = 20 * (2 * n + 1)
    calls = [0]
    nfev = njev = 0
    taus: list[float] = []
    conv: list[bool] = []
    cands: list[np.ndarray] = []
    norm0 = float(np.linalg.norm(y0[:n]))
    scales = [1.0] + ([math.sqrt(r) / norm0] if norm0 > 2 * math.sqrt(r) else [])
    for scale in scales:  # the LP point, then (cones sit near the origin) scaled to radius sqrt(r)
        y = y0 * scale
        x0 = np.zeros(r)
        x0[:n] = y[:n]
        tau0 = _start_temperature(st, x0)
        if not math.isfinite(tau0):
            continue
        got: list[np.ndarray] = []
        last: np.ndarray | None = None
        for mult in temperatures:
            tau = float(tau0 * mult)
            taus.append(tau)

            def fun(v: np.ndarray, tau: float = tau) -> tuple[np.ndarray, np.ndarray]:
                calls[0] += 1
                g, J = smoothed_grad_jac(st, v, tau)
                if not (np.all(np.isfinite(g)) and np.all(np.isfinite(J))):
                    # outside the smoothed domain: a large residual makes MINPACK shorten the step
                    return np.full_like(v, _OUTSIDE), np.eye(v.shape[0])
                return g, J

            ok = False
            for method in ("hybr", "lm"):
                try:
                    with np.errstate(all="ignore"):
                        sol = optimize.root(
                            fun,
                            y,
                            jac=True,
                            method=method,
                            options={budget[method]: max_evaluations},
                        )
                    nfev += int(getattr(sol, "nfev", 0) or 0)
                    njev += int(getattr(sol, "njev", 0) or 0)
                    if not np.all(np.isfinite(sol.x)):
                        continue
                    g, _ = fun(sol.x)
                except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                    continue
                ok = bool(np.max(np.abs(g)) < tol)
                if ok:
                    break
                if (
                    np.max(np.abs(g)) < _OUTSIDE
                ):  # unconverged but in the domain: the pilot may take it
                    last = sol.x.copy()
            conv.append(ok)
            if ok:
                y = sol.x.copy()
                got.append(y.copy())
        cands.extend(got)
        if not got and last is not None:
            cands.append(last)
        if conv and conv[-1]:  # the finest temperature converged from this start
            break
    return SmoothTiltResult(tuple(cands), tuple(taus), tuple(conv), calls[0], nfev, njev)
