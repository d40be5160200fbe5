"""Estimators of random-MLP per-layer means and of rare events ``P[h_{L,i} > b]``.

Three families share one FLOP-budgeted interface:

* :class:`MonteCarloMLP`: ``N = floor(budget / flops_per_sample)`` Gaussian inputs pushed
  through the net; unbiased, MSE ``Var / N``.
* :class:`GaussianMomentPropagation`: mean/covariance propagation with exact Gaussian
  moments at the nonlinearity (:func:`~lowprob.propagation.gaussian_moments.gaussian_activation_moments`;
  ReLU cross-covariances by Plackett quadrature).
* :class:`CumulantPropagation`: kprop to order ``K`` in {2, 3}, full or power cumulants only
  (:mod:`lowprob.propagation.cumulants`).

``estimate_means(mlp, budget, *, seed) -> LayerMeans`` gives the ``(L, n)`` post-activation
means (WhestBench's target). ``estimate(problem, budget, *, seed) -> Estimate`` answers a
:class:`MLPTailProblem` ``p = P[h_{L,i} > b]``: Monte Carlo counts hits; propagation reads
the tail of the propagated pre-activation law of ``h_{L,i}`` in log space,
``log p = log Phi(-(b - m)/s)`` for ``K = 2`` and, for ``K = 3``, the first-order
Cornish-Fisher shift ``t -> t - gamma (t^2 - 1)/6`` with skewness ``gamma = kappa_3/s^3``
(Hall 1992, ch. 2).

**Budgets are FLOPs**, counted analytically (convention in
:func:`~lowprob.propagation.cumulants.layer_flops`): Monte Carlo costs
``16 n`` (Gaussian draw) ``+ L (2 n^2 + c_phi n + n)`` per sample (matmul, activation with
``c_phi`` = 1 for ReLU and 16 otherwise, running sum); propagation costs the sum of its layer
costs. A budget below one layer's (or one sample's) cost raises
:class:`~lowprob.errors.BudgetError`; so does one below the whole net's propagation cost.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from lowprob._progress import progress
from lowprob._validation import as_generator, check_budget, check_int
from lowprob.array_kernels.cumulant_steps import PendingActivation
from lowprob.errors import BudgetError, InputTypeError, InputValueError
from lowprob.estimate import Cost, Estimate, stopwatch
from lowprob.propagation.cumulants import (
    TRANSCENDENTAL_FLOPS,
    CumulantState,
    check_order,
    layer_flops,
    propagate_mlp,
)
from lowprob.propagation.gaussian_moments import cross_covariance_rule, gaussian_activation_moments
from lowprob.toy_models.random_mlp import RandomMLP, get_activation

__all__ = [
    "CumulantPropagation",
    "GaussianMomentProjector",
    "GaussianMomentPropagation",
    "LayerMeans",
    "MLPTailProblem",
    "MonteCarloMLP",
    "mc_flops_per_sample",
]


@dataclass(frozen=True)
class LayerMeans:
    """Per-layer mean estimates of a random MLP.

    Attributes:
        means: ``(L, n)`` float64, row ``l`` estimates ``E[x_{l+1}]`` (post-activation).
        pre_mean, pre_var: ``(n,)`` mean and variance of the last pre-activation ``h_L``.
        pre_third: ``(n,)`` third cumulant of ``h_L`` (``None`` unless ``K = 3`` or MC).
        std_error: ``(L, n)`` Monte Carlo standard errors, ``None`` for deterministic methods.
        cost: what was spent (``flops`` counted as in the module docstring).
    """

    means: np.ndarray
    pre_mean: np.ndarray
    pre_var: np.ndarray
    pre_third: np.ndarray | None
    cost: Cost
    method: str
    budget: int
    std_error: np.ndarray | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MLPTailProblem:
    """``p = P_{x_0 ~ N(0, I)}[h_{L, neuron} > threshold]`` for a :class:`RandomMLP`."""

    mlp: RandomMLP
    threshold: float
    neuron: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.mlp, RandomMLP):
            raise InputTypeError(f"mlp must be a RandomMLP, got {type(self.mlp).__name__}.")
        t = float(self.threshold)
        if not math.isfinite(t):
            raise InputValueError(f"threshold must be finite, got {self.threshold!r}.")
        i = check_int("neuron", self.neuron, minimum=0)
        if i >= self.mlp.width:
            raise InputValueError(
                f"neuron must be < width={self.mlp.width}, got {self.neuron!r}."
            )
        object.__setattr__(self, "threshold", t)
        object.__setattr__(self, "neuron", i)


def _check_mlp(mlp: object) -> RandomMLP:
    if not isinstance(mlp, RandomMLP):
        raise InputTypeError(
            f"mlp must be a lowprob.toy_models.random_mlp.RandomMLP, got {type(mlp).__name__}."
        )
    return mlp


def mc_flops_per_sample(width: int, depth: int, activation: Any = "relu") -> int:
    """Counted FLOPs of one Monte Carlo sample (see module docstring)."""
    n, L = width, depth
    c_phi = get_activation(activation).flops_per_element
    return int(TRANSCENDENTAL_FLOPS * n + L * (2 * n * n + c_phi * n + n))


class MonteCarloMLP:
    """Plain sampling: ``N`` i.i.d. inputs, ``N = floor(budget / flops_per_sample)``.

    Args:
        batch_size: samples per forward batch (bounds memory at ``batch_size * n`` floats).
        show_progress: tqdm bar over batches (``None``: only on a TTY).
    """

    name = "mc"

    def __init__(self, *, batch_size: int = 8192, show_progress: bool | None = None) -> None:
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.show_progress = show_progress

    def _n_samples(self, mlp: RandomMLP, budget: int) -> int:
        per = mc_flops_per_sample(mlp.width, mlp.depth, mlp.activation)
        N = budget // per
        if N < 1:
            raise BudgetError(
                f"budget={budget!r} FLOPs is below one Monte Carlo sample ({per} FLOPs for "
                f"width {mlp.width}, depth {mlp.depth}). Pass budget >= {per}."
            )
        return int(N)

    def _run(self, mlp: RandomMLP, N: int, rng: np.random.Generator, neuron: int | None,
             threshold: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        L, n = mlp.depth, mlp.width
        s1 = np.zeros((L, n))
        s2 = np.zeros((L, n))
        pre = np.zeros((3, n))  # sums of h_L, h_L^2, h_L^3
        hits = 0
        batches = range(0, N, self.batch_size)
        for start in progress(batches, total=len(batches), desc="mc", enabled=self.show_progress):
            b = min(self.batch_size, N - start)
            x = rng.standard_normal((b, n))
            for l, w in enumerate(mlp.weights):
                h = x @ w
                x = mlp.phi(h)
                s1[l] += x.sum(axis=0)
                s2[l] += (x * x).sum(axis=0)
            pre[0] += h.sum(axis=0)
            pre[1] += (h * h).sum(axis=0)
            pre[2] += (h**3).sum(axis=0)
            if neuron is not None:
                hits += int(np.count_nonzero(h[:, neuron] > threshold))
        return s1, s2, pre, hits

    def estimate_means(self, mlp: RandomMLP, budget: int, *, seed: Any = None) -> LayerMeans:
        mlp = _check_mlp(mlp)
        budget = check_budget(budget)
        N = self._n_samples(mlp, budget)
        rng = as_generator(seed)
        with stopwatch() as t:
            s1, s2, pre, _ = self._run(mlp, N, rng, None, None)
        means = s1 / N
        var = np.maximum(s2 / N - means**2, 0.0)
        pm = pre[0] / N
        pv = pre[1] / N - pm**2
        p3 = pre[2] / N - 3 * pm * pre[1] / N + 2 * pm**3
        flops = N * mc_flops_per_sample(mlp.width, mlp.depth, mlp.activation)
        cost = Cost(samples=N, model_calls=N, flops=float(flops), seconds=t[0])
        return LayerMeans(means, pm, pv, p3, cost, self.name, budget,
                          std_error=np.sqrt(var / N), diagnostics={"n_samples": N})

    def estimate(self, problem: MLPTailProblem, budget: int, *, seed: Any = None) -> Estimate:
        if not isinstance(problem, MLPTailProblem):
            raise InputTypeError(f"problem must be an MLPTailProblem, got {type(problem).__name__}.")
        budget = check_budget(budget)
        mlp = problem.mlp
        N = self._n_samples(mlp, budget)
        with stopwatch() as t:
            _, _, _, hits = self._run(mlp, N, as_generator(seed), problem.neuron, problem.threshold)
        p = hits / N
        flops = N * mc_flops_per_sample(mlp.width, mlp.depth, mlp.activation)
        cost = Cost(samples=N, model_calls=N, flops=float(flops), seconds=t[0])
        return Estimate.from_value(
            p, std_error=math.sqrt(max(p * (1 - p), 0.0) / N), cost=cost, method=self.name,
            budget=budget, budget_unit="flops", diagnostics={"hits": hits, "n_samples": N},
        )


def _tail_log_prob(threshold: float, m: float, var: float, third: float | None) -> float:
    s = math.sqrt(max(var, 1e-300))
    t = (threshold - m) / s
    if third is not None:
        gamma = third / s**3
        t = t - gamma * (t * t - 1.0) / 6.0
    return float(special.log_ndtr(-t))


class _Propagation(abc.ABC):
    """Shared ``estimate`` for deterministic propagation methods."""

    name = "propagation"

    @abc.abstractmethod
    def _flops_per_layer(self, mlp: RandomMLP) -> int: ...

    @abc.abstractmethod
    def _propagate(self, mlp: RandomMLP) -> tuple[np.ndarray, CumulantState]: ...

    def cost_flops(self, mlp: RandomMLP) -> int:
        """Counted FLOPs of a full run on ``mlp``."""
        return self._flops_per_layer(_check_mlp(mlp)) * mlp.depth

    def _check_budget(self, mlp: RandomMLP, budget: object) -> int:
        budget = check_budget(budget)
        per = self._flops_per_layer(mlp)
        if budget < per:
            raise BudgetError(
                f"budget={budget!r} FLOPs is too small for even one layer of {self.name} "
                f"({per} FLOPs at width {mlp.width}). Pass budget >= {per * mlp.depth} "
                "for the whole net, or use a cheaper method (diagonal=True, or Monte Carlo)."
            )
        if budget < per * mlp.depth:
            raise BudgetError(
                f"budget={budget!r} FLOPs covers {budget // per} of {mlp.depth} layers of "
                f"{self.name}; pass budget >= {per * mlp.depth}."
            )
        return budget

    def estimate_means(self, mlp: RandomMLP, budget: int, *, seed: Any = None) -> LayerMeans:
        """Deterministic (``seed`` is accepted and ignored); cost is the counted FLOPs."""
        mlp = _check_mlp(mlp)
        budget = self._check_budget(mlp, budget)
        as_generator(seed)  # validate only
        with stopwatch() as t:
            means, pre = self._propagate(mlp)
        cost = Cost(flops=float(self.cost_flops(mlp)), seconds=t[0])
        return LayerMeans(means, pre.mean, pre.variance, pre.third, cost, self.name, budget)

    def estimate(self, problem: MLPTailProblem, budget: int, *, seed: Any = None) -> Estimate:
        if not isinstance(problem, MLPTailProblem):
            raise InputTypeError(f"problem must be an MLPTailProblem, got {type(problem).__name__}.")
        res = self.estimate_means(problem.mlp, budget, seed=seed)
        i = problem.neuron
        third = None if res.pre_third is None else float(res.pre_third[i])
        lp = _tail_log_prob(problem.threshold, float(res.pre_mean[i]), float(res.pre_var[i]), third)
        return Estimate.from_log(
            lp, std_error=None, cost=res.cost, method=self.name, budget=res.budget,
            budget_unit="flops",
            diagnostics={"pre_mean": float(res.pre_mean[i]), "pre_var": float(res.pre_var[i]),
                         "pre_third": third},
        )


class CumulantPropagation(_Propagation):
    """kprop: propagate cumulants to order ``K`` through linear and nonlinear steps.

    Args:
        order: ``K`` in {2, 3}.
        diagonal: keep only power cumulants (``O(K n^2)`` per layer).
        structured: ``K = 3`` with full covariance but only per-neuron third cumulants,
            obtained by the ``O(n^3)`` Wick contraction (no ``n^3`` tensor; any width).
        hermite_order: Mehler terms ``P`` for covariances.
        third_order_terms: Hermite terms per leg in the ``K = 3`` Wick sum.
    """

    def __init__(self, order: int = 2, *, diagonal: bool = False, structured: bool = False,
                 hermite_order: int = 8, third_order_terms: int = 3) -> None:
        self.order = check_order(order)
        self.diagonal = bool(diagonal)
        self.structured = bool(structured)
        if self.structured and (self.order != 3 or self.diagonal):
            raise InputValueError(
                f"structured=True needs order=3 and diagonal=False, got order={order!r}, "
                f"diagonal={diagonal!r}."
            )
        self.hermite_order = check_int("hermite_order", hermite_order, minimum=1)
        self.third_order_terms = check_int("third_order_terms", third_order_terms, minimum=1)
        self.name = f"kprop{self.order}" + ("-diag" if self.diagonal else "") + (
            "-struct" if self.structured else "")

    def _flops_per_layer(self, mlp: RandomMLP) -> int:
        return layer_flops(mlp.width, self.order, diagonal=self.diagonal,
                           structured=self.structured, hermite_order=self.hermite_order,
                           third_order_terms=self.third_order_terms, activation=mlp.activation)

    def propagate(self, mlp: RandomMLP) -> list[CumulantState]:
        """All states: ``[pre_1, post_1, pre_2, post_2, ..., pre_L, post_L]``."""
        mlp = _check_mlp(mlp)
        trace = propagate_mlp(mlp.weights, mlp.activation, self.order, diagonal=self.diagonal,
                              structured=self.structured, hermite_order=self.hermite_order,
                              third_order_terms=self.third_order_terms)
        return list(trace.states)

    def _propagate(self, mlp: RandomMLP) -> tuple[np.ndarray, CumulantState]:
        states = self.propagate(mlp)
        return np.stack([s.mean for s in states[1::2]]), states[-2]


@dataclass(frozen=True)
class GaussianMomentProjector:
    """Project the law of ``phi(h)``, ``h ~ N(mean, cov)``, onto a Gaussian by its exact moments.

    Used as the projector of :func:`~lowprob.propagation.loop.propagate` with the same
    deduction rules as cumulant propagation (:mod:`lowprob.propagation.cumulant_rules`); the
    moments come from :func:`~lowprob.propagation.gaussian_moments.gaussian_activation_moments`.
    """

    n_quad: int = 24
    hermite_order: int = 16

    def __call__(self, rep: Any, claims: Any, budget: int, flops: Any) -> Any:
        if not isinstance(rep, PendingActivation):
            return rep
        n = rep.state.width
        flops.add(cross_covariance_rule(rep.activation).flops(
            rep.activation, n, self.hermite_order, self.n_quad), "nonlinear")
        mean, cov = gaussian_activation_moments(
            rep.activation, rep.state.mean, rep.state.cov, n_quad=self.n_quad,
            hermite_order=self.hermite_order)
        return CumulantState(mean, cov)


class GaussianMomentPropagation(_Propagation):
    """Mean/covariance propagation with exact Gaussian moments (ReLU: Plackett quadrature).

    Equal to :class:`CumulantPropagation` with ``order=2`` up to Mehler truncation: the same
    loop and deduction rules, with :class:`GaussianMomentProjector` as the projection.
    """

    name = "gaussian"

    def __init__(self, *, n_quad: int = 24, hermite_order: int = 16) -> None:
        self.n_quad = check_int("n_quad", n_quad, minimum=2)
        self.hermite_order = check_int("hermite_order", hermite_order, minimum=1)

    def _flops_per_layer(self, mlp: RandomMLP) -> int:
        n = mlp.width
        lin = 2 * n * n + 4 * n**3
        rule = cross_covariance_rule(mlp.activation)
        return int(lin + rule.flops(get_activation(mlp.activation), n, self.hermite_order,
                                    self.n_quad))

    def _propagate(self, mlp: RandomMLP) -> tuple[np.ndarray, CumulantState]:
        proj = GaussianMomentProjector(self.n_quad, self.hermite_order)
        trace = propagate_mlp(mlp.weights, mlp.activation, 2, projector=proj)
        states = trace.states
        return np.stack([s.mean for s in states[1::2]]), states[-2]
