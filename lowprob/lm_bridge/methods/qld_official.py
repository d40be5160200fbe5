"""QLD as published, bug for bug. Use only to reproduce published numbers; ship :mod:`.qld`.

This reimplements the behaviour of the official ``QLD`` of Wu & Hilton 2024 (arXiv
2410.13211, code ``alignment-research-center/low-probability-estimation``) so that its
numbers can be reproduced on our models. It differs from the corrected :mod:`.qld` in:

**Bug 1 — whitening.** The official code computes ``u = x - m A^{-T}`` (operator
precedence: it subtracts the whitened *mean* from the raw sample) instead of
``z = (x - m) A^{-T}``. So ``u`` is not white at all: it is ``x`` shifted by a constant,
while the constraint rows and biases are still built as if ``u`` were white
(``pullbacks = A^T W_U``, ``biases = m W_U``). The modelled logits are therefore
``x A^T W_U`` rather than ``x W_U``.

**Bug 2 — bound numerators.** After splitting ``u_i = a_i d + b_i`` the bounds on the
``d`` coordinate must use the orthogonal part ``b_i``:
``num_ik = P_k . b_i + c_k``. The official code uses the full ``u_i``
(``num_ik = P_k . u_i + c_k``), which double-counts the ``a_i`` component.

Faithfully reproduced heuristics (not bugs in the same sense, but behaviour):

* the shortest accepting vector is found by random cyclic projection onto violated
  constraints (feasibility tolerance ``+1e-9`` as in the official experiments, 200
  shrink steps by ``0.95``), not by an exact QP; the random choices use our seeded
  generator instead of torch's global one;
* the target's own constraint row is given bias 100 during the projection;
* the jitter is an absolute ``1e-5 I`` and the computation runs in the activations' dtype
  (float32 for our models);
* the unembedding bias ``b_U`` is ignored (zero for GPT-2-style models, so harmless there);
* counting is ``searchsorted(a, hi) - searchsorted(a, lo)`` (``lo <= a_j < hi``) clipped
  at 0, averaged over ``i``, with ``n`` a multiple of ``batch_size``;
* when the target already wins at the mean there is no violated constraint and the
  official code crashes; here that raises :class:`~lowprob.errors.NumericalError`, as does
  failing to find a feasible point.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lowprob.errors import NumericalError
from lowprob.lm_bridge.budget import CountedModel, check_batch_fits
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem, torch_generator

__all__ = ["OfficialQLD", "official_qld_from_activations", "random_constraint_projection"]


def random_constraint_projection(
    P: torch.Tensor,
    biases: torch.Tensor,
    gen: torch.Generator,
    *,
    n_reps: int = 200,
    tol: float = 1e-9,
    factor: float = 0.95,
) -> torch.Tensor:
    """The official heuristic for a short point of ``{u : P u + biases >= 0}``.

    Repeatedly project onto a random violated constraint (violated meaning ``< tol``);
    during the first ``n_reps`` steps shrink each feasible point by ``factor``; return the
    first feasible point found afterwards.
    """
    n, d = P.shape
    x = torch.zeros(d, dtype=P.dtype, device=P.device)
    for step in range(n_reps * 100):
        cons = P @ x + biases
        viol = torch.where(cons < tol)[0]
        if viol.numel() == 0:
            raise NumericalError(
                "qld_official: no violated constraint (the target already wins at the mean); "
                "the published code crashes here. Use the corrected method 'qld'."
            )
        k = viol[torch.randint(viol.numel(), (1,), generator=gen, device=gen.device).to(P.device)]
        p_k = P[k]
        x = x + ((-cons[k]) / (p_k**2).sum() * p_k).squeeze(0)
        if bool(torch.all(P @ x + biases >= 0)):
            if step < n_reps:
                x = x * factor
            else:
                return x
    raise NumericalError("qld_official: the projection heuristic did not find a feasible point.")


def official_qld_from_activations(
    x: torch.Tensor, W_U: torch.Tensor, target: int, gen: torch.Generator, *, batch_size: int = 512
) -> tuple[float, dict]:
    """Published QLD on activations ``x`` ``(n, d)`` (see the module docstring for its bugs)."""
    n, d_model = x.shape
    if n % batch_size:
        raise NumericalError(f"qld_official needs n % batch_size == 0, got n={n!r}, batch_size={batch_size!r}.")
    W_U = W_U.to(x.dtype)
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / n
    A = torch.linalg.cholesky(cov + 1e-5 * torch.eye(d_model, dtype=x.dtype, device=x.device))
    u_samps = x - mean @ torch.inverse(A.T)  # BUG 1 (precedence): should be (x - mean) @ inv(A.T)
    pullbacks = W_U.T @ A
    biases = W_U.T @ mean
    Pd = pullbacks[target].unsqueeze(0) - pullbacks
    bd = biases[target].unsqueeze(0) - biases
    bd[target] = 100
    dvec = random_constraint_projection(Pd, bd, gen)
    dvec = dvec / torch.linalg.vector_norm(dvec)
    a_sorted = (u_samps @ dvec).sort().values
    diffT = Pd.T  # (d, V)
    den = -dvec @ diffT
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for y in u_samps.split(batch_size):
        numerator = y @ diffT + biases[target] - biases  # BUG 2: should use y - (y @ d) d
        ratio = numerator / den
        lower = torch.where(den < 0, ratio, -math.inf).amax(-1)
        upper = torch.where(den > 0, ratio, math.inf).amin(-1)
        cnt = torch.searchsorted(a_sorted, upper) - torch.searchsorted(a_sorted, lower)
        total += cnt.clamp_min(0).to(torch.float64).sum() / n
    p = float(total) / n
    return p, {"n": int(n)}


@register_lm_method("qld_official")
class OfficialQLD(LMMethodBase):
    """Bug-compatible published QLD on ``budget`` samples (a multiple of ``batch_size``)."""

    def __init__(self, *, batch_size: int = 512) -> None:
        super().__init__(batch_size=batch_size)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        budget, bs = check_batch_fits(budget, self.batch_size, method=self.name)
        n = budget - budget % bs
        gen = torch_generator(rng, problem.device)
        xs = []
        for _ in range(n // bs):
            tokens = problem.spec.sample(bs, gen, device=problem.device)
            xs.append(model.final_activations(tokens))
        x = torch.cat(xs)
        p, diag = official_qld_from_activations(x, problem.adapter.W_U.detach(), problem.target, gen, batch_size=bs)
        return MethodResult(log_value=math.log(p) if p > 0 else -math.inf, diagnostics=diag)
