"""Precision, bounds and memory of the exact sketch error at high harmonic degree.

Problem (the defect report's): a 50-point sample sketch (seed 1) of the uniform distribution on
S^3 under RandomHalfspaceProduct(4). Since mu_D is the constant lambda_0, the exact error is the
closed form ``w^T K w - lambda_0`` (kernel matrix with the exact diagonal kappa(1)). For each
degree L the script records the spectral value, the reported [lower, upper], whether the
interval contains the closed form, the wall time and the peak traced memory (tracemalloc, which
sees numpy's allocations). With ``--old-src DIR`` (a checkout of an earlier commit, e.g. made
with ``git archive REV lowprob | tar -x -C DIR``) the same measurement runs on that code in a
subprocess for comparison (degrees <= --old-max-degree).

Usage:  .venv/bin/python benchmarks/sketch_error_precision.py [--degrees 8 16 32 64 128]
            [--old-src DIR] [--out benchmarks/results]
Writes sketch_error_precision.json and .png to --out and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


_MEASURE = r"""
import json, sys, time, tracemalloc
import numpy as np
from lowprob.sketching import RandomHalfspaceProduct, SampleSketch, UniformSphere, sketch_error
C = RandomHalfspaceProduct(4, dim=4)
sk = SampleSketch(UniformSphere(4), 50, seed=1)
P = sk.points_and_weights()
K = C.kernel(P.points, P.points)
np.fill_diagonal(K, float(C.zonal.profile(np.array(1.0))))
closed = float(P.weights @ K @ P.weights - C.zonal.eigenvalues(0)[0])
rows = []
for L in json.loads(sys.argv[1]):
    tracemalloc.start(); t = time.perf_counter()
    r = sketch_error(sk, C, degree=L)
    sec = time.perf_counter() - t; peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    rows.append({"degree": L, "value": r.value, "lower": r.lower, "upper": r.upper, "closed_form": closed,
                 "abs_error": abs(r.value - closed), "contains": bool(r.lower <= closed <= r.upper),
                 "seconds": sec, "peak_traced_MiB": peak / 2**20})
print(json.dumps(rows))
"""


def _run(src: Path, degrees: list[int]) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(degrees)], env=env, cwd=src,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--degrees", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--old-src", type=Path, default=None)
    ap.add_argument("--old-max-degree", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    from lowprob._io import atomic_write_json, check_writable

    check_writable(args.out / "sketch_error_precision.json")
    root = Path(__file__).resolve().parents[1]
    record = {"problem": "SampleSketch(UniformSphere(4), 50, seed=1), RandomHalfspaceProduct(4)",
              "machine": "2 shared CPU cores, loaded by parallel jobs", "rows": _run(root, args.degrees)}
    if args.old_src is not None:
        record["old_rows"] = _run(args.old_src.resolve(), [d for d in args.degrees if d <= args.old_max_degree])
    print(f"closed form w^T K w - lambda_0 = {record['rows'][0]['closed_form']:.10e}")
    print(f"{'code':5s} {'L':>4s} {'value':>16s} {'|value-closed|':>14s} {'upper-lower':>12s} {'contains':>8s} {'s':>7s} {'MiB':>8s}")
    for tag, rows in (("new", record["rows"]), ("old", record.get("old_rows", []))):
        for r in rows:
            print(f"{tag:5s} {r['degree']:4d} {r['value']:16.10e} {r['abs_error']:14.3e} {r['upper'] - r['lower']:12.3e} "
                  f"{r['contains']!s:>8s} {r['seconds']:7.2f} {r['peak_traced_MiB']:8.1f}")
    atomic_write_json(args.out / "sketch_error_precision.json", record)
    try:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        for tag, rows, mk in (("new", record["rows"], "o-"), ("old", record.get("old_rows", []), "s--")):
            if rows:
                L = [r["degree"] for r in rows]
                ax[0].semilogy(L, [max(r["abs_error"], 1e-20) for r in rows], mk, label=f"{tag}: |value - closed form|")
                ax[0].semilogy(L, [max(r["upper"] - r["lower"], 1e-20) for r in rows], mk, alpha=0.5, label=f"{tag}: upper - lower")
                ax[1].semilogy(L, [r["peak_traced_MiB"] for r in rows], mk, label=tag)
        ax[0].set_xlabel("harmonic degree L")
        ax[0].legend(fontsize=7)
        ax[1].set_xlabel("harmonic degree L")
        ax[1].set_ylabel("peak traced MiB")
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.out / "sketch_error_precision.png", dpi=110)
        plt.close(fig)
    except ImportError:
        print("matplotlib not installed: no plot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
