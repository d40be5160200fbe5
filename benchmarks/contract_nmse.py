"""Relative MSE of the toy estimators on the test kit's instances, against the best constant.

For each contract class of the test suite (its budget, instance size and seeds), the relative
MSE ``sum_i (hat p_i - p_i)^2 / sum_i p_i^2`` over its ``n_agreement`` instances (exact oracle
truth), and the floor ``1 - (sum p)^2 / (n sum p^2)`` that every constant estimator is above.
These are the numbers behind the ``nmse_tolerance`` of each contract class.

Usage:  .venv/bin/python benchmarks/contract_nmse.py [--out benchmarks/results]
Writes contract_nmse.json to --out and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import lowprob.propagation  # noqa: E402, F401  (registers kernel, hermite, sampling)
from lowprob._io import atomic_write_json, check_writable  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    check_writable(args.out / "contract_nmse.json")
    import test_propagation_contract as tpc
    import test_toy_baselines as ttb

    rows = []
    for cls in (tpc.TestKernelContract, tpc.TestHermiteContract, tpc.TestSamplingContract,
                ttb.TestNaiveContract, ttb.TestSMCContract):
        c = cls()
        problems = [c.make_problem(i) for i in range(c.n_agreement)]
        p = np.array([c.oracle(pr)[0] for pr in problems])
        est = c.make_estimator()
        v = np.array([est.estimate(pr, c.budget, seed=c.seed + i).value for i, pr in enumerate(problems)])
        rows.append({"contract": cls.__name__, "budget": c.budget, "n_instances": len(p),
                     "p_min": float(p.min()), "p_max": float(p.max()),
                     "relative_mse": float(((v - p) ** 2).sum() / (p**2).sum()),
                     "constant_floor": float(1 - p.sum() ** 2 / (len(p) * (p**2).sum())),
                     "nmse_tolerance": c.nmse_tolerance})
    print(f"{'contract':24s} {'budget':>7s} {'p range':>20s} {'rel. MSE':>10s} {'tolerance':>10s} {'constant floor':>15s}")
    for r in rows:
        print(f"{r['contract']:24s} {r['budget']:7d} {r['p_min']:9.2e}..{r['p_max']:9.2e} {r['relative_mse']:10.2e} "
              f"{r['nmse_tolerance']:10.3g} {r['constant_floor']:15.3f}")
    atomic_write_json(args.out / "contract_nmse.json", {"machine": "2 shared CPU cores, loaded by parallel jobs", "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
