"""Rotated cross-polytope sampling (``DesignMonteCarloMLP``): unbiased against deep Monte Carlo
truth, shared code with the WhestBench ``DesignEstimator``, bad budgets refused early."""

import math

import numpy as np
import pytest

from lowprob.errors import BudgetError, InputTypeError
from lowprob.propagation.mlp_estimators import MLPTailProblem
from lowprob.propagation.mlp_hybrid import DesignMonteCarloMLP
from lowprob.toy_models.random_mlp import RandomMLP


def _truth(mlp, n_samples, seed):
    """Per-layer means by plain Monte Carlo and their standard errors (final layer)."""
    rng = np.random.default_rng(seed)
    s1 = np.zeros((mlp.depth, mlp.width))
    s2 = np.zeros(mlp.width)
    for start in range(0, n_samples, 2**16):
        xs = mlp.forward(rng.standard_normal((min(2**16, n_samples - start), mlp.width)))
        for l, x in enumerate(xs):
            s1[l] += x.sum(axis=0)
        s2 += (xs[-1] ** 2).sum(axis=0)
    m = s1 / n_samples
    return m, np.sqrt((s2 / n_samples - m[-1] ** 2) / n_samples)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_design_means_unbiased_against_deep_truth(activation):
    """Mean over 300 seeds within 4.5 standard errors of a 2^21-sample truth, every neuron."""
    mlp = RandomMLP.sample(8, 3, activation, seed=4)
    truth, truth_se = _truth(mlp, 2**21, seed=99)
    est = DesignMonteCarloMLP()
    budget = 6 * 8 * 3 * 2 * 8 * 8  # a few designs of 16 points
    runs = np.stack([est.estimate_means(mlp, budget, seed=s).means for s in range(300)])
    mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    z = (mean[-1] - truth[-1]) / np.sqrt(se[-1] ** 2 + truth_se**2)
    assert np.all(np.abs(z) < 4.5), z
    # and the estimator is not a constant: its spread is real
    assert np.all(runs[:, -1].std(axis=0) > 0)


def test_design_tail_probability_unbiased():
    mlp = RandomMLP.sample(8, 3, "relu", seed=5)
    h = mlp.forward(np.random.default_rng(1).standard_normal((2**20, 8)), return_pre=True)[-1][:, 0]
    b = float(np.quantile(h, 0.9))
    p_true = float(np.mean(h > b))
    problem = MLPTailProblem(mlp, b, 0)
    est = DesignMonteCarloMLP()
    vals = np.array([est.estimate(problem, 60000, seed=s).value for s in range(300)])
    se = math.sqrt(vals.var(ddof=1) / len(vals) + p_true * (1 - p_true) / 2**20)
    assert abs(vals.mean() - p_true) < 4.5 * se


def test_numpy_float32_equals_the_flopscope_estimator():
    pytest.importorskip("whestbench")
    import flopscope as flops

    from lowprob.integrations.whestbench import DesignEstimator

    mlp = RandomMLP.whestbench(24, 3, seed=3)
    wb = mlp.to_whestbench(seed=17)
    budget = 10**8
    with flops.BudgetContext(flop_budget=budget, quiet=True):
        out = np.asarray(DesignEstimator(shrink=False).predict(wb, budget), dtype=np.float64)
    mine = DesignMonteCarloMLP(dtype=np.float32).estimate_means(
        mlp, int(0.1 * budget) - 64 * 24, seed=17)
    np.testing.assert_allclose(mine.means, out, rtol=1e-6, atol=1e-7)


def test_bad_budgets_and_problems_refused_before_work():
    mlp = RandomMLP.sample(8, 2, seed=0)
    est = DesignMonteCarloMLP()
    for budget in (10, 0, -5, 1.5):
        with pytest.raises(BudgetError):
            est.estimate_means(mlp, budget, seed=0)
    with pytest.raises(InputTypeError, match="MLPTailProblem"):
        est.estimate(object(), 10**6)


def test_shrinkage_is_not_worse_than_the_design_estimate():
    """Positive-part James-Stein toward propagation: total squared error over 30 seeds is not
    larger than the unshrunk estimate's (paired difference within 3 standard errors or better)."""
    mlp = RandomMLP.whestbench(48, 4, seed=8)
    truth, _ = _truth(mlp, 2**19, seed=5)
    plain, shrunk = DesignMonteCarloMLP(), DesignMonteCarloMLP(shrink=True)
    budget = 3 * 10**7
    d = []
    for s in range(30):
        a = plain.estimate_means(mlp, budget, seed=s).means[-1]
        b = shrunk.estimate_means(mlp, budget, seed=s).means[-1]
        d.append(np.sum((b - truth[-1]) ** 2) - np.sum((a - truth[-1]) ** 2))
    d = np.array(d)
    assert d.mean() <= 3 * d.std(ddof=1) / math.sqrt(len(d))
