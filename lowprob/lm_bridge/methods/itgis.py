"""Independent Token Gradient Importance Sampling (ITGIS; Wu & Hilton 2024, arXiv 2410.13211, section 3.1).

Importance sampling from an independent-token proposal that tilts each position's law
towards tokens whose one-hot gradient raises the target logit:

    q_i(v) = p_i(v) exp(s_i(v) / T_k) / Z_i,      p_hat = (1/n) sum_j 1[argmax logits(x_j) = t] prod_i p_i(x_ji) / q_i(x_ji).

``s`` is an exponentially weighted moving sum (decay ``gamma``) of the batch-mean
gradients ``g_i(v) = d logit_t / d onehot_{i,v}`` from previous batches, and
``T_k = T (1 - gamma^k) / (1 - gamma)`` rescales the moving sum to a moving average so the
user temperature ``T`` acts on one gradient's scale. The first batch samples from ``D``
itself. Each batch's proposal depends only on earlier batches, so every term has
conditional mean ``p``: the estimator is **unbiased**. All weights are kept in log space
(float64). Costs ``n = budget`` forwards and ``n`` backwards.

The temperature was tuned on the development distributions only (see docs/lm_methods.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lowprob.errors import InputValueError
from lowprob.lm_bridge.budget import CountedModel, argmax_is
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem, torch_generator

__all__ = ["ITGIS", "weighted_mean_log"]

DEFAULT_TEMPERATURE = 0.25  # tuned on the development families (docs/lm_methods.md)


def weighted_mean_log(log_w: torch.Tensor, hit: torch.Tensor) -> tuple[float, float | None]:
    """``(log mean_j w_j 1[hit_j], std error of that mean)`` from log-weights, float64."""
    n = log_w.numel()
    if not bool(hit.any()):
        return -math.inf, 0.0
    lw = log_w[hit].to(torch.float64)
    M = float(lw.max())
    v = torch.zeros(n, dtype=torch.float64, device=log_w.device)
    v[hit] = torch.exp(lw - M)
    mean = float(v.mean())
    std = float(v.std()) if n > 1 else 0.0
    return M + math.log(mean), math.exp(M) * std / math.sqrt(n)


@register_lm_method("itgis")
class ITGIS(LMMethodBase):
    """ITGIS with temperature ``temperature``, batches of ``batch_size``, EMA decay ``decay``."""

    def __init__(self, *, temperature: float = DEFAULT_TEMPERATURE, batch_size: int = 256, decay: float = 0.9) -> None:
        super().__init__(batch_size=batch_size)
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
            raise InputValueError(f"temperature must be a finite positive number, got {temperature!r}.")
        if not (isinstance(decay, int | float) and 0 <= decay < 1):
            raise InputValueError(f"decay must be in [0, 1), got {decay!r}.")
        self.temperature = float(temperature)
        self.decay = float(decay)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        gen = torch_generator(rng, problem.device)
        logp = problem.log_probs_matrix()  # (T, V) float64
        T_len, V = logp.shape
        rand_pos = problem.spec.random_positions
        const = torch.as_tensor(
            [0 if i in rand_pos else int(problem.spec.positions[i].token) for i in range(T_len)],
            device=problem.device,
        )
        scores = torch.zeros(T_len, V, dtype=torch.float64, device=problem.device)
        log_ws, hits = [], []
        for k, b in enumerate(self._batches(budget, self.batch_size)):
            t_k = self.temperature * (1 - self.decay**k) / (1 - self.decay) if k > 0 else 1.0
            logq = torch.log_softmax(logp + scores / t_k, dim=-1)  # -inf off support
            tokens = const.expand(b, T_len).clone()
            log_w = torch.zeros(b, dtype=torch.float64, device=problem.device)
            for i in rand_pos:
                x_i = torch.multinomial(logq[i].exp(), b, replacement=True, generator=gen)
                tokens[:, i] = x_i
                log_w += logp[i, x_i] - logq[i, x_i]
            logits, grad = model.logits_and_grad(tokens, problem.target)
            hits.append(argmax_is(logits, problem.target))
            log_ws.append(log_w)
            scores = self.decay * scores + grad.batch_sum().to(torch.float64) / b
        log_p, se = weighted_mean_log(torch.cat(log_ws), torch.cat(hits))
        return MethodResult(
            log_value=log_p, std_error=se, diagnostics={"hits": int(torch.cat(hits).sum())}
        )
