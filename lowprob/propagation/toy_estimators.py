"""The propagation estimators on the halfspace toy: ``kernel``, ``hermite`` and ``sampling``.

All three run the same :func:`~lowprob.propagation.loop.propagate` loop over the toy's
steps (one neuron at a time, :func:`~lowprob.propagation.steps.halfspace_steps`) with the
backward claim model ``C_i`` = product of the ``m - i`` remaining *random* half-spaces
(:func:`~lowprob.propagation.loop.backward_claims` through
:class:`~lowprob.propagation.steps.RandomHalfspaceStep`), and differ only in the
representation and projector:

=========  ==========================================  ======================================
method     representation (budget unit)                projector
=========  ==========================================  ======================================
kernel     spherical-harmonic coefficients (terms)     whole degree blocks ranked by the
                                                       Funk--Hecke eigenvalues of ``kappa_{m-i}``
hermite    tensor-Hermite coefficients (terms)         truncation at total degree ``D``
sampling   weighted point cloud (samples)              drop zero-weight points
=========  ==========================================  ======================================

``cost.samples`` is the largest number of terms (or samples) held; ``cost.flops`` the
analytic per-instance count of :mod:`lowprob.propagation.flops` (instance-independent
precomputation is reported in ``diagnostics["precomputation_flops"]`` and not included);
``cost.seconds`` the wall time. ``kernel`` needs homogeneous half-spaces (no bias).

Batches: :meth:`ToyPropagationEstimator.estimate_batch` runs many ``(m, n)`` instances of
the same shape through one loop (the coefficient arrays get a leading batch axis), which
is what :mod:`lowprob.propagation.curves` uses.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_budget, check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.estimate import Cost, Estimate
from lowprob.propagation.harmonic_density import (
    HarmonicDensity,
    harmonic_block_projector,
)
from lowprob.propagation.hermite_density import HermiteDensity, hermite_truncation
from lowprob.propagation.loop import PropagationTrace, backward_claims, propagate
from lowprob.propagation.quaternion_density import (
    QuaternionHarmonicDensity,
    QuaternionHarmonicProduct,
    quaternion_block_projector,
)
from lowprob.propagation.sample_cloud import SampleCloud, drop_dead_samples
from lowprob.propagation.steps import RandomHalfspaceStep, halfspace_steps
from lowprob.sketching.claims import RandomHalfspaceProduct
from lowprob.toy_models.halfspace import HalfspaceToy
from lowprob.toy_models.registry import TOY_ESTIMATORS

__all__ = [
    "BatchResult",
    "ClenshawKernelEstimator",
    "KERNEL_ROTATED_REPRESENTATIONS",
    "HermiteEstimator",
    "KernelEstimator",
    "SamplingEstimator",
    "ToyPropagationEstimator",
    "random_product_claims",
]


def random_product_claims(n: int, m: int) -> list[Any]:
    """``[C_1..C_m]``: ``C_i`` = product of the ``m - i`` remaining random half-spaces on ``S^{n-1}``."""
    if n < 2:
        raise InputValueError(
            f"the propagation estimators need d >= 2 (claims live on S^(d-1)), got d={n!r}; "
            "for d = 1 the probability is 0 or 1/2 by inspection."
        )
    return backward_claims(RandomHalfspaceProduct(0, n), [RandomHalfspaceStep(n)] * m)


def _as_toy(problem: object) -> HalfspaceToy:
    if isinstance(problem, HalfspaceToy):
        return problem
    if isinstance(problem, (np.ndarray, list, tuple)):
        return HalfspaceToy(problem)
    raise InputValueError(
        f"problem must be a HalfspaceToy or an (m, d) weight array, got {type(problem).__name__!r}."
    )


@dataclass(frozen=True)
class BatchResult:
    """Estimates for a batch of instances: ``values (B,)``; costs per instance."""

    values: np.ndarray
    flops: np.ndarray
    terms: int
    seconds: np.ndarray
    precomputation_flops: float


@dataclass
class ToyPropagationEstimator(abc.ABC):
    """Base class: a representation + projector run through the generic loop."""

    name: str = "propagation"
    budget_unit: str = "terms"
    tile: int = 512

    # -- to supply -----------------------------------------------------------------------
    @abc.abstractmethod
    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> Any: ...

    @abc.abstractmethod
    def _projector(self) -> Any: ...

    def _check_problem(self, toy: HalfspaceToy) -> None:
        return None

    def _std_error(self, value: float, budget: int) -> float | None:
        return None

    # -- public --------------------------------------------------------------------------
    def trace(self, problem: object, budget: int, *, seed: object = None) -> PropagationTrace:
        """The full :class:`~lowprob.propagation.loop.PropagationTrace` for one instance."""
        toy = _as_toy(problem)
        budget = check_budget(budget)
        rng = as_generator(seed)
        self._check_problem(toy)
        claims = random_product_claims(toy.d, toy.m)
        return propagate(
            self._initial(toy.d, 1, budget, rng),
            halfspace_steps(toy.W, toy.b),
            projector=self._projector(),
            claims=claims,
            budget=budget,
        )

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        """``p_hat = E_{M_m}[1]`` after propagating through the ``m`` neurons with budget ``K``."""
        tr = self.trace(problem, budget, seed=seed)
        value = float(np.asarray(tr.value).reshape(-1)[0])
        return Estimate.from_value(
            value,
            std_error=self._std_error(value, int(budget)),
            cost=Cost(samples=tr.max_terms, flops=tr.flops, seconds=tr.seconds),
            method=self.name,
            budget=int(budget),
            budget_unit=self.budget_unit,
            diagnostics={
                "terms_per_step": [r.terms for r in tr.records],
                "flops_by_label": tr.flops_by_label,
                "precomputation_flops": tr.precomputation_flops,
                "flop_counting": "analytic (lowprob.propagation.flops)",
            },
        )

    def estimate_batch(self, Ws: object, budget: int, *, seed: object = None) -> BatchResult:
        """Estimates for ``Ws`` of shape ``(B, m, n)`` (homogeneous half-spaces), in tiles."""
        W = check_finite_array("Ws", Ws, ndim=3)
        budget = check_budget(budget)
        rng = as_generator(seed)
        B, m, n = W.shape
        claims = random_product_claims(n, m)
        vals, fl, secs, terms, pre = [], [], [], 0, 0.0
        for s in range(0, B, check_int("tile", self.tile, minimum=1)):
            w = W[s : s + self.tile]
            tr = propagate(
                self._initial(n, w.shape[0], budget, rng),
                halfspace_steps(w),
                projector=self._projector(),
                claims=claims,
                budget=budget,
            )
            vals.append(np.asarray(tr.value, dtype=np.float64).reshape(-1))
            fl.append(np.full(w.shape[0], tr.flops))
            secs.append(np.full(w.shape[0], tr.seconds / w.shape[0]))
            terms = max(terms, tr.max_terms)
            pre = max(pre, tr.precomputation_flops)
        return BatchResult(np.concatenate(vals), np.concatenate(fl), terms, np.concatenate(secs), pre)


@dataclass
class KernelEstimator(ToyPropagationEstimator):
    """Spherical-harmonic kernel sketch (:mod:`lowprob.propagation.harmonic_density`).

    ``budget = K`` coefficients; after each neuron the exact product is projected onto the
    degree blocks with the largest Funk--Hecke eigenvalues of the remaining-claims kernel
    ``((pi - arccos t)/(2 pi))^{m - i}`` that fit in ``K``. Deterministic (the seed is only
    validated). The coupling coefficients are instance-independent precomputation, cached
    per ``(n, L)`` and reported in ``diagnostics["precomputation_flops"]``.
    """

    name: str = "kernel"
    budget_unit: str = "terms"

    def _check_problem(self, toy: HalfspaceToy) -> None:
        if toy.has_bias:
            from lowprob.errors import UnavailableError

            raise UnavailableError(
                "the 'kernel' estimator needs b = 0 (a cone: only directions matter); got a bias. "
                "Use 'hermite' or 'sampling'."
            )

    rotated: bool = True

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> Any:
        if self.rotated and n in KERNEL_ROTATED_REPRESENTATIONS:
            return KERNEL_ROTATED_REPRESENTATIONS[n][0].uniform(batch)
        return HarmonicDensity.uniform(n, batch)

    def _projector(self) -> Any:
        return _kernel_projector


def _kernel_projector(rep: Any, claims: Any, budget: int, flops: Any) -> Any:
    """Dispatch on the representation type (rotated-frame blocks where available, else Clenshaw)."""
    for dens, prod, proj in KERNEL_ROTATED_REPRESENTATIONS.values():
        if isinstance(rep, (dens, prod)):
            return proj(rep, claims, budget, flops)
    return harmonic_block_projector(rep, claims, budget, flops)


#: ``n -> (density type, product type, projector)`` for dimensions with fast rotated products.
KERNEL_ROTATED_REPRESENTATIONS: dict[int, tuple[Any, Any, Any]] = {
    4: (QuaternionHarmonicDensity, QuaternionHarmonicProduct, quaternion_block_projector),
}


@dataclass
class ClenshawKernelEstimator(KernelEstimator):
    """The ``kernel`` scheme with the reference Clenshaw product in every dimension (no rotations)."""

    name: str = "kernel_clenshaw"
    rotated: bool = False


@dataclass
class HermiteEstimator(ToyPropagationEstimator):
    """Tensor-Hermite route (:mod:`lowprob.propagation.hermite_density`).

    ``budget = K`` coefficients: total degree ``D`` = largest with ``C(D + n, n) <= K``;
    projection is truncation; deterministic (the seed is only validated). Handles biases.
    """

    name: str = "hermite"
    budget_unit: str = "terms"
    tile: int = 128

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> HermiteDensity:
        return HermiteDensity.gaussian(n, batch)

    def _projector(self) -> Any:
        return hermite_truncation


@dataclass
class SamplingEstimator(ToyPropagationEstimator):
    """Plain Monte Carlo pushed through the same loop (:mod:`lowprob.propagation.sample_cloud`).

    ``budget = N`` samples ``x ~ N(0, I_n)``; unbiased, ``std_error = sqrt(p(1-p)/N)`` (plug-in).
    """

    name: str = "sampling"
    budget_unit: str = "samples"

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> SampleCloud:
        if batch != 1:
            raise InputValueError(f"SampleCloud propagates one instance at a time, got batch={batch!r}.")
        return SampleCloud.gaussian(n, budget, seed=rng)

    def _projector(self) -> Any:
        return drop_dead_samples

    def _std_error(self, value: float, budget: int) -> float:
        return math.sqrt(max(value * (1.0 - value), 0.0) / budget)

    def estimate_batch(self, Ws: object, budget: int, *, seed: object = None) -> BatchResult:
        W = check_finite_array("Ws", Ws, ndim=3)
        budget = check_budget(budget)
        rng = as_generator(seed)
        claims = random_product_claims(W.shape[2], W.shape[1])
        vals, fl, secs = [], [], []
        for w in W:
            tr = propagate(
                self._initial(W.shape[2], 1, budget, rng), halfspace_steps(w),
                projector=self._projector(), claims=claims, budget=budget,
            )
            vals.append(tr.value)
            fl.append(tr.flops)
            secs.append(tr.seconds)
        return BatchResult(np.array(vals, dtype=np.float64), np.array(fl), budget, np.array(secs), 0.0)


TOY_ESTIMATORS.add("kernel", KernelEstimator)
TOY_ESTIMATORS.add("kernel_clenshaw", ClenshawKernelEstimator)
TOY_ESTIMATORS.add("hermite", HermiteEstimator)
TOY_ESTIMATORS.add("sampling", SamplingEstimator)
