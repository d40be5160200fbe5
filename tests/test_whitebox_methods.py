"""The white-box LM methods on the tiny exactly-enumerable GPT-2 of test_lm_methods."""

from __future__ import annotations

import math

import pytest

import lowprob.lm_bridge.whitebox.methods  # noqa: F401  (registers the methods)
from lowprob.errors import InputValueError
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
