"""Adapter for TransformerLens ``HookedTransformer`` models (optional dependency).

Mapping (TransformerLens names, Nanda & Bloom 2022): ``W_E = model.W_E`` ``(V, d)``,
``positional(T) = model.W_pos[:T]`` for ``positional_embedding_type == "standard"`` and zero for
``"rotary"`` (applied inside attention), ``blocks = model.blocks`` (each ``resid -> resid``),
``final_norm = model.ln_final``, ``W_U = model.W_U`` ``(d, V)``, ``b_U = model.b_U``.
The logits therefore equal ``model(tokens)[:, -1]``.

Install with ``pip install "transformer_lens<4"`` (TransformerLens 4.0 removed ``HookedTransformer``
in favour of ``TransformerBridge``); nothing here imports it until an adapter is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lowprob.errors import InputTypeError, UnavailableError
from lowprob.lm_bridge.adapters.base import ModelAdapter

__all__ = ["TransformerLensAdapter", "require_transformer_lens"]

_INSTALL = 'pip install "transformer_lens<4"'


def require_transformer_lens() -> Any:
    """Import ``transformer_lens`` or raise an ImportError giving the install command."""
    try:
        import transformer_lens
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"TransformerLensAdapter needs the optional package transformer_lens; install it with `{_INSTALL}`."
        ) from exc
    try:
        transformer_lens.HookedTransformer  # noqa: B018 - removed in TransformerLens 4.0
    except ImportError as exc:
        raise ImportError(
            "TransformerLensAdapter wraps HookedTransformer, which TransformerLens 4.0 removed; "
            f"install a 3.x release with `{_INSTALL}`."
        ) from exc
    return transformer_lens


class TransformerLensAdapter(ModelAdapter):
    """Wrap a ``transformer_lens.HookedTransformer`` as a :class:`ModelAdapter`."""

    def __init__(self, model: nn.Module, *, name: str | None = None, model_hash: str | None = None) -> None:
        tl = require_transformer_lens()
        if not isinstance(model, tl.HookedTransformer):
            raise InputTypeError(f"model must be a transformer_lens.HookedTransformer, got {type(model).__name__}.")
        kind = model.cfg.positional_embedding_type
        if kind not in ("standard", "rotary"):
            raise UnavailableError(
                f"positional_embedding_type {kind!r} is not supported (only 'standard' and 'rotary')."
            )
        self.model = model.eval().requires_grad_(False)  # gradients flow to inputs only
        self.name = name or getattr(model.cfg, "model_name", "hooked-transformer")
        self.model_hash = model_hash
        self.tokenizer = getattr(model, "tokenizer", None)

    @property
    def vocab_size(self) -> int:
        return int(self.model.cfg.d_vocab)

    @property
    def d_model(self) -> int:
        return int(self.model.cfg.d_model)

    @property
    def n_ctx(self) -> int:
        return int(self.model.cfg.n_ctx)

    @property
    def W_E(self) -> torch.Tensor:
        return self.model.W_E

    @property
    def W_U(self) -> torch.Tensor:
        return self.model.W_U

    @property
    def b_U(self) -> torch.Tensor:
        return self.model.b_U

    def positional(self, T: int) -> torch.Tensor:
        if self.model.cfg.positional_embedding_type == "rotary":
            return torch.zeros(T, self.d_model, dtype=self.W_E.dtype, device=self.W_E.device)
        return self.model.W_pos[:T]

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return list(self.model.blocks)

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return self.model.ln_final(resid)

    def native_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position logits from ``HookedTransformer.forward`` (for checking)."""
        return self.model(tokens, return_type="logits")[:, -1, :]
