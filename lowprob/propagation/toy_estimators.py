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

Routes: at ``n = 4`` ``kernel`` multiplies in the frame where the half-space normal is the pole
(:mod:`lowprob.propagation.quaternion_density`, chosen through
:data:`KERNEL_ROTATED_REPRESENTATIONS`; ``kernel_clenshaw`` keeps the Clenshaw product everywhere);
``hermite`` carries the density in the QR frame of ``W^T`` on the first ``min(i, n)`` coordinates
(identical estimates, fewer FLOPs; ``hermite_full`` is the all-coordinates reference).

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
from lowprob.propagation import executed
from lowprob.propagation.harmonic_density import (
    HarmonicDensity,
    harmonic_block_projector,
)
from lowprob.propagation.hermite_density import (
    HermiteDensity,
    hermite_degree_for_budget,
    hermite_truncation,
)
from lowprob.propagation.loop import PropagationTrace, backward_claims, propagate
from lowprob.propagation.quaternion_density import (
    QuaternionHarmonicDensity,
    QuaternionHarmonicProduct,
    quaternion_block_projector,
)
from lowprob.propagation.sample_cloud import SampleCloud, drop_dead_samples
from lowprob.propagation.steps import HalfspaceStep, RandomHalfspaceStep, halfspace_steps
from lowprob.sketching.claims import RandomHalfspaceProduct
from lowprob.toy_models.cost_models import check_toy_budget
from lowprob.toy_models.halfspace import HalfspaceToy, as_halfspace_toy
from lowprob.toy_models.registry import TOY_ESTIMATORS, lazy_factory

__all__ = [
    "trace_estimate",
    "BatchResult",
    "ClenshawKernelEstimator",
    "KERNEL_ROTATED_REPRESENTATIONS",
    "FullHermiteEstimator",
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


@dataclass(frozen=True)
class BatchResult:
    """Estimates for a batch of instances: ``values (B,)``; costs per instance."""

    values: np.ndarray
    flops: np.ndarray
    terms: int
    seconds: np.ndarray
    precomputation_flops: float


def trace_estimate(estimator: Any, tr: PropagationTrace, budget: int) -> Estimate:
    """The :class:`~lowprob.Estimate` of a propagation trace: ``p_hat = E_{M_last}[1]`` (the
    trace's value), its cost (terms, counted FLOPs, seconds) and the per-step diagnostics.

    ``estimator`` supplies ``name``, ``budget_unit`` and ``_std_error(value, budget)``.
    """
    value = float(np.asarray(tr.value).reshape(-1)[0])
    return Estimate.from_value(
        value,
        std_error=estimator._std_error(value, int(budget)),
        cost=Cost(samples=tr.max_terms, flops=tr.flops, seconds=tr.seconds),
        method=estimator.name,
        budget=int(budget),
        budget_unit=estimator.budget_unit,
        diagnostics={
            "terms_per_step": [r.terms for r in tr.records],
            "flops_by_label": tr.flops_by_label,
            "precomputation_flops": tr.precomputation_flops,
            "flop_counting": "analytic (lowprob.propagation.flops)",
        },
    )


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

    def _steps(self, W: np.ndarray, b: np.ndarray | None = None, budget: int = 0) -> tuple[list[Any], float]:
        """The steps for ``W (m, n)`` or ``(B, m, n)`` and the per-instance FLOPs spent building them."""
        return halfspace_steps(W, b), 0.0

    # -- public --------------------------------------------------------------------------
    def trace(self, problem: object, budget: int, *, seed: object = None) -> PropagationTrace:
        """The full :class:`~lowprob.propagation.loop.PropagationTrace` for one instance."""
        toy = as_halfspace_toy(problem)
        budget = check_budget(budget)
        check_toy_budget(self.name, toy.d, toy.m, budget)  # stated memory/time estimate
        rng = as_generator(seed)
        self._check_problem(toy)
        claims = random_product_claims(toy.d, toy.m)
        steps, frame_flops = self._steps(toy.W, toy.b, budget)
        tr = propagate(
            self._initial(toy.d, 1, budget, rng),
            steps,
            projector=self._projector(),
            claims=claims,
            budget=budget,
        )
        if frame_flops:
            from dataclasses import replace as _replace

            tr = _replace(tr, flops=tr.flops + frame_flops)
        return tr

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        """``p_hat = E_{M_m}[1]`` after propagating through the ``m`` neurons with budget ``K``."""
        return trace_estimate(self, self.trace(problem, budget, seed=seed), budget)

    def estimate_batch(self, Ws: object, budget: int, *, seed: object = None) -> BatchResult:
        """Estimates for ``Ws`` of shape ``(B, m, n)`` (homogeneous half-spaces), in tiles."""
        W = check_finite_array("Ws", Ws, ndim=3)
        budget = check_budget(budget)
        rng = as_generator(seed)
        B, m, n = W.shape
        check_toy_budget(self.name, n, m, budget, instances=B)  # stated memory/time estimate
        claims = random_product_claims(n, m)
        vals, fl, secs, terms, pre = [], [], [], 0, 0.0
        for s in range(0, B, check_int("tile", self.tile, minimum=1)):
            w = W[s : s + self.tile]
            steps, frame_flops = self._steps(w, None, budget)
            tr = propagate(
                self._initial(n, w.shape[0], budget, rng),
                steps,
                projector=self._projector(),
                claims=claims,
                budget=budget,
            )
            vals.append(np.asarray(tr.value, dtype=np.float64).reshape(-1))
            fl.append(np.full(w.shape[0], tr.flops + frame_flops))
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
    subspace: bool = True

    def _steps(self, W: np.ndarray, b: np.ndarray | None = None, budget: int = 0) -> tuple[list[Any], float]:
        """Subspace route (used from total degree 2 on; below, the QR costs more than it saves): in the frame ``x = Q y`` with ``W^T = Q R`` (QR), row ``i`` of ``W Q = R^T``
        has only its first ``min(i + 1, n)`` coordinates non-zero, so after ``i`` steps the density
        depends on ``y_1..y_i`` only and is carried in ``i`` variables (exactly the same truncated
        coefficients, since ``He_0 = 1``). Counted per instance: the LAPACK Householder QR of the
        ``n x m`` matrix ``W^T`` (``2 k^2 (l - k/3)`` with ``k = min(m, n)``, ``l = max(m, n)``), forming
        the complete ``Q`` (``4 n^3 / 3``) and ``W Q`` (``2 m n^2``)."""
        if not self._use_subspace(W.shape[-1], budget):
            return halfspace_steps(W, b), 0.0
        Wb = W[None] if W.ndim == 2 else W
        m, n = Wb.shape[1], Wb.shape[2]
        Q = np.linalg.qr(np.swapaxes(Wb, 1, 2), mode="complete")[0]  # (B, n, n)
        R = Wb @ Q  # (B, m, n), lower-trapezoidal up to round-off
        bb = np.zeros(Wb.shape[:2]) if b is None else np.broadcast_to(np.asarray(b, dtype=np.float64), Wb.shape[:2])
        steps = []
        for i in range(m):
            k = min(i + 1, n)
            u = R[:, i, :k] if W.ndim == 3 else R[0, i, :k]
            beta = bb[:, i] if W.ndim == 3 else bb[0, i]
            steps.append(HalfspaceStep(u, beta))
        k, l = min(m, n), max(m, n)
        frame = 2.0 * k * k * (l - k / 3.0) + 4.0 * n**3 / 3.0 + 2.0 * m * n * n
        executed.record(frame * Wb.shape[0], "qr_frame (LAPACK, formula)")
        return steps, frame

    def _use_subspace(self, n: int, budget: int) -> bool:
        return self.subspace and hermite_degree_for_budget(n, budget) >= 2

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> HermiteDensity:
        return HermiteDensity.gaussian(1 if self._use_subspace(n, budget) else n, batch)

    def _projector(self) -> Any:
        return hermite_truncation


@dataclass
class FullHermiteEstimator(HermiteEstimator):
    """``hermite`` carried in all ``n`` variables at every step (no subspace frame; the reference)."""

    name: str = "hermite_full"
    subspace: bool = False


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
TOY_ESTIMATORS.add("hermite_full", FullHermiteEstimator)
TOY_ESTIMATORS.add("sampling", SamplingEstimator)

# The deterministic quadrature sketches live in their own module, which imports this one: they
# are registered lazily (imported on first use), so there is no import cycle.
TOY_ESTIMATORS.add("quadrature", lazy_factory("lowprob.propagation.quadrature_estimator", "QuadratureEstimator"))
TOY_ESTIMATORS.add("quadrature-genz", lazy_factory("lowprob.propagation.quadrature_estimator", "GenzQuadratureEstimator"))
TOY_ESTIMATORS.add("quadrature-auto", lazy_factory("lowprob.propagation.quadrature_estimator", "AutoQuadratureEstimator"))
