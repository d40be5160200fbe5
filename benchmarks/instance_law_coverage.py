"""Benchmark: tail coverage and nMSE under the stratified and the mixture instance laws.

Reads the ``lowprob curves`` records ``<dir>/curves_<d>x<m>_<law>.json`` (written by the commands in
``benchmarks/RESULTS-mis.md``), prints one row per (cell, law): tail coverage (measured / exact
trivial nMSE) with its bootstrap 95 % interval, ``sum_weights`` with its interval, and each
method's nMSE with its interval; writes ``<dir>/instance_law_coverage.json`` and a plot of the
coverage intervals (``instance_law_coverage.png``).

Usage::

    python benchmarks/instance_law_coverage.py --dir benchmarks/results/mis
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from lowprob._io import atomic_write_json


def collect(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("curves_*x*_*.json")):
        mt = re.fullmatch(r"curves_(\d+)x(\d+)(?:n\d+)?_(\w+)\.json", path.name)
        if not mt:
            continue
        r = json.loads(path.read_text())
        rows.append({
            "file": str(path), "stem": path.stem, "d": int(mt[1]), "m": int(mt[2]), "law": r.get("instance_law", "stratified"),
            "n_instances": r["n_instances"], "n_per_source": r.get("n_per_source"),
            "trivial_nmse": r["trivial_nmse"], "trivial_nmse_measured": r["trivial_nmse_measured"],
            "tail_coverage": r.get("tail_coverage"), "tail_coverage_ci95": r.get("tail_coverage_ci95"),
            "sum_weights": r.get("sum_weights"), "sum_weights_ci95": r.get("sum_weights_ci95"),
            "truth_nonfinite_error_instances": r.get("truth_nonfinite_error_instances"),
            "nmse": {f"{meth} K={p['budget']}": [p["nmse"], *p["nmse_ci95"]]
                     for meth, rec in r["methods"].items() for p in rec["points"]},
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parent / "results" / "mis"))
    args = ap.parse_args(argv)
    folder = Path(args.dir)
    rows = collect(folder)
    print(f"{'cell':>6s} {'law':>10s} {'n':>4s} {'tail coverage [95% CI]':>28s} {'sum w [95% CI]':>26s}")
    for r in rows:
        ci, sw = r["tail_coverage_ci95"], r["sum_weights_ci95"]
        print(f"{r['d']:>2d}x{r['m']:<3d} {r['law']:>10s} {r['n_instances']:>4d} "
              f"{r['tail_coverage']:9.3g} [{ci[0]:.3g}, {ci[1]:.3g}]".ljust(50)
              + f"{r['sum_weights']:.4f} [{sw[0]:.3f}, {sw[1]:.3f}]")
        for k, (v, lo, hi) in r["nmse"].items():
            print(f"{'':18s}{k:>16s}: nMSE {v:.3g} [{lo:.3g}, {hi:.3g}]")
    atomic_write_json(folder / "instance_law_coverage.json", {"rows": rows}, indent=1)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, r in enumerate(rows):
        ci = r["tail_coverage_ci95"]
        c = "C0" if r["law"] == "mixture" else "C3"
        ax.errorbar([i], [r["tail_coverage"]], yerr=[[r["tail_coverage"] - ci[0]], [ci[1] - r["tail_coverage"]]],
                    fmt="o", color=c)
    ax.set_xticks(range(len(rows)), [f"{r['d']}x{r['m']}\n{r['law'][:5]}" for r in rows], fontsize=7)
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", ls=":")
    ax.axhline(0.5, color="gray", ls="--", lw=0.8)
    ax.set_ylabel("tail coverage (measured / exact trivial nMSE)")
    ax.set_title("tail coverage with bootstrap 95% CI: stratified (red) vs mixture (blue)", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "instance_law_coverage.png", dpi=110)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
