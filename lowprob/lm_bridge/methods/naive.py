"""Naive Monte Carlo: ``p_hat = (1/n) sum_j 1[argmax logits(x_j) = t]``, ``x_j ~ D`` i.i.d.

Unbiased, with standard error ``sqrt(p_hat (1 - p_hat) / n)``; it sees no hit at all when
``p << 1/n`` (Wu & Hilton 2024, arXiv 2410.13211, section 3.1). Costs ``n = budget``
forwards, no backwards.
"""

from __future__ import annotations

import math

import numpy as np

from lowprob.lm_bridge.budget import CountedModel, argmax_is
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem, torch_generator

__all__ = ["NaiveSampling"]


@register_lm_method("naive")
class NaiveSampling(LMMethodBase):
    """Plain sampling from the input distribution; ``budget`` samples in batches of ``batch_size``."""

    def __init__(self, *, batch_size: int = 1024) -> None:
        super().__init__(batch_size=batch_size)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        gen = torch_generator(rng, problem.device)
        hits = 0
        for b in self._batches(budget, self.batch_size):
            tokens = problem.spec.sample(b, gen, device=problem.device)
            hits += int(argmax_is(model.logits(tokens), problem.target).sum())
        p = hits / budget
        return MethodResult(
            log_value=math.log(p) if hits else -math.inf,
            std_error=math.sqrt(p * (1 - p) / budget),
            diagnostics={"hits": hits},
        )
