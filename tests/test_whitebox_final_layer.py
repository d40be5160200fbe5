"""Final-layer half-spaces, deterministic claim ordering, activation-model fitting, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.errors import InputTypeError, InputValueError
from lowprob.lm_bridge.whitebox import FinalLayer, GaussianMixture, GaussianModel, danger_order
from lowprob.lm_bridge.whitebox.polytope import (
    competitors_by_danger,
    corrected_gaussian_probability,
    sequential_danger_order,
)


def layer_and_model(seed=0, d=5, V=12):
    rng = np.random.default_rng(seed)
    layer = FinalLayer(rng.standard_normal((d, V)), rng.standard_normal(V), 3)
    B = rng.standard_normal((d, d))
    return layer, GaussianModel.from_moments(rng.standard_normal(d), B @ B.T + 0.1 * np.eye(d))


def test_halfspaces_are_the_argmax_event():
    layer, g = layer_and_model()
    x = g.sample(5000, seed=1)
    A, c = layer.halfspaces()
    inside = np.all(x @ A.T + c > 0, axis=1)
    np.testing.assert_array_equal(inside, (x @ layer.W_U + layer.b_U).argmax(1) == layer.target)
    np.testing.assert_array_equal(inside, layer.event(x, batch_size=777))
    assert layer.competitors.tolist() == [k for k in range(12) if k != 3]


def test_claim_ordering_is_deterministic_and_breaks_ties_by_token_id():
    assert danger_order([-1.0, -0.5, -1.0, -0.5, -3.0]).tolist() == [1, 3, 0, 2, 4]
    layer, g = layer_and_model()
    a = competitors_by_danger(g, layer)
    b = competitors_by_danger(g, layer)
    np.testing.assert_array_equal(a[0], b[0])
    s1 = sequential_danger_order(g, layer)
    s2 = sequential_danger_order(g, layer)
    np.testing.assert_array_equal(s1[0], s2[0])
    assert s1[2] == s2[2]
    # duplicating a competitor's column gives two equally dangerous competitors: lower id first
    W = np.array(layer.W_U)
    b_ = np.array(layer.b_U)
    top = int(a[0][0])
    W[:, 11], b_[11] = W[:, top], b_[top]
    dup = FinalLayer(W, b_, 3)
    ks, _ = competitors_by_danger(g, dup)
    pos = {int(k): i for i, k in enumerate(ks)}
    assert pos[min(top, 11)] < pos[max(top, 11)] and abs(pos[top] - pos[11]) == 1
    with pytest.raises(InputValueError, match="NaN"):
        danger_order([0.0, np.nan])


def test_seeded_corrected_estimates_are_reproducible():
    layer, g = layer_and_model()
    r1 = corrected_gaussian_probability(g, layer, K=3, n_samples=512, seed=5)
    r2 = corrected_gaussian_probability(g, layer, K=3, n_samples=512, seed=5)
    assert r1.log_probability == r2.log_probability


def test_bad_input_unembedding_and_vocabulary():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 10))
    with pytest.raises(InputValueError, match="vocabulary and the unembedding disagree"):
        FinalLayer(W, np.zeros(9), 0)
    with pytest.raises(InputValueError, match="vocab_size=12"):
        FinalLayer.from_unembedding(W, np.zeros(10), 0, vocab_size=12)
    with pytest.raises(InputValueError, match="target=10"):
        FinalLayer(W, np.zeros(10), 10)
    with pytest.raises(InputTypeError, match="target"):
        FinalLayer(W, np.zeros(10), 1.0)
    with pytest.raises(InputValueError, match="NaN"):
        FinalLayer(np.full((4, 10), np.nan), np.zeros(10), 0)
    layer = FinalLayer(W, np.zeros(10), 0)
    with pytest.raises(InputValueError, match="competitors"):
        layer.halfspaces([0, 1])


@pytest.mark.parametrize("K", [0, 10, 11])
def test_bad_input_k_out_of_range(K):
    layer, g = layer_and_model(V=10)
    if K == 0:
        with pytest.raises(InputValueError, match="K must be >= 1"):
            corrected_gaussian_probability(g, layer, K=K)
    else:
        with pytest.raises(InputValueError, match="out of range"):
            corrected_gaussian_probability(g, layer, K=K)


def test_singular_covariance_needs_regularisation():
    """LayerNorm outputs lie on a hyperplane: their covariance is singular."""
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2000, 6))
    x = (h - h.mean(1, keepdims=True)) / h.std(1, keepdims=True)  # rows sum to 0
    with pytest.raises(InputValueError, match="regularization"):
        GaussianModel.fit(x)
    g = GaussianModel.fit(x, regularization=1e-6)
    assert np.all(np.linalg.eigvalsh(g.cov) > 0)
    with pytest.raises(InputValueError, match="regularization"):
        GaussianModel.fit(x[:5])  # n <= d
    with pytest.raises(InputValueError, match="regularization"):
        GaussianMixture.fit(x, 2, regularization=0.0)
    with pytest.raises(InputValueError, match="regularization"):
        GaussianModel.fit(x, regularization=-1.0)


def test_mixture_em_recovers_separated_components():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((3000, 3)) + 6, rng.standard_normal((1000, 3)) - 6])
    gmm = GaussianMixture.fit(x, 2, seed=0, regularization=1e-6)
    order = np.argsort(gmm.weights)
    np.testing.assert_allclose(gmm.weights[order], [0.25, 0.75], atol=0.01)
    np.testing.assert_allclose(gmm.means[order], [[-6] * 3, [6] * 3], atol=0.1)


def test_one_mixture_type_keeps_the_stricter_checks():
    """``GaussianMixture`` is both the sketching target measure and the white-box activation model."""
    from lowprob.sketching.measures import GaussianMixture as SketchMixture

    assert GaussianMixture is SketchMixture
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal((500, 2)) + 3, rng.standard_normal((500, 2)) - 3])
    gmm = GaussianMixture.fit(x, 2, seed=0, regularization=1e-6)
    assert gmm.n_components == 2 and gmm.d == 2 and np.isfinite(gmm.log_likelihood)
    assert gmm.quadrature().points.shape[1] == 2  # still a sketching Measure
    # danger of the half-space x_0 <= 0 under the fitted mixture: about half the mass
    ld = gmm.log_danger(np.array([[1.0, 0.0]]), np.array([0.0]))
    assert np.exp(ld[0]) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(InputValueError, match="symmetric"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(InputValueError, match="positive definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, -1.0]]])
    with pytest.raises(InputValueError, match="weights"):
        GaussianMixture([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    with pytest.raises(InputValueError, match="exceeds"):
        GaussianMixture.fit(x[:3], 4)
