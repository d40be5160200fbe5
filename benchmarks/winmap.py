"""Benchmark: the win map (deterministic propagation vs sampling over n, m and FLOP budgets).

Runs :func:`lowprob.propagation.winmap.run_grid` (the same code as ``lowprob curves --grid``)
and writes ``benchmarks/results/winmap.json``, ``winmap.png`` and the per-cell files in
``benchmarks/results/winmap_cells/`` (a rerun resumes: finished cells are reused). Then prints
the map (best log10 nMSE ratio vs sampling per cell, method and FLOP decade; ``*`` marks points
whose 95 % interval is not below the trivial ``E p`` level) and the issue's target checks.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/winmap.py --instances 40
    OMP_NUM_THREADS=1 python benchmarks/winmap.py --summarize-only   # print the table from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lowprob.propagation.winmap import GridConfig, parse_grid_ints, run_grid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(rec: dict) -> None:
    fmap, smap, inf = (rec["map_log10_ratio_at_equal_flops"], rec["map_log10_ratio_at_equal_seconds"],
                       rec["map_informative"])
    decs = sorted({int(d) for r in fmap.values() for d in r})
    print("log10(nMSE / sampling nMSE) at equal counted FLOPs [at equal seconds], best point per FLOP decade")
    print(f"{'cell method':18s}" + "".join(f"{'1e' + str(d):>15s}" for d in decs))
    for row, vals in fmap.items():
        cells = []
        for d in decs:
            v = vals.get(str(d))
            s = smap.get(row, {}).get(str(d))
            cells.append(" " * 15 if v is None else
                         f"{v:+6.2f}{'' if inf[row][str(d)] else '*'}[{s:+5.1f}]".rjust(15))
        print(f"{row:18s}" + "".join(cells))
    for c in rec["cells"]:
        if c.get("skipped"):
            print(f"  {c['n']}x{c['m']}: skipped: {c['skipped']}")
        else:
            ci = c.get("tail_coverage_ci95") or [float("nan")] * 2
            print(f"  {c['n']}x{c['m']}: tail coverage (measured/exact trivial nMSE) {c['tail_coverage']:.2f} "
                  f"[{ci[0]:.2f}, {ci[1]:.2f}] ({c.get('instance_law', 'stratified')} law); truth {c['truth'][:40]}..., truth noise nMSE {float(c['truth_noise_nmse']):.2e} "
                  f"({float(c['truth_noise_over_smallest_nmse'] or 'nan'):.2e} of the smallest method nMSE); "
                  f"trivial {float(c['trivial_nmse']):.2e}; "
                  f"slopes vs FLOPs " + ", ".join(
                      f"{m}: {s['slope']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]"
                      for m, s in c["slopes_vs_flops"].items() if s))
    print(json.dumps(rec["targets"], indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instances", type=int, default=40)
    ap.add_argument("--ns", default="4,8,16,32,64")
    ap.add_argument("--ratios", default="1,2,4")
    ap.add_argument("--bootstrap", type=int, default=400)
    ap.add_argument("--truth-samples", type=int, default=2**13)
    ap.add_argument("--instance-law", choices=("stratified", "mixture"), default="mixture",
                    help="instances: 'mixture' (feasibility strata of P plus the exact tail law Q2 ∝ p^2 P; "
                    "default) or 'stratified' (the strata only)")
    ap.add_argument("--tail-share", type=float, default=0.5, help="mixture: fraction of instances from Q2 (default 0.5)")
    ap.add_argument("--methods", nargs="+", default=None, help="methods (default: kernel hermite quadrature quadrature-genz quadrature-auto sampling)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--summarize-only", action="store_true")
    args = ap.parse_args(argv)
    if args.summarize_only:
        rec = json.loads((Path(args.out) / "winmap.json").read_text())
    else:
        extra = {"methods": tuple(args.methods)} if args.methods else {}
        cfg = GridConfig(ns=parse_grid_ints("--ns", args.ns), ratios=parse_grid_ints("--ratios", args.ratios),
                         instances=args.instances, bootstrap=args.bootstrap, truth_samples=args.truth_samples,
                         instance_law=args.instance_law, tail_share=args.tail_share, **extra)
        rec = run_grid(cfg, args.out, show_progress=sys.stderr.isatty())
    print_table(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
