"""TransformerLens adapter: logits equal HookedTransformer's forward.

Skipped unless the optional ``transformer_lens`` package is installed (``pip install transformer_lens``).
Without it we check that the adapter raises an ImportError naming the install command.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from lm_fixtures import local_torch_seed

pytestmark = pytest.mark.lm

HAS_TL = importlib.util.find_spec("transformer_lens") is not None


@pytest.mark.skipif(HAS_TL, reason="checks the error raised when transformer_lens is missing")
def test_missing_transformer_lens_gives_install_command():
    from lowprob.lm_bridge.adapters.transformer_lens import TransformerLensAdapter

    with pytest.raises(ImportError, match="pip install transformer_lens"):
        TransformerLensAdapter(torch.nn.Linear(2, 2))


@pytest.mark.skipif(not HAS_TL, reason='transformer_lens not installed (pip install "transformer_lens<4")')
@pytest.mark.parametrize("pos", ["standard", "rotary"])
def test_logits_equal_hooked_transformer(pos):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from lowprob.lm_bridge.adapters.transformer_lens import TransformerLensAdapter

    cfg = HookedTransformerConfig(
        n_layers=2, d_model=32, n_ctx=12, d_head=8, n_heads=4, d_vocab=40, act_fn="gelu",
        normalization_type="LN", positional_embedding_type=pos, init_weights=True, seed=0,
        rotary_dim=8 if pos == "rotary" else None,
    )
    with local_torch_seed(0):  # HookedTransformer seeds the global generator from cfg.seed
        model = HookedTransformer(cfg)
    ad = TransformerLensAdapter(model)
    x = torch.randint(0, 40, (5, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ad.logits(x), ad.native_logits(x), rtol=1e-5, atol=1e-5)
    assert ad.W_U.shape == (32, 40) and ad.vocab_size == 40
