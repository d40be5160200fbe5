"""Summarise ``lowprob curves`` runs of the quadrature sketches against sampling at equal counted FLOPs.

For each curves JSON (``python -m lowprob curves ... --methods quadrature ... sampling``) this prints,
per method and budget: nMSE with its 95 % bootstrap interval, counted FLOPs per instance (the curves
convention: the stratum-weighted mean, where an infeasible instance certified empty by the LP costs
only the setup), sampling's nMSE at equal FLOPs (its exact ``1/N`` law at the run's FLOPs per sample)
and the ratio; and a *conservative* ratio that charges every instance the mean FLOPs of a
**feasible** instance (measured here on ``--feasible-instances`` fresh feasible instances of the
same shape: FLOPs depend on the instance only through the solver's iterations). Also the fitted
slopes (log nMSE on log FLOPs) for both conventions and the local slope between the two largest
budgets. Writes ``<out>.json`` and ``<out>.png``.

Usage::

    PYTHONPATH=$PWD python benchmarks/quadrature_summary.py \
        benchmarks/results/curves_4x16_quadrature.json --out benchmarks/results/quadrature_summary_4x16
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

import lowprob.propagation.toy_estimators  # noqa: F401  (registers the estimators)
from lowprob._io import atomic_write_json
from lowprob.propagation.curves import feasible_mask, fit_slope
from lowprob.toy_models.registry import get_toy_estimator


def feasible_flops(method: str, d: int, m: int, budget: int, count: int, seed: int = 12345) -> float:
    """Mean counted FLOPs of ``method`` on ``count`` fresh feasible ``m x d`` instances."""
    rng = np.random.default_rng([seed, d, m])
    got: list[np.ndarray] = []
    while sum(len(g) for g in got) < count:
        W = rng.standard_normal((256, m, d))
        got.append(W[feasible_mask(W)])
    W = np.concatenate(got)[:count]
    return float(np.mean(get_toy_estimator(method).estimate_batch(W, budget).flops))


def summarise(path: Path, count: int) -> dict:
    r = json.loads(path.read_text())
    d, m = r["config"]["d"], r["config"]["m"]
    sp = max(r["methods"]["sampling"]["points"], key=lambda p: p["budget"])
    fs = sp["flops_per_instance"] / sp["budget"]
    out = {"file": str(path), "d": d, "m": m, "n_instances": r["n_instances"], "n_feasible": r["n_feasible"],
           "truth": r["truth"], "truth_noise_nmse": float(r["truth_noise_nmse"]),
           "trivial_nmse": float(r["trivial_nmse"]),
           "sampling_flops_per_sample": fs, "sampling": r["methods"]["sampling"], "methods": {}}
    for meth, rec in r["methods"].items():
        if meth == "sampling":
            continue
        rows = []
        for p in rec["points"]:
            F = p["flops_per_instance"]
            Ff = feasible_flops(meth, d, m, p["budget"], count)
            rows.append({
                "budget": p["budget"], "nmse": p["nmse"], "nmse_ci95": p["nmse_ci95"], "flops": F,
                "sampling_nmse_at_equal_flops": fs / F, "ratio": p["nmse"] / (fs / F),
                "ci_below_sampling": p["nmse_ci95"][1] < fs / F,
                "ci_below_trivial": p["nmse_ci95"][1] < r["trivial_nmse"],
                "flops_feasible": Ff, "ratio_feasible_flops": p["nmse"] / (fs / Ff),
                "ci_below_sampling_feasible_flops": p["nmse_ci95"][1] < fs / Ff,
                "precomputation_flops": p["precomputation_flops"],
            })
        K = [x["budget"] for x in rows]
        y = np.array([x["nmse"] for x in rows])
        Ff = np.array([x["flops_feasible"] for x in rows])
        out["methods"][meth] = {
            "rows": rows,
            "slope_vs_flops": rec.get("slope_vs_flops"),
            "slope_vs_budget": rec.get("slope_vs_budget"),
            "slope_vs_feasible_flops": float(fit_slope(Ff, y)),
            "local_slope_last_two_vs_feasible_flops": float(
                math.log(y[-1] / y[-2]) / math.log(Ff[-1] / Ff[-2])) if len(K) > 1 else None,
        }
    return out


def _print(s: dict) -> None:
    print(f"\n## {s['d']}x{s['m']}  ({s['n_instances']} instances, {s['n_feasible']} feasible; "
          f"truth noise nMSE {s['truth_noise_nmse']:.2e}; trivial {s['trivial_nmse']:.2e}; "
          f"sampling {s['sampling_flops_per_sample']:.1f} FLOPs/sample)")
    for meth, rec in s["methods"].items():
        print(f"\n### {meth}\n")
        print("| K | nMSE [95% CI] | FLOPs/inst (curves) | sampling at equal FLOPs | ratio | FLOPs/feasible inst | ratio (feasible FLOPs) |")
        print("|---|---|---|---|---|---|---|")
        for x in rec["rows"]:
            lo, hi = x["nmse_ci95"]
            print(f"| {x['budget']} | {x['nmse']:.2e} [{lo:.2e}, {hi:.2e}] | {x['flops']:.3e} | "
                  f"{x['sampling_nmse_at_equal_flops']:.2e} | {x['ratio']:.2e} | {x['flops_feasible']:.3e} | "
                  f"{x['ratio_feasible_flops']:.2e} |")
        sf, sb = rec["slope_vs_flops"], rec["slope_vs_budget"]
        if sf:
            print(f"\nslope vs FLOPs (curves) {sf['slope']:+.3f} [{sf['ci95'][0]:+.3f}, {sf['ci95'][1]:+.3f}]; "
                  f"vs K {sb['slope']:+.3f} [{sb['ci95'][0]:+.3f}, {sb['ci95'][1]:+.3f}]; "
                  f"vs feasible FLOPs {rec['slope_vs_feasible_flops']:+.3f} (point); local (last two K) "
                  f"{rec['local_slope_last_two_vs_feasible_flops']:+.3f}")


def _plot(summaries: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6 * len(summaries), 4.5), squeeze=False)
    for ax, s in zip(axes[0], summaries, strict=True):
        fs = s["sampling_flops_per_sample"]
        allF = [x["flops_feasible"] for rec in s["methods"].values() for x in rec["rows"]]
        allF += [x["flops"] for rec in s["methods"].values() for x in rec["rows"]]
        F = np.geomspace(min(allF) / 2, max(allF) * 2, 50)
        ax.loglog(F, fs / F, "k--", label="sampling (exact 1/N)")
        for meth, rec in s["methods"].items():
            rows = rec["rows"]
            y = [x["nmse"] for x in rows]
            err = np.array([[x["nmse"] - x["nmse_ci95"][0], x["nmse_ci95"][1] - x["nmse"]] for x in rows]).T
            ax.errorbar([x["flops"] for x in rows], y, yerr=err, marker="o", label=f"{meth} (curves FLOPs)")
            ax.loglog([x["flops_feasible"] for x in rows], y, marker="s", ls=":", label=f"{meth} (feasible FLOPs)")
        ax.axhline(s["trivial_nmse"], color="gray", lw=0.8, label="trivial predictor")
        if 1e-20 < s["truth_noise_nmse"] < math.inf:  # the exact oracle has ~1e-30: not drawn
            ax.axhline(s["truth_noise_nmse"], color="red", lw=0.8, ls=":", label="truth noise")
        ax.set_xlabel("counted FLOPs per instance")
        ax.set_ylabel("nMSE")
        ax.set_title(f"{s['d']}x{s['m']}, {s['n_instances']} instances")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("curves", nargs="+", type=Path, help="curves JSON files")
    ap.add_argument("--out", type=Path, required=True, help="output stem (writes .json and .png)")
    ap.add_argument("--feasible-instances", type=int, default=20)
    a = ap.parse_args()
    sums = [summarise(p, a.feasible_instances) for p in a.curves]
    for s in sums:
        _print(s)
    atomic_write_json(a.out.with_suffix(".json"), sums)
    _plot(sums, a.out.with_suffix(".png"))
    print(f"\nwrote {a.out.with_suffix('.json')} and {a.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
