"""RandomMLP: construction, WhestBench's weight law, bad input."""

import numpy as np
import pytest
from scipy import integrate, special

from lowprob.errors import InputTypeError, InputValueError, LowprobError
from lowprob.toy_models.random_mlp import RandomMLP, critical_weight_variance


def test_shapes_and_forward():
    mlp = RandomMLP.sample(8, 3, "gelu", init="critical", seed=0)
    assert (mlp.width, mlp.depth, mlp.activation) == (8, 3, "gelu")
    x = mlp.sample_inputs(5, seed=1)
    outs = mlp.forward(x)
    pres = mlp.forward(x, return_pre=True)
    assert len(outs) == 3 and outs[-1].shape == (5, 8)
    np.testing.assert_allclose(outs[-1], mlp.phi(pres[-1]))
    np.testing.assert_allclose(pres[0], x @ mlp.weights[0])


def test_seeded_reproducible_and_he_scale():
    a = RandomMLP.sample(64, 2, seed=3)
    b = RandomMLP.sample(64, 2, seed=3)
    np.testing.assert_array_equal(a.weights[1], b.weights[1])
    # He: entry variance 2/n; 8192 entries -> relative SE of the variance ~ 1.6%; allow 5 SE
    w = np.concatenate([x.ravel() for x in a.weights])
    assert abs(w.var() * 64 / 2 - 1) < 5 * np.sqrt(2 / w.size)


@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_critical_variance_preserves_unit_length(act):
    phi = RandomMLP.sample(1, 1, act, seed=0).phi
    second = integrate.quad(lambda z: phi(np.array(z)) ** 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi), -12, 12)[0]
    assert critical_weight_variance(act) * second == pytest.approx(1.0, rel=1e-8)
    assert critical_weight_variance("relu") == 2.0


def test_gelu_is_exact_erf_form():
    phi = RandomMLP.sample(1, 1, "gelu", seed=0).phi
    z = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(phi(z), z * special.ndtr(z))


def test_matches_whestbench_sample_mlp_bitwise():
    pytest.importorskip("whestbench")
    import flopscope.numpy as fnp
    from whestbench.generation import sample_mlp

    ref = sample_mlp(16, 3, fnp.random.default_rng(7))
    ours = RandomMLP.whestbench(16, 3, seed=7)
    for w_ref, w in zip(ref.weights, ours.weights, strict=True):
        assert w.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(w_ref), w)
    back = RandomMLP.from_whestbench(ours.to_whestbench())
    np.testing.assert_array_equal(back.weights[2], ours.weights[2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0, depth=2), "width"),
        (dict(width=4, depth=0), "depth"),
        (dict(width=4, depth=2, activation="swish"), "activation"),
        (dict(width=4, depth=2, init="xavier"), "init"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InputValueError, match=match):
        RandomMLP.sample(**kwargs)


def test_bad_types_and_weights():
    with pytest.raises(InputTypeError):
        RandomMLP.sample(4, 2, activation=3)
    with pytest.raises(LowprobError):
        RandomMLP.sample(4.5, 2)
    with pytest.raises(InputValueError, match="shape"):
        RandomMLP((np.ones((3, 3)), np.ones((3, 4))))
    with pytest.raises(InputValueError, match="NaN"):
        RandomMLP((np.full((2, 2), np.nan),))
    with pytest.raises(InputValueError, match="depth >= 1"):
        RandomMLP(())
    with pytest.raises(InputValueError):
        RandomMLP.sample(4, 2).forward(np.ones((3, 5)))
