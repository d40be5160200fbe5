"""Views of the loop's states as K-term sketches (:data:`lowprob.sketching.kterm.SKETCH_VIEWS`).

A state of :func:`lowprob.propagation.loop.propagate` is a K-term approximation of the
(unnormalised) distribution after the steps so far. Registering a view here lets
:func:`lowprob.sketching.sketch_error.sketch_error` (and everything else that takes a sketch)
accept it at any step, given the measure it approximates:

* :class:`~lowprob.propagation.sample_cloud.SampleCloud` ``sum_k w_k delta_{x_k}`` ->
  :class:`~lowprob.sketching.sketches.PointSketch` (same points and weights; zonal claims
  see the radial projection ``x / |x|``);
* :class:`~lowprob.propagation.harmonic_density.HarmonicDensity` ``g = sum_j c_j Y_j`` ->
  :class:`~lowprob.sketching.sketches.HarmonicSketch` (same coefficients);
* :class:`~lowprob.propagation.hermite_density.HermiteDensity` ``g = sum_alpha c_alpha He_alpha``
  (density w.r.t. ``N(0, I_n)``) -> :class:`~lowprob.sketching.sketches.HarmonicSketch` of its
  direction law (:func:`hermite_radial_projection`, exact): what claims that see only ``x / |x|``
  (zonal claims, the toy's homogeneous half-spaces) measure.

Batched states (leading axis ``B > 1``) are refused: slice one instance first.
"""

from __future__ import annotations

from math import exp, lgamma, log

import numpy as np
from numpy.polynomial.hermite_e import herme2poly

from lowprob.errors import InputValueError
from lowprob.propagation.harmonic_density import HarmonicDensity
from lowprob.propagation.hermite_density import HermiteBasis, HermiteDensity
from lowprob.propagation.sample_cloud import SampleCloud
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.kterm import SKETCH_VIEWS
from lowprob.sketching.measures import Measure, WeightedPoints
from lowprob.sketching.sketches import HarmonicSketch, PointSketch
from lowprob.sketching.sphere_quadrature import sphere_quadrature

__all__ = ["hermite_radial_projection"]


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


def hermite_radial_projection(rep: HermiteDensity) -> np.ndarray:
    """Harmonic coefficients (degrees ``<= D``) of the direction law of ``g(x) N(0, I_n)(dx)``.

    With ``x = r theta`` (``r ~ chi_n`` independent of ``theta`` uniform on ``S^{n-1}``), the
    direction ``theta`` has density ``h(theta) = E_r[g(r theta)] = sum_beta b_beta E[r^|beta|]
    theta^beta`` w.r.t. ``sigma``, where ``g = sum_beta b_beta x^beta`` is the monomial form of
    ``sum_alpha c_alpha He_alpha`` and ``E[r^k] = 2^{k/2} Gamma((n + k)/2) / Gamma(n/2)``. ``h`` is a
    polynomial of degree ``<= D``, so its coefficients ``int h Y_j dsigma`` are exact under the
    degree-``2D`` sphere rule. Shape ``(dim of harmonics of degree <= D on S^{n-1},)``; entry 0 is
    ``E_gamma[g] = c_0``.
    """
    if rep.coefficients.shape[0] != 1:
        raise InputValueError(
            f"a batched HermiteDensity ({rep.coefficients.shape[0]} instances) is not one sketch; "
            "view HermiteDensity(rep.n, rep.degree, rep.coefficients[i:i + 1]) instead."
        )
    n, D = rep.n, rep.degree
    alpha = HermiteBasis(n, D).alpha[: rep.coefficients.shape[1]]
    mono: dict[tuple[int, ...], float] = {}
    for a, c in zip(alpha, rep.coefficients[0], strict=True):
        if c == 0:
            continue
        terms: dict[tuple[int, ...], float] = {(): float(c)}
        for k in a:  # tensor product of the 1-D monomial expansions of He_k
            p1 = herme2poly(np.eye(int(k) + 1)[int(k)])
            terms = {t + (e,): v * p1[e] for t, v in terms.items() for e in range(int(k) + 1) if p1[e] != 0}
        for t, v in terms.items():
            mono[t] = mono.get(t, 0.0) + v
    X, w = sphere_quadrature(n, max(2 * D, 1))
    h = np.zeros(X.shape[0])
    for beta, b in mono.items():
        k = sum(beta)
        rk = exp(0.5 * k * log(2.0) + lgamma((n + k) / 2) - lgamma(n / 2))
        h += b * rk * np.prod(X ** np.array(beta), axis=1)
    return SphericalHarmonics(n, D).moments(X, w * h)


@SKETCH_VIEWS.register(HermiteDensity)
def _hermite_as_sketch(rep: HermiteDensity, target: Measure) -> HarmonicSketch:
    if not target.on_sphere:
        raise InputValueError(
            f"the HermiteDensity view is its direction law (a density on the sphere); the target "
            f"must live on the sphere too, got {target!r}."
        )
    return HarmonicSketch(hermite_radial_projection(rep), target, n_terms=rep.n_terms)
