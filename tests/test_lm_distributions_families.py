"""The 8 input families: predicates, layouts, weights and the shipped specs (goldens)."""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.errors import InputValueError
from lowprob.lm_bridge.distributions import CategoricalPosition, ConstantPosition, TokenSpec
from lowprob.lm_bridge.families import (
    DEV_FAMILIES,
    FAMILIES,
    HELDOUT_FAMILIES,
    TokenVocab,
    build_all_families,
    build_family,
)

STRINGS = [
    "<|endoftext|>", "a", "b", "f", "0", "12", "ab", "c0", "g", "Foo", "Bar", "None", "True", "FooBar",
    " if", ":", "He", "She", " sc", "ream", "ed", ' "', "!!", "OK", "HELLO", "A", " R", " C", " T", " H",
    " E", " O", " Y", " for", " Apple", " Rabbit", " Cat", " Tiger", " House", " Eagle", " Orange",
    " Yellow", " Robot", " the", " cat", ",", ".", "?", " de", " la", "el", "  ", "x", "y", "H", "e", "S",
    "h", " ", "s", "c", "r", "m", "d", '"', "o", "t", "l", "n", "u", "w", "i",
    *[L for L in "BCDEFGIJKLMNOPQRTUVWXYZ"],
]


def _encode(s: str) -> list[int]:
    """Greedy longest match over STRINGS (a stand-in tokenizer)."""
    ids, i = [], 0
    table = {t: k for k, t in enumerate(STRINGS) if k}
    while i < len(s):
        for j in range(len(s), i, -1):
            if s[i:j] in table:
                ids.append(table[s[i:j]])
                i = j
                break
        else:
            raise ValueError(f"cannot encode {s[i]!r}")
    return ids


@pytest.fixture
def toy():
    vocab = TokenVocab(tuple(STRINGS), bos=0, encode=_encode, name="toy")
    rng = np.random.default_rng(0)
    counts = {k: rng.integers(1, 100, len(STRINGS)) for k in ("code", "english", "spanish")}
    counts["hex"] = np.array([1 if all(c in "0123456789abcdef" for c in s) else 0 for s in STRINGS]) * 7
    return vocab, counts


def _support(pos) -> set[str]:
    return {STRINGS[i] for i in pos.tokens}


def test_registry_has_the_eight_families():
    assert set(FAMILIES.keys()) == set(DEV_FAMILIES) | set(HELDOUT_FAMILIES)
    assert len(DEV_FAMILIES) == 4 and len(HELDOUT_FAMILIES) == 4


def test_layouts_and_predicates(toy):
    vocab, counts = toy
    specs = build_all_families(vocab, counts)
    for name, spec in specs.items():
        assert spec.positions[0] == ConstantPosition(0), name
        assert spec.metadata["family"] == name
        spec.validate_vocab(len(STRINGS))
        TokenSpec.from_json(spec.to_json())  # round trip validates
    hexs = specs["hex"]
    assert hexs.length == 33 and _support(hexs.positions[1]) == {
        "a", "b", "f", "0", "12", "ab", "c0", "e", "c", "d", "ed"}
    assert _support(specs["camel"].positions[5]) == {"Foo", "Bar", "He", "She"}  # not None/True/FooBar
    assert specs["colon"].length == 34 and specs["colon"].positions[-1] == ConstantPosition(STRINGS.index(":"))
    assert specs["if"].positions[1] == ConstantPosition(STRINGS.index(" if"))
    caps = specs["caps"]
    assert _support(caps.positions[1]) == {"He", "She"}
    assert [STRINGS[p.token] for p in caps.positions[2:7]] == [" sc", "ream", "ed", ":", ' "']
    assert any("screamed" in a for a in caps.metadata["adaptations"])
    assert _support(caps.positions[-1]) == {"!!", "OK", "HELLO"} and caps.length == 7 + 16
    eng = specs["english"]
    assert "the" not in _support(eng.positions[1]) and {"a", "x", "el"} <= _support(eng.positions[1])
    assert _support(eng.positions[2]) >= {" the", " cat", ",", "."} and "?" in _support(eng.positions[2])
    assert " if" in _support(eng.positions[2]) and ":" not in _support(eng.positions[2])
    assert {" de", " la", "  ", " "} <= _support(specs["spanish"].positions[1])
    icl = specs["icl"]
    assert icl.length == 1 + 9 * 3 + 2
    for slot, letter in enumerate("ARCTHEORY"):
        words = _support(icl.positions[3 + 3 * slot])
        assert all(w[1].upper() == letter and len(w) >= 3 for w in words), (letter, words)
    assert STRINGS[icl.positions[1].token] == "A" and STRINGS[icl.positions[4].token] == " R"
    assert _support(icl.positions[-2]) == {" R", " C", " T", " H", " E", " O", " Y"}
    assert np.allclose(icl.positions[-2].normalized, 1 / 7)


def test_weights_follow_counts_and_top_k(toy):
    vocab, counts = toy
    spec = build_family("colon", vocab, counts, top=5)
    pos = spec.positions[1]
    assert isinstance(pos, CategoricalPosition) and pos.tokens.size == 5
    c = counts["code"][pos.tokens].astype(float)
    np.testing.assert_allclose(pos.normalized, c / c.sum())
    assert c.min() >= np.sort(counts["code"][1:])[-5]  # the 5 most frequent (BOS excluded)


def test_zero_count_tokens_are_dropped_and_missing_counts_error(toy):
    vocab, counts = toy
    counts = dict(counts)
    counts["code"] = counts["code"].copy()
    counts["code"][STRINGS.index("Foo")] = 0
    assert _support(build_family("camel", vocab, counts).positions[1]) == {"Bar", "He", "She"}
    with pytest.raises(InputValueError, match="english"):
        build_family("caps", vocab, {"code": counts["code"]})
    with pytest.raises(InputValueError, match="unknown input family"):
        build_family("klingon", vocab, counts)


@pytest.mark.slow
@pytest.mark.lm
def test_shipped_specs_are_reproducible():
    """Golden: rebuilding from the shipped tokenizer and counts gives the saved specs exactly."""
    from lowprob.lm_bridge.zoo import load_shipped_spec, shipped_corpus_counts, shipped_vocab

    vocab = shipped_vocab()
    counts = shipped_corpus_counts()
    for name in DEV_FAMILIES + HELDOUT_FAMILIES:
        saved = load_shipped_spec(name)
        assert build_family(name, vocab, counts).spec_hash() == saved.spec_hash(), name
