"""HF adapter: logits equal the native forward pass; safe offline loading; device errors."""

from __future__ import annotations

import pytest
import torch
from lm_fixtures import save_tiny, tiny_gpt2, tiny_neox

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device

pytestmark = pytest.mark.lm


@pytest.mark.parametrize("make", [tiny_gpt2, tiny_neox], ids=["gpt2", "neox"])
@pytest.mark.parametrize("n_layer", [1, 2])
def test_logits_equal_native_forward(make, n_layer):
    model = make(n_layer=n_layer, vocab=40, d=32, n_ctx=12)
    ad = HFAdapter(model)
    x = torch.randint(0, 40, (6, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        native = model(input_ids=x).logits[:, -1, :]
        ours = ad.logits(x)
        via_onehot = ad.logits_from_final(
            ad.final_activation_from_embeddings(ad.embed_onehot(torch.nn.functional.one_hot(x, 40)))
        )
    torch.testing.assert_close(ours, native, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(via_onehot, native, rtol=1e-5, atol=1e-5)
    assert ad.vocab_size == 40 and ad.d_model == 32 and ad.n_layers == n_layer
    assert ad.W_U.shape == (32, 40) and ad.b_U.shape == (40,)


def test_onehot_gradient_matches_finite_difference():
    model = tiny_gpt2(n_layer=2, vocab=16, d=16)
    ad = HFAdapter(model)
    x = torch.tensor([[1, 5, 3, 7]])
    onehot = torch.nn.functional.one_hot(x, 16).double().requires_grad_(True)
    ad.model.double()
    logit = ad.logits_from_final(ad.final_activation_from_embeddings(ad.embed_onehot(onehot)))[0, 2]
    (grad,) = torch.autograd.grad(logit, onehot)
    eps = 1e-6
    bump = torch.zeros_like(onehot)
    bump[0, 2, 9] = eps
    with torch.no_grad():
        f = lambda o: ad.logits_from_final(ad.final_activation_from_embeddings(ad.embed_onehot(o)))[0, 2]  # noqa: E731
        fd = (f(onehot + bump) - f(onehot - bump)) / (2 * eps)
    assert grad[0, 2, 9].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("make", [tiny_gpt2, tiny_neox], ids=["gpt2", "neox"])
def test_load_hf_directory(tmp_path, make):
    model = make(n_layer=1, vocab=20, d=16)
    save_tiny(model, tmp_path)
    ad = load_hf(tmp_path, device="cpu")
    x = torch.randint(0, 20, (4, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ad.logits(x), model(input_ids=x).logits[:, -1], rtol=1e-5, atol=1e-5)
    assert isinstance(ad.model_hash, str) and len(ad.model_hash) == 16


def test_load_errors(tmp_path):
    with pytest.raises(InputValueError, match="does not exist"):
        load_hf(tmp_path / "missing")
    with pytest.raises(InputValueError, match="config.json"):
        load_hf(tmp_path)
    save_tiny(tiny_gpt2(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "model.pt").write_bytes(b"\x80\x04not a real pickle")
    with pytest.raises(InputValueError, match="safetensors"):
        load_hf(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    with pytest.raises(InputValueError, match="not a safetensors file"):
        load_hf(tmp_path)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UnavailableError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(InputValueError):
        resolve_device("banana")


def test_unsupported_model_type():
    class Fake(torch.nn.Module):
        class config:  # noqa: N801
            model_type = "llama"

    with pytest.raises(UnavailableError, match="model_type"):
        HFAdapter(Fake())


@pytest.mark.parametrize("name", ["gelu-1l", "gelu-2l"])
def test_shipped_models_load_and_match_native(name):
    from lowprob.lm_bridge.zoo import load_shipped, load_shipped_spec, shipped_model_dir

    ad = load_shipped(name)
    assert ad.vocab_size == 4096 and ad.n_layers == int(name[5]) and ad.tokenizer is not None
    assert (shipped_model_dir(name) / "MODEL_CARD.md").is_file()
    spec = load_shipped_spec("colon")
    x = spec.sample(8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ad.logits(x), ad.native_logits(x), rtol=1e-5, atol=1e-4)
    assert ad.decode(int(spec.positions[-1].token)) == ":"


def test_shipped_name_errors():
    from lowprob.lm_bridge.zoo import shipped_model_dir

    with pytest.raises(InputValueError, match="gelu-1l"):
        shipped_model_dir("gpt2")
