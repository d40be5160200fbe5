"""The white-box LM methods on the tiny exactly-enumerable GPT-2 of test_lm_methods."""

from __future__ import annotations

import math

import pytest

import lowprob.lm_bridge.whitebox.methods  # noqa: F401  (registers the methods)
from lowprob.errors import BudgetError, InputValueError
from lowprob.estimate import Estimate
from lowprob.lm_bridge.methods import LM_METHODS, make_lm_method
from lowprob.lm_bridge.problem import LMProblem

pytestmark = pytest.mark.lm

NAMES = ("wb-gauss", "wb-mixture", "wb-adf")


@pytest.fixture(scope="module")
def problem():
    from test_lm_methods import MID_TARGET, tiny_adapter, tiny_spec

    return LMProblem(tiny_adapter(), tiny_spec(), MID_TARGET)


@pytest.mark.parametrize("name", NAMES)
def test_method_runs_within_budget_and_is_reproducible(problem, name):
    assert name in LM_METHODS
    est = make_lm_method(name).estimate(problem, 2048, seed=3)
    assert isinstance(est, Estimate) and est.method == name
    assert est.cost.model_calls == 2048 and est.cost.backward_calls == 0
    assert est.value > 0 and math.isclose(math.log(est.value), est.log_value)
    # a biased extrapolation, but of the right order on this problem (exact p ~ 2.2e-4)
    p = problem.exact_probability()
    assert abs(est.log_value - math.log(p)) < math.log(30.0)
    again = make_lm_method(name).estimate(problem, 2048, seed=3)
    assert again.log_value == est.log_value


def test_bad_hyperparameters(problem):
    with pytest.raises(InputValueError):
        make_lm_method("wb-gauss", K=0)
    with pytest.raises(InputValueError):
        make_lm_method("wb-mixture", regularization=0.0)
    with pytest.raises(InputValueError):
        make_lm_method("wb-gauss", regularization=float("nan"))


def test_wb_itgis_budget_and_reproducible(problem):
    est = make_lm_method("wb-itgis").estimate(problem, 4096, seed=2)
    assert est.cost.model_calls == 4096
    assert est.cost.backward_calls == 4096 - est.diagnostics["fit_calls"]
    assert est.diagnostics["dominating_distance"] > 0
    again = make_lm_method("wb-itgis").estimate(problem, 4096, seed=2)
    assert again.log_value == est.log_value
    with pytest.raises(InputValueError, match="fit_fraction"):
        make_lm_method("wb-itgis", fit_fraction=1.5)


@pytest.mark.parametrize("name", (*NAMES, "wb-itgis"))
def test_budget_smaller_than_one_batch_raises(problem, name):
    """Budget below one batch (or, for wb-itgis, below fit + one ITGIS batch): BudgetError, no call."""
    method = make_lm_method(name)
    budget = method.batch_size - 1 if name != "wb-itgis" else method.batch_size + 2
    with pytest.raises(BudgetError, match=r"budget"):
        method.estimate(problem, budget, seed=0)


def test_score_gradient_with_target_column_equals_logit_gradient(problem):
    """With u = w_t the score u . x is logit_t - b_t: the gradients must agree exactly."""
    import torch

    from lowprob.lm_bridge.budget import CallBudget, CountedModel
    from lowprob.lm_bridge.whitebox.methods import ScoreGradientModel

    base = CountedModel(problem.adapter, CallBudget(1000))
    tokens = problem.spec.sample(8, torch.Generator().manual_seed(0), device=problem.device)
    logits, g = base.logits_and_grad(tokens, problem.target)
    u = problem.adapter.W_U[:, problem.target].detach().double().numpy()
    logits2, g2 = ScoreGradientModel(base, u).logits_and_grad(tokens, problem.target)
    torch.testing.assert_close(logits2, logits)
    torch.testing.assert_close(g2.batch_sum(), g.batch_sum())
    assert base.budget.forward == 16 and base.budget.backward == 16


@pytest.mark.slow
def test_wb_itgis_is_unbiased(problem):
    """Mean of 24 seeded runs within 4 standard errors of the exact probability."""
    import numpy as np

    p = problem.exact_probability()
    vals = np.array([make_lm_method("wb-itgis").estimate(problem, 4096, seed=s).value for s in range(24)])
    assert abs(vals.mean() - p) < 4 * vals.std(ddof=1) / np.sqrt(vals.size) + 1e-12
