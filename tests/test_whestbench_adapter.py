"""The WhestBench adapter (skipped without the ``lowprob[whestbench]`` extra; CI installs it)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("whestbench")

import flopscope as flops  # noqa: E402
import flopscope.numpy as fnp  # noqa: E402
from whestbench.generation import sample_mlp  # noqa: E402

from lowprob.errors import BudgetError, InputValueError  # noqa: E402
from lowprob.integrations.whestbench import VARIANTS, KpropEstimator  # noqa: E402
from lowprob.propagation.mlp_estimators import CumulantPropagation  # noqa: E402
from lowprob.toy_models.random_mlp import RandomMLP  # noqa: E402

NUMPY_TWIN = {
    "kprop3-struct": dict(order=3, structured=True),
    "kprop2": dict(order=2),
    "kprop2-diag": dict(order=2, diagonal=True),
}


@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_shape_budget_and_same_numbers_as_numpy(variant):
    mlp = sample_mlp(48, 3, fnp.random.default_rng(3))
    est = KpropEstimator(variants=(variant,), budget_fraction=1.0, dtype="float64")
    budget = est._cost(variant, 48) * 3  # exactly the planned cost: the tightest budget
    with flops.BudgetContext(flop_budget=budget, quiet=True) as ctx:
        out = est.predict(mlp, budget)
    assert tuple(out.shape) == (3, 48)
    assert 0 < ctx.flops_used <= budget
    twin = CumulantPropagation(**NUMPY_TWIN[variant], hermite_order=est.hermite_order).estimate_means(
        RandomMLP.from_whestbench(mlp), 10**12
    )
    np.testing.assert_allclose(np.asarray(out), twin.means, rtol=1e-9, atol=1e-12)


def test_picks_richest_variant_that_fits_and_rejects_tiny_budgets():
    est = KpropEstimator(budget_fraction=1.0)
    c = {v[0]: est._cost(v[0], 32) * 4 for v in VARIANTS}
    assert est.plan(32, 4, c["kprop3-struct"])[0] == "kprop3-struct"
    assert est.plan(32, 4, c["kprop3-struct"] - 1)[0] == "kprop2"
    assert est.plan(32, 4, c["kprop2"] - 1)[0] == "kprop2-diag"
    with pytest.raises(BudgetError, match="of 4 layers"):
        est.plan(32, 4, c["kprop2-diag"] - 1)
    with pytest.raises(BudgetError, match="one layer"):
        est.plan(32, 4, 10)
    with pytest.raises(InputValueError, match="variant"):
        KpropEstimator(variants=("kprop9",))
    for frac in (0.0, 1.5, float("nan")):
        with pytest.raises(InputValueError, match="budget_fraction"):
            KpropEstimator(budget_fraction=frac)


def test_scored_by_whestbench_scorer_without_failures():
    from whestbench.scoring import ContestSpec, evaluate_estimator, make_contest

    spec = ContestSpec(width=32, depth=3, n_mlps=2, flop_budget=10**8, ground_truth_samples=4096,
                       seed=1)
    data = make_contest(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_estimator(KpropEstimator(), data, fail_fast=True)
    assert res["n_failed_mlps"] == 0
    assert all(m["flops_used"] <= spec.flop_budget for m in res["per_mlp"])
    assert np.isfinite(res["adjusted_final_layer_score"])


@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_float32_propagation_is_billed_at_half_and_matches_float64(variant):
    """float32 stays float32 end to end (flopscope's norm.cdf returns float64 for float32
    input; the ReLU tables cast it back), so its bill fits half the float64 plan; its means
    agree with float64's to 1e-5 relative (measured about 2e-7)."""
    mlp = sample_mlp(48, 3, fnp.random.default_rng(5))
    outs, used = {}, {}
    for dtype in ("float64", "float32"):
        est = KpropEstimator(variants=(variant,), budget_fraction=1.0, dtype=dtype)
        budget = est._cost(variant, 48) * 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with flops.BudgetContext(flop_budget=budget, quiet=True) as ctx:
                out = est.predict(mlp, budget)
        assert str(out.dtype) == dtype
        outs[dtype], used[dtype] = np.asarray(out, dtype=np.float64), ctx.flops_used
    assert KpropEstimator()._cost(variant, 48) * 2 == KpropEstimator(dtype="float64")._cost(variant, 48)
    assert used["float32"] <= 0.55 * used["float64"]
    np.testing.assert_allclose(outs["float32"], outs["float64"], rtol=1e-5, atol=1e-6)


def test_unknown_dtype_refused():
    with pytest.raises(InputValueError, match="dtype"):
        KpropEstimator(dtype="float16")


@pytest.mark.parametrize("shape", [(16, 12), (32, 16), (8, 20)])
def test_float32_propagation_stays_finite_on_narrow_deep_nets(shape):
    """Narrow deep nets drive some variances to ~0: float32 floors them at 1e-20 (so ``s^3``
    is a normal number) and every correlation is clipped to [-1, 1], so no NaN appears where
    float64 has none; the two agree to 1e-4 absolute (measured <= 8e-6)."""
    w, d = shape
    mlp = sample_mlp(w, d, fnp.random.default_rng(2), seed=5)
    outs = []
    for dtype in ("float32", "float64"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with flops.BudgetContext(flop_budget=10**10, quiet=True):
                outs.append(np.asarray(KpropEstimator(dtype=dtype).predict(mlp, 10**10),
                                       dtype=np.float64))
    assert np.isfinite(outs[0]).all() and np.isfinite(outs[1]).all()
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-4)
