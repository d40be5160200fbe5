"""Propagation estimators for #3-SAT and {0,1}-permanents, all through the one loop.

=================  ==============================================  ===============================
method             representation (budget unit)                    projector
=================  ==============================================  ===============================
``sat-walsh``      Walsh coefficients on whole levels (terms)      levels ranked by ``lambda_l(m)``
``sat-walsh-topk`` Walsh coefficients, adaptive sets (terms)       top-K of ``lambda_{|S|} g_S^2``
``sat-sampling``   uniform points of the cube (samples)            drop dead samples
``perm-slice``     degree-``L`` slice functions (terms)            ``V_0..V_L`` of ``M^{(n-i,i)}``
``perm-sampling``  uniform permutations (samples)                  drop dead samples
=================  ==============================================  ===============================

Every method runs :func:`~lowprob.propagation.loop.propagate` with the backward claims
``C_i`` = product of the remaining *random* factors, from
:func:`~lowprob.propagation.loop.backward_claims` through
:class:`~lowprob.propagation.product_steps.RandomClauseStep` /
:class:`~lowprob.propagation.product_steps.RandomRowStep`. ``cost.samples`` is the largest
number of terms (or samples) held, ``cost.flops`` the analytic per-instance count
(precomputation in ``diagnostics["precomputation_flops"]``), ``cost.seconds`` wall time.
The estimators are registered in :data:`~lowprob.toy_models.registry.TOY_ESTIMATORS`.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_budget, check_int
from lowprob.errors import InputTypeError, InputValueError
from lowprob.estimate import Estimate
from lowprob.propagation.loop import PropagationTrace, backward_claims, propagate
from lowprob.propagation.permutation_density import SliceDensity, slice_degree_projector
from lowprob.propagation.product_samples import cube_cloud, permutation_cloud
from lowprob.propagation.product_steps import (
    RandomClauseStep,
    RandomRowStep,
    clause_steps,
    row_steps,
)
from lowprob.propagation.sample_cloud import drop_dead_samples
from lowprob.propagation.toy_estimators import BatchResult, trace_estimate
from lowprob.propagation.walsh_density import (
    WalshDensity,
    walsh_level_projector,
    walsh_topk_projector,
)
from lowprob.sketching.product_claims import RandomClauseProduct, RandomRowProduct
from lowprob.toy_models.permanent import PermanentProblem
from lowprob.toy_models.registry import TOY_ESTIMATORS
from lowprob.toy_models.sat import SatProblem

__all__ = [
    "PermanentSampling",
    "PermanentSlice",
    "ProductEstimator",
    "SatSampling",
    "SatWalshLevels",
    "SatWalshTopK",
    "clause_claims",
    "row_claims",
]


@lru_cache(maxsize=64)
def _clause_claims(n: int, k: int, width: int) -> tuple[Any, ...]:
    return tuple(backward_claims(RandomClauseProduct(0, n, width), [RandomClauseStep(n, width)] * k))


def clause_claims(n: int, k: int, width: int = 3) -> list[Any]:
    """``[C_1..C_k]``: ``C_i`` = product of the ``k - i`` remaining random clauses."""
    return list(_clause_claims(check_int("n", n, minimum=1), check_int("k", k, minimum=1), width))


def row_claims(n: int) -> list[Any]:
    """``[C_1..C_n]``: ``C_i`` = claims on ``i``-subsets from the ``n - i`` remaining random rows."""
    n = check_int("n", n, minimum=1)
    return backward_claims(RandomRowProduct(0, n), [RandomRowStep(n)] * n)


@dataclass
class ProductEstimator(abc.ABC):
    """Base: a problem type, its steps and claims, a representation and a projector."""

    name: str = "product"
    budget_unit: str = "terms"
    tile: int = 64
    batchable: bool = True

    # -- to supply -----------------------------------------------------------------------
    @abc.abstractmethod
    def _coerce(self, problem: object) -> Any: ...

    @abc.abstractmethod
    def _setup(self, data: np.ndarray, n: int) -> tuple[list[Any], list[Any]]:
        """``(steps, claims)`` for instance data ``(k, w)`` / ``(n, n)`` or a batch of them."""

    @abc.abstractmethod
    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> Any: ...

    @abc.abstractmethod
    def _projector(self) -> Any: ...

    @abc.abstractmethod
    def _data(self, problem: Any) -> tuple[np.ndarray, int]: ...

    def _std_error(self, value: float, budget: int) -> float | None:
        return None

    # -- public --------------------------------------------------------------------------
    def trace(self, problem: object, budget: int, *, seed: object = None) -> PropagationTrace:
        """The full :class:`~lowprob.propagation.loop.PropagationTrace` for one instance."""
        prob = self._coerce(problem)
        budget = check_budget(budget)
        rng = as_generator(seed)
        data, n = self._data(prob)
        steps, claims = self._setup(data, n)
        return propagate(self._initial(n, 1, budget, rng), steps,
                         projector=self._projector(), claims=claims, budget=budget)

    def estimate(self, problem: object, budget: int, *, seed: object = None) -> Estimate:
        """``p_hat = E_{M_k}[1]`` after all factors, with budget ``K``."""
        return trace_estimate(self, self.trace(problem, budget, seed=seed), budget)

    def estimate_batch(self, data: object, budget: int, *, seed: object = None, n: int | None = None) -> BatchResult:
        """Estimates for a batch of instances of one shape (``(B, k, w)`` literals or ``(B, n, n)``)."""
        D = np.asarray(data)
        budget = check_budget(budget)
        rng = as_generator(seed)
        nn = int(D.shape[-1]) if n is None else check_int("n", n, minimum=1)
        tile = check_int("tile", self.tile, minimum=1) if self.batchable else 1
        vals, fl, secs, terms, pre = [], [], [], 0, 0.0
        for s in range(0, D.shape[0], tile):
            chunk = D[s : s + tile]
            steps, claims = self._setup(chunk if self.batchable else chunk[0], nn)
            tr = propagate(self._initial(nn, chunk.shape[0] if self.batchable else 1, budget, rng), steps,
                           projector=self._projector(), claims=claims, budget=budget)
            vals.append(np.asarray(tr.value, dtype=np.float64).reshape(-1))
            fl.append(np.full(chunk.shape[0], tr.flops))
            secs.append(np.full(chunk.shape[0], tr.seconds / chunk.shape[0]))
            terms = max(terms, tr.max_terms)
            pre = max(pre, tr.precomputation_flops)
        return BatchResult(np.concatenate(vals), np.concatenate(fl), terms, np.concatenate(secs), pre)


class _SatMixin:
    def _coerce(self, problem: object) -> SatProblem:
        if not isinstance(problem, SatProblem):
            raise InputTypeError(f"problem must be a SatProblem, got {type(problem).__name__!r}.")
        if problem.k == 0:
            raise InputValueError("the formula has no clauses (p = 1 exactly); nothing to estimate.")
        return problem

    def _data(self, problem: SatProblem) -> tuple[np.ndarray, int]:
        lits = problem.literals
        if lits is None:
            raise InputValueError("the SAT estimators need clauses of one width (e.g. 3-CNF).")
        return lits, problem.n

    def _setup(self, data: np.ndarray, n: int) -> tuple[list[Any], list[Any]]:
        return clause_steps(n, data), clause_claims(n, int(data.shape[-2]), int(data.shape[-1]))


@dataclass
class SatWalshLevels(_SatMixin, ProductEstimator):
    """Whole Walsh levels ranked by the random-clause claim eigenvalues (deterministic)."""

    name: str = "sat-walsh"

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> WalshDensity:
        return WalshDensity.uniform(n, batch)

    def _projector(self) -> Any:
        return walsh_level_projector


@dataclass
class SatWalshTopK(_SatMixin, ProductEstimator):
    """Adaptive top-``K`` Walsh sets by ``lambda_{|S|}(m) g_S^2`` (deterministic; one instance at a time)."""

    name: str = "sat-walsh-topk"
    batchable: bool = False

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> WalshDensity:
        return WalshDensity.uniform(n, batch)

    def _projector(self) -> Any:
        return walsh_topk_projector


@dataclass
class SatSampling(_SatMixin, ProductEstimator):
    """Plain Monte Carlo on the cube through the same loop; ``std_error = sqrt(p(1-p)/N)``."""

    name: str = "sat-sampling"
    budget_unit: str = "samples"
    batchable: bool = False

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> Any:
        return cube_cloud(n, budget, seed=rng)

    def _projector(self) -> Any:
        return drop_dead_samples

    def _std_error(self, value: float, budget: int) -> float:
        return math.sqrt(max(value * (1.0 - value), 0.0) / budget)


class _PermMixin:
    def _coerce(self, problem: object) -> PermanentProblem:
        if isinstance(problem, np.ndarray):
            problem = PermanentProblem(problem)
        if not isinstance(problem, PermanentProblem):
            raise InputTypeError(f"problem must be a PermanentProblem, got {type(problem).__name__!r}.")
        problem.require_binary()
        return problem

    def _data(self, problem: PermanentProblem) -> tuple[np.ndarray, int]:
        return problem.matrix, problem.n

    def _setup(self, data: np.ndarray, n: int) -> tuple[list[Any], list[Any]]:
        return row_steps(data), row_claims(n)


@dataclass
class PermanentSlice(_PermMixin, ProductEstimator):
    """Degree-``L`` slice sketch, ``L`` the largest with ``C(n, L) <= K`` (deterministic; exact for ``L >= n/2``)."""

    name: str = "perm-slice"

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> SliceDensity:
        return SliceDensity.initial(n, batch)

    def _projector(self) -> Any:
        return slice_degree_projector


@dataclass
class PermanentSampling(_PermMixin, ProductEstimator):
    """Plain Monte Carlo over uniform permutations; ``std_error = sqrt(p(1-p)/N)``."""

    name: str = "perm-sampling"
    budget_unit: str = "samples"
    batchable: bool = False

    def _initial(self, n: int, batch: int, budget: int, rng: np.random.Generator) -> Any:
        return permutation_cloud(n, budget, seed=rng)

    def _projector(self) -> Any:
        return drop_dead_samples

    def _std_error(self, value: float, budget: int) -> float:
        return math.sqrt(max(value * (1.0 - value), 0.0) / budget)


TOY_ESTIMATORS.add("sat-walsh", SatWalshLevels)
TOY_ESTIMATORS.add("sat-walsh-topk", SatWalshTopK)
TOY_ESTIMATORS.add("sat-sampling", SatSampling)
TOY_ESTIMATORS.add("perm-slice", PermanentSlice)
TOY_ESTIMATORS.add("perm-sampling", PermanentSampling)
