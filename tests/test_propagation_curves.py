"""``lowprob curves`` end to end on a tiny configuration, and its statistics helpers.

Tier: fast (CLI smoke test; closed-form checks of the slope fit and the feasibility filter).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lowprob.cli import main
from lowprob.errors import InputValueError
from lowprob.propagation.curves import (
    CurveConfig,
    feasible_mask,
    fit_slope,
    parse_budgets,
    run_curves,
)
from lowprob.toy_models.oracle import exact_probability


def test_fit_slope_recovers_a_power_law():
    K = np.array([10.0, 30, 100, 300])
    assert fit_slope(K, 3.0 * K**-1.3) == pytest.approx(-1.3, abs=1e-12)
    rows = np.stack([2 * K**-1.0, 5 * K**-2.0])
    np.testing.assert_allclose(fit_slope(K, rows), [-1.0, -2.0], atol=1e-12)


def test_feasibility_filter_agrees_with_the_oracle():
    W = np.random.default_rng(4).standard_normal((150, 9, 4))
    mask = feasible_mask(W)
    oracle = np.array([exact_probability(w).feasible for w in W])
    assert mask.any() and (~mask).any()
    np.testing.assert_array_equal(mask, oracle)


def test_run_curves_record(tmp_path):
    cfg = CurveConfig(d=3, m=6, instances=24, bootstrap=30, seed=1,
                      budgets={"kernel": (1, 4, 9, 16), "hermite": (1, 4, 10), "sampling": (10, 100)})
    res = run_curves(cfg, show_progress=False, log=lambda s: None)
    assert res["n_instances"] == 24 and 0 < res["n_feasible"] < 24
    assert set(res["methods"]) == {"kernel", "hermite", "sampling"}
    k1 = res["methods"]["kernel"]["points"][0]
    # K = 1 is the trivial estimator 2^-m on every instance
    assert k1["flops_per_instance"] > 0 and k1["nmse_ci95"][0] <= k1["nmse"] <= k1["nmse_ci95"][1]
    assert "slope_vs_budget" in res["methods"]["kernel"]
    assert len(res["flop_comparison"]) == 4
    json.dumps(res)


def test_cli_writes_json_and_png(tmp_path, capsys):
    rc = main(["curves", "--d", "3", "--m", "5", "--instances", "12", "--bootstrap", "20",
               "--methods", "kernel", "sampling", "--budgets", "kernel=1,4,9", "sampling=10,100",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    data = json.loads((tmp_path / "curves.json").read_text())
    assert data["config"]["d"] == 3 and (tmp_path / "curves.png").stat().st_size > 1000
    assert "trivial estimator" in capsys.readouterr().out


def test_budget_spec_errors_name_the_value():
    with pytest.raises(InputValueError, match="'kernel'"):
        parse_budgets(["kernel"])
    with pytest.raises(InputValueError, match="kernel=0"):
        parse_budgets(["kernel=0"])
