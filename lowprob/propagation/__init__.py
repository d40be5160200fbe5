"""Propagation: steps, the deduction–projection loop, forward activation models, backward claim models.

* :mod:`~lowprob.propagation.loop` — :func:`propagate` (one loop of small steps returning a
  typed :class:`PropagationTrace`), :func:`register_deduction` and :func:`backward_claims`.
* :mod:`~lowprob.propagation.steps` — half-space factor steps of the toy.
* :mod:`~lowprob.propagation.sketch_views` — every loop state viewed as a K-term sketch, so
  :func:`lowprob.sketching.sketch_error.sketch_error` measures it at any step.
* :mod:`~lowprob.propagation.toy_estimators` — ``kernel`` (spherical harmonics), ``hermite``
  (tensor Hermite) and ``sampling`` estimators, all through the same loop.
* :mod:`~lowprob.propagation.gaussian_moments`, :mod:`~lowprob.propagation.cumulants`,
  :mod:`~lowprob.propagation.mlp_estimators` — random-MLP activation models (mean/covariance
  and cumulant propagation) and their estimators.
"""

from lowprob.propagation import sketch_views as _sketch_views  # noqa: F401  (registers views)
from lowprob.propagation.loop import (
    PropagationTrace,
    StepRecord,
    backward_claims,
    propagate,
    register_deduction,
)
from lowprob.propagation.mlp_estimators import (
    CumulantPropagation,
    GaussianMomentPropagation,
    LayerMeans,
    MLPTailProblem,
    MonteCarloMLP,
)
from lowprob.propagation.steps import HalfspaceStep, RandomHalfspaceStep, halfspace_steps
from lowprob.propagation.toy_estimators import HermiteEstimator, KernelEstimator, SamplingEstimator

__all__ = [
    "CumulantPropagation",
    "GaussianMomentPropagation",
    "HalfspaceStep",
    "HermiteEstimator",
    "KernelEstimator",
    "LayerMeans",
    "MLPTailProblem",
    "MonteCarloMLP",
    "PropagationTrace",
    "RandomHalfspaceStep",
    "SamplingEstimator",
    "StepRecord",
    "backward_claims",
    "halfspace_steps",
    "propagate",
    "register_deduction",
]
