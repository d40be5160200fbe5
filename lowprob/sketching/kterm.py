"""The one K-term contract: what a sketch is, what the propagation loop carries, what the error measures.

A *K-term approximation* ``M`` of a distribution ``D`` (DESIGN.md section 1) is one object,
whether it came from sampling, eigen-projection, quadrature, moment matching or a propagation
step. :class:`KTerm` is its contract:

* ``K`` / ``n_terms``: the number of terms it holds; ``target``: the measure ``D`` it sketches;
  ``cost``: what building it spent (a :class:`lowprob.Cost`);
* ``total_mass()``: ``E_M[1]`` (what :func:`lowprob.propagation.loop.propagate` reads off);
* ``expect(f)``: ``E_M f``; ``points_and_weights()``: ``M`` as a signed weighted point set;
* ``harmonic_moments(sh)``: ``E_M Y_j`` and ``harmonic_moments_rounding(sh)`` (their float64
  error bound), ``spectral_tail(zonal, lam)``: the part of ``||mu_M||_k^2`` above degree ``L``.

Required: ``K``, ``target``, and either ``points_and_weights`` or the harmonic members; the
rest are derived or raise :class:`~lowprob.errors.UnavailableError` naming the class. So every
:class:`~lowprob.sketching.sketches.Sketch` is a :class:`lowprob.propagation.loop.Representation`
(``n_terms``, ``total_mass``), and every loop state becomes a ``KTerm`` of a given target through
the *view* registered for its type in :data:`SKETCH_VIEWS` (:func:`as_sketch`), which is how
:func:`lowprob.sketching.sketch_error.sketch_error` measures the loop's state at any step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lowprob.errors import InputValueError, UnavailableError
from lowprob.estimate import Cost
from lowprob.registry import Registry
from lowprob.sketching.harmonics import SphericalHarmonics, harmonic_rounding_bound
from lowprob.sketching.measures import Measure, WeightedPoints

__all__ = ["SKETCH_VIEWS", "KTerm", "as_sketch"]


class KTerm:
    """A K-term approximation ``M`` of ``target`` (see the module docstring for the contract)."""

    K: int
    target: Measure
    cost: Cost
    kind: str = "sketch"

    @property
    def n_terms(self) -> int:
        """The loop's name for ``K`` (:class:`lowprob.propagation.loop.Representation`)."""
        return int(self.K)

    def total_mass(self) -> float:
        """``E_M[1]`` (the loop's read-out; ``1`` for a normalised sketch)."""
        return float(self.points_and_weights().weights.sum())

    def expect(self, f: Any) -> float:
        raise UnavailableError(f"{type(self).__name__} does not implement expect().")

    def harmonic_moments(self, sh: SphericalHarmonics) -> np.ndarray:
        raise UnavailableError(f"{type(self).__name__} has no harmonic moments.")

    def points_and_weights(self) -> WeightedPoints:
        raise UnavailableError(f"{type(self).__name__} is not a weighted point set.")

    def harmonic_moments_rounding(self, sh: SphericalHarmonics) -> np.ndarray:
        """Per-degree bound ``(L + 1,)`` on the float64 error of :meth:`harmonic_moments` entries."""
        P = self.points_and_weights()
        return harmonic_rounding_bound(sh.n, sh.L, n_points=len(P), weight_l1=float(np.abs(P.weights).sum()))

    def spectral_tail(self, zonal: Any, lam: np.ndarray) -> tuple[float, float]:
        """``(||mu_M||^2 above degree L, rounding bound)`` with ``L = lam.size - 1``."""
        raise UnavailableError(f"{type(self).__name__} cannot compute its spectral tail.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.K})"


SKETCH_VIEWS: Registry[Callable[[Any, Measure], KTerm]] = Registry("sketch view", plugins=True)
"""``representation type -> view(rep, target) -> KTerm``; filled by the representation's module."""


def as_sketch(rep: Any, target: Measure | None = None) -> KTerm:
    """View a loop state (or a sketch) as a :class:`KTerm` of ``target``.

    A :class:`KTerm` is returned as is (``target`` must then be omitted or be its own target);
    any other object uses the view registered for its type (MRO-aware) in :data:`SKETCH_VIEWS`.
    A batched state (leading axis ``B > 1``) must be sliced to one instance first.
    """
    if isinstance(rep, KTerm):
        if target is not None and target is not rep.target:
            raise InputValueError(
                f"{type(rep).__name__} already sketches {rep.target!r}; omit target= or build the "
                "sketch against the new target."
            )
        return rep
    if target is None:
        raise InputValueError(
            f"target is required to view a {type(rep).__name__} as a sketch: pass the measure it "
            "approximates (e.g. SphericalCone(W).scaled(p) for an unnormalised toy state)."
        )
    if not isinstance(target, Measure):
        raise InputValueError(f"target must be a lowprob.sketching.measures.Measure, got {target!r}.")
    for t in type(rep).__mro__:
        if t in SKETCH_VIEWS:
            return SKETCH_VIEWS.get(t)(rep, target)
    known = ", ".join(getattr(k, "__name__", repr(k)) for k in SKETCH_VIEWS.keys()) or "(none)"
    raise InputValueError(
        f"no sketch view for {type(rep).__name__!r} (known: {known}); register one with "
        "SKETCH_VIEWS.register(RepType) in the module that defines the representation."
    )
