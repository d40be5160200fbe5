"""The models shipped with lowprob: small GELU GPT-2-format transformers trained here.

``lowprob/data/models/<name>/`` holds ``config.json``, ``model.safetensors``,
``tokenizer.json`` and ``MODEL_CARD.md`` (data, steps, loss, how made); ``lowprob lm train``
reproduces them (:mod:`lowprob.lm_bridge.training`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.hf import HFAdapter
from lowprob.lm_bridge.adapters.loading import load_hf

__all__ = [
    "DATA_DIR",
    "SHIPPED_MODELS",
    "load_shipped",
    "shipped_ground_truth_dir",
    "shipped_model_dir",
    "shipped_specs_dir",
    "shipped_tokenizer_path",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHIPPED_MODELS: tuple[str, ...] = ("gelu-1l", "gelu-2l")


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


def shipped_specs_dir(tokenizer: str = "lowprob-bpe4k") -> Path:
    """Directory of the 8 family specs built for the shipped tokenizer (``<family>.json``)."""
    return DATA_DIR / "specs" / tokenizer


def shipped_ground_truth_dir(name: str) -> Path:
    """Directory of the shipped ground-truth counts and target lists for model ``name``."""
    if name not in SHIPPED_MODELS:
        raise InputValueError(f"name must be one of {SHIPPED_MODELS!r}, got {name!r}.")
    return DATA_DIR / "ground_truth" / name


def load_shipped(name: str, device: torch.device | str = "cpu") -> HFAdapter:
    """Load a shipped model as an :class:`HFAdapter` (fp32) on ``device``."""
    return load_hf(shipped_model_dir(name), device=device)
