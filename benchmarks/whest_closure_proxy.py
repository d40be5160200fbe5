"""How well does the K=2 -> K=3 change predict the error of cumulant propagation? (issue 13)

`AutoEstimator` picks propagation or rotated designs from ``delta^2 = mean_i (p3_i - p2_i)^2``,
the change that carrying the third cumulant (``kprop3-struct``) makes to the final-layer means
of ``kprop2``. This script measures ``delta^2`` against the debiased MSE of ``p3`` (squared error
to the Monte Carlo truth of ``benchmarks/whest_truth.py`` minus the truth's own variance
``avg_variance / n``), with the numpy twin of the estimators (float64), per round and MLP.

    OMP_NUM_THREADS=1 python benchmarks/whest_closure_proxy.py

Writes ``benchmarks/results/whest_closure_proxy.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from lowprob._io import atomic_write_json, check_writable  # noqa: E402
from lowprob.propagation.mlp_estimators import CumulantPropagation  # noqa: E402
from lowprob.toy_models.random_mlp import RandomMLP  # noqa: E402

sys.path.insert(0, str(_HERE))
from whest_truth import ROUND_KEYS, load_truth, round_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", nargs="+", default=["warmup", "phase1", "phase2"],
                    choices=sorted(ROUND_KEYS))
    ap.add_argument("--n-mlps", type=int, default=5)
    ap.add_argument("--out", default=str(_HERE / "results" / "whest_closure_proxy.json"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    check_writable(out)
    rows = []
    print("| round | MLP | truth samples | MSE(p3) | MSE(p2) | delta^2 | delta^2 / MSE(p3) | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.rounds:
        r = round_config(name)
        for i in range(a.n_mlps):
            seed = 1000 + i
            t = load_truth(r.tag, seed)
            if t is None:
                raise SystemExit(f"no truth for {r.tag} MLP {seed}: run benchmarks/whest_truth.py")
            mlp = RandomMLP.whestbench(r.width, r.depth, seed=seed)
            t0 = time.process_time()
            p3 = CumulantPropagation(order=3, structured=True, hermite_order=4).estimate_means(
                mlp, 10**15).means[-1]
            p2 = CumulantPropagation(order=2, hermite_order=4).estimate_means(mlp, 10**15).means[-1]
            noise = t["avg_variance"] / t["n_samples"]
            m3 = float(np.mean((p3 - t["means"][-1]) ** 2) - noise)
            m2 = float(np.mean((p2 - t["means"][-1]) ** 2) - noise)
            d2 = float(np.mean((p3 - p2) ** 2))
            row = {"round": r.tag, "mlp_seed": seed, "truth_samples": t["n_samples"],
                   "mse_p3": m3, "mse_p2": m2, "delta2": d2, "ratio": d2 / m3,
                   "cpu_s": time.process_time() - t0}
            rows.append(row)
            print(f"| {r.tag} | {seed} | {t['n_samples']} | {m3:.2e} | {m2:.2e} | {d2:.2e} | "
                  f"{d2 / m3:.2f} | {row['cpu_s']:.0f} |", flush=True)
    atomic_write_json(out, {"command": "python benchmarks/whest_closure_proxy.py", "args": vars(a),
                            "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
