"""Baseline estimators for the halfspace toy: naive Monte Carlo and sequential Monte Carlo.

Both follow the :class:`~lowprob.estimate.Estimator` contract
``estimate(problem, budget, *, seed) -> Estimate`` and register themselves in
:data:`~lowprob.toy_models.registry.TOY_ESTIMATORS` as ``"naive"`` and ``"smc"``.

**Budget unit** (both): ``samples`` = forward evaluations of the layer ``x -> W x + b`` on one
input (``m d`` multiply-adds). A naive sample costs one; an SMC move along a direction ``v``
costs one (it needs ``W v``). ``Cost.flops`` counts ``2 m d`` per forward evaluation plus
``2 d`` per inner product with a direction; sampling and sorting are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from lowprob._validation import as_generator, check_budget, check_int
from lowprob.errors import BudgetError, InputTypeError
from lowprob.estimate import Cost, Estimate, stopwatch
from lowprob.toy_models.halfspace import HalfspaceToy
from lowprob.toy_models.registry import TOY_ESTIMATORS

__all__ = ["NaiveMonteCarlo", "SequentialMonteCarlo", "as_halfspace_toy"]


def as_halfspace_toy(problem: object) -> HalfspaceToy:
    """Accept a :class:`HalfspaceToy` or an ``(m, d)`` weight matrix."""
    if isinstance(problem, HalfspaceToy):
        return problem
    if isinstance(problem, np.ndarray) or isinstance(problem, (list, tuple)):
        return HalfspaceToy(problem)
    raise InputTypeError(
        f"problem must be a HalfspaceToy or an (m, d) weight array, got {type(problem).__name__}."
    )


@dataclass
class NaiveMonteCarlo:
    """``p_hat = (1/N) sum_n 1[W x_n + b > 0]``, ``x_n ~ N(0, I_d)`` i.i.d., ``N = budget``.

    Unbiased, ``Var = p(1-p)/N``. ``std_error`` is the plug-in ``sqrt(p_hat (1-p_hat)/N)``;
    with zero hits it is 0, so ``diagnostics["upper_95"]`` also gives the exact one-sided 95%
    Clopper–Pearson upper bound ``1 - 0.05^(1/N)`` (the "rule of three", ``~3/N``).

    Args:
        batch_size: samples drawn per batch (bounds memory at ``batch_size * d`` floats).
    """

    batch_size: int = 1 << 16
    name: str = "naive"

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        toy = as_halfspace_toy(problem)
        n = check_budget(budget)
        rng = as_generator(seed)
        bs = check_int("batch_size", self.batch_size, minimum=1)
        hits = 0
        with stopwatch() as t:
            done = 0
            while done < n:
                k = min(bs, n - done)
                x = rng.standard_normal((k, toy.d))
                hits += int(np.count_nonzero(toy.event(x)))
                done += k
        p = hits / n
        se = math.sqrt(p * (1 - p) / n)
        if hits == 0:
            upper = -math.expm1(math.log(0.05) / n)
        else:
            from scipy.stats import beta

            upper = float(beta.ppf(0.95, hits + 1, n - hits)) if hits < n else 1.0
        cost = Cost(samples=n, model_calls=n, flops=2.0 * toy.m * toy.d * n, seconds=t[0])
        return Estimate.from_value(
            p,
            std_error=se,
            cost=cost,
            method=self.name,
            budget=n,
            budget_unit="samples",
            diagnostics={"hits": hits, "upper_95": upper},
        )


def _truncated_normal(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from ``N(0, 1)`` restricted to ``[lo, hi]`` per entry, by inversion in log space.

    Intervals entirely in the upper tail are mirrored to the lower tail, where
    ``log Phi`` is accurate; ``log Phi(z) = log Phi(b) + log(U + (1-U) Phi(a)/Phi(b))``.
    """
    upper = lo > 0
    a = np.where(upper, -hi, lo)
    b = np.where(upper, -lo, hi)
    u = rng.random(lo.shape)
    la, lb = log_ndtr(a), log_ndtr(b)
    out = np.empty_like(lo)
    tail = b <= 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lz = lb + np.log(u + (1 - u) * np.exp(la - lb))
        out[tail] = ndtri_exp(lz[tail])
        mid = ~tail
        pa, pb = ndtr(a[mid]), ndtr(b[mid])
        out[mid] = ndtri(pa + u[mid] * (pb - pa))
    out = np.clip(out, a, b)
    return np.where(upper, -out, out)


@dataclass
class SequentialMonteCarlo:
    """Sequential Monte Carlo (multilevel splitting) over the ``m`` neuron steps.

    Writes ``p = prod_{i=1}^m P[F_i | F_1 .. F_{i-1}]`` with ``F_i = {w_i . x + b_i > 0}``.
    ``N`` particles start i.i.d. ``N(0, I_d)``; at step ``i`` the fraction ``f_i`` satisfying
    ``F_i`` is recorded, survivors are resampled multinomially back to ``N`` and moved by
    ``n_moves`` exact Gibbs steps along random unit directions (hit-and-run: the Gaussian
    restricted to the line through ``x`` inside ``F_1..F_i`` is a truncated 1-D normal), which
    leave ``N(0, I) | F_1..F_i`` invariant. ``prod_i f_i`` is an unbiased estimate of ``p``
    (Del Moral 2004, *Feynman–Kac Formulae*, Thm 7.4.2; Cérou, Del Moral, Furon & Guyader 2012,
    Stat. Comput. 22, "Sequential Monte Carlo for rare event estimation").

    **Error bars.** The budget is split over ``replicates`` independent runs; the estimate is
    their mean (unbiased) and ``std_error`` the sample standard deviation over ``sqrt(R)``.

    Args:
        n_moves: Gibbs moves per particle after each resampling.
        replicates: independent SMC runs ``R`` (>= 2) used for the standard error.

    Budget: ``R * N * (1 + n_moves (m - 1))`` forward evaluations ``<= budget``; needs at least
    2 particles per run.
    """

    n_moves: int = 2
    replicates: int = 8
    name: str = "smc"

    def particles_for(self, budget: int, m: int) -> int:
        """Particles per replicate that a budget buys."""
        per = 1 + self.n_moves * (m - 1)
        return budget // (self.replicates * per)

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        toy = as_halfspace_toy(problem)
        budget = check_budget(budget)
        rng = as_generator(seed)
        check_int("n_moves", self.n_moves, minimum=0)
        R = check_int("replicates", self.replicates, minimum=2)
        n = self.particles_for(budget, toy.m)
        if n < 2:
            need = 2 * R * (1 + self.n_moves * (toy.m - 1))
            raise BudgetError(
                f"budget={budget!r} is too small for smc with m={toy.m}, replicates={R}, "
                f"n_moves={self.n_moves}: it needs at least {need}. Pass a larger budget."
            )
        logs = np.empty(R)
        evals = 0
        inner = 0
        with stopwatch() as t:
            for r in range(R):
                logs[r], e, k = self._run(toy, n, rng)
                evals += e
                inner += k
        finite = logs[np.isfinite(logs)]
        vals = np.exp(logs)
        if finite.size:
            shift = float(finite.max())
            mean_log = shift + math.log(np.exp(finite - shift).sum() / R)
        else:
            mean_log = -math.inf
        se = float(np.std(vals, ddof=1) / math.sqrt(R))
        flops = 2.0 * toy.m * toy.d * evals + 2.0 * toy.d * inner
        cost = Cost(samples=evals, model_calls=evals, flops=flops, seconds=t[0])
        return Estimate.from_log(
            mean_log,
            std_error=se,
            cost=cost,
            method=self.name,
            budget=budget,
            budget_unit="samples",
            diagnostics={"particles": n, "replicates": R, "log_replicates": logs.tolist()},
        )

    def _run(self, toy: HalfspaceToy, n: int, rng: np.random.Generator) -> tuple[float, int, int]:
        """One SMC run: ``(log prod_i f_i, forward evaluations, direction inner products)``."""
        W, b = toy.W, toy.b
        m, d = W.shape
        x = rng.standard_normal((n, d))
        S = x @ W.T + b  # (n, m): all pre-activations, kept in sync with x
        evals, inner, log_p = n, 0, 0.0
        for i in range(m):
            alive = S[:, i] > 0
            k = int(np.count_nonzero(alive))
            if k == 0:
                return -math.inf, evals, inner
            log_p += math.log(k / n)
            if i == m - 1:
                break
            pick = rng.choice(np.flatnonzero(alive), size=n, replace=True)
            x, S = x[pick], S[pick]
            for _ in range(self.n_moves):
                v = rng.standard_normal((n, d))
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                A = v @ W.T  # (n, m): one forward evaluation per particle
                c = np.einsum("nd,nd->n", x, v)
                evals += n
                inner += n
                a, s = A[:, : i + 1], S[:, : i + 1]
                with np.errstate(divide="ignore", invalid="ignore"):
                    bound = -s / a
                lo = np.max(np.where(a > 0, bound, -np.inf), axis=1)
                hi = np.min(np.where(a < 0, bound, np.inf), axis=1)
                tau = _truncated_normal(lo + c, hi + c, rng)
                step = tau - c
                S_new = S + step[:, None] * A
                ok = np.all(S_new[:, : i + 1] > 0, axis=1) & np.isfinite(step)
                x = np.where(ok[:, None], x + step[:, None] * v, x)
                S = np.where(ok[:, None], S_new, S)
        return log_p, evals, inner


TOY_ESTIMATORS.add("naive", NaiveMonteCarlo)
TOY_ESTIMATORS.add("smc", SequentialMonteCarlo)
