"""Slow tier: the kernel sketch on the 4x16 toy against the exact oracle (stratified instances).

Seeded (seed 3); 400 instances (200 feasible). Tolerances: the kernel at K = 140 must be
below 1/10 of the trivial estimator's exact level (the full benchmark measures 1/39) and its
fitted slope over K = 30..140 steeper than -1 (the full benchmark: -1.35 [-1.49, -1.23]).
"""

from __future__ import annotations

import pytest

from lowprob.propagation.curves import CurveConfig, run_curves


@pytest.mark.slow
def test_kernel_curve_on_4x16_beats_trivial_with_a_steep_slope():
    cfg = CurveConfig(d=4, m=16, instances=400, seed=3, bootstrap=200, methods=("kernel",),
                      budgets={"kernel": (1, 30, 55, 91, 140)})
    res = run_curves(cfg, show_progress=False, log=lambda s: None)
    pts = {p["budget"]: p["nmse"] for p in res["methods"]["kernel"]["points"]}
    assert pts[140] < res["trivial_nmse"] / 10, pts
    assert res["methods"]["kernel"]["slope_vs_budget"]["slope"] < -1.0, res["methods"]["kernel"]
