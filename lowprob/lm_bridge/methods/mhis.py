"""Metropolis–Hastings Importance Sampling (MHIS; Wu & Hilton 2024, arXiv 2410.13211, section 3.1).

Run ``B`` parallel Markov chains with stationary law ``q(x) ∝ p(x) exp(s(x) / T)``,
``s(x) = logit_t(x)``, using gradient-informed single-token proposals: pick a random
non-constant position ``i`` and propose ``x_i' ~ phi(v) ∝ p_i(v) exp(g_i(v) / T)`` with
``g_i(v) = d s / d onehot_{i,v}`` at the current ``x``; accept with probability

    min(1, exp((s(x') - s(x)) / T) p_i(x_i') phi'(x_i) / (p_i(x_i) phi(x_i'))),

where ``phi'`` is the proposal computed at ``x'``. After burn-in, with samples ``x_1..x_N``,

    p_hat = sum_j 1[argmax logits(x_j) = t] exp(-s(x_j)/T) / sum_j exp(-s(x_j)/T),

because ``E_q[exp(-s/T)] = 1 / E_p[exp(s/T)]``. This is **consistent** (as ``N -> inf``)
but **not unbiased** (a ratio of averages over correlated samples). Both sums are
log-sum-exps in float64.

Cost: one initial batch plus one batch per step, burn-in included:
``B (1 + steps)`` forwards and as many backwards, ``<= budget``. Differences from the
published code: positions are drawn among the non-constant positions only (a constant
position's proposal is the identity, a wasted model call); burn-in is a fraction of the
steps. The temperature was tuned on the development distributions only (docs/lm_methods.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lowprob.errors import BudgetError, InputValueError
from lowprob.lm_bridge.budget import CountedModel
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem, torch_generator

__all__ = ["MHIS"]

DEFAULT_TEMPERATURE = 1.0  # tuned on the development families (docs/lm_methods.md)


@register_lm_method("mhis")
class MHIS(LMMethodBase):
    """MHIS with ``batch_size`` chains, temperature ``temperature`` and burn-in ``burn_in_fraction`` of the steps."""

    def __init__(
        self, *, temperature: float = DEFAULT_TEMPERATURE, batch_size: int = 32, burn_in_fraction: float = 0.25
    ) -> None:
        super().__init__(batch_size=batch_size)
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
            raise InputValueError(f"temperature must be a finite positive number, got {temperature!r}.")
        if not (isinstance(burn_in_fraction, int | float) and 0 <= burn_in_fraction < 1):
            raise InputValueError(f"burn_in_fraction must be in [0, 1), got {burn_in_fraction!r}.")
        self.temperature = float(temperature)
        self.burn_in_fraction = float(burn_in_fraction)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        B, T = self.batch_size, self.temperature
        steps = budget // B - 1
        if steps < 1:
            raise BudgetError(
                f"budget={budget!r} allows no MHIS step with {B} chains (needs >= {2 * B}); "
                "increase the budget or reduce batch_size."
            )
        burn = int(self.burn_in_fraction * steps)
        gen = torch_generator(rng, problem.device)
        dev, t = problem.device, problem.target
        logp = problem.log_probs_matrix()
        rand_pos = torch.as_tensor(problem.spec.random_positions, dtype=torch.long, device=dev)
        ar = torch.arange(B, device=dev)

        cur = problem.spec.sample(B, gen, device=dev)
        logits, grad = model.logits_and_grad(cur, t)
        s = logits[:, t].to(torch.float64)
        hit = logits.argmax(-1) == t
        kept_s, kept_hit = [], []
        accepted = 0
        for step in range(steps):
            if rand_pos.numel():
                pos = rand_pos[torch.randint(rand_pos.numel(), (B,), generator=gen, device=dev)]
                log_fwd = torch.log_softmax(logp[pos] + grad.rows(pos).to(torch.float64) / T, -1)
                new = torch.multinomial(log_fwd.exp(), 1, generator=gen).squeeze(-1)
                prop = cur.clone()
                prop[ar, pos] = new
            else:  # a constant spec: every proposal is the current state
                pos, prop = torch.zeros(B, dtype=torch.long, device=dev), cur.clone()
            logits2, grad2 = model.logits_and_grad(prop, t)
            if rand_pos.numel():
                s2 = logits2[:, t].to(torch.float64)
                log_rev = torch.log_softmax(logp[pos] + grad2.rows(pos).to(torch.float64) / T, -1)
                old = cur[ar, pos]
                log_acc = (
                    (s2 - s) / T + logp[pos, new] - logp[pos, old] + log_rev[ar, old] - log_fwd[ar, new]
                )
                u = torch.rand(B, generator=gen, device=dev, dtype=torch.float64)
                acc = torch.log(u) < log_acc
                cur = torch.where(acc[:, None], prop, cur)
                s = torch.where(acc, s2, s)
                hit = torch.where(acc, logits2.argmax(-1) == t, hit)
                grad = grad.where(acc, grad2)
                accepted += int(acc.sum())
            if step >= burn:
                kept_s.append(s.clone())
                kept_hit.append(hit.clone())
        s_all, hit_all = torch.cat(kept_s), torch.cat(kept_hit)
        neg = -s_all / T
        if bool(hit_all.any()):
            log_p = float(torch.logsumexp(neg[hit_all], 0) - torch.logsumexp(neg, 0))
        else:
            log_p = -math.inf
        return MethodResult(
            log_value=log_p,
            diagnostics={
                "acceptance_rate": accepted / (steps * B),
                "steps": steps,
                "burn_in_steps": burn,
                "kept_samples": int(s_all.numel()),
                "hit_fraction": float(hit_all.double().mean()),
            },
            samples=B * (steps + 1),
        )
