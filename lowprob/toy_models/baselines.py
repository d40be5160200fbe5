"""Baseline estimators for the halfspace toy: naive Monte Carlo and sequential Monte Carlo.

Both follow the :class:`~lowprob.estimate.Estimator` contract
``estimate(problem, budget, *, seed) -> Estimate`` and are registered (lazily) in
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

from lowprob._validation import as_generator, check_budget, check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.estimate import Cost, Estimate, stopwatch
from lowprob.gaussian_polytope import _truncnorm_ppf
from lowprob.toy_models.cost_models import check_toy_budget
from lowprob.toy_models.halfspace import as_halfspace_toy

__all__ = ["NaiveMonteCarlo", "SequentialMonteCarlo", "as_halfspace_toy"]


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
        check_toy_budget(self.name, toy.d, toy.m, n)  # stated time estimate (memory is batched)
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
    """One draw from ``N(0, 1)`` restricted to ``[lo, hi]`` per entry (inversion, stable in the
    tails; the inverse CDF is shared with :mod:`lowprob.gaussian_polytope`)."""
    return _truncnorm_ppf(lo, hi, rng.random(lo.shape))


Level = tuple[int, float, np.ndarray]  # (neuron i, threshold tau, direction factor L (d, d))


@dataclass
class SequentialMonteCarlo:
    """Sequential Monte Carlo (multilevel splitting) over the ``m`` neuron steps.

    With unit rows ``u_i = w_i/|w_i|``, offsets ``c_i = b_i/|w_i|`` and ``D_i(x) = u_i . x + c_i``,
    ``p = prod_l P[A_l | A_{l-1}]`` along nested events ``A_l = {D_j > 0, j < i_l; D_{i_l} > tau_l}``:
    neuron by neuron, each neuron entered through thresholds ``tau < 0`` when few particles
    satisfy it, ending at ``tau = 0`` (so ``A_L`` is the event). ``N`` particles start i.i.d.
    ``N(0, I_d)``; at level ``l`` the fraction ``f_l`` in ``A_l`` is recorded, survivors are
    resampled multinomially back to ``N`` and moved by ``n_moves`` exact Gibbs (hit-and-run)
    steps along random directions, alternately isotropic and shaped by the pilot's particle
    covariance at that level (the Gaussian restricted to a line inside ``A_l`` is a truncated
    1-D normal), which leave ``N(0, I) | A_l`` invariant. With the levels fixed in advance,
    ``prod_l f_l`` is an unbiased estimate of ``p`` (Del Moral 2004, *Feynman–Kac Formulae*,
    Thm 7.4.2; Cérou, Del Moral, Furon & Guyader 2012, Stat. Comput. 22, 795–808).

    **Levels.** A pilot run (``1/(R+1)`` of the budget) chooses the thresholds adaptively:
    when fewer than ``keep`` of the particles satisfy neuron ``i``, the next threshold is the
    ``(1 - keep)``-quantile of ``D_i``. The ``R`` main runs then use these fixed levels, so their
    mean is unbiased and ``std_error`` (sample standard deviation over ``sqrt(R)``) is honest;
    the pilot's own estimate is discarded.

    Args:
        n_moves: Gibbs moves per particle after each resampling.
        replicates: independent main runs ``R`` (>= 2).
        keep: target surviving fraction per adaptive level (0 < keep < 1).

    Budget: forward evaluations; a run with ``N`` particles and ``L`` levels costs
    ``N (1 + n_moves (L - 1))``.
    """

    n_moves: int = 8
    replicates: int = 8
    keep: float = 0.2
    max_extra_levels: int = 48
    name: str = "smc"

    def _per_particle(self, n_levels: int) -> int:
        return 1 + self.n_moves * (n_levels - 1)

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        toy = as_halfspace_toy(problem)
        budget = check_budget(budget)
        check_toy_budget(self.name, toy.d, toy.m, budget)  # stated memory/time estimate
        rng = as_generator(seed)
        check_int("n_moves", self.n_moves, minimum=0)
        check_int("max_extra_levels", self.max_extra_levels, minimum=0)
        R = check_int("replicates", self.replicates, minimum=2)
        if not 0 < self.keep < 1:
            raise InputValueError(f"keep must be in (0, 1), got {self.keep!r}.")
        base = self._per_particle(toy.m)
        need = 2 * (R + 1) * base
        if budget < need:
            raise BudgetError(
                f"budget={budget!r} is too small for smc with m={toy.m}, replicates={R}, "
                f"n_moves={self.n_moves}: it needs at least {need}. Pass a larger budget."
            )
        norms = np.linalg.norm(toy.W, axis=1)
        U, c = toy.W / norms[:, None], toy.b / norms
        evals = inner = 0
        with stopwatch() as t:
            # Pilot: adaptive levels within 1/(R+1) of the budget.
            pilot_budget = budget // (R + 1)
            n_pilot = max(2, pilot_budget // self._per_particle(toy.m + self.max_extra_levels))
            # Extra levels the pilot can afford within its share (>= 0: pilot_budget >= 2 base),
            # so the main runs always keep (R/(R+1)) of the budget.
            extra = self.max_extra_levels
            if self.n_moves > 0:
                extra = min(extra, (pilot_budget // n_pilot - 1) // self.n_moves - (toy.m - 1))
            _, levels, e, k = self._run(U, c, n_pilot, rng, None, extra)
            evals, inner = evals + e, inner + k
            # If the pilot died, finish the schedule with plain neuron steps: any fixed
            # schedule ending in the full event keeps the main runs unbiased.
            last_i, last_tau, _ = levels[-1]
            eye = np.eye(toy.d)
            levels = levels + ([(last_i, 0.0, eye)] if last_tau != 0.0 else [])
            levels = levels + [(i, 0.0, eye) for i in range(last_i + 1, toy.m)]
            n = (budget - evals) // (R * self._per_particle(len(levels)))
            if n < 2:  # too many levels for the remaining budget: plain neuron steps
                levels = [(i, 0.0, eye) for i in range(toy.m)]
                n = (budget - evals) // (R * base)
            logs, _, e, k = self._run(U, c, n, rng, levels, 0, reps=R)
            evals, inner = evals + e, inner + k
        finite = logs[np.isfinite(logs)]
        if finite.size:
            shift = float(finite.max())
            mean_log = shift + math.log(np.exp(finite - shift).sum() / R)
        else:
            mean_log = -math.inf
        vals = np.exp(logs - (mean_log if np.isfinite(mean_log) else 0.0))
        se_rel = float(np.std(vals, ddof=1) / math.sqrt(R))
        se = se_rel * math.exp(mean_log) if np.isfinite(mean_log) else 0.0
        flops = 2.0 * toy.m * toy.d * evals + 2.0 * toy.d * inner
        cost = Cost(samples=evals, model_calls=evals, flops=flops, seconds=t[0])
        return Estimate.from_log(
            mean_log,
            std_error=se,
            cost=cost,
            method=self.name,
            budget=budget,
            budget_unit="samples",
            diagnostics={
                "particles": int(n),
                "pilot_particles": int(n_pilot),
                "levels": len(levels),
                "replicates": R,
                "log_replicates": logs.tolist(),
                "relative_std_error": se_rel,
                # Replicates that died or spread over > e^2, or fewer than 32 particles per
                # replicate, signal a skewed estimator whose replicate std_error may understate
                # the error (very thin cones, small budgets).
                "heavy_tail_warning": bool(
                    n < 32
                    or finite.size < R
                    or (finite.size and float(finite.max() - finite.min()) > 2.0)
                ),
            },
        )

    def _run(
        self,
        U: np.ndarray,
        c: np.ndarray,
        n: int,
        rng: np.random.Generator,
        levels: list[Level] | None,
        max_extra: int,
        reps: int = 1,
    ) -> tuple[np.ndarray, list[Level], int, int]:
        """``reps`` independent runs of ``n`` particles, advanced together (one array).

        ``levels=None``: choose the levels adaptively (the pilot; use ``reps = 1``), adding at
        most ``max_extra`` thresholds beyond the ``m`` neuron steps.

        Returns ``(log prod_l f_l per run (reps,), levels used, forward evaluations,
        direction products)``; a run whose particles all die has ``-inf``.
        """
        m, d = U.shape
        x = rng.standard_normal((reps * n, d))
        S = x @ U.T + c  # (reps n, m) pre-activations D_j(x), kept in sync with x
        evals, inner = reps * n, 0
        log_p = np.zeros(reps)
        active = np.arange(reps)  # runs still alive, in block order of x
        thr = np.zeros(m)
        eye = np.eye(d)
        used: list[Level] = []
        todo = list(levels) if levels is not None else None
        i = 0
        while True:
            if todo is not None:
                if not todo:
                    break
                i, tau, Lf = todo.pop(0)
            else:
                if i >= m:
                    break
                Di = S[:, i]
                affordable = len(used) - i < max_extra
                if np.mean(Di > 0) >= self.keep or not affordable:
                    tau = 0.0
                else:
                    tau = min(0.0, float(np.quantile(Di, 1.0 - self.keep)))
                Lf = eye
            alive = (S[:, i] > tau).reshape(active.size, n)
            k = alive.sum(axis=1)
            dead = k == 0
            log_p[active[dead]] = -math.inf
            with np.errstate(divide="ignore"):
                log_p[active[~dead]] += np.log(k[~dead] / n)
            if np.any(dead):
                keep_blocks = ~dead
                x = x.reshape(active.size, n, d)[keep_blocks].reshape(-1, d)
                S = S.reshape(active.size, n, m)[keep_blocks].reshape(-1, m)
                alive, k, active = alive[keep_blocks], k[keep_blocks], active[keep_blocks]
                if active.size == 0:
                    used.append((i, tau, Lf))
                    return log_p, used, evals, inner
            lev = i
            if tau == 0.0 and todo is None:
                i += 1
            last = (todo is not None and not todo) or (todo is None and i >= m)
            thr[: lev + 1] = 0.0
            thr[lev] = tau
            # Multinomial resampling within each run: the t-th survivor of run r, t ~ U{1..k_r}.
            a = active.size
            cum = np.cumsum(alive, axis=1)
            t = np.floor(rng.random((a, n)) * k[:, None]).astype(np.int64) + 1
            off = (np.arange(a) * (n + 1))[:, None]
            pick = np.searchsorted((cum + off).ravel(), (t + off).ravel(), side="left")
            x, S = x[pick], S[pick]
            if todo is None:
                # Pilot: fix this level's direction law from the survivors' covariance
                # (regularised); the main runs reuse it, so their kernels do not adapt.
                cov = np.atleast_2d(np.cov(x.T)) if x.shape[0] > d else eye
                Lf = np.linalg.cholesky(cov + 1e-10 * (np.trace(cov) / d + 1e-300) * eye)
            used.append((lev, tau, Lf))
            if last:
                break
            for j in range(self.n_moves):
                # Alternate covariance-shaped and isotropic directions.
                L_dir = Lf if j % 2 == 0 else eye
                x, S = _gibbs_move(x, S, U, thr[: lev + 1], lev + 1, L_dir, rng)
                evals += x.shape[0]
                inner += x.shape[0]
        return log_p, used, evals, inner


def _gibbs_move(
    x: np.ndarray,
    S: np.ndarray,
    U: np.ndarray,
    thr: np.ndarray,
    k: int,
    Lf: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One hit-and-run Gibbs step for ``N(0, I)`` restricted to ``{S_j > thr_j, j < k}``.

    Directions are ``v = Lf z / |Lf z|`` with ``z ~ N(0, I)``, drawn independently of ``x``, so
    the exact line update leaves the restricted Gaussian invariant for any fixed ``Lf``.
    """
    n, d = x.shape
    v = rng.standard_normal((n, d)) @ Lf.T
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    A = v @ U.T  # (n, m): one forward evaluation per particle
    proj = np.einsum("nd,nd->n", x, v)
    a, s = A[:, :k], S[:, :k] - thr
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -s / a
    lo = np.max(np.where(a > 0, bound, -np.inf), axis=1)
    hi = np.min(np.where(a < 0, bound, np.inf), axis=1)
    tau = _truncated_normal(lo + proj, hi + proj, rng)
    step = tau - proj
    S_new = S + step[:, None] * A
    ok = np.all(S_new[:, :k] > thr, axis=1) & np.isfinite(step)
    x = np.where(ok[:, None], x + step[:, None] * v, x)
    S = np.where(ok[:, None], S_new, S)
    return x, S


