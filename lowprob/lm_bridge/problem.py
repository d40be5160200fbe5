"""The LM low-probability problem: ``p = P_{x ~ D}[argmax_v logits(x)_v = t]``.

An :class:`LMProblem` bundles a model (any
:class:`~lowprob.lm_bridge.adapters.base.ModelAdapter`), an independent-token input law
``D = D_1 x ... x D_T`` (:class:`~lowprob.lm_bridge.distributions.TokenSpec`) and a target
token ``t`` (Wu & Hilton 2024, arXiv 2410.13211, section 2). Ties in the argmax go to the
lowest index, as in ``torch.argmax``.

Construction validates everything a method relies on, so methods need not re-check:
the target is a vocabulary id, every spec token is a vocabulary id, and ``W_U`` / ``b_U``
have shapes ``(d, V)`` / ``(V,)`` matching the adapter's ``vocab_size``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from lowprob._validation import check_int
from lowprob.errors import InputTypeError, InputValueError, UnavailableError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.distributions import TokenSpec

__all__ = ["LMProblem", "torch_generator"]


def torch_generator(rng: np.random.Generator, device: torch.device | str) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from the numpy generator ``rng``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(rng.integers(0, 2**62)))
    return gen


@dataclass(frozen=True, eq=False)
class LMProblem:
    """``(adapter, spec, target)``: estimate ``P_{x~spec}[argmax logits(x) = target]``.

    Args:
        adapter: the model.
        spec: the independent-token input distribution; its last position's next token
            is the one predicted.
        target: the target token id, ``0 <= target < adapter.vocab_size``.
    """

    adapter: ModelAdapter
    spec: TokenSpec
    target: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.adapter, ModelAdapter):
            raise InputTypeError(
                f"adapter must be a lowprob ModelAdapter, got {type(self.adapter).__name__}; "
                "wrap the model with lowprob.lm_bridge.adapters (e.g. load_hf)."
            )
        if not isinstance(self.spec, TokenSpec):
            raise InputTypeError(
                f"spec must be a TokenSpec, got {type(self.spec).__name__}; load one with TokenSpec.load(path)."
            )
        V = int(self.adapter.vocab_size)
        target = check_int("target", self.target)
        if not 0 <= target < V:
            raise InputValueError(
                f"target={target!r} is outside the vocabulary of size {V!r}; pass a token id in [0, {V - 1}]."
            )
        object.__setattr__(self, "target", target)
        W_U, b_U = self.adapter.W_U, self.adapter.b_U
        if W_U.ndim != 2 or W_U.shape[1] != V or W_U.shape[0] != self.adapter.d_model:
            raise InputValueError(
                f"the adapter's unembedding W_U has shape {tuple(W_U.shape)!r} but vocab_size={V!r} "
                f"and d_model={self.adapter.d_model!r}; expected ({self.adapter.d_model}, {V}). "
                "The adapter and its tokenizer/unembedding disagree."
            )
        if tuple(b_U.shape) != (V,):
            raise InputValueError(
                f"the adapter's unembedding bias b_U has shape {tuple(b_U.shape)!r}; expected ({V},)."
            )
        self.spec.validate_vocab(V)

    # -- derived quantities -------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self.adapter.vocab_size)

    @property
    def device(self) -> torch.device:
        return self.adapter.device

    @property
    def length(self) -> int:
        return self.spec.length

    def log_probs_matrix(self) -> torch.Tensor:
        """``log p_{i,v}``: ``(T, V)`` float64 on the model's device, ``-inf`` off support."""
        key = ("logp", str(self.device))
        if key not in self._cache:
            self._cache[key] = self.spec.log_probs_matrix(self.vocab_size, device=self.device)
        return self._cache[key]

    def unembedding64(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_U, b_U)`` as float64 on the model's device."""
        key = ("unembed", str(self.device))
        if key not in self._cache:
            self._cache[key] = (
                self.adapter.W_U.detach().to(torch.float64),
                self.adapter.b_U.detach().to(torch.float64),
            )
        return self._cache[key]

    # -- exact answer for tiny problems ------------------------------------------------------
    def exact_probability(self, *, max_support: int = 2**20, batch_size: int = 4096) -> float:
        """``p`` by enumerating every sequence in the support (tiny problems and tests only).

        ``p = sum_x P(x) 1[argmax logits(x) = t]``, summed in float64. Raises
        :class:`~lowprob.errors.UnavailableError` if the support exceeds ``max_support``.
        """
        size = self.spec.support_size()
        if size > max_support:
            raise UnavailableError(
                f"the spec's support has {size!r} sequences > max_support={max_support!r}; "
                "exact enumeration is for tiny problems. Use ground truth by sampling instead."
            )
        tables = []
        for p in self.spec.positions:
            keep = p.normalized > 0
            tables.append((p.tokens[keep], np.log(p.normalized[keep])))
        total = 0.0
        it = itertools.product(*[range(len(t[0])) for t in tables])
        while True:
            chunk = list(itertools.islice(it, batch_size))
            if not chunk:
                break
            idx = np.asarray(chunk, dtype=np.int64)
            toks = np.stack([tables[i][0][idx[:, i]] for i in range(len(tables))], axis=1)
            logp = sum(tables[i][1][idx[:, i]] for i in range(len(tables)))
            with torch.no_grad():
                logits = self.adapter.logits(torch.as_tensor(toks, device=self.device))
            hit = (logits.argmax(-1) == self.target).cpu().numpy()
            total += float(np.exp(logp[hit]).sum())
        return total
