"""The 8 input-distribution families of Wu & Hilton 2024 (arXiv 2410.13211, section 4.1).

Every family is an independent-token :class:`~lowprob.lm_bridge.distributions.TokenSpec` built
from a tokenizer's vocabulary (the decoded string of each id), predicates on those strings and
corpus token counts ``c_v`` (occurrences of id ``v`` when a corpus is tokenized). A "weighted"
token set ``S`` has ``P(v) = c_v / sum_{u in S} c_u`` over ``v in S`` with ``c_v > 0``; "top k"
keeps the ``k`` largest counts (ties by id). All positions are independent; position 0 is BOS.

| family  | layout                                                        | token set |
|---------|---------------------------------------------------------------|-----------|
| hex     | BOS + 32                                                      | strings of ``0-9a-f`` only, weighted by their counts in tokenized random hex text |
| camel   | BOS + 32                                                      | ``[A-Z][a-z]+`` (no space), not None/True/False; code counts |
| colon   | BOS + 32 + ``":"``                                            | top 1024 code tokens |
| if      | BOS + ``" if"`` + 32                                          | top 1024 code tokens |
| caps    | BOS + He/She (1/2 each) + tokens of ``' screamed: "'`` + 16   | all-caps (and ``,.?!:;``) strings of length > 1; English counts, top 1024 |
| english | BOS + start word + 24                                         | start: alphabetic strings; then ``" word"`` tokens or one of ``, . ! ? ;``; English counts, top 2^14 |
| spanish | BOS + 24                                                      | alphabetic-or-space strings; Spanish counts, top 1024 |
| icl     | BOS + 9 x (letter of "ARCTHEORY", ``" for"``, word) + query letter + ``" for"`` | word: ``" "`` + alphabetic, >= 5 chars with the space, starting with the slot's letter (either case); English counts. Query: uniform over single-token ``" A"..." Z"`` |

Adaptations (recorded in ``spec.metadata["adaptations"]``): a constant string that is not one
token becomes the constant positions of its tokens; if "He"/"She" are not single tokens their
first tokens are used; an icl letter slot with no qualifying word relaxes the length to 4, then 3.
The Spanish counts come from whatever Spanish text the caller supplies (for the shipped
tokenizer: gettext translations + Spanish man pages, see :mod:`lowprob.lm_bridge.corpus`).
"""

from __future__ import annotations

import string as _string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.distributions import (
    CategoricalPosition,
    ConstantPosition,
    Position,
    TokenSpec,
)
from lowprob.registry import Registry

__all__ = [
    "DEV_FAMILIES",
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "TokenVocab",
    "build_all_families",
    "build_family",
    "hex_counts",
]

DEV_FAMILIES: tuple[str, ...] = ("hex", "camel", "colon", "if")
HELDOUT_FAMILIES: tuple[str, ...] = ("caps", "english", "spanish", "icl")
HEX_CHARS = "0123456789abcdef"
_PUNCT = ",.?!:;"
ICL_LETTERS = "ARCTHEORY"


@dataclass(frozen=True)
class TokenVocab:
    """A tokenizer seen as ``strings[id]`` (decoded text of each id), a BOS id and ``encode``."""

    strings: tuple[str, ...]
    bos: int
    encode: Callable[[str], list[int]]
    name: str = "tokenizer"

    @property
    def size(self) -> int:
        return len(self.strings)

    @classmethod
    def from_tokenizers(cls, tok: Any, *, bos_token: str = "<|endoftext|>", name: str = "tokenizer") -> TokenVocab:
        """From a HF ``tokenizers.Tokenizer`` (e.g. a ``tokenizer.json``)."""
        bos = tok.token_to_id(bos_token)
        if bos is None:
            raise InputValueError(f"bos_token {bos_token!r} is not in the tokenizer; pass the right BOS string.")
        V = tok.get_vocab_size()
        strings = tuple(tok.decode([i]) if i != bos else bos_token for i in range(V))
        return cls(strings=strings, bos=int(bos), encode=lambda s: list(tok.encode(s).ids), name=name)

    def ids_where(self, pred: Callable[[str], bool]) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.strings) if i != self.bos and pred(s)], dtype=np.int64)


# -- predicates (decoded token strings) ------------------------------------------------------
def is_hex(s: str) -> bool:
    return len(s) > 0 and all(c in HEX_CHARS for c in s)


def is_camel(s: str) -> bool:
    return len(s) > 1 and s[0].isupper() and s[1:].islower() and s.isalpha() and s not in ("None", "True", "False")


def is_caps(s: str) -> bool:
    return len(s) > 1 and all(c.isupper() or c in _PUNCT for c in s)


def is_start_word(s: str) -> bool:
    return len(s) > 0 and s.isalpha()


def is_middle_word_or_punct(s: str) -> bool:
    if s in (",", ".", "!", "?", ";"):
        return True
    return len(s) > 1 and s[0] == " " and all(c.isalpha() or c in _PUNCT for c in s[1:])


def is_spanish_alpha(s: str) -> bool:
    return len(s) > 0 and all(c.isalpha() or c.isspace() for c in s)


def _icl_word(letter: str, min_len: int) -> Callable[[str], bool]:
    return lambda s: len(s) >= min_len and s[0] == " " and s[1:].isalpha() and s[1].upper() == letter


# -- helpers ----------------------------------------------------------------------------------
def _weighted(ids: np.ndarray, counts: np.ndarray, *, top: int | None = None, what: str = "") -> CategoricalPosition:
    c = counts[ids].astype(np.float64)
    keep = c > 0
    ids, c = ids[keep], c[keep]
    if ids.size == 0:
        raise UnavailableError(f"no token of the {what} set occurs in the corpus counts; the family cannot be built.")
    if top is not None and ids.size > top:
        order = np.lexsort((ids, -c))[:top]
        ids, c = ids[order], c[order]
    order = np.argsort(ids)
    return CategoricalPosition(ids[order], c[order] / c.sum())


def _constant(vocab: TokenVocab, s: str, adaptations: list[str]) -> list[Position]:
    ids = vocab.encode(s)
    if len(ids) == 0:
        raise UnavailableError(f"the constant {s!r} encodes to no tokens.")
    if len(ids) > 1:
        adaptations.append(f"constant {s!r} is {len(ids)} tokens {ids!r}; used as {len(ids)} constant positions")
    return [ConstantPosition(int(i)) for i in ids]


def _counts(counts: Mapping[str, np.ndarray], key: str, V: int) -> np.ndarray:
    if key not in counts:
        raise InputValueError(f"counts must have a {key!r} entry (token counts of a {key} corpus), got {sorted(counts)!r}.")
    c = np.asarray(counts[key], dtype=np.int64)
    if c.shape != (V,):
        raise InputValueError(f"counts[{key!r}] must have shape ({V},), got {c.shape!r}.")
    return c


def hex_counts(vocab: TokenVocab, *, n_strings: int = 4096, n_chars: int = 64, seed: int = 0) -> np.ndarray:
    """Token counts of ``n_strings`` random hex strings (``n_chars`` uniform ``0-9a-f`` each), tokenized separately."""
    rng = np.random.default_rng(seed)
    chars = np.array(list(HEX_CHARS))
    out = np.zeros(vocab.size, dtype=np.int64)
    for _ in range(n_strings):
        s = "".join(chars[rng.integers(0, 16, n_chars)])
        out += np.bincount(np.asarray(vocab.encode(s), dtype=np.int64), minlength=vocab.size)
    return out


# -- the builders ---------------------------------------------------------------------------
FAMILIES: Registry = Registry("input family")


def _meta(name: str, vocab: TokenVocab, adaptations: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "family": name,
        "tokenizer": vocab.name,
        "split": "dev" if name in DEV_FAMILIES else "heldout",
        "adaptations": adaptations,
        **extra,
    }


@FAMILIES.register("hex")
def build_hex(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 32, seed: int = 0) -> TokenSpec:
    hc = counts["hex"] if "hex" in counts else hex_counts(vocab, seed=seed)
    pos = _weighted(vocab.ids_where(is_hex), np.asarray(hc), what="hex")
    return TokenSpec([ConstantPosition(vocab.bos)] + [pos] * n, _meta("hex", vocab, [], hex_seed=seed))


@FAMILIES.register("camel")
def build_camel(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 32) -> TokenSpec:
    pos = _weighted(vocab.ids_where(is_camel), _counts(counts, "code", vocab.size), what="camel")
    return TokenSpec([ConstantPosition(vocab.bos)] + [pos] * n, _meta("camel", vocab, []))


def _top_code(vocab: TokenVocab, counts: Mapping[str, np.ndarray], k: int) -> CategoricalPosition:
    return _weighted(vocab.ids_where(lambda s: True), _counts(counts, "code", vocab.size), top=k, what="code")


@FAMILIES.register("colon")
def build_colon(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 32, top: int = 1024) -> TokenSpec:
    ad: list[str] = []
    pos = _top_code(vocab, counts, top)
    return TokenSpec([ConstantPosition(vocab.bos)] + [pos] * n + _constant(vocab, ":", ad), _meta("colon", vocab, ad))


@FAMILIES.register("if")
def build_if(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 32, top: int = 1024) -> TokenSpec:
    ad: list[str] = []
    pos = _top_code(vocab, counts, top)
    return TokenSpec([ConstantPosition(vocab.bos)] + _constant(vocab, " if", ad) + [pos] * n, _meta("if", vocab, ad))


@FAMILIES.register("caps")
def build_caps(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 16, top: int = 1024) -> TokenSpec:
    ad: list[str] = []
    he, she = vocab.encode("He"), vocab.encode("She")
    if len(he) != 1 or len(she) != 1:
        ad.append(f"'He'/'She' encode to {he!r}/{she!r}; their first tokens are used")
    first = (
        ConstantPosition(he[0]) if he[0] == she[0] else CategoricalPosition(np.array(sorted({he[0], she[0]})), np.array([0.5, 0.5]))
    )
    mid = _constant(vocab, ' screamed: "', ad)
    pos = _weighted(vocab.ids_where(is_caps), _counts(counts, "english", vocab.size), top=top, what="caps")
    return TokenSpec([ConstantPosition(vocab.bos), first] + mid + [pos] * n, _meta("caps", vocab, ad))


@FAMILIES.register("english")
def build_english(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 24, top: int = 2**14) -> TokenSpec:
    c = _counts(counts, "english", vocab.size)
    start = _weighted(vocab.ids_where(is_start_word), c, top=top, what="start-word")
    mid = _weighted(vocab.ids_where(is_middle_word_or_punct), c, top=top, what="middle-word")
    return TokenSpec([ConstantPosition(vocab.bos), start] + [mid] * n, _meta("english", vocab, []))


@FAMILIES.register("spanish")
def build_spanish(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, n: int = 24, top: int = 1024) -> TokenSpec:
    pos = _weighted(vocab.ids_where(is_spanish_alpha), _counts(counts, "spanish", vocab.size), top=top, what="spanish")
    return TokenSpec([ConstantPosition(vocab.bos)] + [pos] * n, _meta("spanish", vocab, []))


@FAMILIES.register("icl")
def build_icl(vocab: TokenVocab, counts: Mapping[str, np.ndarray], *, letters: str = ICL_LETTERS) -> TokenSpec:
    ad: list[str] = []
    c = _counts(counts, "english", vocab.size)
    for_pos = _constant(vocab, " for", ad)
    positions: list[Position] = [ConstantPosition(vocab.bos)]
    for i, letter in enumerate(letters):
        positions += _constant(vocab, letter if i == 0 else " " + letter, ad)
        positions += for_pos
        for min_len in (5, 4, 3):
            ids = vocab.ids_where(_icl_word(letter, min_len))
            if ids.size and np.any(c[ids] > 0):
                break
            ad.append(f"slot {i} ({letter!r}): no word of >= {min_len} chars; relaxed")
        positions.append(_weighted(ids, c, what=f"icl-{letter}"))
    query = [i for L in _string.ascii_uppercase if len(i := vocab.encode(" " + L)) == 1]
    if len(query) < 26:
        ad.append(f"query letters: only {len(query)} of ' A'..' Z' are single tokens; uniform over those")
    qids = np.array(sorted({q[0] for q in query}), dtype=np.int64)
    positions.append(CategoricalPosition(qids, np.full(qids.size, 1.0 / qids.size)))
    positions += for_pos
    return TokenSpec(positions, _meta("icl", vocab, ad, letters=letters))


def build_family(name: str, vocab: TokenVocab, counts: Mapping[str, np.ndarray], **options: Any) -> TokenSpec:
    """Build family ``name`` (one of :data:`FAMILIES`) for ``vocab`` with corpus ``counts``.

    ``counts`` maps ``"code"``, ``"english"``, ``"spanish"`` (and optionally ``"hex"``) to
    ``int (V,)`` token-count arrays.
    """
    builder = FAMILIES.get(name)
    spec = builder(vocab, counts, **options)
    return spec.validate_vocab(vocab.size)


def build_all_families(
    vocab: TokenVocab, counts: Mapping[str, np.ndarray], names: Sequence[str] = DEV_FAMILIES + HELDOUT_FAMILIES
) -> dict[str, TokenSpec]:
    return {name: build_family(name, vocab, counts) for name in names}
