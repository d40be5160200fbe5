"""Naive Monte Carlo vs sequential Monte Carlo (``smc``) on feasible 4x16 halfspace instances.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/toy_baselines.py [--instances 30] [--budgets 10000 100000]

Random instances (seed 0) conditioned on feasibility; each estimator gets the same budget in
forward evaluations (``Estimate.cost.samples``) with seed = instance index. Reports, per
method and budget: median and mean of ``|p_hat/p - 1|`` against the exact oracle, the
fraction of instances with a zero estimate, the coverage of ``p_hat +- 2 std_error``, the
median relative error restricted to the rare instances (``p < 1e-5``) and seconds per run.
Writes ``benchmarks/results/toy_baselines.{json,png}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob._progress import progress  # noqa: E402
from lowprob.toy_models import HalfspaceToy, exact_probability  # noqa: E402
from lowprob.toy_models.registry import get_toy_estimator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--budgets", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--methods", nargs="+", default=["naive", "smc"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    toys, truths = [], []
    while len(toys) < args.instances:
        W = rng.standard_normal((16, 4))
        r = exact_probability(W)
        if r.feasible:
            toys.append(HalfspaceToy(W))
            truths.append(r.probability)
    truths = np.array(truths)

    records = []
    for method in args.methods:
        est = get_toy_estimator(method)
        for budget in args.budgets:
            vals, ses, secs, spent = [], [], [], []
            for i, toy in enumerate(progress(toys, total=len(toys), desc=f"{method} {budget}")):
                e = est.estimate(toy, budget, seed=i)
                vals.append(e.value)
                ses.append(e.std_error or 0.0)
                secs.append(e.cost.seconds)
                spent.append(e.cost.samples)
            vals, ses = np.array(vals), np.array(ses)
            rel = np.abs(vals / truths - 1)
            rare = truths < 1e-5
            records.append({
                "method": method, "budget": budget,
                "median_rel_error": float(np.median(rel)), "mean_rel_error": float(rel.mean()),
                "zero_fraction": float(np.mean(vals == 0)),
                "coverage_2se": float(np.mean(np.abs(vals - truths) <= 2 * ses)),
                "rare_instances": int(rare.sum()),
                "median_rel_error_rare": float(np.median(rel[rare])) if rare.any() else None,
                "zero_fraction_rare": float(np.mean(vals[rare] == 0)) if rare.any() else None,
                "mean_seconds": float(np.mean(secs)), "max_samples_spent": int(max(spent)),
                "estimates": vals.tolist(), "std_errors": ses.tolist(),
            })

    print(f"{len(toys)} feasible 4x16 instances, p in {truths.min():.1e}..{truths.max():.1e}")
    hdr = (f"{'method':<8}{'budget':>9}{'med |rel err|':>15}{'zero frac':>11}{'2se cover':>11}"
           f"{'med rel err p<1e-5':>20}{'s/run':>8}")
    print(hdr)
    for r in records:
        print(f"{r['method']:<8}{r['budget']:>9}{r['median_rel_error']:>15.3g}{r['zero_fraction']:>11.2f}"
              f"{r['coverage_2se']:>11.2f}{r['median_rel_error_rare'] or float('nan'):>20.3g}"
              f"{r['mean_seconds']:>8.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/toy_baselines.py " + " ".join(sys.argv[1:] if argv is None else argv)
    atomic_write_json(args.out / "toy_baselines.json",
                      {"command": cmd, "truths": truths.tolist(), "results": records}, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    fig, ax = plt.subplots(1, len(args.budgets), figsize=(5 * len(args.budgets), 4), squeeze=False)
    for j, budget in enumerate(args.budgets):
        a = ax[0, j]
        for r in records:
            if r["budget"] != budget:
                continue
            v = np.array(r["estimates"])
            shown = np.where(v > 0, v, truths.min() / 10)
            a.scatter(truths, shown, s=12, label=f"{r['method']} (zeros drawn at bottom)")
        a.plot([truths.min(), truths.max()], [truths.min(), truths.max()], "k--", lw=1)
        a.set(xscale="log", yscale="log", xlabel="exact p", ylabel="estimate",
              title=f"budget {budget} forward evaluations")
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "toy_baselines.png", dpi=120)
    print(f"wrote {args.out / 'toy_baselines.json'} and {args.out / 'toy_baselines.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
