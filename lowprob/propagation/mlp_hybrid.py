"""Sampling that uses the net's structure: rotated cross-polytope designs, optionally shrunk toward propagation.

:class:`DesignMonteCarloMLP` estimates the per-layer means ``E[x_l]`` of a bias-free MLP
(and tail probabilities ``P[h_{L,i} > b]``) with the randomised spherical designs of
:mod:`lowprob.array_kernels.designs`, the same code the WhestBench ``DesignEstimator``
runs on flopscope:

* each point ``r Q e_i`` is marginally ``N(0, I)`` (``Q`` Haar, ``r ~ chi_n``), so the
  estimate is **unbiased**;
* the ``2n`` points ``+-Q e_i`` form a spherical 3-design: the polynomial part of degree
  <= 3 of the net is integrated exactly, only degree >= 4 contributes variance;
* for a positively homogeneous activation (ReLU) the radius is integrated exactly
  (``r = E chi_n``) when estimating means.

With ``shrink=True`` the final-layer means are shrunk toward their regression on the
propagated means of :class:`~lowprob.propagation.mlp_estimators.CumulantPropagation`
(positive-part James-Stein, :func:`~lowprob.array_kernels.designs.james_stein_toward_fit`):
biased, but its expected total squared error is never above the design estimate's under
equal-variance Gaussian noise (Efron & Morris 1973); ``diagnostics["shrink"]`` is the factor.

With ``prune=True`` the means come from the two-level pruned design of
:mod:`lowprob.array_kernels.pruning` (ReLU only): a pilot finds the neurons never active,
level 0 runs the net without them, level 1 the full-minus-pruned correction on independent
points (multilevel Monte Carlo, split by ``N_l ∝ sqrt(V_l / C_l)``); unbiased whatever the
pilot finds. Same kernel as ``DesignEstimator(prune=True)`` on flopscope.

Budget: FLOPs at flopscope's prices (:func:`~lowprob.array_kernels.designs.design_flops`:
float32 matmul ``m (2k - 1) p``, Gaussian draw 32 per float64 element, QR ``16/3 n^3``);
propagation, when used, is charged :func:`~lowprob.propagation.cumulants.layer_flops` per
layer. A budget below one antithetic pair raises :class:`~lowprob.errors.BudgetError`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_budget
from lowprob.array_backends import NUMPY
from lowprob.array_kernels.designs import (
    DesignPlan,
    james_stein_toward_fit,
    plan_designs,
    rotated_cross_polytope_means,
)
from lowprob.array_kernels.pruning import plan_pruned, pruned_design_means
from lowprob.errors import BudgetError, InputTypeError, InputValueError
from lowprob.estimate import Cost, Estimate, stopwatch
from lowprob.propagation.mlp_estimators import (
    CumulantPropagation,
    LayerMeans,
    MLPTailProblem,
    _check_mlp,
)
from lowprob.toy_models.random_mlp import RandomMLP, get_activation

__all__ = ["DesignMonteCarloMLP"]


class DesignMonteCarloMLP:
    """Rotated cross-polytope sampling (module docstring).

    Args:
        shrink: James-Stein shrinkage of the last layer toward propagation (means only).
        propagation: the propagation used for shrinkage (default ``CumulantPropagation(2)``).
        propagation_share: at most this share of the budget goes to propagation.
        dtype: forward precision (float32 matches WhestBench; sums are float64).
        prune: means by the two-level pruned design (ReLU only; no shrinkage, no
            ``std_error``; tail probabilities are unaffected).
    """

    name = "design"

    def __init__(self, *, shrink: bool = False, propagation: CumulantPropagation | None = None,
                 propagation_share: float = 0.25, dtype: Any = np.float64,
                 prune: bool = False) -> None:
        self.shrink = bool(shrink)
        self.prune = bool(prune)
        self.propagation = propagation or CumulantPropagation(2, hermite_order=4)
        self.propagation_share = float(propagation_share)
        self.dtype = np.dtype(dtype)
        if self.shrink:
            self.name = "design-shrink"
        if self.prune:
            self.name = "design-pruned"

    def _plan(self, mlp: RandomMLP, budget: int, use_prop: bool) -> tuple[DesignPlan, int]:
        prop = self.propagation.cost_flops(mlp) if use_prop else 0
        if use_prop and prop > self.propagation_share * budget:
            prop = 0
        plan = plan_designs(mlp.width, mlp.depth, budget - prop, get_activation(mlp.activation))
        if plan is None:
            raise BudgetError(
                f"budget={budget!r} FLOPs is below one antithetic pair of samples (plus one "
                f"random rotation) for width {mlp.width}, depth {mlp.depth}; pass a larger "
                "budget or use MonteCarloMLP."
            )
        return plan, prop

    def estimate_means(self, mlp: RandomMLP, budget: int, *, seed: Any = None) -> LayerMeans:
        """Per-layer means; ``std_error`` from the between-design spread (``None`` if < 2 designs)."""
        mlp = _check_mlp(mlp)
        budget = check_budget(budget)
        if self.prune:
            return self._pruned_means(mlp, budget, seed)
        plan, prop_flops = self._plan(mlp, budget, self.shrink)
        rng = as_generator(seed)
        act = get_activation(mlp.activation)
        ws = [np.asarray(w, dtype=self.dtype) for w in mlp.weights]
        with stopwatch() as t:
            means, per_design = rotated_cross_polytope_means(
                ws, act, NUMPY, rng, plan, dtype=self.dtype, acc_dtype=np.float64)
            se = None
            diagnostics: dict[str, Any] = {"n_designs": plan.n_designs,
                                           "extra_pairs": plan.extra_pairs, "shrink": 0.0}
            if plan.n_designs >= 2:
                pd = per_design
                var_d = pd.var(axis=0, ddof=1) * (2.0 * mlp.width / plan.points(mlp.width))
                se = np.full_like(means, np.nan)
                se[-1] = np.sqrt(var_d)
                if self.shrink and prop_flops:
                    p = self.propagation.estimate_means(mlp, prop_flops).means[-1]
                    final, c = james_stein_toward_fit(means[-1], pd, p, plan.points(mlp.width), np)
                    means = means.copy()
                    means[-1] = final
                    diagnostics["shrink"] = float(c)
        N = plan.points(mlp.width)
        cost = Cost(samples=N, model_calls=N, flops=float(plan.flops + prop_flops), seconds=t[0])
        nan = np.full(mlp.width, np.nan)  # pre-activation moments are not estimated here
        return LayerMeans(means, nan, nan, None, cost, self.name, budget, std_error=se,
                          diagnostics=diagnostics)

    def _pruned_means(self, mlp: RandomMLP, budget: int, seed: Any) -> LayerMeans:
        act = get_activation(mlp.activation)
        if act.name != "relu":
            raise InputValueError(
                f"prune=True needs a ReLU net (dead neurons exactly zero); got {mlp.activation!r}.")
        pplan = plan_pruned(mlp.width, mlp.depth, budget)
        if pplan is None:
            raise BudgetError(
                f"budget={budget!r} FLOPs is below one antithetic pair of samples (plus one "
                f"random rotation) for width {mlp.width}, depth {mlp.depth}; pass a larger "
                "budget or use MonteCarloMLP."
            )
        ws = [np.asarray(w, dtype=self.dtype) for w in mlp.weights]
        with stopwatch() as t:
            means, info = pruned_design_means(ws, act, NUMPY, as_generator(seed), pplan,
                                              dtype=self.dtype, acc_dtype=np.float64)
        n = mlp.width
        N = 2 * (info["level0"][0] * n + info["level0"][1] + (info["level1"] or 0))
        cost = Cost(samples=N, model_calls=N, flops=float(info["flops"]), seconds=t[0])
        nan = np.full(n, np.nan)
        return LayerMeans(np.asarray(means), nan, nan, None, cost, self.name, budget,
                          diagnostics=info)

    def estimate(self, problem: MLPTailProblem, budget: int, *, seed: Any = None) -> Estimate:
        """``P[h_{L,i} > b]``: hit fraction over design points with ``chi_n`` radii (unbiased)."""
        if not isinstance(problem, MLPTailProblem):
            raise InputTypeError(f"problem must be an MLPTailProblem, got {type(problem).__name__}.")
        budget = check_budget(budget)
        mlp = problem.mlp
        plan, _ = self._plan(mlp, budget, False)
        ws = [np.asarray(w, dtype=self.dtype) for w in mlp.weights]
        with stopwatch() as t:
            _, per = rotated_cross_polytope_means(
                ws, get_activation(mlp.activation), NUMPY, as_generator(seed), plan,
                dtype=self.dtype, acc_dtype=np.float64, tail=(problem.neuron, problem.threshold))
        hits = int(sum(int(np.sum(h)) for _, h, _ in per))
        N = plan.points(mlp.width)
        p = hits / N
        fr = np.concatenate([np.asarray(h) / m for _, h, m in per if m == 2 * mlp.width]) \
            if plan.n_designs else np.zeros(0)
        se = float(fr.std(ddof=1) / math.sqrt(len(fr))) if len(fr) >= 2 else None
        cost = Cost(samples=N, model_calls=N, flops=float(plan.flops), seconds=t[0])
        return Estimate.from_value(p, std_error=se, cost=cost, method=self.name, budget=budget,
                                   budget_unit="flops", diagnostics={"hits": hits, "n_points": N})
