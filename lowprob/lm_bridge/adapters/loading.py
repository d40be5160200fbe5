"""Safe, offline loading of local model directories, device resolution and content hashes.

A model directory holds ``config.json``, ``model.safetensors`` (or a ``pytorch_model.bin`` that
is read with ``torch.load(weights_only=True)``) and optionally ``tokenizer.json``. Nothing is
fetched from a hub: ``HF_HUB_OFFLINE=1`` is set for the duration of the load and every
``from_pretrained`` call passes ``local_files_only=True``.

Everything is checked *before* a model is built or a weight is used (issue 16):

* ``config.json`` is JSON and its ``model_type`` is a supported family
  (:data:`~lowprob.lm_bridge.adapters.hf.SUPPORTED_MODEL_TYPES`) -- an unsupported one would
  otherwise be instantiated at its default (possibly multi-GB) size first;
* the safetensors header is complete (its data offsets fit the file: a truncated download is
  refused) and its tensor names and shapes match the model the config describes (layer count
  included: a missing layer would otherwise be randomly initialised), checked against a skeleton
  built on the ``meta`` device (no memory);
* a ``pytorch_model.bin`` is read with ``weights_only=True`` only; a pickle that needs more is
  refused with the conversion to safetensors as the fix;
* every weight is finite; ``tokenizer.json`` parses; an ``expected_hash`` (shipped models) matches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lowprob.errors import InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.hf import SUPPORTED_MODEL_TYPES, HFAdapter

__all__ = ["file_hash", "load_hf", "model_hash", "read_safetensors_header", "resolve_device", "weights_file"]

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
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UnavailableError(
                f"device={device!r} was requested but the Apple MPS backend is not available to torch "
                f"{torch.__version__} on this machine. Use --device cpu or --device auto."
            )
        return dev
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnavailableError(
            f"device={device!r} was requested but no CUDA GPU is available to torch "
            f"(torch {torch.__version__}, cuda build {torch.version.cuda!r}). Use --device cpu or --device auto."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UnavailableError(
            f"device={device!r} was requested but torch sees {torch.cuda.device_count()} CUDA device(s)."
        )
    if dev.type not in ("cpu", "cuda"):
        raise InputValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}.")
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


def read_safetensors_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` from a safetensors header, checked against the file size.

    Layout: 8 bytes little-endian header length ``n``, ``n`` bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the
    data; a complete file has ``8 + n + max(end)`` bytes and ``end - begin`` equal to
    ``prod(shape) * itemsize``. Raises :class:`InputValueError` for anything else (a renamed
    pickle, a truncated download).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise InputValueError(f"{str(path)!r} is too short to be a safetensors file ({size} bytes).")
        n = int.from_bytes(head, "little")
        if n <= 0 or n > 100_000_000 or 8 + n > size:
            raise InputValueError(
                f"{str(path)!r} is not a safetensors file (bad header length {n!r} for a file of {size} bytes)."
            )
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputValueError(f"{str(path)!r} is not a safetensors file (header is not JSON).") from exc
    if not isinstance(header, dict):
        raise InputValueError(f"{str(path)!r} is not a safetensors file (header is not a JSON object).")
    itemsize = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(int(s) for s in info["shape"]), info["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputValueError(f"{str(path)!r}: malformed header entry for {name!r}.") from exc
        want = math.prod(shape) * itemsize.get(dtype, 0)
        if dtype in itemsize and (end - begin != want or begin < 0):
            raise InputValueError(
                f"{str(path)!r}: tensor {name!r} of shape {shape!r} ({dtype}) has byte range {[begin, end]!r}; "
                "the file is corrupt."
            )
        end_max = max(end_max, end)
        out[name] = (str(dtype), shape)
    if 8 + n + end_max != size:
        raise InputValueError(
            f"{str(path)!r} is truncated or corrupt: its header needs {8 + n + end_max} bytes but the file "
            f"has {size}. Re-save or re-download the model."
        )
    return out


def _check_safetensors(path: Path) -> None:
    """Reject a file that is not a complete safetensors container (e.g. a renamed pickle)."""
    read_safetensors_header(path)


def model_hash(directory: str | Path) -> str:
    """Content hash of a model directory's weights file (see :func:`file_hash`)."""
    return file_hash(weights_file(directory))


@contextmanager
def _offline() -> Any:
    """No hub access, and no "Loading weights" progress bar (a CLI error stays one line)."""
    from transformers.utils import logging as hf_logging

    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _read_config(d: Path) -> dict[str, Any]:
    """``config.json`` as a dict, with a supported ``model_type`` (checked before any model is built)."""
    path = d / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputValueError(f"could not read {str(path)!r} as JSON: {exc}.") from exc
    if not isinstance(raw, dict):
        raise InputValueError(f"{str(path)!r} must hold a JSON object, got {type(raw).__name__}.")
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnavailableError(
            f"{str(path)!r} has model_type {model_type!r}; lowprob supports {SUPPORTED_MODEL_TYPES!r} "
            "(add a _Family entry in lowprob/lm_bridge/adapters/hf.py for another architecture)."
        )
    return raw


def _layer_count(names: Any) -> int:
    """Number of decoder blocks named in a state dict (``...h.<i>.`` or ``...layers.<i>.``)."""
    idx = set()
    for name in names:
        parts = str(name).split(".")
        for a, b in zip(parts, parts[1:], strict=False):
            if a in ("h", "layers") and b.isdigit():
                idx.add(int(b))
    return max(idx) + 1 if idx else 0


def _check_against_config(config: Any, found: dict[str, tuple[int, ...]], wfile: Path) -> None:
    """Compare tensor names and shapes in ``wfile`` with the model ``config`` describes.

    The layer count is compared first (cheap, and it bounds the skeleton we build); then a
    skeleton on the ``meta`` device (no memory) gives every expected name and shape.
    """
    from transformers import AutoModelForCausalLM

    n_cfg = getattr(config, "num_hidden_layers", 0) or 0
    if isinstance(n_cfg, bool) or not isinstance(n_cfg, int):
        raise InputValueError(f"config.json: the number of layers must be an integer, got {n_cfg!r}.")
    n_file = _layer_count(found)
    if n_cfg != n_file:
        raise InputValueError(
            f"config.json says {n_cfg} layer(s) but {str(wfile)!r} holds weights for {n_file}; the missing "
            "layers would be randomly initialised. Fix num_hidden_layers/n_layer or use the matching weights."
        )
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - any value transformers cannot build a model from
        raise InputValueError(
            f"config.json next to {str(wfile)!r} does not describe a buildable model "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); fix its sizes."
        ) from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    base = getattr(skeleton, "base_model_prefix", "")
    wrong = []
    for k, shape in found.items():
        key = k if k in expected else f"{base}.{k}"
        if key in expected and expected[key] != shape:
            wrong.append((k, shape, expected[key]))
    if wrong:
        raise InputValueError(
            f"{str(wfile)!r} does not match config.json: wrong shapes (name, file, config) {wrong[:5]!r}. "
            "Fix config.json (vocab_size, n_embd/hidden_size, ...) or use the matching weights."
        )


def _check_loading_info(info: dict[str, Any], model: Any, wfile: Path) -> None:
    """Refuse weights that left parameters randomly initialised, or that were not used."""
    tied = _tied_keys(model)
    missing = [k for k in info.get("missing_keys", []) if k not in tied]
    unexpected = list(info.get("unexpected_keys", []))
    mismatched = list(info.get("mismatched_keys", []))
    if missing or unexpected or mismatched:
        raise InputValueError(
            f"{str(wfile)!r} does not match config.json: missing {sorted(missing)[:5]!r} (they would be "
            f"randomly initialised), unexpected {sorted(unexpected)[:5]!r}, mismatched {mismatched[:5]!r}."
        )


def _check_finite(model: Any, wfile: Path) -> None:
    bad = [n for n, p in model.named_parameters() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise InputValueError(
            f"{str(wfile)!r} has NaN or infinite weights in {bad[:5]!r}; every weight must be finite."
        )


def _load_bin(wfile: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(wfile, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a safe weights file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputValueError(
            f"{str(wfile)!r} cannot be read as a weights-only torch file ({type(exc).__name__}: {first}). "
            "lowprob never unpickles arbitrary objects: convert the weights to model.safetensors "
            "(safetensors.torch.save_file(model.state_dict(), ...)) in a trusted environment."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputValueError(f"{str(wfile)!r} must hold a flat state dict of tensors.")
    return state


def load_hf(
    directory: str | Path,
    device: torch.device | str = "cpu",
    *,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
    expected_hash: str | None = None,
) -> HFAdapter:
    """Load a local HF causal-LM directory as an :class:`~lowprob.lm_bridge.adapters.hf.HFAdapter`.

    Args:
        directory: holds ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``,
            read with ``weights_only=True``); ``tokenizer.json`` is attached when present.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"``.
        dtype: parameter dtype (float32 by default: ground truth counts in fp32).
        attn_implementation: passed to ``from_pretrained`` (``"eager"``/``"sdpa"``); ``None``
            keeps the library default.
        expected_hash: if given, the :func:`file_hash` the weights file must have (shipped models).

    Raises:
        InputValueError: missing/corrupt/truncated files, config and weights that disagree
            (names, shapes, layer count), non-finite weights, a hash mismatch.
        UnavailableError: an unsupported ``model_type``, or a device torch cannot use.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    d = Path(directory)
    wfile = weights_file(d)
    _read_config(d)
    dev = resolve_device(device)
    whash = file_hash(wfile)
    if expected_hash is not None and whash != expected_hash:
        raise InputValueError(
            f"{str(wfile)!r} has hash {whash!r} but {expected_hash!r} was recorded for it: the shipped model "
            "was modified (e.g. overwritten by `lowprob lm train`). Reinstall lowprob, or pass the directory "
            "itself as --model to use the modified weights."
        )
    extra: dict[str, Any] = {}
    if attn_implementation is not None:
        extra["attn_implementation"] = attn_implementation
    with _offline():
        try:
            config = AutoConfig.from_pretrained(str(d), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise InputValueError(f"could not read {str(d / 'config.json')!r}: {exc}") from exc
        if wfile.name == _SAFETENSORS:
            header = read_safetensors_header(wfile)
            _check_against_config(config, {k: s for k, (_, s) in header.items()}, wfile)
            try:
                model, info = AutoModelForCausalLM.from_pretrained(
                    str(d), config=config, local_files_only=True, use_safetensors=True, dtype=dtype,
                    output_loading_info=True, **extra
                )
            except Exception as exc:  # noqa: BLE001 - a file that passed the header checks but fails to load
                raise InputValueError(f"could not load {str(wfile)!r}: {type(exc).__name__}: {exc}") from exc
            _check_loading_info(info, model, wfile)
        else:
            state = _load_bin(wfile)
            _check_against_config(config, {k: tuple(v.shape) for k, v in state.items()}, wfile)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, **extra)
            missing, unexpected = model.load_state_dict(state, strict=False)
            _check_loading_info({"missing_keys": missing, "unexpected_keys": unexpected}, model, wfile)
            model.tie_weights()
    _check_finite(model, wfile)
    tokenizer = None
    if (d / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exception
            raise InputValueError(
                f"{str(d / 'tokenizer.json')!r} is not a valid tokenizers JSON file ({exc}); fix or remove it."
            ) from None
    adapter = HFAdapter(model.to(dev), tokenizer=tokenizer, name=d.name, model_hash=whash)
    adapter.directory = d
    return adapter


def _tied_keys(model: Any) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or {}
    return set(keys) if not isinstance(keys, dict) else set(keys)
