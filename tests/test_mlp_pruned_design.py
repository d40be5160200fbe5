"""The two-level pruned design (``lowprob.array_kernels.pruning``): unbiased against a deep
Monte Carlo truth whatever the pilot prunes, the level-1 correction recovers a neuron the pilot
missed, numpy equals flopscope, planned FLOPs bound flopscope's bill, the export carries it."""

import importlib.util
import math
import sys
import warnings

import numpy as np
import pytest

from lowprob.array_backends import NUMPY
from lowprob.array_kernels.activations import RELU
from lowprob.array_kernels.pruning import PrunedPlan, plan_pruned, pruned_design_means
from lowprob.errors import BudgetError, InputValueError
from lowprob.propagation.mlp_hybrid import DesignMonteCarloMLP
from lowprob.toy_models.random_mlp import RandomMLP


def _truth(mlp, n_samples, seed):
    """Per-layer means by plain Monte Carlo and their standard errors ``(L, n)``."""
    rng = np.random.default_rng(seed)
    s1 = np.zeros((mlp.depth, mlp.width))
    s2 = np.zeros((mlp.depth, mlp.width))
    for start in range(0, n_samples, 2**17):
        xs = mlp.forward(rng.standard_normal((min(2**17, n_samples - start), mlp.width)))
        for l, x in enumerate(xs):
            s1[l] += x.sum(axis=0)
            s2[l] += (x * x).sum(axis=0)
    m = s1 / n_samples
    return m, np.sqrt(np.maximum(s2 / n_samples - m**2, 0.0) / n_samples)


def _runs(weights, plan, seeds):
    out, infos = [], []
    for s in seeds:
        m, info = pruned_design_means(
            weights,
            RELU,
            NUMPY,
            np.random.default_rng(s),
            plan,
            dtype=np.float64,
            acc_dtype=np.float64,
        )
        out.append(m)
        infos.append(info)
    return np.stack(out), infos


def test_two_level_is_unbiased_on_a_narrow_deep_net_that_prunes():
    """Width 12, depth 10 (WhestBench's law): dead neurons are found, the two-level estimator
    runs, and its mean over 300 seeds is within 4.5 standard errors of a 2^21-sample truth on
    every neuron of every layer."""
    mlp = RandomMLP.whestbench(12, 10, seed=1000)
    truth, truth_se = _truth(mlp, 2**21, seed=7)
    ws = [np.asarray(w, dtype=np.float64) for w in mlp.weights]
    plan = plan_pruned(12, 10, 2 * 10**6)
    assert plan is not None and plan.pilot_a > 0
    runs, infos = _runs(ws, plan, range(300))
    two = [i for i in infos if i["mode"] == "two-level"]
    assert len(two) >= 100  # pruning pays in many runs (else the plain fallback runs)
    assert all(sum(i["alive"]) < 12 * 10 for i in two)  # something was pruned
    assert all(i["flops"] <= plan.budget for i in infos)
    mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    never = truth_se == 0  # neurons the truth never saw active: the estimate must be 0 too
    assert np.all(mean[never] == 0)
    z = (mean - truth)[~never] / np.sqrt(se**2 + truth_se**2)[~never]
    assert np.all(np.abs(z) < 4.5), np.abs(z).max()


def _rare_neuron_net(n=8):
    """Layer 1 = identity; layer 2: neuron 3 fires iff ``relu(x_0) > 2 sum_{i>=1} relu(x_i)``
    (rare), neurons 4..7 never fire, 0..2 copy the input; layer 3 = identity."""
    w2 = np.zeros((n, n))
    w2[:3, :3] = np.eye(3)
    w2[:, 3] = -2.0
    w2[0, 3] = 1.0
    w2[:, 4:] = -1.0
    return [np.eye(n), w2, np.eye(n)]


def test_level_one_recovers_a_neuron_the_pilot_missed():
    """With an 8-point pilot the rare neuron is usually declared dead; the estimate of its
    mean is then carried by the level-1 correction alone, and the average is unbiased."""
    ws = _rare_neuron_net()
    mlp = RandomMLP(tuple(ws), "relu")
    truth, truth_se = _truth(mlp, 2**22, seed=3)
    assert 0 < truth[1, 3] < 0.02  # rarely active, not never
    plan = PrunedPlan(pilot_a=4, pilot_b=4, budget=3 * 10**5, min_pairs=8)
    runs, infos = _runs(ws, plan, range(400))
    missed = [j for j, i in enumerate(infos) if i["mode"] == "two-level" and 3 in i["dead"][1]]
    assert len(missed) >= 200
    assert np.count_nonzero(runs[missed, 1, 3]) > 0  # the correction is not zero
    assert all(4 in i["dead"][1] for i in infos)  # the never-active ones are always pruned
    mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    z = (mean - truth) / np.sqrt(se**2 + truth_se**2 + 1e-30)
    assert np.all(np.abs(z) < 4.5), z
    assert np.all(runs[:, 1, 4:] == 0)  # exactly zero where the full net is zero too


def test_no_pruning_falls_back_to_the_plain_design():
    mlp = RandomMLP.whestbench(32, 2, seed=1)
    est = DesignMonteCarloMLP(prune=True).estimate_means(mlp, 5 * 10**7, seed=0)
    assert est.diagnostics["mode"] == "plain"
    assert est.diagnostics["alive"] == [32, 32]
    assert est.cost.flops <= 5 * 10**7
    # a budget with room for a plain design but not for the pilots: no pilot at all
    small = RandomMLP.whestbench(16, 10, seed=3)
    assert plan_pruned(16, 10, 2 * 10**4) is None
    plan = plan_pruned(16, 10, 10**5)
    assert plan is not None and plan.pilot_a == 0
    est = DesignMonteCarloMLP(prune=True).estimate_means(small, 10**5, seed=0)
    assert est.diagnostics["mode"] == "plain" and est.diagnostics["alive"] is None
    assert 0 < est.cost.flops <= 10**5


def test_pruned_numpy_float32_equals_flopscope_and_plan_bounds_the_bill():
    pytest.importorskip("whestbench")
    import flopscope as flops

    from lowprob.integrations.whestbench import DesignEstimator

    for width, depth, seed, budget in (
        (16, 10, 3, 10**8),
        (12, 12, 1000, 4 * 10**7),  # pilot finds < 12 % to save: plain
        (32, 2, 1, 10**9),
    ):
        mlp = RandomMLP.whestbench(width, depth, seed=seed)
        wb = mlp.to_whestbench(seed=17)
        est = DesignEstimator(prune=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with flops.BudgetContext(flop_budget=budget, quiet=True) as ctx:
                out = np.asarray(est.predict(wb, budget), dtype=np.float64)
        counted = ctx.flops_used
        planned = est.last_info["flops"]
        if width == 16:  # the two-level path, with points that diverge in level 1
            assert est.last_info["mode"] == "two-level" and est.last_info["diverged"] > 0
        assert counted <= planned <= 1.1 * counted, (width, depth, counted, planned)
        assert planned <= 0.1 * budget
        mine = DesignMonteCarloMLP(dtype=np.float32, prune=True).estimate_means(
            mlp, int(0.1 * budget) - 64 * width, seed=17
        )
        assert mine.diagnostics["mode"] == est.last_info["mode"]
        np.testing.assert_allclose(mine.means, out, rtol=1e-6, atol=1e-7)
    assert est.last_info["mode"] == "plain"  # 32 x 2: nothing to prune


def test_bad_budgets_and_activations_refused_before_work():
    pytest.importorskip("whestbench")
    import flopscope as flops

    from lowprob.integrations.whestbench import DesignEstimator

    mlp = RandomMLP.whestbench(32, 3, seed=11)
    wb = mlp.to_whestbench(seed=1)
    with flops.BudgetContext(flop_budget=10**9, quiet=True) as ctx:
        with pytest.raises(BudgetError, match="too small"):
            DesignEstimator(prune=True).predict(wb, 1000)
    assert ctx.flops_used == 0
    est = DesignMonteCarloMLP(prune=True)
    for budget in (10, 0, -5):
        with pytest.raises(BudgetError):
            est.estimate_means(mlp, budget, seed=0)
    with pytest.raises(InputValueError, match="ReLU"):
        est.estimate_means(RandomMLP.sample(8, 2, "gelu", seed=0), 10**7, seed=0)


def test_export_carries_the_pruned_estimator(tmp_path):
    pytest.importorskip("whestbench")
    import flopscope as flops
    import flopscope.numpy as fnp
    from whestbench.generation import sample_mlp

    from lowprob.integrations import whestbench as adapter
    from lowprob.integrations.whestbench_export import export_estimator, exported_imports

    path = export_estimator(tmp_path, class_name="DesignEstimator")
    mods = exported_imports(path.read_text())
    assert not (mods - {"flopscope", "whestbench", "__future__"} - set(sys.stdlib_module_names))
    spec = importlib.util.spec_from_file_location("lowprob_exported_pruned", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    mlp = sample_mlp(16, 10, fnp.random.default_rng(7), seed=11)
    budget = 10**8
    outs = []
    for est in (mod.DesignEstimator(prune=True), adapter.DesignEstimator(prune=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with flops.BudgetContext(flop_budget=budget, quiet=True):
                outs.append(np.asarray(est.predict(mlp, budget), dtype=np.float64))
        assert est.last_info["mode"] == "two-level"
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-9)
    small = sample_mlp(32, 3, fnp.random.default_rng(7), seed=11)
    with flops.BudgetContext(flop_budget=100, quiet=True):  # whest validate's probe: the prior
        prior = mod.DesignEstimator(prune=True).predict(small, 100)
    np.testing.assert_allclose(np.asarray(prior), 1 / np.sqrt(np.pi), rtol=1e-6)


def test_level_one_shortcut_equals_the_brute_force_difference():
    """Running the pruned net only on the points where a dead neuron fired gives exactly the
    per-layer sums of ``x_l - x_l^A`` over all points (float64, to 1e-12)."""
    from lowprob.array_kernels.pruning import _difference, _sub_blocks, pilot_alive

    mlp = RandomMLP.whestbench(12, 10, seed=1000)
    ws = [np.asarray(w, dtype=np.float64) for w in mlp.weights]
    alive = pilot_alive(ws, RELU, NUMPY, np.random.default_rng(0), 3, dtype=np.float64)
    subs = _sub_blocks(ws, alive, np)
    X1 = np.maximum(np.random.default_rng(1).standard_normal((4000, 12)) @ ws[0], 0)
    sums, counts, _, _ = _difference(X1, ws, subs, alive, RELU, NUMPY, np.float64)
    assert 0 < counts[-1] < 4000  # some points diverge, not all
    X, XA = X1, X1[:, list(alive[0])]
    for l in range(10):
        if l:
            X, XA = np.maximum(X @ ws[l], 0), np.maximum(XA @ subs[l], 0)
        full = np.zeros_like(X)
        full[:, list(alive[l])] = XA
        brute = (X - full).sum(axis=0)
        got = np.zeros(12) if sums[l] is None else sums[l]
        np.testing.assert_allclose(got, brute, rtol=0, atol=1e-12)
