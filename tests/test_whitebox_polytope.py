"""White-box final-layer estimators on synthetic final layers with Gaussian activations.

Truth: Botev tilting over *all* competitors at once (the toy oracle machinery of
``lowprob.gaussian_polytope``, itself tested against exact quadrature and large MC), and
independent plain Monte Carlo. Statistical checks use fixed seeds and a 4-sigma tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lowprob.gaussian_polytope import gaussian_polytope_probability
from lowprob.lm_bridge.methods.qld import qld_from_activations
from lowprob.lm_bridge.whitebox import (
    EmpiricalModel,
    FinalLayer,
    GaussianMixture,
    GaussianModel,
    ProductModel,
    adf_probability,
    corrected_gaussian_probability,
    polytope_probability,
    topk_gaussian_probability,
)
from lowprob.lm_bridge.whitebox.polytope import sequential_danger_order


def synthetic(d: int = 6, V: int = 30, seed: int = 0, shift: float = 0.3):
    """A random unembedding and a Gaussian; the target is the rarest winner with p >= 1e-4."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, V))
    b = 0.5 * rng.standard_normal(V)
    B = rng.standard_normal((d, d))
    S = B @ B.T / d + 0.2 * np.eye(d)
    m = shift * rng.standard_normal(d)
    g = GaussianModel.from_moments(m, S)
    x = g.sample(400_000, seed=seed + 1)
    freq = np.bincount((x @ W + b).argmax(1), minlength=V) / x.shape[0]
    cands = [k for k in np.argsort(freq) if freq[k] >= 1e-4]
    return g, FinalLayer(W, b, int(cands[0]))


def oracle(g: GaussianModel, layer: FinalLayer, n: int = 2**15) -> tuple[float, float]:
    A, c = layer.halfspaces()
    r = gaussian_polytope_probability(A, -c, np.inf, g.mean, g.cov, n_samples=n, seed=123)
    return r.probability, r.std_error


@pytest.fixture(scope="module")
def problem():
    g, layer = synthetic()
    p, se = oracle(g, layer)
    return g, layer, p, se


def test_oracle_agrees_with_plain_monte_carlo(problem):
    g, layer, p, se = problem
    n = 1_000_000
    hits = sum(int(layer.event(g.sample(n // 4, seed=50 + i)).sum()) for i in range(4))
    p_mc = hits / n
    assert abs(p_mc - p) < 4 * math.hypot(math.sqrt(p_mc / n), se)


@pytest.mark.parametrize("K", [1, 8, pytest.param(12, marks=pytest.mark.slow)])
def test_is_correction_is_unbiased(problem, K):
    """Mean of 12 independent corrected estimates within 4 sigma of the oracle, for any K."""
    g, layer, p, se_o = problem
    ests = np.array(
        [corrected_gaussian_probability(g, layer, K=K, n_samples=2**11, extra=0 if K == 1 else 8, seed=s).probability
         for s in range(12)]
    )
    se = math.hypot(ests.std(ddof=1) / math.sqrt(ests.size), se_o)
    assert abs(ests.mean() - p) < 4 * se


def test_corrected_estimate_converges(problem):
    g, layer, p, _ = problem
    small = corrected_gaussian_probability(g, layer, K=8, n_samples=2**10, seed=1)
    big = corrected_gaussian_probability(g, layer, K=8, n_samples=2**14, seed=1)
    assert big.relative_error < 0.5 * small.relative_error
    assert abs(big.probability - p) < 4 * big.probability * big.relative_error + 4 * problem[3]
    assert big.diagnostics["pass_fraction"] > 0.3


def test_topk_is_an_upper_bound_and_tightens(problem):
    g, layer, p, _ = problem
    p1 = topk_gaussian_probability(g, layer, 1).probability
    p8 = topk_gaussian_probability(g, layer, 8, n_samples=2**12, seed=0).probability
    assert p1 >= p8 * (1 - 1e-3)
    assert p8 >= p * (1 - 0.05)


def test_adf_single_competitor_is_exact_and_full_run_is_close(problem):
    g, layer, p, _ = problem
    # one competitor: the truncation normaliser is exactly Phi((A m + c) / s)
    r1 = adf_probability(g, layer, n_competitors=1)
    ks, _, _ = sequential_danger_order(g, layer, max_competitors=1)
    exact = topk_gaussian_probability(g, layer, 1)
    assert ks.size == 1
    assert r1.log_probability == pytest.approx(exact.log_probability, rel=1e-10)
    # all competitors: deterministic, and (for this instance) within a factor 2 of the truth
    r = adf_probability(g, layer)
    assert adf_probability(g, layer).log_probability == r.log_probability
    assert abs(r.log_probability - math.log(p)) < math.log(2.0)
    # the loop result equals the greedy pass's own running product
    _, _, log_greedy = sequential_danger_order(g, layer)
    assert r.log_probability == pytest.approx(log_greedy, rel=1e-8)


def test_fitted_gaussian_converges_to_truth(problem):
    """Fit N(m, S) from n samples: the model probability approaches the truth as n grows."""
    g, layer, p, _ = problem
    errs = []
    for n in (2**9, 2**16):
        fit = GaussianModel.fit(g.sample(n, seed=7))
        est = corrected_gaussian_probability(fit, layer, K=8, n_samples=2**13, seed=2)
        errs.append(abs(est.log_probability - math.log(p)))
    assert errs[1] < 0.1
    assert errs[1] < errs[0] + 0.02


def test_mixture_is_weighted_sum_of_components(problem):
    g, layer, _, _ = problem
    g2 = GaussianModel.from_moments(g.mean + 0.5, g.cov * 1.3)
    mix = GaussianMixture(np.array([0.7, 0.3]), np.stack([g.mean, g2.mean]), np.stack([g.cov, g2.cov]))
    p1, s1 = oracle(g, layer)
    p2, s2 = oracle(g2, layer)
    truth = 0.7 * p1 + 0.3 * p2
    est = polytope_probability(mix, layer, K=8, n_samples=2**14, seed=4)
    se = math.hypot(est.probability * est.relative_error, 0.7 * s1 + 0.3 * s2)
    assert abs(est.probability - truth) < 4 * se
    # the fitted mixture of samples from this mixture converges to it too
    xs = mix.sample(2**14, seed=5)
    fit = GaussianMixture.fit(xs, 2, seed=0, regularization=1e-6)
    est_fit = polytope_probability(fit, layer, K=8, n_samples=2**14, seed=6)
    assert abs(est_fit.log_probability - math.log(truth)) < 0.25


def test_empirical_and_product_models(problem):
    g, layer, _, _ = problem
    x = g.sample(4096, seed=9)
    e = polytope_probability(EmpiricalModel.fit(x), layer)
    hits = int(layer.event(x).sum())
    assert e.diagnostics["hits"] == hits
    q = polytope_probability(ProductModel.fit(x), layer)
    ref = qld_from_activations(torch.as_tensor(x), torch.as_tensor(layer.W_U), torch.as_tensor(layer.b_U), layer.target)
    assert q.log_probability == ref.log_p


def test_adf_is_one_pass_and_its_tracked_gaps_match_a_replay(problem, monkeypatch):
    """The danger ordering and the filter are one propagate pass per Gaussian; replaying the chosen
    order through plain HalfspaceSteps (gaps recomputed from scratch each step) gives the same mass."""
    from lowprob.lm_bridge.whitebox import adf as adf_mod
    from lowprob.propagation.loop import propagate
    from lowprob.propagation.steps import HalfspaceStep

    g, layer, _, _ = problem
    calls = []
    real = adf_mod.propagate
    monkeypatch.setattr(adf_mod, "propagate", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = adf_probability(g, layer)
    assert len(calls) == 1
    mix = GaussianMixture(np.array([0.5, 0.5]), np.stack([g.mean, g.mean + 0.1]), np.stack([g.cov, g.cov]))
    adf_probability(mix, layer)
    assert len(calls) == 3
    trace = adf_mod.adf_over_competitors(g, layer)
    ks = np.asarray(trace.final.gaps.chosen)
    A, c = layer.halfspaces(ks)
    replay = propagate(adf_mod.GaussianDensity(0.0, g.mean, g.cov), [HalfspaceStep(A[i], c[i]) for i in range(ks.size)],
                       projector=adf_mod.moment_match_projector, claims=[None] * ks.size, budget=g.d)
    assert replay.final.log_mass == pytest.approx(r.log_probability, rel=1e-10)
    np.testing.assert_allclose(replay.final.mean, trace.final.mean, rtol=1e-9, atol=1e-12)
    # every competitor left out was below the danger tolerance under the final Gaussian
    left = trace.final.gaps.log_danger()
    assert np.all(left[~trace.final.gaps.used] < math.log(1e-9))
