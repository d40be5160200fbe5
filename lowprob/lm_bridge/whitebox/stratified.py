"""``wb-strat``: a last-token-conditioned Gaussian activation model, with exact mixture weights.

A single Gaussian fit of the final activation ``x`` misses its multi-modal tails: the token at
the last free position moves ``x`` by far more than the rest of the context does (it enters
the residual stream directly, and its own attention query). So condition on it. With ``J``
the last position whose law is not a constant, and ``q_J(v)`` its exact token probabilities
from the spec, the activation model is the mixture with *known* labels and weights::

    x | x_J = v  ~  N(m_v, S),        p_M = sum_v q_J(v) P_{N(m_v, S)}[A x + c > 0]

with ``m_v`` the mean of ``n_v`` activations sampled from ``D`` conditioned on ``x_J = v`` (the
other positions drawn from their own laws) and ``S`` the pooled within-stratum covariance
(``sum_v sum_i (x_vi - m_v)(x_vi - m_v)^T / (n - #strata)``, regularised as in
:func:`~.activation_models.sample_covariance`). Every stratum gets ``min_per_stratum`` samples,
the rest of the budget is allocated proportionally to ``q_J`` (so the estimate does not rely on
a stratum never seen). Each stratum's polytope probability is its ADF value (:mod:`.adf`, one
pass of at most ``max_competitors`` steps, shared ``A_k S A_k^T``); the ``refine`` strata
contributing most are then recomputed by top-K tilting with the unbiased IS correction
(:func:`~.polytope.corrected_gaussian_probability`).

**Screening.** ADF's first factor is ``1 - max_k danger_k``, so ``log P_v <= U_v = min_k log
Phi(mu_k / s_k)`` (one ``(V, d)`` product per stratum). Strata are filtered in decreasing order of
``log q_v + U_v``; once the remaining bounds add up to less than ``screen_tol`` (1e-3) of the
total so far, the rest are skipped (their ADF values are at most that much of the answer).

``wb-strat-is`` (:class:`WhiteboxStratifiedIS`) is the hybrid: the same model as an importance
proposal for the last free token, with exact hit checks, so the estimate is unbiased.

Like the other pure white-box methods ``wb-strat`` is biased (the model is not the law of ``x``) and is
meant to be calibrated by the bench's log-affine fit; ``std_error`` is ``None``. Cost: exactly
``budget`` forwards through :class:`~lowprob.lm_bridge.budget.CountedModel`; the activation-space
work is reported in ``diagnostics["activation_flops"]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp

from lowprob._validation import check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.gaussian_polytope import log_normal_le_zero
from lowprob.lm_bridge.budget import CountedModel
from lowprob.lm_bridge.distributions import CategoricalPosition
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem, torch_generator
from lowprob.lm_bridge.whitebox.activation_models import GaussianModel, _check_regularization
from lowprob.lm_bridge.whitebox.adf import adf_over_competitors
from lowprob.lm_bridge.whitebox.final_layer import FinalLayer
from lowprob.lm_bridge.whitebox.polytope import corrected_gaussian_probability

__all__ = ["WhiteboxStratified", "WhiteboxStratifiedIS", "allocate_strata", "last_free_position"]


def last_free_position(problem: LMProblem) -> int:
    """Index of the last position of the spec whose law has more than one token."""
    free = [i for i, p in enumerate(problem.spec.positions) if isinstance(p, CategoricalPosition)
            and int(np.count_nonzero(p.normalized > 0)) > 1]
    if not free:
        raise InputValueError("the spec has no free position (every position is a constant); nothing to stratify.")
    return free[-1]


def allocate_strata(q: np.ndarray, budget: int, min_per_stratum: int) -> np.ndarray:
    """``n_v = min_per_stratum + floor(q_v * rest)``, the remainder to the largest ``q_v``; sums to ``budget``."""
    S = q.size
    rest = budget - S * min_per_stratum
    if rest < 0:
        raise BudgetError(
            f"budget={budget!r} is below {S} strata x min_per_stratum={min_per_stratum} = {S * min_per_stratum}; "
            "pass a larger budget or a smaller min_per_stratum."
        )
    n = min_per_stratum + np.floor(q * rest).astype(np.int64)
    left = budget - int(n.sum())
    order = np.lexsort((np.arange(S), -q))
    n[order[:left]] += 1
    return n


@register_lm_method("wb-strat")
class WhiteboxStratified(LMMethodBase):
    """Gaussian per last-free-token stratum, shared covariance, exact stratum weights (module doc)."""

    def __init__(
        self,
        *,
        batch_size: int = 1024,
        regularization: float = 1e-6,
        min_per_stratum: int = 8,
        refine: int = 4,
        K: int = 16,
        n_is: int = 2**12,
        max_competitors: int = 1024,
        screen_tol: float = 1e-3,
    ) -> None:
        super().__init__(batch_size=batch_size)
        self.regularization = _check_regularization(regularization)
        self.min_per_stratum = check_int("min_per_stratum", min_per_stratum, minimum=2)
        self.refine = check_int("refine", refine, minimum=0)
        self.K = check_int("K", K, minimum=1)
        self.n_is = check_int("n_is", n_is, minimum=2)
        self.max_competitors = check_int("max_competitors", max_competitors, minimum=1)
        if not (isinstance(screen_tol, float) and 0 < screen_tol < 1):
            raise InputValueError(f"screen_tol must be a float in (0, 1), got {screen_tol!r}.")
        self.screen_tol = screen_tol

    def _fit(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Spend ``budget`` forwards; ``(J, tokens, q, log P_v, diagnostics)`` of the stratified model."""
        J = last_free_position(problem)
        pos = problem.spec.positions[J]
        keep = pos.normalized > 0
        toks, q = np.asarray(pos.tokens)[keep], pos.normalized[keep]
        n_v = allocate_strata(q, budget, self.min_per_stratum)
        labels = np.repeat(np.arange(q.size), n_v)
        gen = torch_generator(rng, problem.device)
        xs = []
        for s in range(0, budget, self.batch_size):
            lab = labels[s : s + self.batch_size]
            tokens = problem.spec.sample(lab.size, gen, device=problem.device)
            tokens[:, J] = tokens.new_tensor(toks[lab])  # D conditioned on x_J = v
            xs.append(model.final_activations(tokens).double().cpu().numpy())
        x = np.concatenate(xs)
        sums = np.zeros((q.size, x.shape[1]))
        np.add.at(sums, labels, x)
        means = sums / n_v[:, None]
        xc = x - means[labels]
        S = xc.T @ xc / max(budget - q.size, 1)
        gm = GaussianModel.from_moments(means.mean(0), 0.5 * (S + S.T), regularization=self.regularization)
        layer = FinalLayer.from_problem(problem)
        A, c = layer.halfspaces()
        AL = A @ gm.chol
        gap_var = np.einsum("ij,ij->i", AL, AL)
        flops = 2.0 * A.size * layer.d
        # screening: ADF's first factor is 1 - (largest danger), so log P_v <= U_v = min_k log Phi(mu_k / s_k);
        # strata are filtered in decreasing order of log q_v + U_v until the rest cannot add 1e-3 of the total
        sd = np.sqrt(gap_var)
        U = np.array([float(np.min(log_normal_le_zero(-(A @ means[v] + c), sd))) for v in range(q.size)])
        flops += 2.0 * A.size * q.size
        bound = np.log(q) + U
        order = np.lexsort((np.arange(q.size), -bound))
        log_pv = np.full(q.size, -np.inf)
        total = -np.inf
        screened = 0
        for i, v in enumerate(order):
            rest = float(logsumexp(bound[order[i:]]))
            if np.isfinite(total) and rest < total + math.log(self.screen_tol):
                screened = q.size - i
                break
            trace = adf_over_competitors(GaussianModel(means[v], gm.cov, gm.chol), layer, gap_var=gap_var,
                                         max_competitors=min(self.max_competitors, layer.V - 1))
            log_pv[v] = trace.final.log_mass
            flops += trace.flops
            total = float(np.logaddexp(total, math.log(q[v]) + log_pv[v]))
        contrib = np.log(q) + log_pv
        refined: list[int] = []
        if self.refine and np.isfinite(contrib).any():
            for v in np.lexsort((np.arange(q.size), -contrib))[: self.refine]:
                if not np.isfinite(contrib[v]):
                    break
                est = corrected_gaussian_probability(
                    GaussianModel(means[v], gm.cov, gm.chol), layer, K=min(self.K, layer.V - 1),
                    n_samples=self.n_is, seed=rng, device=problem.device,
                )
                log_pv[v] = est.log_probability
                flops += est.flops
                refined.append(int(toks[v]))
            contrib = np.log(q) + log_pv
        top = np.lexsort((np.arange(q.size), -contrib))[:5]
        diag = {
            "stratified_position": J, "n_strata": int(q.size), "refined_tokens": refined,
            "screened_out": screened, "top_strata": {int(toks[v]): float(contrib[v]) for v in top},
            "activation_flops": flops, "polytope_method": "strata-adf+tilt-is",
        }
        return J, toks, q, log_pv, diag

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        _, _, q, log_pv, diag = self._fit(problem, model, rng, budget)
        contrib = np.log(q) + log_pv
        lp = float(logsumexp(contrib)) if np.isfinite(contrib).any() else -math.inf
        return MethodResult(log_value=lp, std_error=None, samples=budget, diagnostics=diag)


@register_lm_method("wb-strat-is")
class WhiteboxStratifiedIS(LMMethodBase):
    """Hybrid: the ``wb-strat`` model as an importance proposal for the last free token (unbiased).

    ``fit_fraction`` of the budget fits the stratified model (as ``wb-strat``), giving model
    probabilities ``P_v`` per token ``v`` of the last free position ``J``. The rest draws, in
    batches, ``x_J ~ r`` and every other position from its own law, and returns
    ``p_hat = mean_j [q(x_J) / r_j(x_J)] 1[argmax logits(x_j) = t]``.

    **Proposal.** With only the stratum importance-sampled, ``Var = sum_v q_v^2 P_v / r_v - p^2``,
    minimised by ``r_v ∝ q_v sqrt(P_v)`` (Lagrange; by Cauchy–Schwarz it never loses to ``q``,
    and gains a factor ``q_v*`` when one stratum holds the mass). Note ``r ∝ q P`` would give
    exactly the naive variance ``p - p^2``. ``P_v`` is unknown, so each batch uses
    ``P~_v = (S_v + beta P_v^model) / (N_v + beta)`` (``S_v``, ``N_v``: hits and draws of stratum
    ``v`` in earlier batches; the model is worth ``beta = prior_strength`` draws) and the
    defensive mixture ``r = (1 - eps) q sqrt(P~) / sum + eps q`` (weights ``<= 1/eps``). Each
    batch's proposal depends only on earlier batches, so every term has conditional mean ``p``:
    the estimator is **unbiased** whatever the model. Standard error: the sample standard
    deviation of the weighted hits over ``sqrt(n)`` (as ITGIS).
    """

    def __init__(
        self,
        *,
        fit_fraction: float = 0.25,
        defensive: float = 0.1,
        prior_strength: float = 64.0,
        batch_size: int = 1024,
        **strat: Any,
    ) -> None:
        super().__init__(batch_size=batch_size)
        for name, v in (("fit_fraction", fit_fraction), ("defensive", defensive)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise InputValueError(f"{name} must lie in (0, 1), got {v!r}.")
        self.fit_fraction = float(fit_fraction)
        self.defensive = float(defensive)
        if isinstance(prior_strength, bool) or not isinstance(prior_strength, (int, float)) or not prior_strength > 0:
            raise InputValueError(f"prior_strength must be a number > 0 (draws the model is worth), got {prior_strength!r}.")
        self.prior_strength = float(prior_strength)
        self._strat = WhiteboxStratified(batch_size=batch_size, **strat)
        self.strat = self._strat.params()

    def _proposal(self, q: np.ndarray, P_model: np.ndarray, S: np.ndarray, N: np.ndarray) -> np.ndarray:
        """``r = (1 - eps) q sqrt(P~) / sum + eps q`` with ``P~ = (S + beta P_model) / (N + beta)``."""
        P = (S + self.prior_strength * P_model) / (N + self.prior_strength)
        a = q * np.sqrt(P)
        r = (1 - self.defensive) * a / a.sum() + self.defensive * q if a.sum() > 0 else q.copy()
        return r / r.sum()

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        n_fit = int(self.fit_fraction * budget)
        n_is = budget - n_fit
        J, toks, q, log_pv, diag = self._strat._fit(problem, model, rng, n_fit)
        P_model = np.exp(log_pv)  # 0 where screened out or empty
        S = np.zeros(q.size)  # hits per stratum so far
        N = np.zeros(q.size)  # draws per stratum so far
        gen = torch_generator(rng, problem.device)
        vals = []
        for b in self._batches(n_is, self.batch_size):
            r = self._proposal(q, P_model, S, N)
            lab = rng.choice(q.size, size=b, p=r)
            tokens = problem.spec.sample(b, gen, device=problem.device)
            tokens[:, J] = tokens.new_tensor(toks[lab])
            hit = (model.logits(tokens).argmax(-1) == problem.target).cpu().numpy()
            vals.append(np.where(hit, q[lab] / r[lab], 0.0))
            np.add.at(S, lab, hit.astype(np.float64))
            np.add.at(N, lab, 1.0)
        v = np.concatenate(vals)
        hits = int(np.count_nonzero(v))
        p = float(v.mean())
        se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
        r = self._proposal(q, P_model, S, N)
        diag.update(fit_calls=n_fit, is_calls=n_is, hits=hits, final_proposal_top={
            int(toks[i]): float(r[i]) for i in np.lexsort((np.arange(q.size), -r))[:5]
        })
        return MethodResult(log_value=math.log(p) if p > 0 else -math.inf, std_error=se, samples=budget, diagnostics=diag)
