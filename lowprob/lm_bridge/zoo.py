"""The models shipped with lowprob: small GELU GPT-2-format transformers trained here.

``lowprob/data/models/<name>/`` holds ``config.json``, ``model.safetensors``,
``tokenizer.json`` and ``MODEL_CARD.md`` (data, steps, loss, how made); ``lowprob lm train``
reproduces them (:mod:`lowprob.lm_bridge.training`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.adapters.loading import load_hf
from lowprob.lm_bridge.distributions import TokenSpec
from lowprob.lm_bridge.families import TokenVocab, build_all_families

__all__ = [
    "DATA_DIR",
    "SHIPPED_MODELS",
    "SHIPPED_MODEL_HASHES",
    "SHIPPED_TOKENIZER",
    "build_shipped_specs",
    "load_shipped",
    "load_shipped_spec",
    "shipped_corpus_counts",
    "shipped_vocab",
    "shipped_ground_truth_dir",
    "shipped_model_dir",
    "shipped_specs_dir",
    "shipped_tokenizer_path",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHIPPED_MODELS: tuple[str, ...] = ("gelu-1l", "gelu-2l")
SHIPPED_TOKENIZER = "lowprob-bpe4k"
#: ``file_hash`` (sha256[:16]) of each shipped ``model.safetensors``, checked at every load so that
#: a modified package (e.g. an old ``lowprob lm train`` that wrote into it) is never used silently.
#: The shipped ground truth records the same hashes (``ground_truth/<name>/summary.json``).
SHIPPED_MODEL_HASHES: dict[str, str] = {"gelu-1l": "f71fed8b6be02e2e", "gelu-2l": "0ac611eb05dcfd64"}


def shipped_model_dir(name: str) -> Path:
    """Directory of a shipped model (``"gelu-1l"`` or ``"gelu-2l"``)."""
    if name not in SHIPPED_MODELS:
        raise InputValueError(f"name must be one of {SHIPPED_MODELS!r}, got {name!r}.")
    d = DATA_DIR / "models" / name
    if not (d / "model.safetensors").is_file():
        raise UnavailableError(
            f"shipped model {name!r} is not present at {str(d)!r}; run `lowprob lm train --name {name}`."
        )
    return d


def shipped_tokenizer_path() -> Path:
    """The shared byte-level BPE ``tokenizer.json`` of the shipped models."""
    return DATA_DIR / "tokenizer.json"


def shipped_specs_dir(tokenizer: str = SHIPPED_TOKENIZER) -> Path:
    """Directory of the 8 family specs built for the shipped tokenizer (``<family>.json``)."""
    return DATA_DIR / "specs" / tokenizer


def shipped_ground_truth_dir(name: str) -> Path:
    """Directory of the shipped ground-truth counts and target lists for model ``name``."""
    if name not in SHIPPED_MODELS:
        raise InputValueError(f"name must be one of {SHIPPED_MODELS!r}, got {name!r}.")
    return DATA_DIR / "ground_truth" / name


def shipped_vocab() -> TokenVocab:
    """The shipped tokenizer as a :class:`~lowprob.lm_bridge.families.TokenVocab`."""
    from tokenizers import Tokenizer

    return TokenVocab.from_tokenizers(Tokenizer.from_file(str(shipped_tokenizer_path())), name=SHIPPED_TOKENIZER)


def shipped_corpus_counts() -> dict[str, np.ndarray]:
    """Token counts of the local code / English / Spanish corpora under the shipped tokenizer."""
    return dict(np.load(DATA_DIR / "corpus_counts.npz"))


def build_shipped_specs(out_dir: Path | None = None) -> dict[str, TokenSpec]:
    """Build the 8 family specs for the shipped tokenizer and save them as ``<family>.json``."""
    out = Path(out_dir) if out_dir is not None else shipped_specs_dir()
    specs = build_all_families(shipped_vocab(), shipped_corpus_counts())
    for name, spec in specs.items():
        spec.save(out / f"{name}.json")
    return specs


def load_shipped_spec(family: str) -> TokenSpec:
    """A saved family spec for the shipped tokenizer (validated against its vocabulary)."""
    path = shipped_specs_dir() / f"{family}.json"
    if not path.is_file():
        raise InputValueError(f"no shipped spec for family {family!r} at {str(path)!r}.")
    return TokenSpec.load(path, vocab_size=4096)


def load_shipped(name: str, device: torch.device | str = "cpu") -> HFAdapter:
    """Load a shipped model as an :class:`HFAdapter` (fp32) on ``device``, verifying its recorded hash."""
    return load_hf(shipped_model_dir(name), device=device, expected_hash=SHIPPED_MODEL_HASHES[name])
