"""Safe, offline loading of local model directories, device resolution and content hashes.

A model directory holds ``config.json``, ``model.safetensors`` (or a ``pytorch_model.bin`` that
is read with ``torch.load(weights_only=True)``) and optionally ``tokenizer.json``. Nothing is
fetched from a hub: ``HF_HUB_OFFLINE=1`` is set for the duration of the load and every
``from_pretrained`` call passes ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lowprob.errors import InputValueError, UnavailableError

__all__ = ["file_hash", "load_hf", "model_hash", "resolve_device", "weights_file"]

_SAFETENSORS = "model.safetensors"
_BIN = "pytorch_model.bin"


def resolve_device(device: torch.device | str | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> CUDA if available else CPU; ``"cuda"`` without a GPU is an error."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnavailableError(
            f"device={device!r} was requested but no CUDA GPU is available to torch "
            f"(torch {torch.__version__}, cuda build {torch.version.cuda!r}). Use --device cpu or --device auto."
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InputValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}.")
    return dev


def file_hash(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex, first 16 characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def weights_file(directory: str | Path) -> Path:
    """The weights file of a model directory; a clear error when it is missing or unsafe."""
    d = Path(directory)
    if not d.is_dir():
        raise InputValueError(f"model directory {str(d)!r} does not exist or is not a directory.")
    if not (d / "config.json").is_file():
        raise InputValueError(f"model directory {str(d)!r} has no config.json; it is not a HF model directory.")
    st = d / _SAFETENSORS
    if st.is_file():
        _check_safetensors(st)
        return st
    if (d / _BIN).is_file():
        return d / _BIN
    others = sorted(p.name for p in d.iterdir() if p.suffix in {".pt", ".pth", ".ckpt", ".bin", ".pkl"})
    hint = f" Found {others!r}; convert them to safetensors (safetensors.torch.save_file)." if others else ""
    raise InputValueError(
        f"model directory {str(d)!r} has no {_SAFETENSORS!r} (or {_BIN!r}).{hint} "
        "Only safetensors or weights-only torch files are loaded."
    )


def _check_safetensors(path: Path) -> None:
    """Reject a file that is not a safetensors container (e.g. a renamed pickle)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise InputValueError(f"{str(path)!r} is too short to be a safetensors file.")
        n = int.from_bytes(head, "little")
        if n <= 0 or n > 100_000_000:
            raise InputValueError(f"{str(path)!r} is not a safetensors file (bad header length {n!r}).")
        try:
            json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputValueError(f"{str(path)!r} is not a safetensors file (header is not JSON).") from exc


def model_hash(directory: str | Path) -> str:
    """Content hash of a model directory's weights file (see :func:`file_hash`)."""
    return file_hash(weights_file(directory))


@contextmanager
def _offline() -> Any:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_hf(
    directory: str | Path,
    device: torch.device | str = "cpu",
    *,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> Any:
    """Load a local HF causal-LM directory as an :class:`~lowprob.lm_bridge.adapters.hf.HFAdapter`.

    Args:
        directory: holds ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``,
            read with ``weights_only=True``); ``tokenizer.json`` is attached when present.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"``.
        dtype: parameter dtype (float32 by default: ground truth counts in fp32).
        attn_implementation: passed to ``from_pretrained`` (``"eager"``/``"sdpa"``); ``None``
            keeps the library default.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from lowprob.lm_bridge.adapters.hf import HFAdapter

    d = Path(directory)
    wfile = weights_file(d)
    dev = resolve_device(device)
    extra: dict[str, Any] = {}
    if attn_implementation is not None:
        extra["attn_implementation"] = attn_implementation
    with _offline():
        try:
            config = AutoConfig.from_pretrained(str(d), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise InputValueError(f"could not read {str(d / 'config.json')!r}: {exc}") from exc
        if wfile.name == _SAFETENSORS:
            model = AutoModelForCausalLM.from_pretrained(
                str(d), config=config, local_files_only=True, use_safetensors=True, dtype=dtype, **extra
            )
        else:
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, **extra)
            state = torch.load(wfile, map_location="cpu", weights_only=True)
            missing, unexpected = model.load_state_dict(state, strict=False)
            missing = [k for k in missing if k not in _tied_keys(model)]
            if missing or unexpected:
                raise InputValueError(
                    f"{str(wfile)!r} does not match config.json: missing {missing[:5]!r}, "
                    f"unexpected {list(unexpected)[:5]!r}."
                )
            model.tie_weights()
    tokenizer = None
    if (d / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
    adapter = HFAdapter(model.to(dev), tokenizer=tokenizer, name=d.name, model_hash=file_hash(wfile))
    adapter.directory = d
    return adapter


def _tied_keys(model: Any) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or {}
    return set(keys) if not isinstance(keys, dict) else set(keys)
