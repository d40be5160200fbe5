"""Propagation: steps, the deduction–projection loop, forward activation models, backward claim models.

* :mod:`~lowprob.propagation.loop` — :func:`propagate` (one loop of small steps returning a
  typed :class:`PropagationTrace`), :func:`register_deduction` and :func:`backward_claims`.
* :mod:`~lowprob.propagation.steps` — half-space factor steps of the toy.
* :mod:`~lowprob.propagation.sketch_views` — every loop state viewed as a K-term sketch, so
  :func:`lowprob.sketching.sketch_error.sketch_error` measures it at any step.
* :mod:`~lowprob.propagation.toy_estimators` — ``kernel`` (spherical harmonics), ``hermite``
  (tensor Hermite) and ``sampling`` estimators, all through the same loop.
* :mod:`~lowprob.propagation.quadrature_cloud`, :mod:`~lowprob.propagation.quadrature_estimator` —
  ``quadrature`` / ``quadrature-genz`` / ``quadrature-auto``: a deterministic Sobol cloud through
  Botev/Genz pivots (``auto`` solves Botev's tilt only when the budget pays for it).
* :mod:`~lowprob.propagation.gaussian_moments`, :mod:`~lowprob.propagation.cumulants`,
  :mod:`~lowprob.propagation.mlp_estimators` — random-MLP activation models (mean/covariance
  and cumulant propagation) and their estimators.
"""

from importlib import import_module
from typing import Any

# Lazy (PEP 562): importing a light submodule (``lowprob.propagation.loop``, used by the
# WhestBench adapter, whose setup must stay well under a second) must not pull scipy.
_LAZY = {
    "PropagationTrace": "loop", "StepRecord": "loop", "backward_claims": "loop",
    "propagate": "loop", "register_deduction": "loop",
    "CumulantPropagation": "mlp_estimators", "GaussianMomentPropagation": "mlp_estimators",
    "LayerMeans": "mlp_estimators", "MLPTailProblem": "mlp_estimators",
    "MonteCarloMLP": "mlp_estimators",
    "HalfspaceStep": "steps", "RandomHalfspaceStep": "steps", "halfspace_steps": "steps",
    "HermiteEstimator": "toy_estimators", "KernelEstimator": "toy_estimators",
    "SamplingEstimator": "toy_estimators",
    "QuadratureEstimator": "quadrature_estimator", "QuadratureCloud": "quadrature_cloud",
    "AutoQuadratureEstimator": "quadrature_estimator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"lowprob.propagation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lowprob.propagation' has no attribute {name!r}")


__all__ = [
    "AutoQuadratureEstimator",
    "CumulantPropagation",
    "GaussianMomentPropagation",
    "HalfspaceStep",
    "HermiteEstimator",
    "KernelEstimator",
    "LayerMeans",
    "MLPTailProblem",
    "MonteCarloMLP",
    "PropagationTrace",
    "QuadratureCloud",
    "QuadratureEstimator",
    "RandomHalfspaceStep",
    "SamplingEstimator",
    "StepRecord",
    "backward_claims",
    "halfspace_steps",
    "propagate",
    "register_deduction",
]
