"""Shared plumbing of the LM methods: validation, seeding, counting and the result.

A method subclasses :class:`LMMethodBase` and implements ``_run(problem, model, rng,
budget)``, returning a :class:`MethodResult`. The base class validates the problem, the
budget (``budget >= batch_size``, else :class:`~lowprob.errors.BudgetError`) and the
seed, builds the :class:`~lowprob.lm_bridge.budget.CountedModel` through which every
model call is charged, and turns the result into an :class:`~lowprob.Estimate` whose cost
is what was actually spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputTypeError
from lowprob.estimate import Estimate
from lowprob.lm_bridge.budget import CallBudget, CountedModel, check_batch_fits
from lowprob.lm_bridge.problem import LMProblem, torch_generator

__all__ = ["LMMethodBase", "MethodResult", "sample_final_activations"]


@dataclass
class MethodResult:
    """What ``_run`` returns: ``log p_hat`` (``-inf`` for 0), optional std. error, diagnostics."""

    log_value: float
    std_error: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    samples: int | None = None


class LMMethodBase:
    """Base class: ``estimate(problem, budget, *, seed) -> Estimate`` with budget in forwards.

    Attributes:
        name: the registry name (set by :func:`~lowprob.lm_bridge.methods.registry.register_lm_method`).
        batch_size: sequences per model call batch; the budget must be at least one batch.
    """

    name: ClassVar[str] = ""
    budget_unit: ClassVar[str] = "model_calls"

    def __init__(self, *, batch_size: int = 256) -> None:
        self.batch_size = check_int("batch_size", batch_size, minimum=1)

    def params(self) -> dict[str, Any]:
        """Hyperparameters (for records)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def estimate(self, problem: LMProblem, budget: int, *, seed: Any = None, forward: str = "auto") -> Estimate:
        """Estimate ``P[argmax logits = target]`` with at most ``budget`` forward passes.

        ``forward`` picks the model forward (:class:`~lowprob.lm_bridge.budget.CountedModel`):
        ``"auto"`` runs the tabulated GPT-2 forward where the model allows it and the adapter
        otherwise; ``"adapter"`` / ``"tabulated"`` force one. The estimate's
        ``diagnostics["forward"]`` records which ran (``"forward_note"``: why not the fast one).
        """
        if not isinstance(problem, LMProblem):
            raise InputTypeError(
                f"problem must be an LMProblem(adapter, spec, target), got {type(problem).__name__}."
            )
        budget, _ = check_batch_fits(budget, self.batch_size, method=self.name)
        rng = as_generator(seed)
        counter = CallBudget(budget)
        model = CountedModel(problem.adapter, counter, spec=problem.spec, forward=forward)
        result = self._run(problem, model, rng, budget)
        cost = counter.cost(samples=result.samples)
        diagnostics = {"params": self.params(), **model.forward_diagnostics(), **result.diagnostics}
        lv = float(result.log_value)
        return Estimate(
            value=math.exp(lv) if lv > -745 else 0.0,
            log_value=lv,
            std_error=result.std_error,
            cost=cost,
            method=self.name,
            budget=budget,
            budget_unit=self.budget_unit,
            diagnostics=diagnostics,
        )

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _run")

    def _sample_activations(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, n: int
    ) -> torch.Tensor:
        """``n`` (>= 2) sampled final activations ``(n, d)`` float64, for methods that fit them."""
        check_batch_fits(n, 2, method=self.name)
        gen = torch_generator(rng, problem.device)
        return sample_final_activations(problem, model, n, self.batch_size, gen)

    @staticmethod
    def _batches(total: int, batch_size: int) -> list[int]:
        """Split ``total`` into batch sizes ``[batch_size, ..., remainder]``."""
        sizes = [batch_size] * (total // batch_size)
        if total % batch_size:
            sizes.append(total % batch_size)
        return sizes


def sample_final_activations(
    problem: LMProblem, model: CountedModel, n: int, batch_size: int, gen: torch.Generator
) -> torch.Tensor:
    """``n`` i.i.d. final activations ``x ~ M(D)`` (after the final norm): ``(n, d)`` float64.

    Costs ``n`` forwards, run in batches of ``batch_size``.
    """
    out = []
    for b in LMMethodBase._batches(n, batch_size):
        tokens = problem.spec.sample(b, gen, device=problem.device)
        out.append(model.final_activations(tokens).to(torch.float64))
    return torch.cat(out)
