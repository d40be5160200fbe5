"""``lowprob curves --problem sat|permanent``: the record, slopes with intervals, equal-FLOP rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lowprob.errors import LowprobError
from lowprob.propagation.product_curves import ProductCurveConfig, run_product_curves


def test_sat_curves_record_and_exactness():
    cfg = ProductCurveConfig("sat", n=8, k=30, instances=12, bootstrap=50,
                             budgets={"sat-walsh": (1, 37, 93, 256), "sat-walsh-topk": (20, 60),
                                      "sat-sampling": (50, 500)})
    res = run_product_curves(cfg, log=lambda m: None)
    walsh = res["methods"]["sat-walsh"]["points"]
    assert walsh[-1]["nmse"] < 1e-20  # K = 2^8: exact
    assert all(p["flops_per_instance"] > 0 and p["nmse_ci95"][0] <= p["nmse"] <= p["nmse_ci95"][1] for p in walsh)
    s = res["methods"]["sat-walsh"]["slope_vs_budget"]
    assert s["ci95"][0] <= s["slope"] <= s["ci95"][1]
    assert 256 not in s["fit_budgets"]  # the exact point has no logarithm
    rows = res["flop_comparison_by_method"]["sat-walsh"]
    assert {"sampling_nmse_at_equal_flops", "ratio_over_sampling", "below_sampling"} <= set(rows[0])
    assert res["instance_statistics"]["mean_p"] == pytest.approx((7 / 8) ** 30)
    json.dumps(res)  # JSON-ready


@pytest.mark.slow
def test_cli_curves_permanent_writes_files(tmp_path, capsys):
    from lowprob.cli import main

    rc = main(["curves", "--problem", "permanent", "--n", "6", "--instances", "6", "--bootstrap", "20",
               "--budgets", "perm-slice=1,6,20", "perm-sampling=100,1000", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    rec = json.loads((tmp_path / "curves_permanent.json").read_text())
    assert (tmp_path / "curves_permanent.png").exists()
    pts = rec["methods"]["perm-slice"]["points"]
    assert pts[-1]["nmse"] < 1e-20  # C(6, 3) = 20: exact
    assert np.isfinite(rec["trivial_nmse"])


def test_unknown_problem_and_limits():
    with pytest.raises(LowprobError, match="unknown curve problem"):
        run_product_curves(ProductCurveConfig("nope"), log=lambda m: None)
    with pytest.raises(LowprobError, match="n <= 22"):
        run_product_curves(ProductCurveConfig("permanent", n=23, instances=2), log=lambda m: None)
