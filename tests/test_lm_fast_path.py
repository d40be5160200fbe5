"""The tabulated GPT-2 forward (:mod:`lowprob.lm_bridge.adapters.gpt2_tabulated`) behind every LM method.

Checks, on the shipped ``gelu-1l`` / ``gelu-2l`` and the family specs: the fast path's logits,
final activations and one-hot gradients equal the adapter's to float32 tolerance
(``rtol=1e-5, atol=1e-4`` on logits of magnitude ~10; gradients ``atol=1e-4``); every method
runs on it and says so in ``diagnostics["forward"]``; a non-GPT-2 model falls back with a note;
naive and ITGIS give the same estimate (same seed) on both paths. Timings are in
``benchmarks/lm_fast_path.py``, never asserted here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lm_fixtures import tiny_gpt2, tiny_neox

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.adapters.gpt2_tabulated import TabulatedGPT2, tabulation_unsupported_reason
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.budget import CallBudget, CountedModel, argmax_is
from lowprob.lm_bridge.distributions import CategoricalPosition, ConstantPosition, TokenSpec
from lowprob.lm_bridge.methods import make_lm_method
from lowprob.lm_bridge.problem import LMProblem

pytestmark = pytest.mark.lm

MODELS = ("gelu-1l", "gelu-2l")
# hex: small last support (score table); colon: constant last token; english: large last
# support (no score table); icl: mostly constant positions; caps: short, mixed.
FAMILIES = ("hex", "colon", "english", "icl", "caps")
METHODS = ("naive", "gld", "qld", "qld_official", "itgis", "mhis", "wb-gauss", "wb-mixture", "wb-adf", "wb-itgis")


@pytest.fixture(scope="module")
def shipped():
    from lowprob.lm_bridge.zoo import load_shipped, load_shipped_spec

    return {m: load_shipped(m) for m in MODELS}, {f: load_shipped_spec(f) for f in FAMILIES}


def _paths(adapter, spec):
    fast = CountedModel(adapter, CallBudget(10**6), spec=spec)
    slow = CountedModel(adapter, CallBudget(10**6), spec=spec, forward="adapter")
    assert fast.forward_path == "tabulated-gpt2" and slow.forward_path == "adapter"
    return fast, slow


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("family", FAMILIES)
def test_logits_and_final_activations_equal_adapter(shipped, model, family):
    adapters, specs = shipped
    ad, spec = adapters[model], specs[family]
    x = spec.sample(48, torch.Generator().manual_seed(11))
    fast, slow = _paths(ad, spec)
    torch.testing.assert_close(fast.final_activations(x), slow.final_activations(x), rtol=1e-5, atol=2e-5)
    lf, ls = fast.logits(x), slow.logits(x)
    torch.testing.assert_close(lf, ls, rtol=1e-5, atol=1e-4)
    assert (lf.argmax(-1) == ls.argmax(-1)).all()


def test_score_table_and_folded_paths_agree(shipped):
    """1 layer: the tabulated scores (small last support) and the computed ones give the same logits."""
    adapters, specs = shipped
    ad, spec = adapters["gelu-1l"], specs["hex"]
    with_table, without = TabulatedGPT2(ad, spec), TabulatedGPT2(ad, spec, max_score_table=0)
    assert with_table.scores is not None and without.scores is None
    x = spec.sample(64, torch.Generator().manual_seed(2))
    torch.testing.assert_close(with_table.logits(x), without.logits(x), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("family", ("hex", "colon", "icl"))
def test_onehot_gradients_equal_adapter(shipped, model, family):
    """d logit_t / d onehot (stored as G = d logit_t / d embedding) equals the adapter's autograd."""
    adapters, specs = shipped
    ad, spec = adapters[model], specs[family]
    x = spec.sample(24, torch.Generator().manual_seed(5))
    fast, slow = _paths(ad, spec)
    target = 17
    lf, gf = fast.logits_and_grad(x, target)
    ls, gs = slow.logits_and_grad(x, target)
    torch.testing.assert_close(lf, ls, rtol=1e-5, atol=1e-4)
    assert gf.g.shape == gs.g.shape == (24, spec.length, ad.d_model)
    torch.testing.assert_close(gf.g, gs.g, rtol=1e-4, atol=1e-4)
    pos = torch.arange(24) % spec.length
    torch.testing.assert_close(gf.rows(pos), gs.rows(pos), rtol=1e-4, atol=1e-3)
    # a general linear score u . x (what wb-itgis uses)
    u = torch.randn(ad.d_model, generator=torch.Generator().manual_seed(1))
    _, hf = fast.score_and_grad(x, u)
    _, hs = slow.score_and_grad(x, u)
    torch.testing.assert_close(hf.g, hs.g, rtol=1e-4, atol=1e-4)
    assert (fast.budget.forward, fast.budget.backward) == (slow.budget.forward, slow.budget.backward) == (48, 48)


def test_fast_gradient_is_the_onehot_derivative():
    """On a tiny GPT-2 the compact gradient expands to autograd through an explicit one-hot input."""
    ad = HFAdapter(tiny_gpt2(n_layer=1, vocab=16, d=16))
    spec = TokenSpec([CategoricalPosition(np.arange(16), np.full(16, 1 / 16)) for _ in range(4)])
    x = spec.sample(6, torch.Generator().manual_seed(0))
    _, g = CountedModel(ad, CallBudget(6), spec=spec).logits_and_grad(x, 3)
    onehot = torch.nn.functional.one_hot(x, 16).float().requires_grad_(True)
    logits = ad.logits_from_final(ad.final_activation_from_embeddings(ad.embed_onehot(onehot)))
    (ref,) = torch.autograd.grad(logits[:, 3].sum(), onehot)
    for pos in range(4):
        torch.testing.assert_close(g.rows(torch.full((6,), pos)), ref[:, pos], rtol=1e-5, atol=1e-5)


# -- methods ------------------------------------------------------------------------------------
def _tiny_problem(n_layer: int = 1, target: int = 5) -> LMProblem:
    rng = np.random.default_rng(0)
    spec = TokenSpec(
        [ConstantPosition(1)] + [CategoricalPosition(np.arange(16), rng.dirichlet(np.full(16, 0.7))) for _ in range(3)]
    )
    return LMProblem(HFAdapter(tiny_gpt2(n_layer=n_layer, vocab=16, d=16)), spec, target)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_runs_on_the_fast_path_and_says_so(name):
    import lowprob.lm_bridge.whitebox.methods  # noqa: F401  (registers wb-*)

    problem = _tiny_problem()
    est = make_lm_method(name).estimate(problem, 1024, seed=0)
    assert est.diagnostics["forward"] == "tabulated-gpt2"
    assert est.diagnostics["forward_table_rows"] == 1 + 3 * 16
    assert "forward_note" not in est.diagnostics
    assert 0 < est.cost.model_calls <= 1024 and est.log_value <= 0


class _PlainAdapter(ModelAdapter):
    """A non-HF adapter (delegates to an HF GPT-2's pieces): must fall back, with a note."""

    def __init__(self, inner: HFAdapter) -> None:
        self.inner = inner

    vocab_size = property(lambda self: self.inner.vocab_size)
    d_model = property(lambda self: self.inner.d_model)
    W_U = property(lambda self: self.inner.W_U)
    b_U = property(lambda self: self.inner.b_U)
    W_E = property(lambda self: self.inner.W_E)
    blocks = property(lambda self: self.inner.blocks)

    def positional(self, T: int) -> torch.Tensor:
        return self.inner.positional(T)

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return self.inner.final_norm(resid)


@pytest.mark.parametrize("kind", ("neox", "plain"))
def test_non_gpt2_falls_back_with_a_note(kind):
    gpt2 = _tiny_problem()
    ad = HFAdapter(tiny_neox(n_layer=2, vocab=16, d=16)) if kind == "neox" else _PlainAdapter(gpt2.adapter)
    problem = LMProblem(ad, gpt2.spec, 5)
    expected = "gpt_neox" if kind == "neox" else "not an HFAdapter"
    assert expected in tabulation_unsupported_reason(ad)
    for name in ("naive", "itgis"):
        est = make_lm_method(name).estimate(problem, 1024, seed=0)
        assert est.diagnostics["forward"] == "adapter"
        assert expected in est.diagnostics["forward_note"]
    with pytest.raises(UnavailableError, match=expected):
        make_lm_method("naive").estimate(problem, 1024, seed=0, forward="tabulated")
    with pytest.raises(UnavailableError, match="GPT-2"):
        TabulatedGPT2(ad, gpt2.spec)


def test_bad_forward_and_off_support_tokens_are_refused():
    problem = _tiny_problem()
    with pytest.raises(InputValueError, match="forward must be one of"):
        make_lm_method("naive").estimate(problem, 1024, seed=0, forward="fast")
    kernel = TabulatedGPT2(problem.adapter, problem.spec)
    bad = torch.tensor([[2, 0, 0, 0]])  # position 0 is the constant token 1
    with pytest.raises(InputValueError, match="token 2 at position 0 is not in the spec's support"):
        kernel.logits(bad)
    with pytest.raises(InputValueError, match="shape"):
        kernel.logits(torch.zeros(2, 3, dtype=torch.long))
    no_spec = CountedModel(problem.adapter, CallBudget(10))
    assert no_spec.forward_path == "adapter" and "no input spec" in no_spec.forward_diagnostics()["forward_note"]


@pytest.mark.parametrize("n_layer", [1, 2])
def test_same_estimates_on_both_paths_tiny(n_layer):
    problem = _tiny_problem(n_layer=n_layer, target=9)
    for name, budget in (("naive", 4096), ("itgis", 2048), ("mhis", 1024)):
        method = make_lm_method(name)
        a = method.estimate(problem, budget, seed=3)
        b = method.estimate(problem, budget, seed=3, forward="adapter")
        assert (a.diagnostics["forward"], b.diagnostics["forward"]) == ("tabulated-gpt2", "adapter")
        assert a.cost.model_calls == b.cost.model_calls and a.cost.backward_calls == b.cost.backward_calls
        assert a.log_value == pytest.approx(b.log_value, rel=1e-5, abs=1e-9)


def test_same_estimates_on_both_paths_gelu_1l(shipped):
    """Same seed, same estimate: naive exactly (same hits), ITGIS to float tolerance."""
    adapters, specs = shipped
    ad, spec = adapters["gelu-1l"], specs["hex"]
    kernel = TabulatedGPT2(ad, spec)
    am = kernel.logits(spec.sample(2048, torch.Generator().manual_seed(0))).argmax(-1)
    counts = torch.bincount(am, minlength=ad.vocab_size)
    target = int(torch.argsort(counts, descending=True)[3])  # a common but not dominant argmax
    problem = LMProblem(ad, spec, target)
    a = make_lm_method("naive").estimate(problem, 1024, seed=1)
    b = make_lm_method("naive").estimate(problem, 1024, seed=1, forward="adapter")
    assert a.diagnostics["hits"] == b.diagnostics["hits"] > 0 and a.log_value == b.log_value
    a = make_lm_method("itgis").estimate(problem, 512, seed=1)
    b = make_lm_method("itgis").estimate(problem, 512, seed=1, forward="adapter")
    assert math.isfinite(a.log_value)
    assert a.log_value == pytest.approx(b.log_value, rel=1e-4)


def test_argmax_is_matches_argmax_with_ties_and_nan():
    g = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (400, 7), generator=g).float()  # many ties
    logits[5, 2] = float("nan")
    logits[6, :] = float("nan")
    for t in range(7):
        assert torch.equal(argmax_is(logits, t), logits.argmax(-1) == t)


def test_ground_truth_keeps_the_old_name():
    from lowprob.lm_bridge.ground_truth import _GPT2Argmax

    assert _GPT2Argmax is TabulatedGPT2
