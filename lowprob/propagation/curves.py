"""Kernel-vs-sampling curves on random halfspace toys (DESIGN.md sections 1 and 3).

For random instances ``W`` (``m x d``, i.i.d. N(0, 1)) we report, for each method and
budget, the normalised error ``MSE / E_W[p(1-p)]`` (sampling with ``N`` samples sits
exactly on ``1/N``) against three costs: the budget (terms or samples), counted FLOPs per
instance, and wall seconds per instance, with percentile-bootstrap bands over instances,
the trivial estimator's level ``Var_W p / E_W[p(1-p)]`` and fitted log-log slopes.

Two instance laws (``CurveConfig.instance_law``):

* ``"stratified"`` (default): instances are *stratified on feasibility*: infeasible instances
  have ``p = 0`` exactly (Wendel's theorem gives ``P[feasible]`` exactly), so we draw a fixed
  number from each stratum and weight them by ``P[stratum] / n_stratum``.
* ``"mixture"`` (halfspace only): ``n_t = round(tail_share * n)`` instances from the tail-biased
  law ``Q_2 ∝ p^2 P`` (sampled exactly, :mod:`lowprob.toy_models.instance_law`) and the rest
  stratified as above, every draw weighted by the balance heuristic
  ``w = 1 / (n_f 1[feasible] / P_f + n_0 1[infeasible] / P_0 + n_t p^2 / E p^2)``.
  For ``m >= 2 d`` the law of ``p`` under ``P`` is so heavy-tailed that a few hundred draws from
  ``P`` miss the instances that carry ``E p^2``; ``Q_2`` puts them in the sample.

In both, ``nMSE = sum_i w_i (p_hat_i - p_i)^2 / E p(1-p)`` is the *plain* (not self-normalised)
weighted sum: it is unbiased for ``E_P[(p_hat - p)^2] / E p(1-p)`` because
``E[sum_i w_i g(W_i)] = E_P[g]`` (proof in :mod:`lowprob.toy_models.instance_law`). Under the
stratified law ``sum_i w_i = 1`` exactly, so plain and self-normalised coincide (the bootstrap
there keeps its historical division by ``sum w``, a no-op up to rounding, for bit-identical
output); under the mixture the weights are exact densities (no unknown constant), so
self-normalising would only add an ``O(1/n)`` bias; ``sum_weights`` (unbiased for 1) is
reported as a diagnostic. Bootstrap intervals resample within each source (feasible,
infeasible, tail), whose counts are fixed by design. The measured nMSE of the trivial
predictor ``E p`` over its exact value, ``tail_coverage`` (with a bootstrap 95 % interval),
says whether the sample has seen the tail: far below 1 means every nMSE is optimistic.

Every method runs on every instance, infeasible ones included. Feasibility is decided by
enumerating candidate extreme rays (null vectors of ``d - 1`` rows; exact for generic ``W``)
or by an LP for larger ``d``.

Truth: the exact oracle (:func:`lowprob.toy_models.oracle.exact_probability`) for
``d <= 4``; for larger ``d`` a Monte Carlo truth from Botev's minimax-tilting importance
sampler (:func:`lowprob.gaussian_polytope.gaussian_polytope_probability`) with many more
samples than any method gets; its noise floor is reported in the output. (The mixture's weights
use that truth for ``p``: with a Monte Carlo truth of relative error ``eps`` they, and hence the
nMSE, carry a relative error of order ``eps``.)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import atomic_write_json
from lowprob._progress import progress
from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError
from lowprob.registry import Registry
from lowprob.toy_models.instance_law import balance_heuristic_weights, sample_q2
from lowprob.toy_models.instance_stats import instance_statistics, wendel_feasibility_probability
from lowprob.toy_models.registry import get_toy_estimator

__all__ = [
    "CURVE_PROBLEMS",
    "CurveConfig",
    "CurveProblem",
    "DEFAULT_BUDGETS",
    "INSTANCE_LAWS",
    "check_instance_law",
    "check_problem_law",
    "InstanceSet",
    "SOURCE_NAMES",
    "draw_instances",
    "feasible_mask",
    "fit_slope",
    "plot_curves",
    "run_curves",
]

DEFAULT_BUDGETS: dict[str, tuple[int, ...]] = {
    "kernel": (1, 5, 14, 30, 55, 91, 140, 204, 285),
    "hermite": (1, 5, 15, 35, 70, 126),
    "sampling": (10, 100, 1_000, 10_000, 100_000),
}
FIT_FROM: dict[str, int] = {"kernel": 30, "hermite": 15, "sampling": 10}

#: the instance laws :func:`draw_instances` knows (module docstring)
INSTANCE_LAWS: tuple[str, ...] = ("stratified", "mixture")
#: ``InstanceSet.source`` codes: 0 = P(.|feasible), 1 = P(.|infeasible), 2 = the tail law Q_2
SOURCE_NAMES: tuple[str, ...] = ("feasible", "infeasible", "tail")


def check_instance_law(instance_law: object, tail_share: object) -> tuple[str, float]:
    """Validate ``instance_law`` (one of :data:`INSTANCE_LAWS`) and ``tail_share`` (in ``[0, 1)``)."""
    if instance_law not in INSTANCE_LAWS:
        raise InputValueError(
            f"instance_law must be one of {INSTANCE_LAWS!r}, got {instance_law!r}; use 'stratified' "
            "(feasibility strata of P) or 'mixture' (strata plus the tail law Q2 ∝ p^2 P, halfspace only)."
        )
    if isinstance(tail_share, bool) or not isinstance(tail_share, (int, float)) or not 0.0 <= float(tail_share) < 1.0:
        raise InputValueError(
            f"tail_share must be a number in [0, 1) (the fraction of instances drawn from Q2), got {tail_share!r}."
        )
    return str(instance_law), float(tail_share)


#: a Monte Carlo truth whose stated relative error exceeds this is "dominated by a few draws"
TRUTH_DOMINATED_RELATIVE_ERROR = 0.5

@dataclass(frozen=True)
class CurveConfig:
    """What :func:`run_curves` runs.

    ``budgets`` maps method -> budgets (default :data:`DEFAULT_BUDGETS`); slopes are fitted on
    budgets ``>= fit_from[method]`` (default :data:`FIT_FROM`: the range where the method has
    left the trivial plateau; the talk's kernel range is K = 30..200).
    """

    d: int = 4
    m: int = 16
    instances: int = 2000
    methods: tuple[str, ...] = ("kernel", "hermite", "sampling")
    budgets: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    bootstrap: int = 1000
    truth_samples: int = 2**17
    feasible_share: float = 0.5
    fit_from: dict[str, int] = field(default_factory=dict)
    problem: str = "halfspace"
    instance_law: str = "stratified"
    tail_share: float = 0.5

    def __post_init__(self) -> None:
        check_instance_law(self.instance_law, self.tail_share)

    def budgets_for(self, method: str) -> tuple[int, ...]:
        if method in self.budgets:
            return tuple(self.budgets[method])
        if method in DEFAULT_BUDGETS:
            return DEFAULT_BUDGETS[method]
        return (10, 100, 1000)


@dataclass(frozen=True)
class InstanceSet:
    """Instances with truth and importance weights (``sum_i w_i g(W_i)`` estimates ``E_P g``).

    ``source`` (``(N,)`` int8, codes of :data:`SOURCE_NAMES`) says which law drew each instance;
    the bootstrap resamples within each source. Left ``None`` it is derived from ``feasible``
    (the stratified law: ``sum(weights) == 1``).
    """

    W: np.ndarray  # (N, m, d)
    truth: np.ndarray  # (N,)
    truth_std_error: np.ndarray  # (N,)
    feasible: np.ndarray  # (N,) bool
    weights: np.ndarray  # (N,)
    truth_method: str
    source: np.ndarray | None = None  # (N,) int8

    def __post_init__(self) -> None:
        if self.source is None:
            object.__setattr__(self, "source", np.where(np.asarray(self.feasible, bool), 0, 1).astype(np.int8))


@dataclass(frozen=True)
class CurveProblem:
    """A random-instance family the curves (and the win map) can run on.

    ``draw(config, show_progress) -> InstanceSet`` (instances with truth and stratum weights),
    ``statistics(d, m)`` -> an object with ``mean_p_one_minus_p``, ``trivial_mse_ratio`` and
    ``to_dict()`` (exact instance statistics: the nMSE denominator and the trivial level),
    ``estimator(method)`` -> an object with ``estimate_batch(W, budget, seed=...)`` returning a
    :class:`~lowprob.propagation.toy_estimators.BatchResult`; ``instance_laws`` lists the instance
    laws ``draw`` implements (``"mixture"`` needs an exact tail sampler). Register a new family with
    ``CURVE_PROBLEMS.add(name, CurveProblem(...))`` and select it with ``CurveConfig(problem=name)``.
    """

    draw: Any
    statistics: Any
    estimator: Any
    description: str = ""
    #: the ``CurveConfig.instance_law`` values ``draw`` implements
    instance_laws: tuple[str, ...] = ("stratified",)


#: problem name -> :class:`CurveProblem` (``halfspace`` is registered below).
CURVE_PROBLEMS: Registry[CurveProblem] = Registry("curve problem", plugins=True)


def feasible_mask(W: np.ndarray) -> np.ndarray:
    """Whether ``{x : W_k x > 0}`` is non-empty, for a batch ``W (N, m, d)``.

    ``m < d``: always. Otherwise (generic ``W``) the closed cone is pointed, so it is non-zero
    iff one of its candidate extreme rays ``+-r_S`` (``r_S`` spans the null space of ``d - 1``
    rows ``S``, via signed minors) satisfies ``W r >= 0``. For ``C(m, d-1) > 5000`` an LP
    ``max s : W x >= s, |x|_inf <= 1`` is solved instead.
    """
    W = np.asarray(W, dtype=np.float64)
    N, m, d = W.shape
    if m < d:
        return np.ones(N, dtype=bool)
    if math.comb(m, d - 1) > 5000:
        return _feasible_lp(W)
    Wn = W / np.linalg.norm(W, axis=2, keepdims=True)
    subsets = np.array(list(itertools.combinations(range(m), d - 1)))  # (C, d-1)
    out = np.zeros(N, dtype=bool)
    for s in range(0, N, 256):
        w = Wn[s : s + 256]
        rows = w[:, subsets, :]  # (b, C, d-1, d)
        r = np.empty(rows.shape[:2] + (d,))
        for k in range(d):
            minor = np.delete(rows, k, axis=3)
            r[..., k] = (-1) ** k * (np.linalg.det(minor) if d > 1 else 1.0)
        r /= np.maximum(np.linalg.norm(r, axis=2, keepdims=True), 1e-300)
        vals = np.einsum("bmd,bcd->bcm", w, r)  # (b, C, m)
        tol = 1e-10
        ok = np.all(vals >= -tol, axis=2) | np.all(vals <= tol, axis=2)
        out[s : s + 256] = np.any(ok, axis=1)
    return out


def _feasible_lp(W: np.ndarray) -> np.ndarray:
    from scipy.optimize import linprog

    N, m, d = W.shape
    out = np.zeros(N, dtype=bool)
    c = np.zeros(d + 1)
    c[-1] = -1.0
    bounds = [(-1.0, 1.0)] * d + [(None, 1.0)]
    for i in range(N):
        Wn = W[i] / np.linalg.norm(W[i], axis=1, keepdims=True)
        A = np.hstack([-Wn, np.ones((m, 1))])
        res = linprog(c, A_ub=A, b_ub=np.zeros(m), bounds=bounds, method="highs")
        out[i] = bool(res.status == 0 and -res.fun > 1e-9)
    return out


def draw_instances(config: CurveConfig, *, show_progress: bool | None = None) -> InstanceSet:
    """Random instances with their truth and weights, by ``config.instance_law`` (module docstring)."""
    if config.instance_law == "mixture":
        return _draw_mixture(config, show_progress)
    return _draw_stratified(config, config.instances, show_progress)


def _draw_mixture(config: CurveConfig, show_progress: bool | None) -> InstanceSet:
    """``round(tail_share n)`` draws from ``Q_2``, the rest stratified; balance-heuristic weights."""
    d, m, n = config.d, config.m, config.instances
    n_tail = int(round(config.tail_share * n))
    n_p = n - n_tail
    pf = wendel_feasibility_probability(d, m)
    need = 2 if pf < 1.0 else 1
    if n_p < need:
        raise InputValueError(
            f"instance_law='mixture' with instances={n!r} and tail_share={config.tail_share!r} leaves "
            f"{n_p} draw(s) from P; at least {need} are needed (one per feasibility stratum) for unbiased "
            "weights: lower tail_share or raise instances."
        )
    base = _draw_stratified(config, n_p, show_progress)
    rng = np.random.default_rng([config.seed, 3])
    Wt = sample_q2(d, m, n_tail, rng)
    truth_t, se_t, _ = _truth(Wt, config, rng, show_progress)
    W = np.concatenate([base.W, Wt])
    truth = np.concatenate([base.truth, truth_t])
    se = np.concatenate([base.truth_std_error, se_t])
    feasible = np.concatenate([base.feasible, np.ones(n_tail, bool)])
    source = np.concatenate([base.source, np.full(n_tail, 2, np.int8)])
    weights = balance_heuristic_weights(
        truth, feasible, n_feasible=int(base.feasible.sum()), n_infeasible=int((~base.feasible).sum()),
        n_tail=n_tail, feasible_probability=pf, mean_p2=instance_statistics(d, m).mean_p2,
    )
    how = base.truth_method + f"; instance law: mixture of P (stratified, {n_p}) and Q2 ∝ p^2 P ({n_tail})"
    return InstanceSet(W, truth, se, feasible, weights, how, source)


def _draw_stratified(config: CurveConfig, n: int, show_progress: bool | None) -> InstanceSet:
    """``n`` instances stratified on feasibility (the ``"stratified"`` law)."""
    d, m = config.d, config.m
    rng = as_generator(config.seed)
    pf = wendel_feasibility_probability(d, m)
    if pf >= 1.0:
        n_feas, n_inf = n, 0
    else:
        n_feas = max(1, int(round(config.feasible_share * n)))
        n_inf = n - n_feas
    feas: list[np.ndarray] = []
    infeas: list[np.ndarray] = []
    have_f = have_i = 0
    while have_f < n_feas or have_i < n_inf:
        chunk = rng.standard_normal((4096, m, d))
        mask = feasible_mask(chunk)
        if have_f < n_feas:
            feas.append(chunk[mask][: n_feas - have_f])
            have_f += feas[-1].shape[0]
        if have_i < n_inf:
            infeas.append(chunk[~mask][: n_inf - have_i])
            have_i += infeas[-1].shape[0]
    Wf = np.concatenate(feas) if feas else np.zeros((0, m, d))
    Wi = np.concatenate(infeas) if infeas else np.zeros((0, m, d))
    truth_f, se_f, how = _truth(Wf, config, rng, show_progress)
    W = np.concatenate([Wf, Wi])
    truth = np.concatenate([truth_f, np.zeros(Wi.shape[0])])
    se = np.concatenate([se_f, np.zeros(Wi.shape[0])])
    feasible = np.concatenate([np.ones(Wf.shape[0], bool), np.zeros(Wi.shape[0], bool)])
    weights = np.where(feasible, pf / max(Wf.shape[0], 1), (1 - pf) / max(Wi.shape[0], 1))
    return InstanceSet(W, truth, se, feasible, weights, how)


def _truth(W: np.ndarray, config: CurveConfig, rng: np.random.Generator, show: bool | None) -> tuple[np.ndarray, np.ndarray, str]:
    N = W.shape[0]
    p = np.zeros(N)
    se = np.zeros(N)
    if config.d <= 4:
        from lowprob.toy_models.oracle import exact_probability

        for i in progress(range(N), total=N, desc="exact oracle", enabled=show):
            r = exact_probability(W[i])
            if not r.feasible or r.probability <= 0:
                raise InputValueError(f"instance {i} passed the feasibility filter but the oracle says p=0.")
            p[i], se[i] = r.probability, r.error_bound
        return p, se, "exact oracle (lowprob.toy_models.oracle.exact_probability)"
    from lowprob.gaussian_polytope import gaussian_polytope_probability

    for i in progress(range(N), total=N, desc="Monte Carlo truth", enabled=show):
        r = gaussian_polytope_probability(
            W[i], np.zeros(config.m), np.full(config.m, np.inf),
            n_samples=config.truth_samples, seed=rng,
        )
        p[i], se[i] = r.probability, r.std_error
    return p, se, (
        f"Monte Carlo truth: Botev minimax-tilting importance sampling (randomised QMC), "
        f"{config.truth_samples} samples per instance (lowprob.gaussian_polytope)"
    )


def fit_slope(budgets: np.ndarray, nmse: np.ndarray) -> float:
    """OLS slope of ``log nmse`` on ``log budget`` (``nmse`` may be ``(R, B)`` for bootstrap rows)."""
    x = np.log(np.asarray(budgets, dtype=np.float64))
    y = np.log(np.maximum(np.asarray(nmse, dtype=np.float64), 1e-300))
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def _bootstrap_indices(inst: InstanceSet, R: int, rng: np.random.Generator) -> np.ndarray:
    """``(R, N)`` resampled indices, drawn within each source (feasible, infeasible, tail)."""
    groups = [np.flatnonzero(inst.source == k) for k in range(len(SOURCE_NAMES))]
    cols = []
    for g in groups:
        if g.size:
            cols.append(g[rng.integers(0, g.size, size=(R, g.size))])
    return np.concatenate(cols, axis=1)


def run_curves(config: CurveConfig, *, show_progress: bool | None = None, log: Any = None) -> dict[str, Any]:
    """Run every method at every budget on the same instances; return a JSON-ready record."""
    check_int("instances", config.instances, minimum=2)
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)
    t_start = time.perf_counter()
    problem = CURVE_PROBLEMS.get(config.problem)
    check_problem_law(config.problem, config.instance_law)
    stats = problem.statistics(config.d, config.m)
    inst = problem.draw(config, show_progress)
    log(f"instances: {inst.W.shape[0]} ({int(inst.feasible.sum())} feasible); truth: {inst.truth_method}")
    denom = stats.mean_p_one_minus_p
    rng = np.random.default_rng([config.seed, 1])
    boot = _bootstrap_indices(inst, config.bootstrap, rng)
    wb = inst.weights[boot]  # (R, N)
    # plain weighted sums (module docstring); the stratified law keeps its historical division by
    # sum w (== 1 up to rounding) so that its output stays bit-identical
    wnorm = wb.sum(axis=1) if config.instance_law == "stratified" else np.ones(boot.shape[0])
    src = {name: inst.source == k for k, name in enumerate(SOURCE_NAMES)}
    methods: dict[str, Any] = {}
    tasks = [(meth, K) for meth in config.methods for K in config.budgets_for(meth)]
    sq_err: dict[str, list[np.ndarray]] = {}
    for meth, K in progress(tasks, total=len(tasks), desc="methods x budgets", enabled=show_progress):
        est = problem.estimator(meth)
        t0 = time.perf_counter()
        res = est.estimate_batch(inst.W, K, seed=np.random.default_rng([config.seed, 2, K]))
        wall = time.perf_counter() - t0
        e2 = (res.values - inst.truth) ** 2
        sq_err.setdefault(meth, []).append(e2)
        nmse = float(inst.weights @ e2 / denom)
        bs = (wb * e2[boot]).sum(axis=1) / wnorm / denom
        lo, hi = np.percentile(bs, [2.5, 97.5])
        entry = {
            "budget": int(K),
            "terms_or_samples": int(res.terms),
            "nmse": nmse,
            "nmse_ci95": [float(lo), float(hi)],
            "nmse_feasible_stratum": float(np.mean(e2[src["feasible"]]) / denom) if src["feasible"].any() else None,
            "nmse_infeasible_stratum": float(np.mean(e2[src["infeasible"]]) / denom) if src["infeasible"].any() else None,
            "flops_per_instance": float(inst.weights @ res.flops),
            "seconds_per_instance": float(inst.weights @ res.seconds),
            "wall_seconds_total": wall,
            "precomputation_flops": float(res.precomputation_flops),
            # instance-independent precomputation, amortised over the instances of this run
            "precomputation_amortised_over": int(inst.W.shape[0]),
            "flops_per_instance_incl_precomputation": float(inst.weights @ res.flops)
            + float(res.precomputation_flops) / inst.W.shape[0],
        }
        # (sum w e2)^2 / sum (w e2)^2: how many instances carry the nMSE (a handful: its interval
        # is not to be trusted, whatever the law)
        we2 = inst.weights * e2
        entry["nmse_effective_instances"] = float(we2.sum() ** 2 / (we2 @ we2)) if we2.any() else None
        if src["tail"].any():  # unweighted mean over the Q2 draws: E_Q2[(p_hat - p)^2] / E p(1-p)
            entry["nmse_tail_source_unweighted"] = float(np.mean(e2[src["tail"]]) / denom)
        methods.setdefault(meth, {"points": []})["points"].append(entry)
        log(
            f"  {meth:9s} K={K:>7d}  nMSE={nmse:.3e} [{lo:.2e}, {hi:.2e}]  "
            f"flops={entry['flops_per_instance']:.3e}  s/inst={entry['seconds_per_instance']:.2e}"
        )
    # slopes (OLS, bootstrap CI) over budgets >= FIT_FROM
    for meth, rec in methods.items():
        pts = rec["points"]
        K = np.array([p["budget"] for p in pts], dtype=float)
        use = K >= config.fit_from.get(meth, FIT_FROM.get(meth, 0))
        if use.sum() < 2:  # too few budgets in the asymptotic range: fit all but the smallest
            use = K > K.min()
        if use.sum() < 2:
            continue
        E = np.stack(sq_err[meth], axis=1)  # (N, B)
        y = inst.weights @ E / denom
        slope = float(fit_slope(K[use], y[use]))
        yb = np.einsum("rn,rnb->rb", wb, E[boot]) / wnorm[:, None] / denom
        sb = fit_slope(K[use], yb[:, use])
        lo, hi = np.percentile(sb, [2.5, 97.5])
        rec["slope_vs_budget"] = {"slope": slope, "ci95": [float(lo), float(hi)], "fit_budgets": K[use].astype(int).tolist()}
        F = np.array([p["flops_per_instance"] for p in pts])
        if np.all(F[use] > 0):
            sf = fit_slope(F[use], yb[:, use])
            flo, fhi = np.percentile(sf, [2.5, 97.5])
            rec["slope_vs_flops"] = {"slope": float(fit_slope(F[use], y[use])), "ci95": [float(flo), float(fhi)]}
        log(f"  slope {meth}: {slope:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]  (budgets {K[use].astype(int).tolist()})")
    e2_triv = (inst.truth - stats.mean_p) ** 2
    triv_measured = float(inst.weights @ e2_triv / denom)
    triv_b = (wb * e2_triv[boot]).sum(axis=1) / wnorm / denom
    triv_ci = [float(v) for v in np.percentile(triv_b, [2.5, 97.5])]
    trivial = stats.trivial_mse_ratio
    sw_ci = [float(v) for v in np.percentile(wb.sum(axis=1), [2.5, 97.5])]
    out = {
        "config": {**asdict(config), "methods": list(config.methods),
                   "budgets": {m_: list(config.budgets_for(m_)) for m_ in config.methods}},
        "instance_statistics": stats.to_dict(),
        "trivial_nmse": stats.trivial_mse_ratio,
        # the trivial predictor's nMSE measured on these instances: far below the exact level
        # means the sample has not seen the heavy tail (every nMSE here is then optimistic)
        "trivial_nmse_measured": triv_measured,
        "trivial_nmse_measured_ci95": triv_ci,
        # measured / exact trivial nMSE, with the bootstrap 95 % interval (~1: the tail is seen)
        "tail_coverage": triv_measured / trivial if trivial > 0 else None,
        "tail_coverage_ci95": [v / trivial for v in triv_ci] if trivial > 0 else None,
        "instance_law": config.instance_law,
        "tail_share": config.tail_share if config.instance_law == "mixture" else 0.0,
        # unbiased for 1 under either law (== 1 up to rounding when stratified): a diagnostic
        "sum_weights": float(inst.weights.sum()),
        "sum_weights_ci95": sw_ci,
        "n_per_source": {name: int(mask.sum()) for name, mask in src.items()},
        "truth": inst.truth_method,
        "truth_noise_nmse": float(inst.weights @ inst.truth_std_error**2 / denom),
        # instances whose truth routine reported a non-finite error (Monte Carlo truth gave up on a
        # very thin cone: truth 0, error inf); they make truth_noise_nmse infinite
        "truth_nonfinite_error_instances": int(np.sum(~np.isfinite(inst.truth_std_error))),
        # instances whose truth is dominated by a few draws (stated relative error > 0.5): the
        # Botev truth on thin m > n cones can be, while understating its own error
        "truth_dominated_instances": int(np.sum(
            inst.feasible & (inst.truth_std_error > TRUTH_DOMINATED_RELATIVE_ERROR * np.abs(inst.truth))
        )),
        "n_instances": int(inst.W.shape[0]),
        "n_feasible": int(inst.feasible.sum()),
        "feasible_probability": wendel_feasibility_probability(config.d, config.m),
        "methods": methods,
        "flop_comparison": _flop_comparison(methods, stats.trivial_mse_ratio),
        "flop_comparison_by_method": {
            m_: _equal_flops_rows(methods, m_, stats.trivial_mse_ratio)
            for m_ in methods if m_ != "sampling" and "sampling" in methods
        },
        "seconds_total": time.perf_counter() - t_start,
        "flop_counting": "analytic per-instance counts (lowprob.propagation.flops); RNG not counted; "
        "instance-independent precomputation reported separately, not included",
    }
    return out


def check_problem_law(problem: str, instance_law: str) -> None:
    """``instance_law`` must be one the registered curve problem ``problem`` implements."""
    laws = CURVE_PROBLEMS.get(problem).instance_laws
    if instance_law not in laws:
        raise InputValueError(
            f"instance_law={instance_law!r} is not available for problem={problem!r} (it implements "
            f"{laws!r}); use instance_law='stratified' (the tail law Q2 ∝ p^2 P is sampled exactly "
            "only for 'halfspace')."
        )


def _flop_comparison(methods: dict[str, Any], trivial: float = float("nan")) -> list[dict[str, Any]]:
    """``nmse_kernel / nmse_sampling`` at equal counted FLOPs.

    Sampling's nMSE is exactly ``1/N`` in expectation (unbiased, ``Var = p(1-p)/N``), so at
    ``F`` FLOPs it is ``f_s / F`` with ``f_s`` the measured FLOPs per sample (largest budget).
    ``kernel_ci_below_trivial`` says whether the kernel's whole 95 % interval lies below the
    trivial estimator's level: where ``f_s / F`` is above that level even ``2^-m`` "beats"
    sampling, so only points below it are informative.
    """
    if "kernel" not in methods or "sampling" not in methods:
        return []
    sp = max(methods["sampling"]["points"], key=lambda p: p["budget"])
    fs = sp["flops_per_instance"] / sp["budget"]
    out = []
    for p in methods["kernel"]["points"]:
        f = p["flops_per_instance"]
        s = fs / f if f > 0 else float("inf")
        out.append({
            "budget": p["budget"], "flops": f, "kernel_nmse": p["nmse"],
            "kernel_nmse_ci95": p["nmse_ci95"],
            "sampling_flops_per_sample": fs,
            "sampling_nmse_at_equal_flops": s, "ratio_kernel_over_sampling": p["nmse"] / s,
            "trivial_nmse": trivial, "kernel_ci_below_trivial": bool(p["nmse_ci95"][1] < trivial),
        })
    return out


def _equal_flops_rows(methods: dict[str, Any], method: str, trivial: float) -> list[dict[str, Any]]:
    """Any deterministic method against sampling's exact ``1/N`` law at equal counted FLOPs.

    Same convention as :func:`_flop_comparison`; ``below_sampling`` says whether the method's
    whole 95 % interval lies below sampling's expected nMSE at that FLOP count.
    """
    sp = max(methods["sampling"]["points"], key=lambda p: p["budget"])
    fs = sp["flops_per_instance"] / sp["budget"]
    rows = []
    for p in methods[method]["points"]:
        f = p["flops_per_instance"]
        s = fs / f if f > 0 else float("inf")
        rows.append({
            "method": method, "budget": p["budget"], "flops": f, "nmse": p["nmse"],
            "nmse_ci95": p["nmse_ci95"], "sampling_flops_per_sample": fs,
            "sampling_nmse_at_equal_flops": s, "ratio_over_sampling": p["nmse"] / s,
            "below_sampling": bool(p["nmse_ci95"][1] < s),
            "precomputation_flops": p.get("precomputation_flops", 0.0),
            "precomputation_amortised_over": p.get("precomputation_amortised_over"),
            "ratio_over_sampling_incl_precomputation": p["nmse"] * p.get("flops_per_instance_incl_precomputation", f) / fs,
            "ci_below_trivial": bool(p["nmse_ci95"][1] < trivial),
        })
    return rows


def plot_curves(result: dict[str, Any], path: str | Path) -> None:
    """Three log-log panels: nMSE vs budget, vs counted FLOPs, vs seconds."""
    import matplotlib.pyplot as plt  # lazily; the backend is the caller's (headless: Agg by default)
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    colors = {"kernel": "C0", "hermite": "C2", "sampling": "C3"}
    xkeys = [("budget", "budget K (terms or samples)"), ("flops_per_instance", "counted FLOPs per instance"),
             ("seconds_per_instance", "seconds per instance")]
    for ax, (key, label) in zip(axes, xkeys, strict=True):
        for meth, rec in result["methods"].items():
            pts = rec["points"]
            x = np.array([p[key] for p in pts], dtype=float)
            y = np.array([p["nmse"] for p in pts])
            lo = np.array([p["nmse_ci95"][0] for p in pts])
            hi = np.array([p["nmse_ci95"][1] for p in pts])
            ok = x > 0
            sl = rec.get("slope_vs_budget", {}).get("slope")
            lab = meth + (f" (slope {sl:+.2f})" if sl is not None and key == "budget" else "")
            ax.plot(x[ok], y[ok], "o-", color=colors.get(meth), label=lab)
            ax.fill_between(x[ok], np.maximum(lo[ok], 1e-12), hi[ok], color=colors.get(meth), alpha=0.2)
        ax.axhline(result["trivial_nmse"], color="gray", ls=":", label="trivial E[p]")
        if key == "budget":
            kmax = max(p["budget"] for r in result["methods"].values() for p in r["points"])
            xs = np.logspace(0, np.log10(kmax), 50)
            ax.plot(xs, 1 / xs, "k--", lw=1, label="1/N (sampling)")
        if key == "flops_per_instance" and "sampling" in result["methods"]:
            sp = result["methods"]["sampling"]["points"]
            fps = np.mean([p["flops_per_instance"] / p["budget"] for p in sp])
            fmax = max(p["flops_per_instance"] for r in result["methods"].values() for p in r["points"])
            xs = np.logspace(1, np.log10(fmax), 50)
            ax.plot(xs, fps / xs, "k--", lw=1, label=f"sampling 1/N ({fps:.0f} FLOPs/sample)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylim(bottom=max(1e-8, ax.get_ylim()[0]))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("MSE / E_W[p(1-p)]")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    cfg = result["config"]
    fig.suptitle(
        f"halfspace toy d={cfg['d']}, m={cfg['m']}: {result['n_instances']} instances "
        f"({result['n_feasible']} feasible, {result.get('instance_law', 'stratified')} law); "
        f"truth: {result['truth'][:60]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    result: dict[str, Any], out: str | Path, stem: str = "curves", *, plot: Any = None
) -> tuple[Path, Path]:
    """Write ``<out>/<stem>.json`` (strict JSON, atomic) and ``<out>/<stem>.png`` (drawn by
    ``plot(result, path)``, default :func:`plot_curves`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jp, pp = out / f"{stem}.json", out / f"{stem}.png"
    atomic_write_json(jp, result, indent=1)
    (plot or plot_curves)(result, pp)
    return jp, pp


def parse_budgets(spec: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["kernel=1,5,14", "sampling=10,100"]`` -> dict."""
    out: dict[str, tuple[int, ...]] = {}
    for item in spec:
        if "=" not in item:
            raise InputValueError(f"--budgets entries look like 'kernel=1,5,14', got {item!r}.")
        meth, vals = item.split("=", 1)
        try:
            ks = tuple(int(float(v)) for v in vals.split(",") if v)
        except ValueError:
            raise InputValueError(f"--budgets {item!r}: budgets must be integers.") from None
        if not ks or min(ks) < 1:
            raise InputValueError(f"--budgets {item!r}: budgets must be integers >= 1.")
        out[meth.strip()] = ks
    return out


CURVE_PROBLEMS.add("halfspace", CurveProblem(
    draw=lambda config, show_progress=None: draw_instances(config, show_progress=show_progress),
    statistics=instance_statistics,
    estimator=get_toy_estimator,
    description="random halfspace products: W (m x d) i.i.d. N(0, 1), p = P[Wx > 0], x ~ N(0, I_d)",
    instance_laws=INSTANCE_LAWS,
))
