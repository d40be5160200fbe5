"""TokenSpec: validation, JSON round trip, sampling frequencies, log_prob, dense form."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lowprob.errors import InputTypeError, InputValueError, LowprobError
from lowprob.lm_bridge.distributions import CategoricalPosition, ConstantPosition, TokenSpec


def _spec() -> TokenSpec:
    return TokenSpec(
        [
            ConstantPosition(0),
            CategoricalPosition(np.array([3, 5, 7]), np.array([0.2, 0.3, 0.5])),
            CategoricalPosition(np.array([1, 2]), np.array([0.9, 0.1])),
            ConstantPosition(4),
        ]
    )


def test_json_round_trip_and_hash(tmp_path):
    spec = _spec()
    spec.metadata["family"] = "toy"
    path = spec.save(tmp_path / "s.json")
    obj = json.loads(path.read_text())
    assert obj["positions"][0] == {"token": 0}
    assert obj["positions"][1] == {"tokens": [3, 5, 7], "probs": [0.2, 0.3, 0.5]}
    back = TokenSpec.load(path, vocab_size=8)
    assert back == spec and back.spec_hash() == spec.spec_hash()
    assert back.metadata == {"family": "toy"}
    assert back.length == 4 and back.random_positions == [1, 2]
    other = TokenSpec([ConstantPosition(0), ConstantPosition(1)])
    assert other.spec_hash() != spec.spec_hash()


@pytest.mark.parametrize(
    ("obj", "err", "match"),
    [
        ({"positions": [{"tokens": [1, 2], "probs": [0.5, 0.6]}]}, InputValueError, "sum to 1"),
        ({"positions": [{"tokens": [1, 2], "probs": [1.5, -0.5]}]}, InputValueError, "negative"),
        ({"positions": [{"tokens": [1, 1], "probs": [0.5, 0.5]}]}, InputValueError, "distinct"),
        ({"positions": [{"tokens": [1.5, 2], "probs": [0.5, 0.5]}]}, InputTypeError, "integer"),
        ({"positions": [{"tokens": [1, 2], "probs": [1.0]}]}, InputValueError, "length"),
        ({"positions": [{"token": -1}]}, InputValueError, "non-negative"),
        ({"positions": [{"token": "a"}]}, InputTypeError, "integer"),
        ({"positions": [{"tokens": [1, 2], "probs": [float("nan"), 1.0]}]}, InputValueError, "NaN"),
        ({"positions": []}, InputValueError, "non-empty"),
        ({"positions": [{"foo": 1}]}, InputValueError, "must be"),
        ({"pos": []}, InputValueError, "positions"),
        ({"positions": [], "extra": 1}, InputValueError, "unknown"),
    ],
)
def test_bad_specs_raise(obj, err, match):
    with pytest.raises(err, match=match):
        TokenSpec.from_json(obj)


def test_tolerance_1e6_accepted_and_normalised():
    pos = CategoricalPosition(np.array([1, 2]), np.array([0.5, 0.5 + 5e-7]))
    assert pos.normalized.sum() == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(LowprobError):
        CategoricalPosition(np.array([1, 2]), np.array([0.5, 0.5 + 5e-6]))


def test_validate_vocab():
    spec = _spec()
    spec.validate_vocab(8)
    with pytest.raises(InputValueError, match="outside the vocabulary"):
        spec.validate_vocab(6)


def test_load_missing_and_bad_json(tmp_path):
    with pytest.raises(InputValueError, match="does not exist"):
        TokenSpec.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputValueError, match="not valid JSON"):
        TokenSpec.load(tmp_path / "bad.json")


def test_sampling_frequencies_match_probs():
    """n = 200000 seeded draws; each frequency within 5 standard errors of its probability."""
    spec = _spec()
    n = 200_000
    g = torch.Generator().manual_seed(1234)
    x = spec.sample(n, generator=g)
    assert x.shape == (n, 4) and x.dtype == torch.long
    assert torch.all(x[:, 0] == 0) and torch.all(x[:, 3] == 4)
    for i in (1, 2):
        pos = spec.positions[i]
        for tok, p in zip(pos.tokens, pos.normalized, strict=True):
            freq = (x[:, i] == int(tok)).double().mean().item()
            se = np.sqrt(p * (1 - p) / n)
            assert abs(freq - p) < 5 * se, (i, tok, freq, p)
    # Same seed, same draws.
    y = spec.sample(n, generator=torch.Generator().manual_seed(1234))
    assert torch.equal(x, y)


def test_log_prob_and_probs_matrix_agree():
    spec = _spec()
    P = spec.probs_matrix(8)
    assert P.shape == (4, 8) and P.dtype == torch.float64
    assert torch.allclose(P.sum(1), torch.ones(4, dtype=torch.float64))
    x = spec.sample(50, generator=torch.Generator().manual_seed(0))
    lp = spec.log_prob(x)
    ref = torch.log(P[torch.arange(4), x]).sum(1)
    assert torch.allclose(lp, ref)
    off = torch.tensor([[0, 4, 1, 4]])
    assert spec.log_prob(off).item() == -np.inf
    # Exact total mass by enumeration: 3 x 2 sequences.
    all_x = torch.tensor([[0, a, b, 4] for a in (3, 5, 7) for b in (1, 2)])
    assert spec.log_prob(all_x).exp().sum().item() == pytest.approx(1.0, abs=1e-14)
    assert spec.support_size() == 6
