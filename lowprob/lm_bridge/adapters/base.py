"""The one small interface every transformer adapter implements.

Conventions (shapes; ``B`` batch, ``T`` positions, ``V`` vocabulary, ``d`` model width):

* ``embed_onehot(onehot)``: ``(B, T, V) -> (B, T, d)``, differentiable in ``onehot``
  (token embedding ``onehot @ W_E`` plus positional embedding). Gradients with respect to
  the one-hot input are what ITGIS / MHIS use.
* ``embed(tokens)``: ``(B, T) long -> (B, T, d)``; equals ``embed_onehot(one_hot(tokens))``.
* ``blocks``: the residual blocks, each ``(B, T, d) -> (B, T, d)``.
* ``final_norm(resid)``: the final layer norm, ``(B, T, d) -> (B, T, d)``.
* ``final_activation(tokens)``: the last position's activation after the final norm,
  ``(B, T) -> (B, d)``. This is the ``x`` of DESIGN.md section 6, and
  ``logits = x @ W_U + b_U``.
* ``W_U``: ``(d, V)``, ``b_U``: ``(V,)`` (zeros when the model has no unembedding bias).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

__all__ = ["ModelAdapter"]


class ModelAdapter(ABC):
    """Required: ``embed_onehot``, ``blocks``, ``final_norm``, ``W_U``, ``b_U``, ``vocab_size``.

    Everything else has a default in terms of those.
    """

    name: str = "model"

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def d_model(self) -> int: ...

    @property
    @abstractmethod
    def W_U(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def b_U(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def W_E(self) -> torch.Tensor:
        """Token embedding matrix ``(V, d)``."""

    @abstractmethod
    def positional(self, T: int) -> torch.Tensor:
        """Positional embeddings ``(T, d)`` (zeros for models without them)."""

    @property
    @abstractmethod
    def blocks(self) -> Sequence[torch.nn.Module]: ...

    @abstractmethod
    def final_norm(self, resid: torch.Tensor) -> torch.Tensor: ...

    @property
    def device(self) -> torch.device:
        return self.W_U.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_U.dtype

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    # -- defaults ---------------------------------------------------------------------
    def embed_onehot(self, onehot: torch.Tensor) -> torch.Tensor:
        return onehot.to(self.W_E.dtype) @ self.W_E + self.positional(onehot.shape[-2])

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.W_E[tokens] + self.positional(tokens.shape[-1])

    def run_blocks(self, resid: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            resid = block(resid)
        return resid

    def final_activation_from_embeddings(self, emb: torch.Tensor) -> torch.Tensor:
        return self.final_norm(self.run_blocks(emb))[:, -1, :]

    def final_activation(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.final_activation_from_embeddings(self.embed(tokens))

    def logits_from_final(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_U + self.b_U

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position logits ``(B, V)``."""
        return self.logits_from_final(self.final_activation(tokens))
