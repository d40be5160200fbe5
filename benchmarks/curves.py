"""Benchmark: kernel vs hermite vs sampling curves on random halfspace toys.

Runs :func:`lowprob.propagation.curves.run_curves` on three configurations and writes, for
each, ``benchmarks/results/curves_<d>x<m>.json`` and ``.png``, then prints a table of the
targets (DESIGN.md section 7, issue 4):

* 4 x 16 (exact oracle truth): the kernel's fitted slope of ``MSE/E[p(1-p)]`` vs ``K`` and
  its 95 % bootstrap interval (target: steeper than -1, interval excluding -1);
* every configuration: kernel nMSE / sampling nMSE at equal counted FLOPs (target: <= 1 for
  budgets >= 1e7 FLOPs on at least one configuration);
* 16 x 16 and 8 x 32 use Monte Carlo truth (Botev minimax tilting, stated in the JSON).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/curves.py                 # all three configurations
    OMP_NUM_THREADS=1 python benchmarks/curves.py --configs 4x16  # just the main one
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lowprob.propagation.curves import CurveConfig, run_curves, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

CONFIGS = {
    # the CLI defaults plus larger kernel budgets (the rotated product reaches K = 1015 at ~4e6 FLOPs)
    "4x16": CurveConfig(
        d=4, m=16, instances=2000,
        budgets={"kernel": (1, 5, 14, 30, 55, 91, 140, 204, 285, 385, 506, 650, 819, 1015)},
    ),
    # hermite to total degree 4 (K = C(20, 4) = 4845 terms, 3.3e7 FLOPs) by the rotated line product
    "16x16": CurveConfig(
        d=16, m=16, instances=900, truth_samples=2**13,
        budgets={"kernel": (1, 17), "hermite": (1, 17, 153, 969, 4845, 20349),
                 "sampling": (10, 100, 1000, 10_000, 100_000)},
    ),
    "8x32": CurveConfig(
        d=8, m=32, instances=60, truth_samples=2**13,
        budgets={"kernel": (1, 9, 44), "hermite": (1, 9, 45, 165, 495, 1287, 3003),
                 "sampling": (10, 100, 1000, 10_000, 100_000)},
    ),
}


def _by_method(res: dict) -> dict:
    """Equal-FLOPs rows per deterministic method (recomputed for JSON files from older runs)."""
    from lowprob.propagation.curves import _equal_flops_rows

    if "sampling" not in res["methods"]:
        return {}
    return {m: _equal_flops_rows(res["methods"], m, res["trivial_nmse"]) for m in res["methods"] if m != "sampling"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--instances", type=int, default=None, help="override the instance count")
    ap.add_argument("--summarize-only", action="store_true",
                    help="run nothing; rebuild the table and curves_summary.json from the JSON files")
    args = ap.parse_args(argv)
    for name in [] if args.summarize_only else args.configs:
        cfg = CONFIGS[name]
        if args.instances:
            from dataclasses import replace

            cfg = replace(cfg, instances=args.instances)
        print(f"== {name}: d={cfg.d} m={cfg.m} instances={cfg.instances}", flush=True)
        res = run_curves(cfg, show_progress=sys.stderr.isatty(), log=lambda s: print(s, flush=True))
        jp, pp = write_results(res, RESULTS, f"curves_{name}")
        print(f"   wrote {jp.relative_to(RESULTS.parent.parent)} and {pp.name}; truth: {res['truth']}")
    # the table covers every configuration with a result on disk (this run's and earlier ones)
    summary = {name: json.loads((RESULTS / f"curves_{name}.json").read_text())
               for name in CONFIGS if (RESULTS / f"curves_{name}.json").exists()}
    print()
    print(f"{'config':7s} {'method':9s} {'slope vs K':>11s} {'95% CI':>18s} {'best nMSE':>10s} {'at FLOPs':>10s}")
    for name, res in summary.items():
        for meth, rec in res["methods"].items():
            sl = rec.get("slope_vs_budget", {})
            best = min(rec["points"], key=lambda p: p["nmse"])
            ci = sl.get("ci95", [float("nan")] * 2)
            print(f"{name:7s} {meth:9s} {sl.get('slope', float('nan')):11.3f} "
                  f"[{ci[0]:+.3f}, {ci[1]:+.3f}] {best['nmse']:10.2e} {best['flops_per_instance']:10.2e}")
    print()
    print("kernel / hermite vs sampling at equal counted FLOPs (sampling nMSE = FLOPs-per-sample / F, exact 1/N law):")
    for name, res in summary.items():
        for rows in _by_method(res).values():
            for row in rows:
                print(f"  {name:6s} {row['method']:8s} K={row['budget']:>5d} F={row['flops']:.2e}  "
                      f"nMSE {row['nmse']:.2e} [{row['nmse_ci95'][0]:.2e}, {row['nmse_ci95'][1]:.2e}]  "
                      f"sampling {row['sampling_nmse_at_equal_flops']:.2e}  ratio {row['ratio_over_sampling']:.2f}"
                      f"{'  (CI below sampling)' if row['below_sampling'] else ''}")
    (RESULTS / "curves_summary.json").write_text(json.dumps(
        {k: {"slopes": {m: r.get("slope_vs_budget") for m, r in v["methods"].items()},
             "flop_comparison": v["flop_comparison"], "equal_flops_vs_sampling": _by_method(v),
             "target_1e7_met_by": sorted({r["method"] for rows in _by_method(v).values() for r in rows
                                         if r["flops"] >= 1e7 and r["below_sampling"]}),
             "truth": v["truth"],
             "trivial_nmse": v["trivial_nmse"], "n_instances": v["n_instances"]}
         for k, v in summary.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
