"""Assumed-density filtering over the competitor half-spaces, in conditional-danger order.

The target's cell is ``{x : A x + c > 0}`` (:class:`~.final_layer.FinalLayer`, one row per
competitor). Starting from a Gaussian activation model ``exp(log_mass) N(m, S)``, each step of
:func:`lowprob.propagation.loop.propagate`

1. **chooses** the competitor ``k`` with the largest *conditional* danger
   ``P[A_k x + c_k <= 0] = Phi(-mu_k / s_k)`` under the current Gaussian, where
   ``mu_k = A_k m + c_k`` and ``s_k^2 = A_k S A_k^T`` are tracked for every competitor;
2. **deduces** exactly: multiplies the density by ``1[A_k x + c_k > 0]`` (a truncated Gaussian);
3. **projects** onto the Gaussian with the same mass, mean and covariance (Minka 2001,
   "Expectation propagation", eqs. 3.7-3.9). With ``alpha = -mu_k / s_k`` and
   ``lam = phi(alpha) / Phi(-alpha)``::

       log_mass += log Phi(-alpha)
       m += S A_k^T lam / s_k
       S -= (S A_k^T)(S A_k^T)^T lam (lam - alpha) / s_k^2
       mu += A (S A_k^T) lam / s_k                      (every competitor, rank one)
       s^2 -= (A (S A_k^T))^2 lam (lam - alpha) / s_k^2

and stops choosing once the largest remaining danger is below ``exp(log_tol)``. The ordering
*is* the filter: one pass gives both the claim order (used by the top-K tilting of
:mod:`.polytope`) and the ADF estimate ``exp(log_mass)`` of ``P_M[argmax = t]``. Marginal
danger ranks near-duplicate competitors together; conditional danger does not, because once
one of them is absorbed the other's danger collapses. Cost per step ``O(V d + d^2)`` after an
``O(V d^2)`` start; the update formulas exist once, in :func:`moment_match_projector`, which
also serves a plain :class:`~lowprob.propagation.steps.HalfspaceStep` (fixed half-space).
Ties go to the lower token id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from lowprob.errors import InputTypeError, InputValueError
from lowprob.gaussian_polytope import log_normal_le_zero
from lowprob.lm_bridge.whitebox.activation_models import GaussianModel
from lowprob.lm_bridge.whitebox.final_layer import FinalLayer
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import (
    PropagationTrace,
    UnprojectedProduct,
    propagate,
    register_deduction,
)
from lowprob.propagation.steps import HalfspaceStep

__all__ = [
    "CompetitorGaps",
    "DangerousCompetitorStep",
    "GaussianDensity",
    "TruncatedGaussianDensity",
    "adf_over_competitors",
    "moment_match_projector",
    "sequential_danger_order",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True, eq=False)
class CompetitorGaps:
    """The gaps ``y_k = A_k x + c_k`` of every competitor under the current Gaussian.

    Attributes:
        A: ``(K, d)`` rows, ``c``: ``(K,)`` offsets, ``ids``: ``(K,)`` token ids.
        mu, var: ``(K,)`` current mean and variance of each gap.
        used: ``(K,)`` bool, competitors already absorbed.
        chosen, dangers: token ids absorbed so far and their log-danger when chosen.
        done: the largest remaining danger fell below the tolerance (later steps are no-ops).
    """

    A: np.ndarray
    c: np.ndarray
    ids: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    used: np.ndarray
    chosen: tuple[int, ...] = ()
    dangers: tuple[float, ...] = ()
    done: bool = False

    def log_danger(self) -> np.ndarray:
        """``log Phi(-mu_k / s_k)``, ``-inf`` for absorbed competitors."""
        ld = log_normal_le_zero(self.mu, np.sqrt(np.maximum(self.var, 0.0)))
        ld[self.used] = -np.inf
        return ld


@dataclass(frozen=True, eq=False)
class GaussianDensity:
    """Unnormalised ``exp(log_mass) N(mean, cov)`` (``d + d(d+1)/2`` terms), optionally with the
    competitor gaps it is being filtered through."""

    log_mass: float
    mean: np.ndarray
    cov: np.ndarray
    gaps: CompetitorGaps | None = None

    @property
    def n_terms(self) -> int:
        d = self.mean.size
        return d + d * (d + 1) // 2

    def total_mass(self) -> float:
        return math.exp(self.log_mass) if self.log_mass > -745 else 0.0


@dataclass(frozen=True, eq=False)
class TruncatedGaussianDensity(UnprojectedProduct):
    """``GaussianDensity * 1[u . x + beta > 0]`` (exact deduction, not yet projected).

    ``index`` is the competitor's row in ``base.gaps`` (``None`` for a plain half-space).
    """

    base: GaussianDensity
    normal: np.ndarray
    offset: float
    index: int | None = None

    @property
    def n_terms(self) -> int:  # pragma: no cover - always projected first
        return self.base.n_terms + self.normal.size + 1



@dataclass(frozen=True)
class DangerousCompetitorStep:
    """Multiply by the indicator of the currently most dangerous competitor not yet absorbed.

    The competitor set travels in the representation (:class:`CompetitorGaps`); the step only
    says when to stop: once the largest danger is below ``exp(log_tol)`` it is the identity.
    """

    log_tol: float = math.log(1e-9)


@register_deduction(HalfspaceStep, GaussianDensity)
def _truncate_gaussian(rep: GaussianDensity, step: HalfspaceStep, flops: FlopCounter) -> TruncatedGaussianDensity:
    return TruncatedGaussianDensity(rep, np.asarray(step.normal, dtype=np.float64), float(step.offset))


@register_deduction(DangerousCompetitorStep, GaussianDensity)
def _truncate_most_dangerous(
    rep: GaussianDensity, step: DangerousCompetitorStep, flops: FlopCounter
) -> GaussianDensity | TruncatedGaussianDensity:
    g = rep.gaps
    if g is None:
        raise InputTypeError(
            "DangerousCompetitorStep needs a GaussianDensity that carries CompetitorGaps; build it with "
            "adf_over_competitors(model, layer)."
        )
    if g.done:
        return rep
    ld = g.log_danger()
    flops.add(4.0 * ld.size, "adf-danger")
    k = int(np.argmax(ld))  # first maximum: lowest token id among ties (ids are increasing)
    if not ld[k] >= step.log_tol:  # also stops when every competitor is used (all -inf)
        return replace(rep, gaps=replace(g, done=True))
    used = g.used.copy()
    used[k] = True
    gaps = replace(g, used=used, chosen=(*g.chosen, int(g.ids[k])), dangers=(*g.dangers, float(ld[k])))
    return TruncatedGaussianDensity(replace(rep, gaps=gaps), g.A[k], float(g.c[k]), k)


def moment_match_projector(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> GaussianDensity:
    """Project a truncated Gaussian onto the Gaussian with the same mass, mean and covariance.

    The formulas are in the module docstring; the tracked competitor gaps (if any) get the same
    rank-one update. A Gaussian (nothing to project) is returned unchanged.
    """
    if isinstance(rep, GaussianDensity):
        return rep
    base, u, beta = rep.base, rep.normal, rep.offset
    d = base.mean.size
    Su = base.cov @ u
    s2 = float(u @ Su)
    mu_y = float(u @ base.mean) + beta
    flops.add(6.0 * d * d, "adf")
    if s2 <= 0:  # no randomness along u: the indicator is a constant 1 or 0
        return replace(base, log_mass=base.log_mass + (0.0 if mu_y > 0 else -math.inf))
    s = math.sqrt(s2)
    alpha = -mu_y / s
    log_z = float(log_ndtr(-alpha))
    lam = math.exp(-0.5 * alpha * alpha - _LOG_SQRT_2PI - log_z)
    shrink = min(max(lam * (lam - alpha), 0.0), 1.0 - 1e-12)
    mean = base.mean + Su * (lam / s)
    cov = base.cov - np.outer(Su, Su) * (shrink / s2)
    gaps = base.gaps
    if gaps is not None:
        ASu = gaps.A @ Su
        flops.add(2.0 * ASu.size * d, "adf-gaps")
        gaps = replace(gaps, mu=gaps.mu + ASu * (lam / s), var=gaps.var - ASu**2 * (shrink / s2))
    return GaussianDensity(base.log_mass + log_z, mean, 0.5 * (cov + cov.T), gaps)


def adf_over_competitors(
    model: GaussianModel,
    layer: FinalLayer,
    *,
    max_competitors: int | None = None,
    log_tol: float = math.log(1e-9),
    gap_var: np.ndarray | None = None,
) -> PropagationTrace:
    """Filter ``N(model.mean, model.cov)`` through the competitors in conditional-danger order.

    At most ``max_competitors`` steps (default ``V - 1``) of :func:`propagate` with
    :class:`DangerousCompetitorStep` and :func:`moment_match_projector`. ``trace.final`` is the
    :class:`GaussianDensity` (``log_mass``: the ADF estimate of ``log P_M[argmax = t]``) and
    ``trace.final.gaps.chosen`` the competitors in the order they were absorbed. ``gap_var``
    (``(V - 1,)``, the variances ``A_k S A_k^T`` of all competitors in increasing token order)
    may be passed when many Gaussians share one covariance, to skip the ``O(V d^2)`` start.
    """
    ks = layer.competitors
    A, c = layer.halfspaces(ks)
    K = ks.size if max_competitors is None else layer.check_k(max_competitors, name="max_competitors")
    flops = FlopCounter()
    if gap_var is None:
        AL = A @ model.chol
        gap_var = np.einsum("ij,ij->i", AL, AL)
        flops.add(2.0 * A.size * model.d, "adf-start")
    elif np.shape(gap_var) != (ks.size,):
        raise InputValueError(f"gap_var must have shape ({ks.size},) (one per competitor), got {np.shape(gap_var)!r}.")
    gaps = CompetitorGaps(
        A=A, c=c, ids=ks, mu=A @ model.mean + c, var=np.array(gap_var, dtype=np.float64), used=np.zeros(ks.size, dtype=bool)
    )
    step = DangerousCompetitorStep(float(log_tol))
    return propagate(
        GaussianDensity(0.0, model.mean, model.cov, gaps), [step] * K,
        projector=moment_match_projector, claims=[None] * K, budget=model.d, flops=flops,
    )


def sequential_danger_order(
    model: GaussianModel, layer: FinalLayer, *, max_competitors: int | None = None, log_tol: float = math.log(1e-9)
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(competitors, log_danger_at_selection, adf_log_probability)`` of :func:`adf_over_competitors`.

    Stops when the largest remaining danger is below ``exp(log_tol)`` or after
    ``max_competitors`` competitors.
    """
    final = adf_over_competitors(model, layer, max_competitors=max_competitors, log_tol=log_tol).final
    gaps = final.gaps
    return np.asarray(gaps.chosen, dtype=np.int64), np.asarray(gaps.dangers), float(final.log_mass)
