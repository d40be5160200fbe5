"""A deterministic quadrature cloud carried through Botev/Genz pivots (the forward activation model).

For the event ``lo <= C xi <= hi`` with ``xi ~ N(0, I_d)``, the pivoted LQ of ``C``
(:func:`lowprob.gaussian_polytope.pivoted_lq`) gives coordinates ``Z = Q^T xi ~ N(0, I_r)`` in
which the event is a sequence of interval constraints ``Z_j in [lt_j(Z_<j), ut_j(Z_<j)]``. With
a tilt ``mu`` (Botev 2017's minimax tilt, or ``mu = 0``: Genz 1992's separation of variables),

    p = E_{u ~ U(0,1)^{r-1}} [ exp(psi(Z(u); mu)) ],
    psi = sum_j [ log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2 / 2 - mu_j Z_j ],

with ``Z_j(u) = mu_j + F_j^{-1}(u_j)`` (``F_j``: the CDF of ``N(0, 1)`` truncated to
``[lt_j - mu_j, ut_j - mu_j]``). This module carries that integral through the one loop
(:func:`lowprob.propagation.loop.propagate`):

* representation :class:`QuadratureCloud`: ``K`` points ``u_k`` of one fixed deterministic rule
  on ``[0, 1)^s`` (:func:`sobol_points`: the first ``K`` points of a Sobol sequence with one
  fixed Owen-type scramble, ``K`` a power of two so that the points form a ``(t, m, s)``-net),
  the coordinates ``Z`` placed so far ``(K, j)`` and the log weights ``(K,)``;
* step :class:`PivotStep` (pivot ``j``: its owned rows, bounds, ``mu_j``) with the deduction rule
  ``log w_k += log(Phi(ut_j - mu_j) - Phi(lt_j - mu_j)) + mu_j^2 / 2 - mu_j Z_kj`` and
  ``Z_kj = mu_j + F_j^{-1}(u_kj)`` (one implementation:
  :func:`lowprob.gaussian_polytope.tilted_pivot_update`); the last pivot only multiplies by its
  interval mass; :class:`EmptyPolytopeStep` (an LP proved the polytope has no interior) sets
  every weight to 0;
* projector :func:`keep_quadrature_cloud`: the identity with the budget check;
* read-out ``E_M[1] = (1/K) sum_k w_k`` (log-sum-exp, so ``p`` may be ``1e-300``).

The estimate is deterministic: the same ``K`` gives the same number for the same instance.
It is the quasi-Monte Carlo version of Botev's ``mvNqmc`` with a single fixed scramble (no
replicate error bar).

FLOPs (analytic, per instance; :mod:`lowprob.propagation.flops` conventions): per point and pivot
``j`` owning ``n_j`` rows, the bounds cost ``n_j (2 j + 4)`` (dot products with ``Z_<j``, two
subtractions, max and min; a constant for ``j = 0``), the weight update ``4`` plus one interval
mass, the draw ``6`` plus one truncated-normal inverse. The two special-function kernels are
charged by stated constants per evaluation, for their most expensive (tail) branch:

* ``Phi``, ``log Phi``, ``ndtri``, ``ndtri_exp``: :data:`SPECIAL_FUNCTION_FLOPS` = 50 (Cephes-style
  rational approximations: numerator and denominator polynomials of degree ~8 by Horner, about
  32 FLOPs and a division, plus an ``exp``, ``log`` or ``sqrt`` of the argument);
* ``exp``, ``log``, ``expm1``, ``log1p``, ``sqrt``: :data:`ELEMENTARY_FUNCTION_FLOPS` = 15 (range
  reduction and a degree ~6 polynomial);
* one interval mass ``log(Phi(b) - Phi(a))``: 2 special + 2 elementary + 9 = 139;
* one truncated-normal inverse: 3 special + 2 elementary + 12 = 192.

The executed count (:mod:`lowprob.propagation.executed`) is independent: the shared kernels in
:mod:`lowprob.gaussian_polytope` report the sizes of the arrays they actually process
(:data:`lowprob.gaussian_polytope.OpCount`), converted with the same constants. Random numbers are
not drawn at all; the point rule is instance-independent precomputation (reported separately,
cached per ``(s, K)``).

Reference: Botev (2017), JRSS-B 79(1) 125-148, eqs. (9)-(10); Genz (1992), J. Comput. Graph.
Stat. 1(2) 141-149; Owen (1998) for scrambled nets.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from lowprob._validation import check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.gaussian_polytope import tilted_pivot_update
from lowprob.propagation import executed
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import register_deduction

__all__ = [
    "ELEMENTARY_FUNCTION_FLOPS",
    "INTERVAL_MASS_FLOPS",
    "SOBOL_SCRAMBLE_SEED",
    "SPECIAL_FUNCTION_FLOPS",
    "TRUNCNORM_PPF_FLOPS",
    "EmptyPolytopeStep",
    "PivotStep",
    "QuadratureCloud",
    "check_point_budget",
    "executed_count",
    "keep_quadrature_cloud",
    "op_flops",
    "pivot_step_flops",
    "sobol_points",
]

#: FLOP-equivalents of one ``Phi`` / ``log Phi`` / ``ndtri`` / ``ndtri_exp`` evaluation.
SPECIAL_FUNCTION_FLOPS = 50.0
#: FLOP-equivalents of one ``exp`` / ``log`` / ``expm1`` / ``log1p`` / ``sqrt`` evaluation.
ELEMENTARY_FUNCTION_FLOPS = 15.0
#: One element of :func:`lowprob.gaussian_polytope.log_normal_interval` (tail branch: two
#: ``log Phi``, ``expm1`` and ``log``, three comparisons and six arithmetic operations).
INTERVAL_MASS_FLOPS = 2 * SPECIAL_FUNCTION_FLOPS + 2 * ELEMENTARY_FUNCTION_FLOPS + 9.0
#: One element of :func:`lowprob.gaussian_polytope.truncated_normal_ppf` (tail branch: two
#: ``log Phi``, ``ndtri_exp``, ``expm1``, ``log1p``, four comparisons and eight operations).
TRUNCNORM_PPF_FLOPS = 3 * SPECIAL_FUNCTION_FLOPS + 2 * ELEMENTARY_FUNCTION_FLOPS + 12.0

_KIND_FLOPS = {
    "arith": 1.0,
    "elementary": ELEMENTARY_FUNCTION_FLOPS,
    "special": SPECIAL_FUNCTION_FLOPS,
    "interval_mass": INTERVAL_MASS_FLOPS,
    "truncnorm_ppf": TRUNCNORM_PPF_FLOPS,
}

#: The one fixed scramble of the Sobol rule (the estimator's ``seed`` does not change it).
SOBOL_SCRAMBLE_SEED = 20_171_125


def op_flops(kind: str, n: float) -> float:
    """FLOP-equivalents of ``n`` operations of ``kind`` (see :data:`lowprob.gaussian_polytope.OpCount`)."""
    return float(n) * _KIND_FLOPS[kind]


def executed_count(kind: str, n: float) -> None:
    """An :data:`~lowprob.gaussian_polytope.OpCount` that records into the active executed ledger."""
    executed.record(op_flops(kind, n), f"quadrature:{kind}")


def check_point_budget(budget: int) -> int:
    """``budget`` must be a power of two (the size of a Sobol net); returns it."""
    if budget < 1 or budget & (budget - 1):
        lo = 1 << max(int(budget).bit_length() - 1, 0)
        raise BudgetError(
            f"budget must be a power of two for the quadrature rule (a Sobol net of 2^k points), "
            f"got {budget!r}; pass {lo!r} or {2 * lo!r}."
        )
    return budget


@functools.lru_cache(maxsize=32)
def _sobol(s: int, K: int) -> np.ndarray:
    from scipy.stats import qmc

    eng = qmc.Sobol(s, scramble=True, seed=np.random.default_rng(SOBOL_SCRAMBLE_SEED))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        U = eng.random_base2(int(K).bit_length() - 1)
    U = np.clip(U, 1e-16, 1 - 1e-16)
    U.setflags(write=False)
    return U


def sobol_points(s: int, K: int) -> tuple[np.ndarray, float]:
    """The rule: the first ``K`` (a power of two) points of the fixed-scramble Sobol sequence in
    ``[0, 1)^s``, clipped to ``[1e-16, 1 - 1e-16]``; ``(points (K, s) read-only, precomputation FLOPs)``.

    Precomputation (instance-independent, cached per ``(s, K)``): the scramble's ``s`` random
    lower-triangular ``64 x 64`` bit matrices applied to the direction numbers (``2 * 64^2 s``) and
    one XOR plus one scaling per coordinate (``2 K s``).
    """
    s = check_int("s", s, minimum=1)
    check_point_budget(check_int("K", K, minimum=1))
    return _sobol(s, K), 2.0 * 64 * 64 * s + 2.0 * K * s


@dataclass(frozen=True)
class QuadratureCloud:
    """``M = (1/K) sum_k w_k delta_{Z_k}`` on the pivots placed so far.

    Attributes:
        points: ``(K, s)`` the rule (column ``j`` places pivot ``j``).
        Z: ``(K, j)`` the coordinates of the ``j`` pivots placed so far.
        log_weights: ``(K,)`` ``log w_k`` (``-inf``: weight 0).
    """

    points: np.ndarray
    Z: np.ndarray
    log_weights: np.ndarray

    @classmethod
    def start(cls, points: np.ndarray) -> QuadratureCloud:
        """``M_0``: every weight 1, no coordinate placed."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[0] < 1:
            raise InputValueError(f"points must have shape (K, s) with K >= 1, got {pts.shape!r}.")
        return cls(pts, np.zeros((pts.shape[0], 0)), np.zeros(pts.shape[0]))

    @property
    def n_terms(self) -> int:
        return int(self.log_weights.shape[0])

    def log_mass(self) -> float:
        """``log E_M[1] = logsumexp(log w) - log K`` (``-inf`` when every weight is 0)."""
        lw = np.where(np.isnan(self.log_weights), -np.inf, self.log_weights)
        if not np.any(np.isfinite(lw)):
            return -math.inf
        return float(logsumexp(lw) - math.log(lw.shape[0]))

    def total_mass(self) -> float:
        """``E_M[1] = (1/K) sum_k w_k`` (underflows to 0 below ``exp(-745)``: see :meth:`log_mass`)."""
        lm = self.log_mass()
        return math.exp(lm) if lm > -745 else 0.0


@dataclass(frozen=True)
class PivotStep:
    """Pivot ``j`` of the LQ: ``lo <= Z_j + rows @ Z_<j <= hi`` for its ``n_j`` owned rows.

    ``rows`` ``(n_j, j)``, ``lo``, ``hi`` ``(n_j,)``; ``mu`` the tilt of ``Z_j``; ``draw`` False for
    the last pivot (only its interval mass enters the weight).
    """

    index: int
    rows: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mu: float = 0.0
    draw: bool = True

    @property
    def n_rows(self) -> int:
        return int(self.lo.shape[0])


@dataclass(frozen=True)
class EmptyPolytopeStep:
    """The polytope has no interior (certified by an LP): every weight becomes 0."""

    reason: str = "no interior point"


def pivot_step_flops(K: int, j: int, n_rows: int, draw: bool) -> float:
    """Analytic FLOPs of one :class:`PivotStep` on ``K`` points (module docstring)."""
    bounds = 2.0 * max(n_rows - 1, 0) if j == 0 else float(K) * n_rows * (2 * j + 4)
    weight = float(K) * (4.0 + INTERVAL_MASS_FLOPS)
    place = float(K) * (6.0 + TRUNCNORM_PPF_FLOPS) if draw else 0.0
    return bounds + weight + place


@register_deduction(PivotStep, QuadratureCloud)
def _pivot_times_cloud(rep: QuadratureCloud, step: PivotStep, flops: FlopCounter) -> QuadratureCloud:
    j = step.index
    if rep.Z.shape[1] != j:
        raise InputValueError(f"pivot step {j!r} applied to a cloud with {rep.Z.shape[1]!r} pivots placed.")
    if step.draw and j >= rep.points.shape[1]:
        raise InputValueError(
            f"pivot {j!r} needs column {j!r} of the rule, which has {rep.points.shape[1]!r} columns."
        )
    u = rep.points[:, j] if step.draw else None
    z, lw = tilted_pivot_update(
        step.rows, step.lo, step.hi, float(step.mu), rep.Z, u, rep.log_weights, count=executed_count
    )
    flops.add(pivot_step_flops(rep.n_terms, j, step.n_rows, step.draw), "pivot")
    Z = np.column_stack([rep.Z, z]) if z is not None else rep.Z
    return QuadratureCloud(rep.points, Z, lw)


@register_deduction(EmptyPolytopeStep, QuadratureCloud)
def _empty_times_cloud(rep: QuadratureCloud, step: EmptyPolytopeStep, flops: FlopCounter) -> QuadratureCloud:
    return QuadratureCloud(rep.points, rep.Z, np.full(rep.n_terms, -np.inf))


def keep_quadrature_cloud(rep: QuadratureCloud, claims: Any, budget: int, flops: FlopCounter) -> QuadratureCloud:
    """Projector: the identity (the rule already has ``K = budget`` points); checks the budget."""
    if rep.n_terms > budget:
        raise InputValueError(f"the quadrature cloud has {rep.n_terms!r} points, more than budget={budget!r}.")
    return rep
