"""The tail-biased instance laws (``lowprob.toy_models.instance_law``) and the curves' mixture law.

Tier: fast (~20 s on one core). Every statistical check has a fixed seed and a tolerance in
standard errors (stated per test); references are exact: the angle density by quadrature, the
exact oracle (``d = 4``), the closed-form ``p`` of ``d = 2`` (the free arc of the circle) and
the exact instance moments of ``instance_statistics``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from lowprob.cli import main
from lowprob.errors import InputValueError
from lowprob.propagation.curves import (
    CURVE_PROBLEMS,
    CurveConfig,
    CurveProblem,
    _bootstrap_indices,
    draw_instances,
    feasible_mask,
    run_curves,
)
from lowprob.propagation.winmap import GridConfig
from lowprob.toy_models.instance_law import (
    _envelope,
    _log_h,
    balance_heuristic_weights,
    q2_density_ratio,
    sample_q1,
    sample_q2,
    sample_theta,
    theta_log_density,
)
from lowprob.toy_models.instance_stats import instance_statistics, wendel_feasibility_probability
from lowprob.toy_models.oracle import exact_probability
from lowprob.toy_models.registry import get_toy_estimator

Z4 = 4.0  # tolerance in standard errors


def _p_exact(W: np.ndarray) -> np.ndarray:
    return np.array([exact_probability(w).probability for w in W])


def _p_2d(W: np.ndarray) -> np.ndarray:
    """Closed form for d = 2: ``p = max(0, largest circular gap between row angles - pi) / (2 pi)``."""
    a = np.sort(np.arctan2(W[..., 1], W[..., 0]), axis=-1)
    gaps = np.diff(np.concatenate([a, a[..., :1] + 2 * np.pi], axis=-1), axis=-1)
    return np.maximum(gaps.max(axis=-1) - np.pi, 0.0) / (2 * np.pi)


# ---------------------------------------------------------------- the angle of Q2


@pytest.mark.parametrize("d,m", [(4, 16), (16, 32)])
def test_theta_sampler_matches_its_density(d, m):
    """KS distance below its alpha = 1e-3 critical value (1.95 / sqrt(n)); mean and second moment
    within 4 standard errors of the quadrature values of the normalised density."""
    n = 20_000
    th = np.sort(sample_theta(d, m, n, seed=11))
    grid = np.linspace(0.0, math.pi, 40_001)
    f = np.exp(theta_log_density(grid, d, m))
    F = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(grid))])
    assert F[-1] == pytest.approx(1.0, abs=1e-9)  # the normaliser reused from instance_stats
    cdf = np.interp(th, grid, F)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n)
    for k in (1, 2):
        mom = integrate.quad(lambda t, k=k: t**k * math.exp(float(theta_log_density(t, d, m))), 0, math.pi,
                             limit=400)[0]
        se = np.std(th**k) / math.sqrt(n)
        assert abs(np.mean(th**k) - mom) < Z4 * se


@pytest.mark.parametrize("d,m", [(2, 5), (3, 40), (8, 16), (32, 32)])
def test_theta_envelope_dominates_the_density(d, m):
    """Exactness of the rejection sampler: the tangent-line envelope is >= log f everywhere."""
    x, h, s, a, b, logm = _envelope(d, m)
    t = np.linspace(0.0, math.pi, 200_001)[1:-1]
    j = np.clip(np.searchsorted(b, t), 0, b.size - 1)
    env = h[j] + s[j] * (t - x[j])
    assert np.all(env >= _log_h(t, d, m) - 1e-9)
    assert np.all(np.isfinite(logm[b > a]))


def test_theta_small_dimensions():
    assert np.all(sample_theta(1, 5, 10, seed=0) == 0.0)  # d = 1: only theta = 0 has mass
    th = sample_theta(2, 6, 20_000, seed=1)  # d = 2: density (1 - t/pi)^6 * 7 / pi, mean pi / 8
    assert abs(th.mean() - math.pi / 8) < Z4 * th.std() / math.sqrt(th.size)
    W, x, x2 = sample_q2(1, 7, 50, seed=2, return_directions=True)
    assert np.all(W[..., 0] * x[:, None, 0] > 0) and np.array_equal(x, x2)


# ---------------------------------------------------------------- Q2 and Q1 are exact


@pytest.mark.parametrize("m", [8, 12])
def test_q2_is_p_squared_times_p(m):
    """``E_Q2[1/p] = E_P[p] / E_P[p^2] = 2^-m / E p^2`` (exact oracle, d = 4), within 4 s.e.;
    every draw satisfies the conditioning ``W x > 0``, ``W x' > 0`` (so ``p > 0``).

    The s.e. is the exact one, ``Var_Q2(1/p) = P_f / E p^2 - (2^-m / E p^2)^2``: ``1/p`` is heavy
    tailed under ``Q2`` (its third moment is huge), so the sample s.e. of 400 draws is biased low
    and often undershoots (a 6000-draw run gave z = -1.07 at m = 12, sample E[1/p^2] at half its
    exact value)."""
    d, n = 4, 400
    W, x, x2 = sample_q2(d, m, n, seed=m, return_directions=True)
    assert np.all(np.einsum("nmd,nd->nm", W, x) > 0) and np.all(np.einsum("nmd,nd->nm", W, x2) > 0)
    np.testing.assert_allclose(np.linalg.norm(x2, axis=1), 1.0, atol=1e-12)
    p = _p_exact(W)
    assert np.all(p > 0)
    st = instance_statistics(d, m)
    inv = 1.0 / p
    mean = st.mean_p / st.mean_p2
    sd = math.sqrt(st.feasible_probability / st.mean_p2 - mean**2)
    assert abs(inv.mean() - mean) < Z4 * sd / math.sqrt(n)


def test_q2_in_two_dimensions_closed_form():
    """d = 2 (closed-form p): ``E_Q2[1/p] = 2^-m / E p^2`` and ``E_Q2[p] = E p^3 / E p^2`` where
    ``E p^3`` is estimated from 2e5 draws of P; 4 s.e."""
    d, m, n = 2, 6, 40_000
    st = instance_statistics(d, m)
    p = _p_2d(sample_q2(d, m, n, seed=5))
    assert np.all(p > 0)
    inv = 1 / p
    mean = st.mean_p / st.mean_p2
    sd = math.sqrt(st.feasible_probability / st.mean_p2 - mean**2)  # exact (see above)
    assert abs(inv.mean() - mean) < Z4 * sd / math.sqrt(n)
    pP = _p_2d(np.random.default_rng(6).standard_normal((200_000, m, d)))
    assert abs(pP.mean() - st.mean_p) < Z4 * pP.std() / math.sqrt(pP.size)  # the closed form itself
    ep3, se3 = np.mean(pP**3), np.std(pP**3) / math.sqrt(pP.size)
    se = math.hypot(p.std() / math.sqrt(n), se3 / st.mean_p2)
    assert abs(p.mean() - ep3 / st.mean_p2) < Z4 * se


def test_q1_is_p_times_p():
    """``E_Q1[p] = E p^2 / E p`` (exact oracle, d = 4, m = 8), within 4 s.e.; rows satisfy ``W x > 0``."""
    d, m, n = 4, 8, 400
    W, x = sample_q1(d, m, n, seed=3, return_direction=True)
    assert np.all(np.einsum("nmd,nd->nm", W, x) > 0)
    p = _p_exact(W)
    st = instance_statistics(d, m)
    assert abs(p.mean() - st.mean_p2 / st.mean_p) < Z4 * p.std(ddof=1) / math.sqrt(n)


# ---------------------------------------------------------------- the balance heuristic is unbiased


def test_balance_heuristic_estimator_is_unbiased_d2():
    """Repeated small mixtures (d = 2, m = 8, closed-form p): the plain weighted sums of 1, p, p^2
    and (p - E p)^2 average to 1, E p, E p^2 and Var p within 4 s.e. over 3000 repetitions (an
    unbiasedness check, not only consistency)."""
    d, m = 2, 8
    R, nf, n0, nt = 3000, 3, 3, 4
    st = instance_statistics(d, m)
    pf = wendel_feasibility_probability(d, m)
    rng = np.random.default_rng(7)
    pool = rng.standard_normal((400_000, m, d))
    pp = _p_2d(pool)
    np.testing.assert_array_equal(pp[:2000] > 0, feasible_mask(pool[:2000]))  # the closed form's support
    feas, inf = pool[pp > 0], pool[pp == 0]
    assert feas.shape[0] >= R * nf and inf.shape[0] >= R * n0
    pt = _p_2d(sample_q2(d, m, R * nt, seed=8))
    p = np.concatenate([_p_2d(feas[: R * nf]).reshape(R, nf), np.zeros((R, n0)), pt.reshape(R, nt)], axis=1)
    fe = p > 0
    w = balance_heuristic_weights(p.ravel(), fe.ravel(), n_feasible=nf, n_infeasible=n0, n_tail=nt,
                                  feasible_probability=pf, mean_p2=st.mean_p2).reshape(R, -1)
    # bounded by the stratified weight
    assert np.all(w[:, :nf] <= pf / nf * (1 + 1e-12)) and np.allclose(w[:, nf:nf + n0], (1 - pf) / n0)
    for g, exact in ((np.ones_like(p), 1.0), (p, st.mean_p), (p**2, st.mean_p2), ((p - st.mean_p) ** 2, st.var_p)):
        est = (w * g).sum(axis=1)
        assert abs(est.mean() - exact) < Z4 * est.std(ddof=1) / math.sqrt(R), (exact, est.mean())


def test_q2_density_ratio_in_log_space():
    assert q2_density_ratio(np.array([0.0, 1e-200]), 1e-300)[0] == 0.0
    assert q2_density_ratio(np.array([1e-200]), 1e-300)[0] == pytest.approx(1e-100)


# ---------------------------------------------------------------- the curves' mixture law


def _boot_se(inst, g: np.ndarray, R: int = 2000) -> float:
    b = _bootstrap_indices(inst, R, np.random.default_rng(0))
    return float(np.std((inst.weights[b] * g[b]).sum(axis=1)))


@pytest.mark.parametrize("m,n", [(8, 240), (16, 240)])
def test_mixture_moments_match_the_exact_ones(m, n):
    """Mixture draws (d = 4, exact oracle truth): sum w, sum w p, sum w p^2 and the trivial
    predictor's measured nMSE agree with 1, 2^-m, E p^2, Var p / E p(1-p) within 4 bootstrap s.e.
    (bootstrap within source); every Q2 draw is feasible with p > 0."""
    cfg = CurveConfig(d=4, m=m, instances=n, seed=21, instance_law="mixture", tail_share=0.5)
    inst = draw_instances(cfg, show_progress=False)
    st = instance_statistics(4, m)
    tail = inst.source == 2
    assert tail.sum() == n // 2 and np.all(inst.truth[tail] > 0) and np.all(inst.feasible[tail])
    assert set(np.unique(inst.source)) == {0, 1, 2}
    for g, exact in ((np.ones(n), 1.0), (inst.truth, st.mean_p), (inst.truth**2, st.mean_p2),
                     ((inst.truth - st.mean_p) ** 2, st.var_p)):
        est = float(inst.weights @ g)
        assert abs(est - exact) < Z4 * _boot_se(inst, g), (exact, est)


def test_mixture_nmse_agrees_with_stratified_and_is_tighter():
    """(4, 8), 400 instances per law: hermite (K = 15) and the trivial predictor (hermite K = 1)
    have nMSEs that agree across the laws within 4 combined standard errors (s.e. = CI half-width
    / 1.96); the mixture's intervals are narrower, and both laws report what they used."""
    base = dict(d=4, m=8, instances=400, bootstrap=400, seed=4, methods=("hermite",), budgets={"hermite": (1, 15)})
    rs = run_curves(CurveConfig(**base), show_progress=False, log=lambda s: None)
    rm = run_curves(CurveConfig(**base, instance_law="mixture"), show_progress=False, log=lambda s: None)
    assert rs["instance_law"] == "stratified" and rm["instance_law"] == "mixture" and rm["tail_share"] == 0.5
    assert rs["sum_weights"] == pytest.approx(1.0, abs=1e-12)
    assert rm["n_per_source"]["tail"] == 200
    for ps, pm in zip(rs["methods"]["hermite"]["points"], rm["methods"]["hermite"]["points"], strict=True):
        ses = (ps["nmse_ci95"][1] - ps["nmse_ci95"][0]) / 3.92
        sem = (pm["nmse_ci95"][1] - pm["nmse_ci95"][0]) / 3.92
        assert abs(ps["nmse"] - pm["nmse"]) < Z4 * math.hypot(ses, sem)
        assert sem < ses
        assert 1.0 <= pm["nmse_effective_instances"] <= 400 and 1.0 <= ps["nmse_effective_instances"] <= 400
    lo, hi = rm["tail_coverage_ci95"]
    assert lo <= rm["tail_coverage"] <= hi and lo < 1.0 < hi
    # K = 1 is the trivial predictor: its nMSE is the measured trivial nMSE
    assert rm["methods"]["hermite"]["points"][0]["nmse"] == pytest.approx(rm["trivial_nmse_measured"], rel=1e-9)


def test_stratified_law_is_the_historical_computation():
    """The default law is 'stratified' and its nMSE and bootstrap interval are the pre-mixture
    computation, bit for bit: weights @ e2 / E p(1-p), bootstrap within the feasibility strata and
    divided by the resampled weight sum."""
    cfg = CurveConfig(d=3, m=7, instances=30, bootstrap=60, seed=2, methods=("hermite",), budgets={"hermite": (4,)})
    assert cfg.instance_law == "stratified"
    res = run_curves(cfg, show_progress=False, log=lambda s: None)
    inst = draw_instances(cfg, show_progress=False)
    st = instance_statistics(3, 7)
    vals = get_toy_estimator("hermite").estimate_batch(inst.W, 4, seed=np.random.default_rng([2, 2, 4])).values
    e2 = (vals - inst.truth) ** 2
    rng = np.random.default_rng([2, 1])
    cols = [g[rng.integers(0, g.size, size=(60, g.size))]
            for g in (np.flatnonzero(inst.feasible), np.flatnonzero(~inst.feasible)) if g.size]
    boot = np.concatenate(cols, axis=1)
    bs = (inst.weights[boot] * e2[boot]).sum(axis=1) / inst.weights[boot].sum(axis=1) / st.mean_p_one_minus_p
    pt = res["methods"]["hermite"]["points"][0]
    assert pt["nmse"] == float(inst.weights @ e2 / st.mean_p_one_minus_p)
    assert pt["nmse_ci95"] == [float(v) for v in np.percentile(bs, [2.5, 97.5])]
    assert res["trivial_nmse_measured"] == float(inst.weights @ (inst.truth - st.mean_p) ** 2 / st.mean_p_one_minus_p)


def test_cli_mixture_writes_the_law(tmp_path):
    rc = main(["curves", "--d", "3", "--m", "6", "--instances", "12", "--bootstrap", "20",
               "--methods", "hermite", "sampling", "--budgets", "hermite=1,4", "sampling=10",
               "--instance-law", "mixture", "--tail-share", "0.25", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    import json

    data = json.loads((tmp_path / "curves.json").read_text())
    assert data["instance_law"] == "mixture" and data["tail_share"] == 0.25 and data["n_per_source"]["tail"] == 3
    assert len(data["tail_coverage_ci95"]) == 2 and data["sum_weights"] > 0


# ---------------------------------------------------------------- bad input


def test_bad_instance_law_and_tail_share():
    with pytest.raises(InputValueError, match="instance_law.*'nope'"):
        CurveConfig(instance_law="nope")
    for bad in (1.0, -0.1, float("nan"), True, "0.5"):
        with pytest.raises(InputValueError, match="tail_share"):
            CurveConfig(instance_law="mixture", tail_share=bad)
    with pytest.raises(InputValueError, match="instance_law"):
        GridConfig(instance_law="tail")
    with pytest.raises(InputValueError, match="tail_share"):
        GridConfig(tail_share=1.5)
    with pytest.raises(InputValueError, match="instances=3 and tail_share=0.9"):
        draw_instances(CurveConfig(d=4, m=8, instances=3, tail_share=0.9, instance_law="mixture"))


def test_mixture_refused_for_other_problems(monkeypatch, tmp_path, capsys):
    halfspace = CURVE_PROBLEMS.get("halfspace")
    monkeypatch.setitem(CURVE_PROBLEMS._items, "strata-only", CurveProblem(
        draw=halfspace.draw, statistics=halfspace.statistics, estimator=halfspace.estimator))
    cfg = CurveConfig(d=3, m=6, instances=8, problem="strata-only", instance_law="mixture",
                      methods=("hermite",), budgets={"hermite": (1,)})
    with pytest.raises(InputValueError, match="instance_law='mixture'.*problem='strata-only'"):
        run_curves(cfg, show_progress=False, log=lambda s: None)
    # the stratified law still runs for it
    ok = run_curves(CurveConfig(**{**cfg.__dict__, "instance_law": "stratified"}), show_progress=False, log=lambda s: None)
    assert ok["instance_law"] == "stratified"
    rc = main(["curves", "--problem", "sat", "--n", "6", "--instance-law", "mixture", "--out", str(tmp_path)])
    assert rc == 2 and "--instance-law 'mixture' is only available for --problem halfspace" in capsys.readouterr().err
    rc = main(["curves", "--d", "3", "--m", "6", "--tail-share", "1", "--out", str(tmp_path)])
    assert rc == 2 and "tail_share must be a number in [0, 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_mixture_agrees_with_stratified_on_4x16():
    """Slow: (4, 16), 800 instances per law, exact oracle. Hermite nMSEs at K = 15, 70 and the
    trivial predictor (K = 1) agree across the laws within 4 combined standard errors
    (s.e. = CI half-width / 1.96), and the mixture's tail coverage interval contains 1."""
    base = dict(d=4, m=16, instances=800, bootstrap=400, seed=9, methods=("hermite",),
                budgets={"hermite": (1, 15, 70)})
    rs = run_curves(CurveConfig(**base), show_progress=False, log=lambda s: None)
    rm = run_curves(CurveConfig(**base, instance_law="mixture"), show_progress=False, log=lambda s: None)
    for ps, pm in zip(rs["methods"]["hermite"]["points"], rm["methods"]["hermite"]["points"], strict=True):
        se = math.hypot(ps["nmse_ci95"][1] - ps["nmse_ci95"][0], pm["nmse_ci95"][1] - pm["nmse_ci95"][0]) / 3.92
        assert abs(ps["nmse"] - pm["nmse"]) < Z4 * se, (ps, pm)
    lo, hi = rm["tail_coverage_ci95"]
    assert lo <= 1.0 <= hi


def test_mixture_nmse_is_the_plain_weighted_sum():
    """The mixture's nMSE is ``sum_i w_i e_i^2 / E p(1-p)`` (plain, not divided by ``sum w``), and
    ``tail_share = 0`` reduces the mixture's weights to the stratified ones."""
    cfg = CurveConfig(d=3, m=9, instances=40, bootstrap=50, seed=6, instance_law="mixture",
                      methods=("hermite",), budgets={"hermite": (4,)})
    res = run_curves(cfg, show_progress=False, log=lambda s: None)
    inst = draw_instances(cfg, show_progress=False)
    vals = get_toy_estimator("hermite").estimate_batch(inst.W, 4, seed=np.random.default_rng([6, 2, 4])).values
    e2 = (vals - inst.truth) ** 2
    st = instance_statistics(3, 9)
    assert res["methods"]["hermite"]["points"][0]["nmse"] == float(inst.weights @ e2 / st.mean_p_one_minus_p)
    assert res["sum_weights"] == float(inst.weights.sum()) != 1.0
    zero = draw_instances(CurveConfig(d=3, m=9, instances=20, seed=6, instance_law="mixture", tail_share=0.0))
    strat = draw_instances(CurveConfig(d=3, m=9, instances=20, seed=6))
    np.testing.assert_array_equal(zero.W, strat.W)
    np.testing.assert_allclose(zero.weights, strat.weights, rtol=1e-15)
    assert not np.any(zero.source == 2)
