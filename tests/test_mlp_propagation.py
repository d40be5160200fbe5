"""Gaussian moments, cumulant propagation and the MLP estimators.

Tolerances: Monte Carlo checks use a fixed seed and allow 5 standard errors (k = 5).
"""

import math

import numpy as np
import pytest
from scipy import integrate, special

from lowprob.errors import BudgetError, InputTypeError, InputValueError, UnavailableError
from lowprob.propagation.cumulants import (
    CumulantState,
    input_state,
    linear_step,
    nonlinear_step,
)
from lowprob.propagation.gaussian_moments import (
    gaussian_activation_moments,
    hermite_coefficients,
    hermite_polynomials,
    mehler_covariance,
    relu_cross_covariance,
    relu_moments,
    square_hermite_coefficients,
)
from lowprob.propagation.mlp_estimators import (
    CumulantPropagation,
    GaussianMomentPropagation,
    MLPTailProblem,
    MonteCarloMLP,
    mc_flops_per_sample,
)
from lowprob.toy_models.random_mlp import RandomMLP, activation_function

K_SE = 5.0


# ---------------------------------------------------------------- Gaussian moments
@pytest.mark.parametrize("m, s", [(0.0, 1.0), (-1.3, 0.7), (2.0, 0.5)])
def test_relu_moments_match_monte_carlo(m, s):
    z = np.random.default_rng(11).standard_normal(2_000_000)
    r = np.maximum(m + s * z, 0)
    for k, val in enumerate(relu_moments(np.array(m), np.array(s)), start=1):
        mc = r**k
        assert abs(val - mc.mean()) < K_SE * mc.std() / math.sqrt(mc.size)


def _quad_coefficient(phi, m, s, k, power, lo):
    def integrand(z):
        he = hermite_polynomials(np.array(z), k)[k]
        return phi(np.array(m + s * z)) ** power * he * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    return integrate.quad(integrand, lo, 14, limit=200)[0]


@pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
def test_hermite_coefficients_match_quadrature(act):
    m, s = np.array([0.3, -0.8]), np.array([1.1, 0.6])
    a = hermite_coefficients(act, m, s, 6)
    b = square_hermite_coefficients(act, m, s, 6)
    phi = activation_function(act)
    for i in range(2):
        lo = -m[i] / s[i] if act == "relu" else -14.0
        for k in range(7):
            assert a[k, i] == pytest.approx(_quad_coefficient(phi, m[i], s[i], k, 1, lo), abs=1e-8)
            assert b[k, i] == pytest.approx(_quad_coefficient(phi, m[i], s[i], k, 2, lo), abs=1e-8)


def test_relu_cross_covariance_plackett_equals_mehler_series():
    rng = np.random.default_rng(0)
    n = 5
    alpha, s = rng.normal(size=n), rng.uniform(0.5, 2, size=n)
    A = rng.normal(size=(n, n))
    C = A @ A.T + n * np.eye(n)  # moderate correlations
    rho = C / np.sqrt(np.outer(np.diag(C), np.diag(C)))
    plackett = relu_cross_covariance(alpha, s, rho)
    a = hermite_coefficients("relu", alpha * s, s, 40)
    mehler = mehler_covariance(a, a, rho)
    off = ~np.eye(n, dtype=bool)
    assert np.max(np.abs(rho[off])) < 0.6
    np.testing.assert_allclose(plackett[off], mehler[off], atol=1e-9)


@pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
def test_gaussian_activation_moments_match_monte_carlo(act):
    mean = np.array([0.2, -0.5, 1.0])
    L = np.array([[1.0, 0, 0], [0.6, 0.8, 0], [-0.5, 0.3, 0.7]])
    cov = L @ L.T  # correlations up to ~0.6
    mu, C = gaussian_activation_moments(act, mean, cov)
    h = mean + np.random.default_rng(5).standard_normal((1_000_000, 3)) @ L.T
    x = activation_function(act)(h)
    N = x.shape[0]
    se_mu = x.std(axis=0) / math.sqrt(N)
    assert np.all(np.abs(mu - x.mean(axis=0)) < K_SE * se_mu)
    xc = x - x.mean(axis=0)
    for i in range(3):
        for j in range(3):
            prod = xc[:, i] * xc[:, j]
            assert abs(C[i, j] - prod.mean()) < K_SE * prod.std() / math.sqrt(N) + 1e-12


# ---------------------------------------------------------------- cumulant propagation
def test_cumulant_propagation_exact_on_linear_network():
    """Independent centred-exponential input (kappa_2 = 1, kappa_3 = 2), two linear layers."""
    rng = np.random.default_rng(1)
    n = 6
    W1, W2 = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    k3 = np.zeros((n, n, n))
    k3[np.arange(n), np.arange(n), np.arange(n)] = 2.0
    state = CumulantState(np.zeros(n), np.eye(n), k3)
    out = linear_step(linear_step(state, W1), W2)
    M = W1 @ W2
    np.testing.assert_allclose(out.cov, M.T @ M, rtol=1e-12, atol=1e-12)
    exact_k3 = 2.0 * np.einsum("aj,ak,al->jkl", M, M, M)
    np.testing.assert_allclose(out.k3, exact_k3, rtol=1e-11, atol=1e-10)
    # power cumulants are exact for one layer on independent input
    d = linear_step(CumulantState(np.ones(n), np.ones(n), np.full(n, 2.0), diagonal=True), W1)
    np.testing.assert_allclose(d.cov, (W1**2).sum(axis=0))
    np.testing.assert_allclose(d.k3, 2.0 * (W1**3).sum(axis=0))
    np.testing.assert_allclose(d.mean, W1.sum(axis=0))
    # and Monte Carlo agrees with the exact third cumulant of one output
    x = rng.exponential(size=(2_000_000, n)) - 1.0
    h = x @ M
    mc = ((h[:, 0] - h[:, 0].mean()) ** 3)
    assert abs(out.k3[0, 0, 0] - mc.mean()) < K_SE * mc.std() / math.sqrt(mc.size)


@pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
def test_order_two_equals_mean_covariance_propagation(act):
    mlp = RandomMLP.sample(24, 3, act, init="critical", seed=4)
    a = CumulantPropagation(2, hermite_order=14).estimate_means(mlp, 10**12).means
    b = GaussianMomentPropagation().estimate_means(mlp, 10**12).means
    # equal up to the Mehler truncation at order 14 (|rho|^15 / 15!)
    np.testing.assert_allclose(a, b, atol=2e-7)


def test_third_cumulant_step_matches_monte_carlo():
    """Gaussian h, one ReLU: propagated kappa_3(phi(h)) vs 4e6-sample Monte Carlo (k = 5)."""
    mean = np.array([0.3, -0.4, 0.1, 0.5])
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 4)) * 0.3 + np.eye(4)
    cov = A @ A.T
    state = CumulantState(mean, cov, np.zeros((4, 4, 4)))
    out = nonlinear_step(state, "relu", hermite_order=12, third_order_terms=5)
    h = mean + rng.standard_normal((4_000_000, 4)) @ np.linalg.cholesky(cov).T
    x = np.maximum(h, 0)
    xc = x - x.mean(axis=0)
    for i, j, k in [(0, 0, 0), (0, 0, 1), (1, 2, 2), (0, 1, 2), (1, 2, 3), (0, 1, 3)]:
        prod = xc[:, i] * xc[:, j] * xc[:, k]
        tol = K_SE * prod.std() / math.sqrt(prod.size) + 2e-3 * abs(prod.mean())
        assert abs(out.k3[i, j, k] - prod.mean()) < tol, (i, j, k, out.k3[i, j, k], prod.mean())


def test_structured_order_three_equals_full_tensor_without_distinct_triples():
    """The O(n^3) structured K=3 equals the n^3-tensor K=3 once the tensor keeps only
    diagonal and pair entries (distinct-index third cumulants zeroed, no Wick trees)."""
    mlp = RandomMLP.sample(7, 3, "relu", seed=12)
    struct = CumulantPropagation(3, structured=True).propagate(mlp)
    state = input_state(7, 3)
    idx = np.arange(7)
    distinct = np.ones((7, 7, 7), dtype=bool)
    distinct[idx, idx, :] = distinct[idx, :, idx] = distinct[:, idx, idx] = False
    for layer, w in enumerate(mlp.weights):
        state = linear_step(state, w)
        state = CumulantState(state.mean, state.cov, np.where(distinct, 0.0, state.k3))
        pre = struct[2 * layer]
        np.testing.assert_allclose(pre.k3, state.k3[idx, idx, idx], rtol=1e-10, atol=1e-12)
        if layer > 0:  # the first pre-activation is Gaussian: no pair cumulants yet
            np.testing.assert_allclose(np.diag(pre.wick.pair), pre.k3, rtol=1e-12)
            off = ~np.eye(7, dtype=bool)
            np.testing.assert_allclose(pre.wick.pair[off], state.k3[idx, idx, :][off],
                                       rtol=1e-10, atol=1e-13)
        state = nonlinear_step(state, "relu", hermite_order=8, third_order_terms=1)
        post = struct[2 * layer + 1]
        np.testing.assert_allclose(post.mean, state.mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(post.cov, state.cov, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(post.k3, state.k3[idx, idx, idx], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(post.wick.pair, state.k3[idx, idx, :] * ~np.eye(7, dtype=bool),
                                   rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_order_three_beats_order_two_against_monte_carlo():
    mlp = RandomMLP.sample(48, 3, "relu", seed=8)
    per = mc_flops_per_sample(48, 3)
    truth = MonteCarloMLP(batch_size=50_000).estimate_means(mlp, per * 1_000_000, seed=9)
    noise = np.mean(truth.std_error[-1] ** 2)

    def mse(est):
        return np.mean((est.estimate_means(mlp, 10**12).means[-1] - truth.means[-1]) ** 2) - noise

    m2, m3 = mse(CumulantPropagation(2)), mse(CumulantPropagation(3))
    m3s = mse(CumulantPropagation(3, structured=True))
    assert m3 < 0.5 * m2, (m2, m3)
    assert m3s < 0.5 * m2, (m2, m3s)


def test_monte_carlo_means_unbiased():
    mlp = RandomMLP.sample(8, 2, "gelu", seed=1)
    per = mc_flops_per_sample(8, 2, "gelu")
    a = MonteCarloMLP().estimate_means(mlp, per * 200_000, seed=1)
    b = MonteCarloMLP().estimate_means(mlp, per * 200_000, seed=2)
    assert a.cost.samples == 200_000 and a.cost.flops == per * 200_000
    z = (a.means - b.means) / np.sqrt(a.std_error**2 + b.std_error**2)
    assert np.all(np.abs(z) < K_SE)


# ---------------------------------------------------------------- rare events
@pytest.mark.slow
def test_tail_probability_estimates_agree_with_monte_carlo():
    mlp = RandomMLP.sample(32, 2, "relu", seed=3)
    res = CumulantPropagation(3).estimate_means(mlp, 10**12)
    i = 0
    b = float(res.pre_mean[i] + 3.0 * math.sqrt(res.pre_var[i]))  # p ~ 1e-3
    prob = MLPTailProblem(mlp, b, neuron=i)
    per = mc_flops_per_sample(32, 2)
    mc = MonteCarloMLP(batch_size=100_000).estimate(prob, per * 2_000_000, seed=4)
    for est in (CumulantPropagation(2), CumulantPropagation(3), GaussianMomentPropagation()):
        e = est.estimate(prob, 10**12)
        assert e.budget_unit == "flops" and e.cost.flops > 0
        # propagation is biased (a moment closure); ask for the right order of magnitude
        assert 0.3 < e.value / mc.value < 3.0, (est.name, e.value, mc.value)
    far = CumulantPropagation(3).estimate(MLPTailProblem(mlp, b + 50 * math.sqrt(res.pre_var[i])), 10**12)
    assert far.value < 1e-300 and -5000 < far.log_value < -700  # log space keeps it finite


def test_tail_gaussian_formula():
    mlp = RandomMLP.sample(4, 1, seed=0)
    e = CumulantPropagation(2).estimate(MLPTailProblem(mlp, 1.5, 2), 10**9)
    s = math.sqrt((mlp.weights[0][:, 2] ** 2).sum())
    assert e.log_value == pytest.approx(special.log_ndtr(-1.5 / s), rel=1e-12)


# ---------------------------------------------------------------- bad input
def test_bad_order_and_width():
    for K in (0, 1, 4):
        with pytest.raises(InputValueError, match="order"):
            CumulantPropagation(K)
    with pytest.raises(InputValueError, match="structured"):
        CumulantPropagation(2, structured=True)
    with pytest.raises(InputValueError, match="width"):
        input_state(0, 2)
    with pytest.raises(UnavailableError):
        input_state(1000, 3)


def test_budget_too_small():
    mlp = RandomMLP.sample(16, 3, seed=0)
    est = CumulantPropagation(2)
    per_layer = est.cost_flops(mlp) // 3
    with pytest.raises(BudgetError, match="one layer"):
        est.estimate_means(mlp, per_layer - 1)
    with pytest.raises(BudgetError, match="of 3 layers"):
        est.estimate_means(mlp, per_layer + 1)
    with pytest.raises(BudgetError, match="one Monte Carlo sample"):
        MonteCarloMLP().estimate_means(mlp, 10)
    with pytest.raises(BudgetError):
        est.estimate_means(mlp, 0)
    with pytest.raises(InputValueError, match="neuron"):
        MLPTailProblem(mlp, 1.0, neuron=16)
    with pytest.raises(InputValueError, match="threshold"):
        MLPTailProblem(mlp, float("nan"))


def test_bad_seed_and_activation():
    mlp = RandomMLP.sample(8, 2, seed=0)
    for est in (MonteCarloMLP(), CumulantPropagation(2)):
        for seed in ("x", 1.5):
            with pytest.raises(InputTypeError, match="seed"):
                est.estimate_means(mlp, 10**9, seed=seed)
    with pytest.raises(InputValueError, match="activation 'swish'"):
        nonlinear_step(input_state(4, 2), "swish")
    with pytest.raises(InputValueError, match="activation 'swish'"):
        hermite_coefficients("swish", np.zeros(2), np.ones(2), 2)
