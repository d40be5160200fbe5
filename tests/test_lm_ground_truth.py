"""Ground truth: exact enumeration on a tiny model, the tabulated kernel, resume, targets, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from lm_fixtures import save_tiny, tiny_gpt2, tiny_neox

from lowprob.cli import main
from lowprob.errors import InputValueError
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.distributions import CategoricalPosition, ConstantPosition, TokenSpec
from lowprob.lm_bridge.ground_truth import (
    GroundTruth,
    _GPT2Argmax,
    count_argmax,
    save_targets,
    select_targets,
)

pytestmark = pytest.mark.lm

V = 16


def _spec(last_constant: bool = False) -> TokenSpec:
    rng = np.random.default_rng(0)
    pos = []
    for _ in range(3):
        p = rng.dirichlet(np.ones(V - 1))
        pos.append(CategoricalPosition(np.arange(1, V), p))
    if last_constant:
        pos[-1] = ConstantPosition(5)
    return TokenSpec([ConstantPosition(0), *pos])


def exact_argmax_probs(adapter: HFAdapter, spec: TokenSpec) -> np.ndarray:
    """Enumerate every sequence in the support: p_t = sum_x P(x) [argmax logits(x) = t] (float64)."""
    supports = [p.tokens for p in spec.positions]
    xs = torch.tensor(list(itertools.product(*supports)))
    with torch.no_grad():
        am = adapter.native_logits(xs).argmax(-1)
    w = spec.log_prob(xs).exp().numpy()
    return np.bincount(am.numpy(), weights=w, minlength=adapter.vocab_size)


@pytest.mark.parametrize("n_layer", [1, 2, 3])
@pytest.mark.parametrize("last_constant", [False, True])
def test_tabulated_kernel_equals_native(n_layer, last_constant):
    ad = HFAdapter(tiny_gpt2(n_layer=n_layer, vocab=V, d=16))
    spec = _spec(last_constant)
    kernel = _GPT2Argmax(ad, spec, torch.device("cpu"))
    x = spec.sample(400, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(kernel.logits(x), ad.native_logits(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("make", "n_layer"), [(tiny_gpt2, 1), (tiny_gpt2, 2), (tiny_neox, 2)])
def test_counts_match_exact_enumeration(make, n_layer):
    """N = 2^15 seeded samples; every n_t within 5 binomial standard errors of N p_t (exact p_t)."""
    ad = HFAdapter(make(n_layer=n_layer, vocab=V, d=16))
    spec = _spec()
    p = exact_argmax_probs(ad, spec)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p > 0).sum() >= 3, "the tiny model should have several possible argmax tokens"
    N = 2**15
    gt = count_argmax(ad, spec, N, seed=11, batch_size=1000)
    assert gt.n_samples == N and gt.counts.sum() == N
    sd = np.sqrt(N * p * (1 - p))
    assert np.all(np.abs(gt.counts - N * p) <= 5 * sd + 1e-9), (gt.counts, N * p)
    assert np.all(gt.counts[p == 0] == 0)


def test_fast_and_plain_paths_count_identically():
    ad = HFAdapter(tiny_gpt2(n_layer=2, vocab=V, d=16))
    spec = _spec(last_constant=True)
    a = count_argmax(ad, spec, 5000, seed=1, batch_size=512, fast=True)
    b = count_argmax(ad, spec, 5000, seed=1, batch_size=512, fast=False)
    assert a.metadata["kernel"] == "gpt2-tabulated" and b.metadata["kernel"] == "adapter"
    np.testing.assert_array_equal(a.counts, b.counts)


def test_resume_equals_uninterrupted(tmp_path):
    ad = HFAdapter(tiny_gpt2(n_layer=1, vocab=V, d=16))
    ad.model_hash = "tiny"
    spec = _spec()
    state = tmp_path / "gt.json"
    first = count_argmax(ad, spec, 1024, seed=5, batch_size=256, state_path=state)
    assert first.n_samples == 1024 and state.is_file()
    resumed = count_argmax(ad, spec, 3000, seed=5, batch_size=256, state_path=state)
    fresh = count_argmax(ad, spec, 3000, seed=5, batch_size=256)
    np.testing.assert_array_equal(resumed.counts, fresh.counts)
    loaded = GroundTruth.load(state)
    np.testing.assert_array_equal(loaded.counts, fresh.counts)
    assert loaded.spec_hash == spec.spec_hash() and loaded.model_hash == "tiny" and loaded.dtype == "float32"
    # A partial last chunk cannot be extended; another seed is a different experiment.
    with pytest.raises(InputValueError, match="partial chunk"):
        count_argmax(ad, spec, 4000, seed=5, batch_size=256, state_path=state)
    with pytest.raises(InputValueError, match="holds counts for"):
        count_argmax(ad, spec, 4000, seed=6, batch_size=256, state_path=state)


def test_bad_inputs():
    ad = HFAdapter(tiny_gpt2(n_layer=1, vocab=V, d=16, n_ctx=8))
    with pytest.raises(InputValueError, match="outside the vocabulary"):
        count_argmax(ad, TokenSpec([ConstantPosition(0), ConstantPosition(V)]), 10)
    with pytest.raises(InputValueError, match="context"):
        count_argmax(ad, TokenSpec([ConstantPosition(0)] * 9), 10)
    with pytest.raises(InputValueError, match="n_samples"):
        count_argmax(ad, _spec(), 0)


def test_select_targets(tmp_path):
    counts = np.array([0, 5, 10, 20, 1000, 50, 10, 998_905], dtype=np.int64)
    gt = GroundTruth(counts, int(counts.sum()), 0, 256, "m", "s", metadata={"family": "toy"})
    sel = {"n_targets": 3, "p_min": 1e-6, "p_max": 1e-4, "min_count": 10, "seed": 0}
    t = select_targets(gt, **sel)
    assert t == select_targets(gt, **sel)  # seeded
    assert len(t) == 3 and set(t) <= {2, 3, 5, 6}  # 1000/1e6 = 1e-3 > p_max; 5 < min_count
    path = save_targets(tmp_path / "t.json", gt, t, **sel)
    obj = json.loads(path.read_text())
    assert [e["token"] for e in obj["targets"]] == t and obj["family"] == "toy"
    assert obj["resolvable_min_p"] == pytest.approx(10 / gt.n_samples)


def test_cli_ground_truth(tmp_path, capsys):
    save_tiny(tiny_gpt2(n_layer=1, vocab=V, d=16), tmp_path / "m")
    spec_path = _spec().save(tmp_path / "spec.json")
    out = tmp_path / "gt.json"
    argv = ["lm", "ground-truth", "--model", str(tmp_path / "m"),
            "--dist", str(spec_path), "--samples", "2**10", "--device", "cpu", "--seed", "3", "--out", str(out),
            "--targets", str(tmp_path / "targets.json"), "--p-min", "0", "--p-max", "1", "--min-count", "1"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_samples"] == 1024
    gt = GroundTruth.load(out)
    assert gt.counts.sum() == 1024 and gt.seed == 3 and gt.spec_hash == _spec().spec_hash()
    assert json.loads((tmp_path / "targets.json").read_text())["targets"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cli_cuda_without_gpu_is_clear_error(tmp_path, capsys):
    save_tiny(tiny_gpt2(n_layer=1, vocab=V, d=16), tmp_path / "m")
    spec_path = _spec().save(tmp_path / "spec.json")
    argv = ["lm", "ground-truth", "--model", str(tmp_path / "m"),
            "--dist", str(spec_path), "--samples", "10", "--device", "cuda", "--out", str(tmp_path / "o.json")]
    assert main(argv) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
