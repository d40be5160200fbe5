"""Gaussian Logit Difference (GLD): ``p_hat = Phi(mu / sigma)``.

With ``x`` the final activation and ``delta(x) = logit_t(x) - max_v logit_v(x) <= 0``,
fit ``delta ~ N(mu, sigma^2)`` on ``n = budget`` samples (sample mean and standard
deviation, float64) and return ``log Phi(mu / sigma)`` computed with ``log_ndtr`` so tiny
values stay exact (Wu & Hilton 2024, arXiv 2410.13211, section 3.2, the baseline).
Costs ``n`` forwards. A biased extrapolation: calibrate it with the log-affine fit of
:mod:`lowprob.lm_bridge.scoring`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import log_ndtr

from lowprob.lm_bridge.budget import CountedModel
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem

__all__ = ["GaussianLogitDifference", "gaussian_logit_difference"]


def gaussian_logit_difference(
    x: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor, target: int
) -> tuple[float, float, float]:
    """``(log Phi(mu/sigma), mu, sigma)`` from activations ``x`` ``(n, d)`` (float64 inside)."""
    x, W_U, b_U = (t.to(torch.float64) for t in (x, W_U, b_U))
    logits = x @ W_U + b_U
    delta = logits[:, target] - logits.max(-1).values
    mu = float(delta.mean())
    sigma = float(delta.std()) if delta.numel() > 1 else 0.0
    if sigma == 0.0:  # delta is constant: the target always (mu = 0) or never wins
        return (0.0 if mu >= 0 else -math.inf), mu, sigma
    return float(log_ndtr(mu / sigma)), mu, sigma


@register_lm_method("gld")
class GaussianLogitDifference(LMMethodBase):
    """GLD on ``budget`` sampled final activations."""

    def __init__(self, *, batch_size: int = 1024) -> None:
        super().__init__(batch_size=batch_size)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        x = self._sample_activations(problem, model, rng, budget)
        W_U, b_U = problem.unembedding64()
        log_p, mu, sigma = gaussian_logit_difference(x, W_U, b_U, problem.target)
        return MethodResult(log_value=log_p, diagnostics={"mu": mu, "sigma": sigma})
