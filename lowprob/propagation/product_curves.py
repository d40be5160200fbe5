"""Curves for the random products beyond half-spaces: #3-SAT and {0,1}-permanents.

Same record as :func:`lowprob.propagation.curves.run_curves` (``methods -> points`` with
``budget, nmse, nmse_ci95, flops_per_instance, seconds_per_instance``, slopes with bootstrap
intervals, ``flop_comparison_by_method`` against sampling's exact ``1/N`` law at equal counted
FLOPs), for i.i.d. random instances with *exact* truth:

* ``sat``: ``k`` random 3-clauses on ``n`` variables, truth by exhaustive bit-parallel
  counting (:func:`lowprob.toy_models.sat.count_satisfying`, ``n <= 30``);
* ``permanent``: ``n x n`` i.i.d. uniform {0,1} matrices, truth by Ryser's formula in exact
  integers (:func:`lowprob.toy_models.permanent.ryser_permanent`, ``n <= 22``).

``nMSE = mean_instances (p_hat - p)^2 / E[p(1-p)]`` with the exact ``E[p(1-p)]`` of the
instance statistics, so sampling with ``N`` samples sits on ``1/N``; the trivial estimator
``E p`` sits at ``Var p / E[p(1-p)]``. Slopes (OLS of ``log nMSE`` on ``log budget`` and on
``log FLOPs``, percentile-bootstrap intervals over instances) are fitted on the budgets whose
whole 95 % interval lies below the trivial level (the method has left the plateau) and whose
error is non-zero. Problems are registered in :data:`PRODUCT_CURVE_PROBLEMS`
(``lowprob curves --problem NAME``); ``halfspace`` is the original
:mod:`lowprob.propagation.curves` job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._progress import progress
from lowprob._validation import as_generator, check_int
from lowprob.propagation.curves import _equal_flops_rows, fit_slope
from lowprob.registry import Registry
from lowprob.toy_models.registry import get_toy_estimator

__all__ = [
    "PRODUCT_CURVE_PROBLEMS",
    "ProductCurveProblem",
    "ProductCurveConfig",
    "plot_product_curves",
    "run_product_curves",
    "write_product_results",
]


@dataclass(frozen=True)
class ProductCurveProblem:
    """A discrete random-product family (#3-SAT, permanents): how to draw instances with exact
    truth, their statistics, default methods and budgets.

    The halfspace family (Gaussian inputs, stratified on feasibility, weight matrices) runs
    through :func:`lowprob.propagation.curves.run_curves` and its ``CURVE_PROBLEMS``; this runner
    shares its slope fit, equal-FLOP rows and writer.
    """

    draw: Callable[[ProductCurveConfig, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    statistics: Callable[[ProductCurveConfig], dict[str, Any]]
    methods: tuple[str, ...]
    budgets: dict[str, tuple[int, ...]]
    fit_from: dict[str, int]
    describe: Callable[[ProductCurveConfig], str]


PRODUCT_CURVE_PROBLEMS: Registry[ProductCurveProblem] = Registry("curve problem", plugins=True)


@dataclass(frozen=True)
class ProductCurveConfig:
    """What :func:`run_product_curves` runs (``k`` = clauses for ``sat``; ignored otherwise)."""

    problem: str = "sat"
    n: int = 16
    k: int | None = None
    instances: int = 100
    methods: tuple[str, ...] = ()
    budgets: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    bootstrap: int = 1000

    @property
    def clauses(self) -> int:
        return int(self.k) if self.k is not None else int(round(4.26 * self.n))


def _sat_draw(cfg: ProductCurveConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from lowprob.toy_models.sat import (
        SatProblem,
        _check_exact_size,
        count_satisfying,
        random_clauses,
    )

    _check_exact_size(cfg.n)
    lits = random_clauses(cfg.n, cfg.clauses, seed=rng, batch=cfg.instances)
    truth = np.array([
        count_satisfying(SatProblem.from_literals(cfg.n, lits[b].tolist())) / 2.0**cfg.n
        for b in progress(range(cfg.instances), total=cfg.instances, desc="exact #SAT", enabled=None)
    ])
    return lits, truth


def _sat_stats(cfg: ProductCurveConfig) -> dict[str, Any]:
    from lowprob.toy_models.sat import sat_instance_statistics

    out = sat_instance_statistics(cfg.n, cfg.clauses).to_dict()
    # reference: exhaustive enumeration under sampling's cost model ((w + 1) FLOPs per clause
    # evaluated; a uniform assignment evaluates sum_{i<k} (7/8)^i clauses on average)
    out["exact_enumeration_flops"] = 2.0**cfg.n * 4.0 * 8.0 * (1.0 - (7.0 / 8.0) ** cfg.clauses)
    return out


def _perm_draw(cfg: ProductCurveConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from lowprob.errors import UnavailableError
    from lowprob.toy_models.permanent import (
        PERMANENT_EXACT_LIMIT,
        random_binary_matrices,
        ryser_permanent,
    )

    if cfg.n > PERMANENT_EXACT_LIMIT:
        raise UnavailableError(f"exact permanents are limited to n <= {PERMANENT_EXACT_LIMIT}, got n={cfg.n!r}.")
    C = random_binary_matrices(cfg.n, seed=rng, batch=cfg.instances)
    f = math.factorial(cfg.n)
    truth = np.array([ryser_permanent(C[b]) / f for b in range(cfg.instances)], dtype=np.float64)
    return C, truth


def _perm_stats(cfg: ProductCurveConfig) -> dict[str, Any]:
    from lowprob.toy_models.permanent import permanent_instance_statistics

    out = permanent_instance_statistics(cfg.n).to_dict()
    # reference: the exact subset recursion G_{i+1}(A') = sum_{j in A'} c_j G_i(A' - j) / (i+1),
    # about 2 i FLOPs per i-subset: sum_i 2 i C(n, i) = n 2^n
    out["exact_subset_dp_flops"] = float(cfg.n * 2**cfg.n)
    return out


PRODUCT_CURVE_PROBLEMS.add("sat", ProductCurveProblem(
    _sat_draw, _sat_stats, ("sat-walsh", "sat-walsh-topk", "sat-sampling"),
    {"sat-walsh": (1, 137, 697, 2517, 6885), "sat-walsh-topk": (100, 300, 1000, 3000),
     "sat-sampling": (100, 1000, 10_000, 100_000)},
    {"sat-walsh": 137, "sat-walsh-topk": 300, "sat-sampling": 100},
    lambda c: f"random 3-SAT n={c.n}, k={c.clauses} clauses (ratio {c.clauses / c.n:.2f})",
))
PRODUCT_CURVE_PROBLEMS.add("permanent", ProductCurveProblem(
    _perm_draw, _perm_stats, ("perm-slice", "perm-sampling"),
    {"perm-slice": (1, 12, 66, 220, 495), "perm-sampling": (100, 1000, 10_000, 100_000)},
    {"perm-slice": 12, "perm-sampling": 100},
    lambda c: f"random {{0,1}} permanents n={c.n}",
))


def _boot(rng: np.random.Generator, N: int, R: int) -> np.ndarray:
    return rng.integers(0, N, size=(R, N))


def run_product_curves(config: ProductCurveConfig, *, log: Any = None) -> dict[str, Any]:
    """Every method at every budget on the same exact-truth instances; a JSON-ready record."""
    spec = PRODUCT_CURVE_PROBLEMS.get(config.problem)
    check_int("instances", config.instances, minimum=2)
    check_int("n", config.n, minimum=3)
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)
    methods_run = config.methods or spec.methods
    for meth in methods_run:
        get_toy_estimator(meth)  # fail fast on unknown names
    t0 = time.perf_counter()
    rng = as_generator(config.seed)
    data, truth = spec.draw(config, rng)
    stats = spec.statistics(config)
    denom = stats["mean_p_one_minus_p"]
    boot = _boot(np.random.default_rng([config.seed, 1]), truth.size, config.bootstrap)
    log(f"{spec.describe(config)}: {truth.size} instances, mean p {truth.mean():.3e} "
        f"(E p = {stats['mean_p']:.3e}), {int(np.sum(truth == 0))} with p = 0")
    methods: dict[str, Any] = {}
    sq: dict[str, list[np.ndarray]] = {}
    for meth in methods_run:
        budgets = config.budgets.get(meth, spec.budgets.get(meth, (10, 100, 1000)))
        for K in budgets:
            est = get_toy_estimator(meth)
            t1 = time.perf_counter()
            res = est.estimate_batch(data, int(K), seed=np.random.default_rng([config.seed, 2, int(K)]), n=config.n)
            e2 = (res.values - truth) ** 2
            sq.setdefault(meth, []).append(e2)
            nmse = float(e2.mean() / denom)
            lo, hi = np.percentile(e2[boot].mean(axis=1) / denom, [2.5, 97.5])
            entry = {
                "budget": int(K), "terms_or_samples": int(res.terms), "nmse": nmse,
                "nmse_ci95": [float(lo), float(hi)],
                "flops_per_instance": float(res.flops.mean()),
                "seconds_per_instance": float(res.seconds.mean()),
                "wall_seconds_total": time.perf_counter() - t1,
                "precomputation_flops": float(res.precomputation_flops),
            }
            methods.setdefault(meth, {"points": []})["points"].append(entry)
            log(f"  {meth:15s} K={K:>7d}  nMSE={nmse:.3e} [{lo:.2e}, {hi:.2e}]  "
                f"flops={entry['flops_per_instance']:.3e}  s/inst={entry['seconds_per_instance']:.2e}")
    for meth, rec in methods.items():
        pts = rec["points"]
        K = np.array([p["budget"] for p in pts], dtype=float)
        F = np.array([p["flops_per_instance"] for p in pts])
        hi = np.array([p["nmse_ci95"][1] for p in pts])
        # fit where the method has left the trivial plateau: budgets >= fit_from whose whole
        # 95 % interval lies below the trivial estimator's level
        use = (K >= int(spec.fit_from.get(meth, 0))) & (hi < stats["trivial_mse_ratio"])
        if use.sum() < 2:
            use = K > K.min()
        if use.sum() < 2:
            continue
        E = np.stack(sq[meth], axis=1)  # (N, budgets)
        y = E.mean(axis=0) / denom
        yb = E[boot].mean(axis=1) / denom  # (R, budgets)
        use &= y > 1e-20  # a budget at which the method is exact (error 0) has no logarithm
        if use.sum() < 2:
            rec["slope_vs_budget"] = {"slope": None, "note": "fewer than 2 budgets with non-zero error"}
            continue
        for key, x in (("slope_vs_budget", K), ("slope_vs_flops", F)):
            s = float(fit_slope(x[use], y[use]))
            sb = fit_slope(x[use], yb[:, use])
            lo, hi = np.percentile(sb, [2.5, 97.5])
            rec[key] = {"slope": s, "ci95": [float(lo), float(hi)], "fit_budgets": K[use].astype(int).tolist()}
        s = rec["slope_vs_budget"]
        log(f"  slope {meth}: {s['slope']:+.3f}  95% CI [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}]")
    sampling = next((m for m in methods if m.endswith("sampling")), None)
    comparison = {}
    if sampling is not None:
        view = {**methods, "sampling": methods[sampling]}
        comparison = {m: _equal_flops_rows(view, m, stats["trivial_mse_ratio"]) for m in methods if m != sampling}
    return {
        "problem": config.problem,
        "description": spec.describe(config),
        "config": {**asdict(config), "k": config.clauses if config.problem == "sat" else None,
                   "methods": list(methods_run)},
        "instance_statistics": stats,
        "trivial_nmse": stats["trivial_mse_ratio"],
        "truth": "exact (sat: bit-parallel enumeration; permanent: Ryser in exact integers)",
        "n_instances": int(truth.size),
        "mean_truth": float(truth.mean()),
        "zero_truth_instances": int(np.sum(truth == 0)),
        "methods": methods,
        "flop_comparison_by_method": comparison,
        "seconds_total": time.perf_counter() - t0,
        "flop_counting": "analytic per-instance counts (lowprob.propagation.flops); RNG, integer index "
        "arithmetic and look-ups not counted; instance-independent precomputation reported separately",
    }


def plot_product_curves(result: dict[str, Any], path: str | Path) -> None:
    """Two log-log panels: nMSE vs budget and vs counted FLOPs (sampling's ``1/N`` law dashed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (key, label) in zip(axes, [("budget", "budget K (terms or samples)"),
                                        ("flops_per_instance", "counted FLOPs per instance")], strict=True):
        for i, (meth, rec) in enumerate(result["methods"].items()):
            pts = rec["points"]
            x = np.array([p[key] for p in pts], dtype=float)
            y = np.array([p["nmse"] for p in pts])
            lo = np.array([p["nmse_ci95"][0] for p in pts])
            hi = np.array([p["nmse_ci95"][1] for p in pts])
            ok = (x > 0) & (y > 0)
            sl = (rec.get("slope_vs_budget") or {}).get("slope")
            lab = meth + (f" (slope {sl:+.2f})" if sl is not None and key == "budget" else "")
            ax.plot(x[ok], y[ok], "o-", color=f"C{i}", label=lab)
            ax.fill_between(x[ok], np.maximum(lo[ok], 1e-14), hi[ok], color=f"C{i}", alpha=0.2)
            if key == "flops_per_instance" and meth.endswith("sampling"):
                big = max(pts, key=lambda p: p["budget"])
                fs = big["flops_per_instance"] / big["budget"]
                xs = np.logspace(np.log10(max(fs, 1.0)), np.log10(max(p["flops_per_instance"] for r in result["methods"].values() for p in r["points"])), 50)
                ax.plot(xs, fs / xs, "k--", lw=1, label=f"sampling 1/N ({fs:.1f} FLOPs/sample)")
        ax.axhline(result["trivial_nmse"], color="gray", ls=":", label="trivial E[p]")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("MSE / E[p(1-p)]")
    fig.suptitle(f"{result['description']}: {result['n_instances']} instances, exact truth", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_product_results(result: dict[str, Any], out: str | Path, stem: str) -> tuple[Path, Path]:
    """``<out>/<stem>.json`` (strict, atomic) and ``<out>/<stem>.png``."""
    from lowprob.propagation.curves import write_results

    return write_results(result, out, stem, plot=plot_product_curves)


def parse_problem_budgets(spec: list[str]) -> dict[str, tuple[int, ...]]:
    """Same syntax as ``--budgets`` of the halfspace curves."""
    from lowprob.propagation.curves import parse_budgets

    return parse_budgets(spec)

