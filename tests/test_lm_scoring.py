"""Scoring: Itakura–Saito loss, log-affine fit (development families only), squared log error, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from lowprob.errors import InputValueError
from lowprob.lm_bridge.scoring import (
    DEFAULT_FLOOR,
    bootstrap_mean_ci,
    fit_log_affine,
    itakura_saito,
    paired_difference,
    score_bench,
    score_records,
    squared_log_error,
)


def test_is_loss_closed_forms():
    lp = math.log(1e-6)
    assert itakura_saito([lp], [lp])[0] == 0.0
    assert itakura_saito([lp], [lp - math.log(2)])[0] == pytest.approx(2 - math.log(2) - 1, rel=1e-12)
    assert itakura_saito([lp], [lp + math.log(2)])[0] == pytest.approx(0.5 - math.log(0.5) - 1, rel=1e-12)
    r = 1e-6 / DEFAULT_FLOOR  # a zero estimate is scored at the floor
    assert itakura_saito([lp], [-math.inf])[0] == pytest.approx(r - math.log(r) - 1, rel=1e-12)
    assert itakura_saito([lp], [-math.inf], floor=1e-7)[0] == pytest.approx(10 - math.log(10) - 1)
    assert squared_log_error([lp], [lp + 3])[0] == pytest.approx(9.0)


@given(st.floats(-25, -2), st.floats(-60, 0))
def test_is_loss_nonnegative_and_asymmetric(lp, lq):
    v = itakura_saito([lp], [lq])[0]
    assert v >= 0
    d = lp - max(lq, math.log(DEFAULT_FLOOR))
    if d > 0.1:  # underestimating by e^d costs more than overestimating by e^d
        assert v > itakura_saito([lp], [lp + d])[0]


def test_bad_inputs():
    with pytest.raises(InputValueError, match="NaN"):
        itakura_saito([-5.0], [math.nan])
    with pytest.raises(InputValueError, match="true probabilities"):
        itakura_saito([-math.inf], [-5.0])
    with pytest.raises(InputValueError, match="floor"):
        itakura_saito([-5.0], [-5.0], floor=0.0)


def test_fit_recovers_exact_affine_relation():
    rng = np.random.default_rng(0)
    lp = rng.uniform(math.log(1e-9), math.log(1e-5), 50)
    lq = (lp - 5.0) / 1.4  # so ln p = 1.4 ln q + 5 exactly (all q above the floor)
    assert lq.min() > math.log(DEFAULT_FLOOR)
    fit = fit_log_affine(lp, lq)
    assert fit.a == pytest.approx(1.4, abs=1e-6) and fit.b == pytest.approx(5.0, abs=1e-4)
    assert itakura_saito(lp, fit.apply(lq)).mean() < 1e-9


@given(st.integers(0, 10_000))
def test_fit_is_the_two_parameter_minimum(seed):
    rng = np.random.default_rng(seed)
    lp = rng.uniform(-20, -11, 30)
    lq = 0.8 * lp + rng.normal(0, 1.0, 30) - 2
    fit = fit_log_affine(lp, lq)

    def loss(ab):
        return itakura_saito(lp, ab[0] * lq + ab[1]).mean()

    best = minimize(loss, x0=[1.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    assert loss([fit.a, fit.b]) <= best.fun + 1e-7
    assert loss([fit.a, fit.b]) <= loss([1.0, 0.0]) + 1e-12  # never worse than no fit


def test_bootstrap_interval():
    v = np.random.default_rng(1).exponential(size=400)
    lo, hi = bootstrap_mean_ci(v, seed=0)
    assert lo < v.mean() < hi
    lo2, hi2 = bootstrap_mean_ci(v[:40], seed=0)
    assert hi2 - lo2 > hi - lo


def _records(shift_heldout: float):
    rng = np.random.default_rng(3)
    recs = []
    for fam in ("hex", "camel", "caps", "icl"):
        for _ in range(20):
            lp = rng.uniform(math.log(1e-9), math.log(1e-5))
            lq = lp + rng.normal(0, 0.5) + (shift_heldout if fam in ("caps", "icl") else 0.0)
            recs.append({"method": "m", "family": fam, "p_true": math.exp(lp), "log_estimate": lq})
    recs.append({"method": "m", "family": "hex", "p_true": 1e-6, "log_estimate": None})  # a failure
    return recs


def test_score_records_fits_on_development_families_only():
    a, b = score_records(_records(0.0), n_boot=200), score_records(_records(5.0), n_boot=200)
    assert a["fits"]["m"] == b["fits"]["m"]  # held-out estimates do not move the fit
    assert a["by_split"]["m"]["failures"] == 1
    assert b["by_split"]["m"]["heldout"]["is_fit"]["mean"] > a["by_split"]["m"]["heldout"]["is_fit"]["mean"]
    assert set(a["by_family"]["m"]) == {"hex", "camel", "caps", "icl"}
    s = a["by_split"]["m"]["all"]["is_raw"]
    assert s["n"] == 81 and s["ci95"][0] <= s["mean"] <= s["ci95"][1]


# ---------------------------------------------------------------------------------------------
# paired differences between methods (closed forms)
# ---------------------------------------------------------------------------------------------
def test_paired_difference_closed_forms():
    rng = np.random.default_rng(0)
    base = rng.exponential(size=50) * 1e3  # a large spread shared by both methods
    # a constant difference: every bootstrap mean equals it, so the interval is the point
    r = paired_difference(base - 0.25, base, n_boot=300, seed=0)
    assert r["mean"] == pytest.approx(-0.25, abs=1e-9)
    assert r["ci95"] == pytest.approx([-0.25, -0.25], abs=1e-9) and r["excludes_zero"] and r["n"] == 50
    # differences -1 and +1 in equal numbers: mean 0, the interval straddles 0 and is symmetric-ish
    d = np.array([-1.0, 1.0] * 50)
    r = paired_difference(d, np.zeros(100), n_boot=2000, seed=1)
    assert r["mean"] == 0.0 and not r["excludes_zero"]
    # the bootstrap sd of a mean of +-1 values is 1/sqrt(100) = 0.1: the 95% interval is about +-0.196
    assert r["ci95"][0] == pytest.approx(-0.196, abs=0.03) and r["ci95"][1] == pytest.approx(0.196, abs=0.03)
    # fixed bootstrap seed: reproducible
    assert paired_difference(d, np.zeros(100), seed=7) == paired_difference(d, np.zeros(100), seed=7)
    with pytest.raises(InputValueError, match="paired"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(InputValueError, match="NaN"):
        paired_difference([1.0, math.nan], [1.0, 2.0])


def _two_method_records():
    """Method "good" estimates p exactly; "bad" is off by a factor e^2 on every record; two seeds."""
    rng = np.random.default_rng(5)
    recs = []
    for fam in ("hex", "camel", "caps", "icl"):
        for t in range(6):
            lp = rng.uniform(math.log(1e-9), math.log(1e-5))
            for seed in (0, 1):
                for budget in (4096, 65536):
                    recs.append({"method": "good", "family": fam, "target": t, "seed": seed, "budget": budget,
                                 "p_true": math.exp(lp), "log_estimate": lp})
                    recs.append({"method": "bad", "family": fam, "target": t, "seed": seed, "budget": budget,
                                 "p_true": math.exp(lp), "log_estimate": lp - 2.0 + (0.5 if seed else -0.5)})
    return recs


def test_score_bench_paired_closed_form():
    recs = _two_method_records()
    out = score_bench(recs, n_boot=500, seed=0)
    assert set(out["budgets"]) == {"4096", "65536"}
    pr = out["budgets"]["65536"]["paired"]["bad - good"]
    # "bad" underestimates by e^{2.5} (seed 0) and e^{1.5} (seed 1): IS = e^r - r - 1 at r = 2.5, 1.5
    want = 0.5 * ((math.expm1(2.5) - 2.5) + (math.expm1(1.5) - 1.5))  # per-target mean over the two seeds
    for split in ("dev", "heldout", "all"):
        r = pr[split]["is_raw"]
        assert r["mean"] == pytest.approx(want, rel=1e-12)
        assert r["ci95"] == pytest.approx([want, want], rel=1e-9) and r["excludes_zero"]
        assert pr[split]["sle"]["mean"] == pytest.approx(0.5 * (2.5**2 + 1.5**2), rel=1e-12)
    assert pr["heldout"]["is_raw"]["n"] == 12 and pr["all"]["is_raw"]["n"] == 24  # units = targets
    # "good" is exact, so its fit is the identity and its fitted loss is 0
    fit = out["budgets"]["65536"]["fits"]["good"]
    assert fit["a"] == pytest.approx(1.0, abs=1e-6) and fit["b"] == pytest.approx(0.0, abs=1e-4)
    # "bad"'s fit shifts it back by e^2 on average: its fitted loss is far below its raw loss
    sc = out["budgets"]["65536"]["by_split"]["bad"]["heldout"]
    assert sc["is_fit"]["mean"] < 0.5 * sc["is_raw"]["mean"]
