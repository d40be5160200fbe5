"""Benchmark: counted FLOPs (``Cost.flops``) vs executed FLOPs (shape-based ledger), per method.

For each configuration, runs the estimator on a few random instances inside
:func:`lowprob.propagation.executed.ledger` and prints counted and executed FLOPs per instance,
their ratio, the instance-independent precomputation and the wall seconds per instance; writes
``benchmarks/results/executed_flops.json``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/executed_flops.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob.propagation import executed  # noqa: E402
from lowprob.toy_models.registry import get_toy_estimator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    ("kernel", 4, 16, 140), ("kernel", 4, 16, 285), ("kernel", 4, 16, 506), ("kernel", 4, 16, 1015),
    ("kernel_clenshaw", 4, 16, 140), ("kernel_clenshaw", 4, 16, 285),
    ("kernel", 8, 16, 44), ("kernel", 16, 16, 17),
    ("hermite", 4, 16, 126), ("hermite_full", 4, 16, 126),
    ("hermite", 16, 16, 969), ("hermite_full", 16, 16, 969),
    ("hermite", 16, 16, 4845), ("hermite_full", 16, 16, 4845),
    ("hermite", 16, 32, 4845), ("hermite", 32, 32, 6545),
]


def main() -> int:
    rows = []
    print(f"{'method':16s} {'n x m':>7s} {'K':>6s} {'counted':>10s} {'executed':>10s} {'exec/count':>10s} {'precomp':>9s} {'s/inst':>8s}")
    for meth, n, m, K in CASES:
        B = 4
        W = np.random.default_rng([n, m, K]).standard_normal((B, m, n))
        t0 = time.perf_counter()
        with executed.ledger() as led:
            res = get_toy_estimator(meth).estimate_batch(W, K)
        secs = (time.perf_counter() - t0) / B
        counted, ex = float(res.flops[0]), led.total / B
        rows.append({"method": meth, "n": n, "m": m, "budget": K, "counted_flops": counted, "executed_flops": ex,
                     "executed_over_counted": ex / counted, "precomputation_flops": res.precomputation_flops,
                     "seconds_per_instance_incl_first_call_precomputation": secs})
        print(f"{meth:16s} {n:>3d}x{m:<3d} {K:>6d} {counted:10.3e} {ex:10.3e} {ex / counted:10.3f} "
              f"{res.precomputation_flops:9.2e} {secs:8.3f}")
    atomic_write_json(RESULTS / "executed_flops.json", {
        "machine": "2 shared CPU cores, loaded by parallel jobs", "instances_per_case": 4, "rows": rows,
        "note": "executed = FLOPs implied by the shapes of the arrays each wrapped contraction/update received "
                "(lowprob.propagation.executed); counted = Cost.flops (analytic)"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
