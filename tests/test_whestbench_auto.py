"""AutoEstimator: propagation where the K=2 -> K=3 change predicts it beats the design, the plain
design otherwise; each route gives exactly what the corresponding estimator gives, within budget."""

import warnings

import numpy as np
import pytest

pytest.importorskip("whestbench")

import flopscope as flops  # noqa: E402
import flopscope.numpy as fnp  # noqa: E402
from whestbench.generation import sample_mlp  # noqa: E402

from lowprob.errors import BudgetError, InputValueError  # noqa: E402
from lowprob.integrations.whestbench import (  # noqa: E402
    AutoEstimator,
    DesignEstimator,
    KpropEstimator,
)


def _run(est, mlp, budget):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with flops.BudgetContext(flop_budget=budget, quiet=True) as ctx:
            out = est.predict(mlp, budget)
    assert 0 < ctx.flops_used <= budget
    return np.asarray(out, dtype=np.float64), ctx.flops_used


def test_wide_shallow_net_takes_propagation_and_returns_kprop3_float32():
    mlp = sample_mlp(64, 2, fnp.random.default_rng(1), seed=3)
    auto = AutoEstimator()
    budget = 10 * auto.propagation_cost(64, 2)  # propagation fits its 0.2 share
    out, used = _run(auto, mlp, budget)
    info = auto.last_info
    assert info["route"] == "propagation"
    assert info["predicted_score_propagation"] < info["predicted_score_design"]
    assert info["delta2"] > 0 and info["mean_variance"] > 0
    ref, _ = _run(KpropEstimator(variants=("kprop3-struct",), budget_fraction=1.0), mlp, budget)
    np.testing.assert_array_equal(out, ref)
    assert used <= auto.propagation_cost(64, 2)  # spent on propagation only


def test_narrow_deep_net_takes_the_design_and_returns_it_exactly():
    mlp = sample_mlp(32, 10, fnp.random.default_rng(2), seed=5)
    auto = AutoEstimator()
    budget = 10**9  # many designs: their noise is far below the closure error at depth 10
    out, _ = _run(auto, mlp, budget)
    info = auto.last_info
    assert info["route"] == "design"
    assert info["predicted_score_design"] < info["predicted_score_propagation"]
    ref, _ = _run(DesignEstimator(shrink=False, budget_fraction=0.1), mlp, budget)
    np.testing.assert_array_equal(out, ref)


def test_propagation_that_does_not_fit_falls_back_to_the_design():
    mlp = sample_mlp(64, 2, fnp.random.default_rng(1), seed=3)
    auto = AutoEstimator(propagation_fraction=0.01)
    budget = 10 * AutoEstimator().propagation_cost(64, 2)
    out, _ = _run(auto, mlp, budget)
    assert auto.last_info["route"].startswith("design (propagation does not fit")
    ref, _ = _run(DesignEstimator(shrink=False), mlp, budget)
    np.testing.assert_array_equal(out, ref)


def test_bad_arguments_and_tiny_budgets_refused():
    for kw in ({"propagation_fraction": 0.0}, {"propagation_fraction": 0.95},
               {"design_gain": 0.0}, {"budget_fraction": 0.0}):
        with pytest.raises(InputValueError):
            AutoEstimator(**kw)
    mlp = sample_mlp(32, 3, fnp.random.default_rng(7), seed=11)
    with flops.BudgetContext(flop_budget=10**9, quiet=True) as ctx:
        with pytest.raises(BudgetError, match="too small"):
            AutoEstimator().predict(mlp, 1000)
    assert ctx.flops_used == 0
