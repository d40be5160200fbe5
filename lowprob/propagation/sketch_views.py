"""Views of the loop's states as K-term sketches (:data:`lowprob.sketching.kterm.SKETCH_VIEWS`).

A state of :func:`lowprob.propagation.loop.propagate` is a K-term approximation of the
(unnormalised) distribution after the steps so far. Registering a view here lets
:func:`lowprob.sketching.sketch_error.sketch_error` (and everything else that takes a sketch)
accept it at any step, given the measure it approximates:

* :class:`~lowprob.propagation.sample_cloud.SampleCloud` ``sum_k w_k delta_{x_k}`` ->
  :class:`~lowprob.sketching.sketches.PointSketch` (same points and weights; zonal claims
  see the radial projection ``x / |x|``);
* :class:`~lowprob.propagation.harmonic_density.HarmonicDensity` ``g = sum_j c_j Y_j`` ->
  :class:`~lowprob.sketching.sketches.HarmonicSketch` (same coefficients).

Batched states (leading axis ``B > 1``) are refused: slice one instance first.
"""

from __future__ import annotations

from lowprob.errors import InputValueError
from lowprob.propagation.harmonic_density import HarmonicDensity
from lowprob.propagation.sample_cloud import SampleCloud
from lowprob.sketching.kterm import SKETCH_VIEWS
from lowprob.sketching.measures import Measure, WeightedPoints
from lowprob.sketching.sketches import HarmonicSketch, PointSketch

__all__: list[str] = []


@SKETCH_VIEWS.register(SampleCloud)
def _cloud_as_sketch(rep: SampleCloud, target: Measure) -> PointSketch:
    return PointSketch(WeightedPoints(rep.points, rep.weights, signed=True), target)


@SKETCH_VIEWS.register(HarmonicDensity)
def _harmonic_as_sketch(rep: HarmonicDensity, target: Measure) -> HarmonicSketch:
    if rep.coefficients.shape[0] != 1:
        raise InputValueError(
            f"a batched HarmonicDensity ({rep.coefficients.shape[0]} instances) is not one sketch; "
            "view HarmonicDensity(rep.n, rep.degrees, rep.coefficients[i:i + 1]) instead."
        )
    return HarmonicSketch(rep.coefficients[0], target, n_terms=rep.n_terms)
