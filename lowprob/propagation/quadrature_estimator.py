"""``quadrature`` and ``quadrature-genz``: deterministic quadrature sketches of the halfspace toy.

``p(W, b) = P_{x ~ N(0, I_n)}[W x + b > 0]`` (``W`` is ``m x n``) through the one loop
(:func:`lowprob.propagation.loop.propagate`), in two passes (DESIGN.md sections 1 and 4):

* **Backward (claims).** From the whole set of half-spaces: Botev's pivoted LQ of ``W``
  (:func:`lowprob.gaussian_polytope.pivoted_lq`: the order in which the pivots are placed,
  rarest conditional interval first, and the rows each pivot owns) and, for ``quadrature``, the
  minimax tilt ``mu`` (:func:`lowprob.gaussian_polytope.minimax_tilt`: where the mass of the event
  is). This is where the event tells the forward model where to put its points. The claim after
  pivot ``j`` is :class:`TiltedRemainder`: the remaining pivots and their tilt.
* **Forward (activation model).** A :class:`~lowprob.propagation.quadrature_cloud.QuadratureCloud`
  of ``K`` fixed Sobol points, pushed through one
  :class:`~lowprob.propagation.quadrature_cloud.PivotStep` per pivot; the projector is the
  identity; the estimate is the mean weight (log space).

``quadrature-genz`` uses ``mu = 0`` (Genz's separation of variables: no tilt solve, no LP;
cheaper setup, more variance in the tail).

Budget ``K`` = the number of points, a power of two (a Sobol net); ``cost.samples = K``. The
estimate is deterministic: the ``seed`` argument is validated and ignored (one fixed scramble,
:data:`~lowprob.propagation.quadrature_cloud.SOBOL_SCRAMBLE_SEED`). Biases are supported
(``lo = -b``). No error bar is reported (a single deterministic rule).

FLOPs per instance (analytic): the loop's pivots (:func:`~lowprob.propagation.quadrature_cloud.pivot_step_flops`)
plus the setup: the pivoted LQ (:func:`lq_flops`, from the iterations the LQ runs) and the tilt
solve (:func:`tilt_flops`, from the solver's own counters: evaluations of ``grad psi`` and its
Jacobian at ``8 r^3 + O(r^2)``, MINPACK's linear algebra per ``nfev`` (``8 N^2``) and per ``njev``
(``8 N^3 / 3``) with ``N = 2 (r - 1)``, and ``2 rc + it (2 rc + 4 r^2)`` per HiGHS LP with ``r``
constraints, ``c`` variables and ``it`` simplex iterations). The Sobol rule is instance-independent
precomputation (``diagnostics["precomputation_flops"]``).

Reference: Botev (2017), JRSS-B 79(1) 125-148; Genz (1992), J. Comput. Graph. Stat. 1(2) 141-149.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_budget, check_finite_array
from lowprob.errors import InputValueError
from lowprob.estimate import Estimate
from lowprob.gaussian_polytope import PolytopeStructure, TiltSolution, minimax_tilt, pivoted_lq
from lowprob.propagation import executed
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import PropagationTrace, propagate
from lowprob.propagation.quadrature_cloud import (
    ELEMENTARY_FUNCTION_FLOPS,
    INTERVAL_MASS_FLOPS,
    EmptyPolytopeStep,
    PivotStep,
    QuadratureCloud,
    check_point_budget,
    executed_count,
    keep_quadrature_cloud,
    pivot_step_flops,
    sobol_points,
)
from lowprob.propagation.toy_estimators import BatchResult, ToyPropagationEstimator, trace_estimate
from lowprob.toy_models.cost_models import check_toy_budget
from lowprob.toy_models.halfspace import as_halfspace_toy

__all__ = [
    "NOMINAL_FALLBACK_WORK",
    "NOMINAL_TILT_WORK",
    "AutoQuadratureEstimator",
    "GenzQuadratureEstimator",
    "QuadratureEstimator",
    "TiltedRemainder",
    "cloud_flops",
    "lq_flops",
    "predicted_tilt_flops",
    "quadrature_steps",
    "remaining_pivot_claims",
    "tilt_flops",
]

_E = ELEMENTARY_FUNCTION_FLOPS
_IM = INTERVAL_MASS_FLOPS


@dataclass(frozen=True)
class TiltedRemainder:
    """The claim after pivot ``index``: the event still to come is pivots ``index + 1 .. n_pivots - 1``,
    whose tilt is ``mu`` (what the backward pass told the forward model)."""

    index: int
    n_pivots: int
    mu: tuple[float, ...] = field(default=(), repr=False)


def remaining_pivot_claims(steps: list[Any]) -> list[TiltedRemainder]:
    """``[C_1..C_r]``: one :class:`TiltedRemainder` per step."""
    mus = [float(getattr(s, "mu", 0.0)) for s in steps]
    return [TiltedRemainder(i, len(steps), tuple(mus[i + 1 :])) for i in range(len(steps))]


def _active_rows_flops(st: PolytopeStructure) -> float:
    return float(sum(len(lo) * (2 * j + 4) for j, lo in enumerate(st.lo)))


def lq_flops(st: PolytopeStructure, m: int, d: int) -> float:
    """Analytic FLOPs of :func:`~lowprob.gaussian_polytope.pivoted_lq` on ``m x d`` with rank ``r``.

    Row norms ``2 m d`` and ``m`` square roots per iteration (and once at the start), ``2 m``
    tolerance comparisons; for the ``m - j`` rows still active at iteration ``j``: their shift by
    the truncated means (``2 j``), bounds (``4``), interval mass, arg-min (``1``), projection on the
    new direction and rank-1 update (``4 d``); re-orthogonalisation ``4 d j + 4 d`` and a root; the
    truncated mean (``16`` + 2 elementary + an interval mass); scaling the owned rows (``j + 4`` each).
    """
    r = st.r
    f = 2.0 * m * d + m * _E
    iters = r + (1 if r < min(m, d) else 0)
    for j in range(iters):
        f += 2.0 * m * d + 2.0 * m + m * _E
        if j >= r:
            break
        ni = m - j
        f += 2.0 * ni * j + 5.0 * ni + d + 4.0 * ni * d + ni * _IM
        if j:
            f += 4.0 * d * j + 4.0 * d + _E
        f += 16.0 + 2 * _E + _IM
    f += sum(len(lo) * (j + 4.0) for j, lo in enumerate(st.lo))
    return f


def _smooth_grad_jac_flops(st: PolytopeStructure) -> float:
    """One :func:`lowprob.polytope_smooth_tilt.smoothed_grad_jac`: the exact ``(grad, Jacobian)``'s
    products and element-wise terms, and per pivot ``j`` owning ``n_j > 1`` rows: ``rows . x``
    (``2 n_j j``), two log-sum-exps (``2 n_j`` exponentials, ``8 n_j`` arithmetic, 2 logs), the two
    weighted rows (``4 n_j j``), the two covariances (``4 n_j j^2 + 4 j^2``) and the curvature update
    (``3 j^2``); single-row pivots as in the active rows (``2 j + 4``)."""
    r = st.r
    f = r * _IM + 2 * r * _E + 8.0 * r**3 + 19.0 * r**2 + 43.0 * r
    for j, lo in enumerate(st.lo):
        nj = len(lo)
        if j == 0 or nj == 1:
            f += nj * (2.0 * j + 4.0)
        else:
            f += 2.0 * nj * j + 2 * nj * _E + 8.0 * nj + 2 * _E + 4.0 * nj * j + 4.0 * nj * j**2 + 7.0 * j**2
    return f


def tilt_flops(st: PolytopeStructure, sol: TiltSolution, pilot_points: int = 512) -> tuple[float, float]:
    """``(solver FLOPs, pilot FLOPs)`` of :func:`~lowprob.gaussian_polytope.minimax_tilt` from its counters.

    One ``grad psi``: active rows, ``r`` interval masses, ``2 r`` exponentials and ``4 r^2 + 20 r``
    (two ``r x r`` matrix-vector products, element-wise terms); one Jacobian formed from its
    intermediates: ``8 r^3 + 15 r^2 + 23 r`` (four ``r x r`` products, element-wise terms); one ``psi``:
    active rows, ``r`` interval masses and ``3 r``; MINPACK ``8 N^2`` per function evaluation
    (Broyden rank-1 QR update and dogleg step) and ``8 N^3 / 3`` per Jacobian (QR and forming
    ``Q``), ``N = 2 (r - 1)``; HiGHS ``2 rc + it (2 rc + 4 r^2)`` per LP (pricing and dense
    basis updates). The smoothed tilt of the non-smooth fallback: its ``(grad psi_tau, Jacobian)``
    evaluations (:func:`_smooth_grad_jac_flops`; its MINPACK calls are in the root counters). Pilot:
    the tilted draws on the fixed ``pilot_points`` stream (every pivot drawn, every candidate).
    """
    r = st.r
    act = _active_rows_flops(st)
    grad = act + r * _IM + 2 * r * _E + 4.0 * r**2 + 20.0 * r
    jac = 8.0 * r**3 + 15.0 * r**2 + 23.0 * r
    psi = act + r * _IM + 3.0 * r
    N = 2.0 * max(r - 1, 0)
    f = sol.grad_evaluations * grad + sol.grad_jac_evaluations * jac + sol.psi_evaluations * psi
    f += (
        sol.root_function_evaluations * 8.0 * N**2
        + sol.root_jacobian_evaluations * 8.0 * N**3 / 3.0
    )
    for it, rows, cols in sol.lp_work:
        f += 2.0 * rows * cols + it * (2.0 * rows * cols + 4.0 * rows**2)
    f += sol.smooth_grad_jac_evaluations * _smooth_grad_jac_flops(st)
    pilot = 0.0
    if sol.pilot_points:
        per = sum(pivot_step_flops(pilot_points, j, len(lo), True) for j, lo in enumerate(st.lo))
        pilot = per * sol.pilot_points / float(pilot_points)
    return f, pilot


#: Work a typical minimax-tilt solve does when every pivot owns one row (measured on Gaussian
#: cones at 16x16 and 32x32: 21-26 gradients, 3 Jacobians, 20-24 MINPACK function values and
#: 2 MINPACK Jacobians), rounded up; used only to *predict* the tilt's cost before spending it.
NOMINAL_TILT_WORK = {
    "grad_evaluations": 30,
    "grad_jac_evaluations": 4,
    "root_function_evaluations": 30,
    "root_jacobian_evaluations": 2,
    "psi_evaluations": 1,
}

#: Work of a typical solve when some pivot owns several rows (``m > n``): the exact root search
#: usually fails (psi is non-smooth) and the fallback adds the smoothed continuation and a pilot
#: per candidate. Measured on feasible Gaussian cones at 8x16, 8x32, 16x32 (pilot 128): 52-75
#: gradients, 24-44 Jacobians, 130-740 MINPACK function values, 33-420 MINPACK Jacobians, 70-700
#: smoothed evaluations, 4-6 candidates (rare solves take 10x more); a median-like choice.
NOMINAL_FALLBACK_WORK = {
    "grad_evaluations": 60,
    "grad_jac_evaluations": 30,
    "root_function_evaluations": 200,
    "root_jacobian_evaluations": 50,
    "smooth_grad_jac_evaluations": 150,
    "psi_evaluations": 0,
}
NOMINAL_FALLBACK_CANDIDATES = 5


def predicted_tilt_flops(st: PolytopeStructure, pilot_points: int = 128) -> float:
    """FLOPs :func:`tilt_flops` would charge for a typical solve on ``st``, before running it.

    Every pivot owning one row: :data:`NOMINAL_TILT_WORK`. Some pivot owning several rows: the
    two interior-point LPs at one simplex iteration per constraint (measured: 0.3-0.9 per
    constraint on Gaussian cones) plus the failed exact search, the smoothed fallback and a
    ``pilot_points``-point pilot for each of :data:`NOMINAL_FALLBACK_CANDIDATES` candidates
    (:data:`NOMINAL_FALLBACK_WORK`). A prediction, not a bound: the charge is the work done.
    """
    work: dict[str, int] = dict(NOMINAL_TILT_WORK)
    lp: tuple[tuple[int, int, int], ...] = ()
    pilot = 0
    if any(len(lo) > 1 for lo in st.lo):
        rows = int(sum(np.isfinite(lo).sum() + np.isfinite(hi).sum() for lo, hi in zip(st.lo, st.hi, strict=True)))
        lp = ((rows, rows, st.r + 1), (rows + 2 * st.r, rows + 2 * st.r, 2 * st.r))
        work = dict(NOMINAL_FALLBACK_WORK)
        pilot = NOMINAL_FALLBACK_CANDIDATES * int(pilot_points)
    nominal = TiltSolution(np.zeros(st.r), np.zeros(st.r), True, 0.0, lp_work=lp, pilot_points=pilot, **work)
    solver, pilot_flops = tilt_flops(st, nominal, int(pilot_points))
    return solver + pilot_flops


def cloud_flops(st: PolytopeStructure, K: int) -> float:
    """FLOPs of pushing ``K`` points through the ``r`` pivot steps of ``st`` (:func:`pivot_step_flops`)."""
    return float(sum(pivot_step_flops(K, j, len(lo), j < st.r - 1) for j, lo in enumerate(st.lo)))


def quadrature_steps(
    W: np.ndarray,
    b: np.ndarray | None = None,
    *,
    tilt: bool | None = True,
    pilot_points: int = 128,
    budget: int | None = None,
) -> tuple[list[Any], dict[str, float]]:
    """The backward pass for one instance: the pivot steps and the setup FLOPs by label.

    ``W`` ``(m, n)``, ``b`` ``(m,)`` or None; the event ``W x + b > 0`` is ``-b <= W x <= inf``.
    Rows with ``|w| = 0`` are constants: dropped when ``b > 0``, and the event is empty otherwise.
    ``tilt=None`` decides from counted costs, before spending them: solve the minimax tilt only
    when its predicted cost (:func:`predicted_tilt_flops`) is at most the cost of the ``budget``
    points' pivots (:func:`cloud_flops`), i.e. when the setup at most doubles the spend; otherwise
    ``mu = 0`` (Genz). The label ``"tilt decision"`` records the prediction (0 FLOPs are charged
    for it beyond the ``O(r)`` arithmetic, which is included in the LQ).
    """
    W = check_finite_array("W", W, ndim=2)
    m, n = W.shape
    lo = np.zeros(m) if b is None else -check_finite_array("b", b, shape=(m,))
    hi = np.full(m, np.inf)
    zero = np.linalg.norm(W, axis=1) <= 1e-300
    if np.any(zero & (lo >= 0)):
        return [EmptyPolytopeStep("a row of W is zero and its bias is <= 0")], {}
    keep = ~zero
    if not np.any(keep):
        return [], {}
    C, lo, hi = W[keep], lo[keep], hi[keep]
    st = pivoted_lq(C, lo, hi, count=executed_count)
    labels = {"lq": lq_flops(st, C.shape[0], n)}
    if tilt is None:
        if budget is None:
            raise InputValueError(
                "quadrature_steps(tilt=None) decides from the budget: pass budget=K."
            )
        tilt = predicted_tilt_flops(st, pilot_points) <= cloud_flops(st, int(budget))
    if tilt:
        sol = minimax_tilt(st, count=executed_count, pilot_points=pilot_points)
        solver, pilot = tilt_flops(st, sol, pilot_points)
        executed.record(solver, "tilt solve (formula from the solver's counters)")
        labels["tilt"] = solver + pilot
        if sol.log_upper_bound == -np.inf:
            return [EmptyPolytopeStep("the LP found no interior point")], labels
        mu = sol.mu
    else:
        mu = np.zeros(st.r)
    r = st.r
    steps: list[Any] = [
        PivotStep(
            j, st.rows[j], st.lo[j], st.hi[j], float(mu[j]) if j < r - 1 else 0.0, draw=j < r - 1
        )
        for j in range(r)
    ]
    return steps, labels


@dataclass
class QuadratureEstimator(ToyPropagationEstimator):
    """Deterministic tilted quadrature (module docstring): ``budget = K`` Sobol points, a power of two."""

    name: str = "quadrature"
    budget_unit: str = "points"
    #: True: always solve the minimax tilt; False: ``mu = 0`` (Genz); None: decide per instance
    #: from counted costs (:func:`quadrature_steps`)
    tilt: bool | None = True
    #: pilot draws for the non-smooth tilt fallback; None: ``min(512, max(128, K // 4))`` (the
    #: setup grows with the budget up to ``gaussian_polytope_probability``'s 512)
    pilot_points: int | None = None

    def _pilot(self, budget: int) -> int:
        return (
            int(self.pilot_points)
            if self.pilot_points is not None
            else min(512, max(128, budget // 4))
        )

    def _initial(
        self, n: int, batch: int, budget: int, rng: np.random.Generator
    ) -> QuadratureCloud:
        return QuadratureCloud.start(sobol_points(max(n - 1, 1), budget)[0])

    def _projector(self) -> Any:
        return keep_quadrature_cloud

    def _steps(
        self, W: np.ndarray, b: np.ndarray | None = None, budget: int = 0
    ) -> tuple[list[Any], float]:
        steps, labels = quadrature_steps(
            W, b, tilt=self.tilt, pilot_points=self._pilot(budget), budget=budget
        )
        return steps, float(sum(labels.values()))

    def _check(self, budget: object, seed: object) -> int:
        budget = check_budget(budget)
        as_generator(seed)  # validated; the rule is fixed (module docstring)
        return check_point_budget(budget)

    def _trace_one(self, W: np.ndarray, b: np.ndarray | None, budget: int) -> PropagationTrace:
        t0 = time.perf_counter()
        steps, labels = quadrature_steps(
            W, b, tilt=self.tilt, pilot_points=self._pilot(budget), budget=budget
        )
        setup_seconds = time.perf_counter() - t0
        points, pre = sobol_points(max(W.shape[1] - 1, 1), budget)
        tr = propagate(
            QuadratureCloud.start(points),
            steps,
            projector=keep_quadrature_cloud,
            claims=remaining_pivot_claims(steps),
            budget=budget,
            flops=FlopCounter(precomputation=pre),
        )
        by_label = dict(tr.flops_by_label)
        for k, v in labels.items():
            by_label[k] = by_label.get(k, 0.0) + v
        return replace(
            tr,
            flops=tr.flops + float(sum(labels.values())),
            flops_by_label=by_label,
            seconds=tr.seconds + setup_seconds,
        )

    def trace(self, problem: object, budget: int, *, seed: object = None) -> PropagationTrace:
        """The :class:`~lowprob.propagation.loop.PropagationTrace` for one instance (setup FLOPs included)."""
        toy = as_halfspace_toy(problem)
        budget = self._check(budget, seed)
        check_toy_budget(self.name, toy.d, toy.m, budget)
        return self._trace_one(toy.W, toy.b if toy.has_bias else None, budget)

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        """``p_hat = (1/K) sum_k w_k`` after the ``r`` pivots (deterministic; ``seed`` is ignored)."""
        return trace_estimate(self, self.trace(problem, budget, seed=seed), budget)

    def estimate_batch(self, Ws: object, budget: int, *, seed: object = None) -> BatchResult:
        """Estimates for ``Ws`` ``(B, m, n)`` (homogeneous half-spaces), one instance at a time."""
        W = check_finite_array("Ws", Ws, ndim=3)
        budget = self._check(budget, seed)
        B, m, n = W.shape
        check_toy_budget(self.name, n, m, budget, instances=B)
        vals, fl, secs, pre = np.zeros(B), np.zeros(B), np.zeros(B), 0.0
        for i in range(B):
            tr = self._trace_one(W[i], None, budget)
            vals[i], fl[i], secs[i] = float(tr.value), tr.flops, tr.seconds
            pre = max(pre, tr.precomputation_flops)
        return BatchResult(vals, fl, budget, secs, pre)


@dataclass
class GenzQuadratureEstimator(QuadratureEstimator):
    """``quadrature`` with ``mu = 0`` (Genz 1992's separation of variables; no tilt solve, no LP)."""

    name: str = "quadrature-genz"
    tilt: bool = False


@dataclass
class AutoQuadratureEstimator(QuadratureEstimator):
    """``quadrature`` that solves the tilt only when the budget pays for it, else ``quadrature-genz``.

    Per instance, after the pivoted LQ: tilt iff :func:`predicted_tilt_flops` ``<=``
    :func:`cloud_flops` at ``K`` (the setup at most doubles the spend). Small budgets get Genz's
    cheap rule, large ones Botev's tilt; the counted FLOPs are the work actually done.
    """

    name: str = "quadrature-auto"
    tilt: bool | None = None
