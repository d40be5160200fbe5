"""Counting model calls: forward and backward passes, burn-in included, never over budget.

Every LM method touches the model only through :class:`CountedModel`, which charges a
:class:`CallBudget` *before* running each batch. So the cost an :class:`~lowprob.Estimate`
reports is the cost actually spent, and a method cannot overspend by construction.

Units (Wu & Hilton 2024, arXiv 2410.13211, appendix F): one *forward* is one input
sequence pushed through the model (``B`` sequences = ``B`` forwards); one *backward* is
one sequence's gradient of the target logit with respect to its one-hot input. The
budget limits forwards (the paper's "model calls"); backwards are counted separately and
may optionally be limited too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lowprob._validation import check_budget, check_int
from lowprob.errors import BudgetError, InputValueError, UnavailableError
from lowprob.estimate import Cost
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.adapters.gpt2_tabulated import TabulatedGPT2, tabulation_unsupported_reason
from lowprob.lm_bridge.distributions import TokenSpec

__all__ = ["FORWARD_CHOICES", "CallBudget", "CountedModel", "OnehotGradient", "argmax_is", "check_batch_fits"]


def check_batch_fits(budget: int, batch_size: int, *, method: str) -> tuple[int, int]:
    """Validate ``budget`` and ``batch_size`` and require ``budget >= batch_size``.

    Returns ``(budget, batch_size)`` as ints. A budget smaller than one batch is an error
    (:class:`~lowprob.errors.BudgetError`): the method could not run a single batch.
    """
    budget = check_budget(budget)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if budget < batch_size:
        raise BudgetError(
            f"budget={budget!r} model calls is smaller than one batch of {method!r} "
            f"(batch_size={batch_size!r}); pass budget >= {batch_size} or a smaller batch_size."
        )
    return budget, batch_size


@dataclass
class CallBudget:
    """A forward/backward pass counter that refuses to exceed its limits.

    Attributes:
        forward_limit: the most forward passes allowed (the method's budget).
        backward_limit: the most backward passes allowed (``None``: unlimited, only counted).
        forward: forward passes charged so far.
        backward: backward passes charged so far.
    """

    forward_limit: int
    backward_limit: int | None = None
    forward: int = 0
    backward: int = 0
    _start: float = field(default_factory=time.perf_counter, repr=False)

    def __post_init__(self) -> None:
        self.forward_limit = check_budget(self.forward_limit, name="forward_limit")
        if self.backward_limit is not None:
            self.backward_limit = check_int("backward_limit", self.backward_limit, minimum=0)

    @property
    def forward_left(self) -> int:
        return self.forward_limit - self.forward

    def charge(self, *, forward: int = 0, backward: int = 0) -> None:
        """Charge passes; raise :class:`BudgetError` (charging nothing) if a limit would be exceeded."""
        if self.forward + forward > self.forward_limit:
            raise BudgetError(
                f"refusing to run {forward!r} more forward passes: {self.forward!r} of "
                f"{self.forward_limit!r} already spent. Increase the budget."
            )
        if self.backward_limit is not None and self.backward + backward > self.backward_limit:
            raise BudgetError(
                f"refusing to run {backward!r} more backward passes: {self.backward!r} of "
                f"{self.backward_limit!r} already spent. Increase backward_limit."
            )
        self.forward += forward
        self.backward += backward

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def cost(self, *, samples: int | None = None, flops: float = 0.0) -> Cost:
        """The :class:`~lowprob.Cost` so far (``samples`` defaults to the forward count)."""
        return Cost(
            samples=self.forward if samples is None else int(samples),
            model_calls=self.forward,
            backward_calls=self.backward,
            flops=flops,
            seconds=self.elapsed(),
        )


def argmax_is(logits: torch.Tensor, target: int) -> torch.Tensor:
    """``logits.argmax(-1) == target`` ``(B,)`` bool, exactly (ties to the lowest index), but faster.

    ``argmax = t`` iff ``logits[:, t] == max`` and no ``j < t`` attains the max; the second
    test runs only on the (rare) rows passing the first. Rows containing NaN use ``argmax``.
    """
    m = logits.amax(-1)
    hit = logits[:, target] == m
    nan = torch.isnan(m)
    if bool(nan.any()):
        hit = torch.where(nan, logits.argmax(-1) == target, hit)
    rows = hit.nonzero().squeeze(-1)
    if target > 0 and rows.numel():
        earlier = (logits[rows, :target] == m[rows, None]).any(-1)
        hit[rows[earlier]] = False
    return hit


class OnehotGradient:
    """Gradients ``g[b, i, v] = d logit_t(x_b) / d onehot[b, i, v]`` stored compactly.

    For adapters whose ``embed_onehot`` is the default affine map ``onehot @ W_E + pos``,
    ``g[b, i, :] = G[b, i, :] @ W_E^T`` with ``G = d logit_t / d embedding`` of shape
    ``(B, T, d)``; only ``G`` is stored and rows are expanded on demand. Otherwise the full
    ``(B, T, V)`` tensor is stored.
    """

    def __init__(self, g: torch.Tensor, basis: torch.Tensor | None) -> None:
        self.g = g  # (B, T, d) with basis (d, V), or (B, T, V) without
        self.basis = basis

    def rows(self, positions: torch.Tensor) -> torch.Tensor:
        """``g[b, positions[b], :]`` for each chain ``b``: shape ``(B, V)``."""
        sel = self.g[torch.arange(self.g.shape[0], device=self.g.device), positions]
        return sel @ self.basis if self.basis is not None else sel

    def batch_sum(self) -> torch.Tensor:
        """``sum_b g[b]``: shape ``(T, V)``."""
        s = self.g.sum(0)
        return s @ self.basis if self.basis is not None else s

    def where(self, mask: torch.Tensor, other: OnehotGradient) -> OnehotGradient:
        """Row-wise ``other if mask[b] else self`` (for Metropolis–Hastings accept steps)."""
        return OnehotGradient(torch.where(mask[:, None, None], other.g, self.g), self.basis)


def _default_onehot(adapter: ModelAdapter) -> bool:
    return type(adapter).embed_onehot is ModelAdapter.embed_onehot


FORWARD_CHOICES: tuple[str, ...] = ("auto", "tabulated", "adapter")


class CountedModel:
    """The only door from a method to the model: every call is charged to ``budget``.

    **Which forward runs.** With ``forward="auto"`` and an input ``spec``, a GPT-2-family
    :class:`~lowprob.lm_bridge.adapters.hf.HFAdapter` is run through
    :class:`~lowprob.lm_bridge.adapters.gpt2_tabulated.TabulatedGPT2` (layer 0 tabulated per
    (position, token), the last layer at the last position only: the same float32 numbers for
    a fraction of the FLOPs); any other model, or no ``spec``, uses the adapter's own forward.
    :meth:`forward_diagnostics` says which ran and, on fallback, why. Either way each call is
    charged *before* it runs, in the same units (one forward per sequence, one backward per
    sequence's gradient).

    Args:
        adapter: any :class:`~lowprob.lm_bridge.adapters.base.ModelAdapter`.
        budget: the :class:`CallBudget` to charge.
        spec: the input law whose support the tables cover (required for the fast path).
        forward: ``"auto"`` (fast where supported), ``"adapter"`` (always the adapter),
            ``"tabulated"`` (fast or :class:`~lowprob.errors.UnavailableError`), or an existing
            ``TabulatedGPT2`` to share.
    """

    def __init__(
        self, adapter: ModelAdapter, budget: CallBudget, *, spec: TokenSpec | None = None, forward: Any = "auto"
    ) -> None:
        self.adapter = adapter
        self.budget = budget
        self.kernel: TabulatedGPT2 | None = None
        self.forward_note: str | None = None
        if isinstance(forward, TabulatedGPT2):
            self.kernel = forward
            return
        if not isinstance(forward, str) or forward not in FORWARD_CHOICES:
            raise InputValueError(
                f"forward must be one of {FORWARD_CHOICES!r} or a TabulatedGPT2, got {forward!r}."
            )
        if forward == "adapter":
            self.forward_note = "forward='adapter' was requested"
            return
        reason = tabulation_unsupported_reason(adapter)
        if reason is None and spec is None:
            reason = "no input spec was given (the layer-0 tables cover the spec's support)"
        if reason is not None:
            if forward == "tabulated":
                raise UnavailableError(f"forward='tabulated' is not possible: {reason}. Use forward='auto'.")
            self.forward_note = reason
            return
        self.kernel = TabulatedGPT2(adapter, spec, adapter.device)

    @property
    def device(self) -> torch.device:
        return self.adapter.device

    @property
    def forward_path(self) -> str:
        """``"tabulated-gpt2"`` or ``"adapter"``."""
        return "tabulated-gpt2" if self.kernel is not None else "adapter"

    def forward_diagnostics(self) -> dict[str, Any]:
        """``{"forward": path}``, plus ``"forward_note"`` (why) on fallback or ``"forward_table_rows"``."""
        out: dict[str, Any] = {"forward": self.forward_path}
        if self.kernel is not None:
            out["forward_table_rows"] = int(self.kernel.n_rows)
        else:
            out["forward_note"] = self.forward_note
        return out

    def _charged(self, tokens: torch.Tensor, backward: bool, fn: Callable[[], object]) -> object:
        n = int(tokens.shape[0])
        self.budget.charge(forward=n, backward=n if backward else 0)
        return fn()

    def final_activations(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position activation after the final norm, ``(B, d)`` in the model dtype."""

        def run() -> torch.Tensor:
            if self.kernel is not None:
                return self.kernel.final_activations(tokens)
            with torch.no_grad():
                return self.adapter.final_activation(tokens)

        return self._charged(tokens, False, run)  # type: ignore[return-value]

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last-position logits ``(B, V)`` in the model dtype."""

        def run() -> torch.Tensor:
            if self.kernel is not None:
                return self.kernel.logits(tokens)
            with torch.no_grad():
                return self.adapter.logits(tokens)

        return self._charged(tokens, False, run)  # type: ignore[return-value]

    def logits_and_grad(self, tokens: torch.Tensor, target: int) -> tuple[torch.Tensor, OnehotGradient]:
        """Logits ``(B, V)`` and the gradient of ``logit_target`` w.r.t. the one-hot input.

        Costs ``B`` forwards and ``B`` backwards.
        """
        if self.kernel is not None:
            u = self.adapter.W_U.detach()[:, target]  # logit_t = x . W_U[:, t] + b_t: same gradient
            return self._charged(tokens, True, lambda: self._linear_score_grad(tokens, u))  # type: ignore[return-value]
        return self._charged(
            tokens, True, lambda: self._onehot_grad(tokens, lambda x, logits: logits[:, target])
        )  # type: ignore[return-value]

    def score_and_grad(self, tokens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, OnehotGradient]:
        """Logits ``(B, V)`` and the one-hot gradient of the linear score ``s(x) = u . x``.

        ``x`` is the final activation and ``u`` a ``(d,)`` vector. Costs ``B`` forwards and ``B`` backwards.
        """
        u = torch.as_tensor(u, dtype=self.adapter.dtype, device=self.adapter.device)
        if self.kernel is not None:
            return self._charged(tokens, True, lambda: self._linear_score_grad(tokens, u))  # type: ignore[return-value]
        return self._charged(
            tokens, True, lambda: self._onehot_grad(tokens, lambda x, logits: x @ u)
        )  # type: ignore[return-value]

    def _linear_score_grad(self, tokens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, OnehotGradient]:
        """Fast path (uncharged): logits and the one-hot gradient of ``u . x``."""
        assert self.kernel is not None
        x, G = self.kernel.score_gradient(tokens, u)
        logits = self.kernel.unembed(x)
        return logits, OnehotGradient(G, self.adapter.W_E.detach().T)

    def _onehot_grad(
        self, tokens: torch.Tensor, score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, OnehotGradient]:
        """Logits and the one-hot gradient of ``sum_b score(x, logits)[b]`` (uncharged)."""
        a = self.adapter
        with torch.enable_grad():
            if _default_onehot(a):
                emb = (a.W_E.detach()[tokens]).requires_grad_(True)
                x = a.final_activation_from_embeddings(emb + a.positional(tokens.shape[-1]))
                logits = a.logits_from_final(x)
                (grad,) = torch.autograd.grad(score(x, logits).sum(), emb)
                return logits.detach(), OnehotGradient(grad.detach(), a.W_E.detach().T)
            onehot = torch.nn.functional.one_hot(tokens, a.vocab_size).to(a.dtype)
            onehot.requires_grad_(True)
            x = a.final_activation_from_embeddings(a.embed_onehot(onehot))
            logits = a.logits_from_final(x)
            (grad,) = torch.autograd.grad(score(x, logits).sum(), onehot)
            return logits.detach(), OnehotGradient(grad.detach(), None)
