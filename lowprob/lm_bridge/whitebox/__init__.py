"""White-box final-layer claim propagation (DESIGN.md section 6): the final layer is the toy.

* :mod:`.final_layer`: competitor half-spaces ``(w_t - w_k) . x + (b_t - b_k) > 0`` and their
  deterministic danger ordering.
* :mod:`.activation_models`: samples, Gaussian, Gaussian mixture and QLD's product model of the
  final activation ``x``.
* :mod:`.adf`: assumed-density filtering through the competitors in conditional-danger order
  (one :func:`~lowprob.propagation.loop.propagate` pass gives the claim order and the estimate).
* :mod:`.polytope`: ``P_M[argmax = t]``: top-K Botev tilting + unbiased IS correction, and
  deduction--projection over competitors (moment matching).
* :mod:`.methods`: the LM methods registered for ``lowprob lm bench``.
"""

from lowprob.lm_bridge.whitebox.activation_models import (
    EmpiricalModel,
    GaussianMixture,
    GaussianModel,
    ProductModel,
    mixture_components,
)
from lowprob.lm_bridge.whitebox.adf import adf_over_competitors, sequential_danger_order
from lowprob.lm_bridge.whitebox.final_layer import FinalLayer, danger_order
from lowprob.lm_bridge.whitebox.polytope import (
    adf_probability,
    competitors_by_danger,
    corrected_gaussian_probability,
    polytope_probability,
    topk_gaussian_probability,
)

__all__ = [
    "EmpiricalModel",
    "FinalLayer",
    "GaussianMixture",
    "GaussianModel",
    "ProductModel",
    "adf_over_competitors",
    "adf_probability",
    "competitors_by_danger",
    "corrected_gaussian_probability",
    "danger_order",
    "mixture_components",
    "polytope_probability",
    "sequential_danger_order",
    "topk_gaussian_probability",
]
