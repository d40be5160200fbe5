"""Adapter for Hugging Face ``transformers`` causal LMs (GPT-2 and GPT-NeoX families).

The adapter exposes the pieces of :class:`~lowprob.lm_bridge.adapters.base.ModelAdapter`
*by reference* to the HF modules, so its logits are the library's own computation:

* GPT-2 (``model_type == "gpt2"``): ``resid_0 = W_E[x] + W_pos[:T]``, blocks ``transformer.h``,
  final norm ``transformer.ln_f``, unembedding ``lm_head`` (tied to ``W_E`` by default).
* GPT-NeoX (``"gpt_neox"``): ``resid_0 = W_E[x]`` (rotary position embeddings are applied
  inside attention, so :meth:`positional` is zero), blocks ``gpt_neox.layers``, final norm
  ``gpt_neox.final_layer_norm``, unembedding ``embed_out``.

Each block is wrapped so that it maps ``(B, T, d) -> (B, T, d)``: the wrapper builds the causal
mask with ``transformers.masking_utils.create_causal_mask`` and (NeoX) the rotary ``(cos, sin)``
exactly as the HF model's own ``forward`` does.

Reference: Radford et al. 2019 (GPT-2); Black et al. 2022 (GPT-NeoX-20B).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lowprob.errors import InputTypeError, UnavailableError
from lowprob.lm_bridge.adapters.base import ModelAdapter

__all__ = ["HFAdapter", "SUPPORTED_MODEL_TYPES", "load_hf"]


@dataclass(frozen=True)
class _Family:
    base: str  # attribute of the CausalLM holding the base model
    blocks: str
    final_norm: str
    positional: str | None  # learned absolute position embedding module, if any
    rotary: str | None  # rotary embedding module on the base model, if any


_FAMILIES: dict[str, _Family] = {
    "gpt2": _Family(base="transformer", blocks="h", final_norm="ln_f", positional="wpe", rotary=None),
    "gpt_neox": _Family(
        base="gpt_neox", blocks="layers", final_norm="final_layer_norm", positional=None, rotary="rotary_emb"
    ),
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(_FAMILIES)


class _HFBlock(nn.Module):
    """One HF decoder block as a function ``(B, T, d) -> (B, T, d)`` with a causal mask."""

    def __init__(self, block: nn.Module, adapter: HFAdapter) -> None:
        super().__init__()
        self.block = block
        # A plain attribute (not a submodule) to avoid a reference cycle in the module tree.
        object.__setattr__(self, "_adapter", adapter)

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_causal_mask

        ad: HFAdapter = self._adapter  # type: ignore[assignment]
        T = resid.shape[1]
        position_ids = torch.arange(T, device=resid.device).unsqueeze(0)
        mask = create_causal_mask(
            config=ad.model.config, inputs_embeds=resid, attention_mask=None, cache=None, position_ids=position_ids
        )
        kwargs: dict[str, Any] = {"attention_mask": mask, "position_ids": position_ids}
        if ad._family.rotary is not None:
            rotary = getattr(ad._base, ad._family.rotary)
            kwargs["position_embeddings"] = rotary(resid, position_ids=position_ids)
        out = self.block(resid, **kwargs)
        if isinstance(out, tuple):
            out = out[0]
        return out


class HFAdapter(ModelAdapter):
    """Wrap a ``transformers`` causal LM (GPT-2 or GPT-NeoX family) as a :class:`ModelAdapter`.

    Args:
        model: a ``GPT2LMHeadModel`` / ``GPTNeoXForCausalLM`` (or any CausalLM whose
            ``config.model_type`` is in :data:`SUPPORTED_MODEL_TYPES`). It is put in eval mode and
            its parameters are frozen (``requires_grad=False``): gradients are taken with respect
            to inputs (one-hot tokens, embeddings, activations) only.
        tokenizer: optional ``tokenizers.Tokenizer`` for decoding token ids.
        name: a label for reports.
        model_hash: a content hash of the weights file (set by :func:`load_hf`).
    """

    def __init__(
        self, model: nn.Module, *, tokenizer: Any = None, name: str | None = None, model_hash: str | None = None
    ) -> None:
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", None)
        if model_type not in _FAMILIES:
            raise UnavailableError(
                f"HFAdapter supports model_type in {SUPPORTED_MODEL_TYPES!r}, got {model_type!r} "
                f"({type(model).__name__}). Add a _Family entry in lowprob/lm_bridge/adapters/hf.py."
            )
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        self.model = model.eval().requires_grad_(False)  # gradients flow to inputs only
        self.tokenizer = tokenizer
        self.model_hash = model_hash
        self.name = name or getattr(config, "name_or_path", None) or model_type
        self._family = _FAMILIES[model_type]
        self._base = getattr(model, self._family.base)
        self._blocks = [_HFBlock(b, self) for b in getattr(self._base, self._family.blocks)]
        self._norm = getattr(self._base, self._family.final_norm)

    # -- required members ------------------------------------------------------------
    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def model_type(self) -> str:
        return str(self.model.config.model_type)

    @property
    def vocab_size(self) -> int:
        return int(self.W_E.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.W_E.shape[1])

    @property
    def n_ctx(self) -> int:
        """Maximum sequence length the model accepts."""
        cfg = self.model.config
        return int(getattr(cfg, "n_positions", None) or cfg.max_position_embeddings)

    @property
    def W_E(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    @property
    def W_U(self) -> torch.Tensor:
        return self.model.get_output_embeddings().weight.T

    @property
    def b_U(self) -> torch.Tensor:
        bias = getattr(self.model.get_output_embeddings(), "bias", None)
        if bias is None:
            return torch.zeros(self.vocab_size, dtype=self.W_E.dtype, device=self.W_E.device)
        return bias

    def positional(self, T: int) -> torch.Tensor:
        if self._family.positional is None:
            return torch.zeros(T, self.d_model, dtype=self.W_E.dtype, device=self.W_E.device)
        return getattr(self._base, self._family.positional).weight[:T]

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self._blocks

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return self._norm(resid)

    @property
    def hf_blocks(self) -> Sequence[nn.Module]:
        """The HF decoder-block modules themselves (``transformer.h`` for GPT-2), unwrapped.

        For code that computes a block's parts directly (e.g. the tabulated GPT-2 forward,
        :mod:`lowprob.lm_bridge.adapters.gpt2_tabulated`); :attr:`blocks` are the same modules
        wrapped as ``(B, T, d) -> (B, T, d)`` functions.
        """
        return [b.block for b in self._blocks]

    # -- conveniences ------------------------------------------------------------------
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> HFAdapter:
        self.model.to(device=device, dtype=dtype)
        return self

    def native_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position logits from the HF model's own ``forward`` (for checking)."""
        return self.model(input_ids=tokens).logits[:, -1, :]

    def decode(self, token: int) -> str:
        if self.tokenizer is None:
            raise UnavailableError(f"{type(self).__name__} {self.name!r} has no tokenizer attached.")
        return self.tokenizer.decode([int(token)])


def load_hf(directory: Any, device: torch.device | str = "cpu", **kwargs: Any) -> HFAdapter:
    """Load a local HF causal-LM directory (see :func:`lowprob.lm_bridge.adapters.loading.load_hf`)."""
    from lowprob.lm_bridge.adapters.loading import load_hf as _load

    return _load(directory, device=device, **kwargs)
