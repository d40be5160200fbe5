"""The training pipeline behind `lowprob lm train`, at toy size: tokenizer -> streams -> model dir.

The saved directory must load through the safe HF loader and match the native forward.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowprob.lm_bridge.adapters.loading import file_hash, load_hf
from lowprob.lm_bridge.corpus import EOT, strip_roff, token_counts
from lowprob.lm_bridge.training import (
    ModelRecipe,
    encode_corpus,
    train_model,
    train_tokenizer,
    write_model_card,
)

pytestmark = pytest.mark.lm


def test_strip_roff():
    src = '.TH LS 1\n.SH NAME\nls \\- list \\fBdirectory\\fR contents\n.\\" comment\n.PP\nSort \\(lqentries\\(rq.'
    assert strip_roff(src) == 'NAME\nls - list directory contents\nSort "entries".'


def test_tiny_training_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    words = ["def", "return", "self", "value", "the", "of", "data", "import", "class", "for", "in", "if"]
    docs = [" ".join(rng.choice(words, 60)) + ":\n    pass" for _ in range(60)]
    text = tmp_path / "code.txt"
    text.write_text("".join(d + "\n" + EOT + "\n" for d in docs))
    tok = train_tokenizer([text], vocab_size=300, out_path=tmp_path / "tokenizer.json")
    assert tok.token_to_id(EOT) == 0 and tok.get_vocab_size() <= 300
    V = tok.get_vocab_size()
    stream = encode_corpus(tok, text)
    counts = token_counts(tok, text, V)
    pieces = [d for d in text.read_text().split(EOT) if d.strip()]
    ref = sum(np.bincount(tok.encode(d).ids, minlength=V) for d in pieces)
    np.testing.assert_array_equal(counts, ref)  # documents as they stand between separators
    assert stream[0] != 0 and int((stream == 0).sum()) == len(docs)  # one EOT after each document
    recipe = ModelRecipe(name="toy", n_layer=1, d_model=16, n_head=2, n_ctx=16, steps=3, batch_size=4, warmup=1)
    record = train_model(recipe, {"code": stream}, V, tmp_path / "m", log=lambda s: None)
    assert record["tokens_seen"] == 3 * 4 * 15 and np.isfinite(record["heldout_loss"]["code"])
    write_model_card(tmp_path / "m", record, {"corpora": [], "stdlib": ""}, {"vocab_size": V, "sha256": "x"})
    ad = load_hf(tmp_path / "m")
    x = torch.randint(0, V, (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ad.logits(x), ad.native_logits(x), rtol=1e-5, atol=1e-5)
    assert "toy" in (tmp_path / "m" / "MODEL_CARD.md").read_text()
    # Same recipe and data, same weights (the shipped models are reproducible this way).
    train_model(recipe, {"code": stream}, V, tmp_path / "m2", log=lambda s: None)
    assert file_hash(tmp_path / "m" / "model.safetensors") == file_hash(tmp_path / "m2" / "model.safetensors")
