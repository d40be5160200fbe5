"""Steps of the random products #3-SAT and {0,1}-permanents, and their claim pullbacks.

* :class:`ClauseStep`: multiply the (unnormalised) density on ``{-1,1}^n`` by one clause
  ``c(x) = 1[some literal true]``; after all ``k`` clauses the total mass is ``p``.
* :class:`RowStep`: multiply the density on ``S_n`` by ``C[i, sigma(i)]`` (row ``i``).
* :class:`RandomClauseStep` / :class:`RandomRowStep`: the priors over a step not known yet;
  pulling claims back through them gives the product of one more random factor
  (:class:`~lowprob.sketching.product_claims.RandomClauseProduct` ``m -> m + 1``,
  :class:`~lowprob.sketching.product_claims.RandomRowProduct` ``m -> m + 1``).

A batch of ``B`` instances is carried by giving ``literals`` shape ``(B, w)`` (``row``
shape ``(B, n)``): one row per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputTypeError, InputValueError
from lowprob.sketching.claims import ClaimDistribution, MultipliedClaims
from lowprob.sketching.product_claims import RandomClauseProduct, RandomRowProduct
from lowprob.sketching.pullback import register_pullback

__all__ = ["ClauseStep", "RandomClauseStep", "RandomRowStep", "RowStep", "clause_steps", "row_steps"]


@dataclass(frozen=True, eq=False)
class ClauseStep:
    """Multiply by ``c(x) = 1[exists j: sign_j x_{var_j} = +1]``.

    Attributes:
        literals: signed 1-based literals, ``(w,)`` or ``(B, w)`` (int64).
        n: number of variables.
    """

    literals: np.ndarray
    n: int

    def __post_init__(self) -> None:
        n = check_int("n", self.n, minimum=1)
        lit = np.asarray(self.literals)
        if lit.dtype.kind not in "iu":
            raise InputTypeError(f"literals must be integers, got dtype {lit.dtype!r}.")
        if lit.ndim not in (1, 2) or lit.shape[-1] == 0:
            raise InputValueError(f"literals must have shape (w,) or (B, w) with w >= 1, got {lit.shape!r}.")
        if np.any(lit == 0) or np.any(np.abs(lit) > n):
            raise InputValueError(
                f"literals must satisfy 1 <= |literal| <= n = {n}, got {lit[(lit == 0) | (np.abs(lit) > n)][:3].tolist()!r}."
            )
        object.__setattr__(self, "literals", lit.astype(np.int64))

    @property
    def variables(self) -> np.ndarray:
        """0-based variable indices, same shape as ``literals``."""
        return np.abs(self.literals) - 1

    @property
    def signs(self) -> np.ndarray:
        return np.sign(self.literals)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``c(x)`` at points ``(N, n)`` of +-1 (unbatched steps only): float 0/1."""
        if self.literals.ndim != 1:
            raise InputValueError("evaluate a batched ClauseStep row by row.")
        x = np.asarray(x)
        return np.any(x[:, self.variables] == self.signs, axis=1).astype(np.float64)


@dataclass(frozen=True)
class RandomClauseStep:
    """The prior over a clause step: ``width`` distinct uniform variables, uniform signs."""

    n: int
    width: int = 3


@dataclass(frozen=True, eq=False)
class RowStep:
    """Multiply by ``C[index, sigma(index)]``: ``row`` is ``(n,)`` or ``(B, n)`` of 0/1."""

    row: np.ndarray
    index: int

    def __post_init__(self) -> None:
        r = np.asarray(self.row)
        if r.ndim not in (1, 2):
            raise InputValueError(f"row must have shape (n,) or (B, n), got {r.shape!r}.")
        if not np.all((r == 0) | (r == 1)):
            raise InputValueError("row must hold 0/1 entries (a {0,1} permanent).")
        object.__setattr__(self, "row", r.astype(np.float64))
        idx = check_int("index", self.index, minimum=0)
        if idx >= r.shape[-1]:
            raise InputValueError(f"index must be < n = {r.shape[-1]}, got {idx!r}.")

    @property
    def n(self) -> int:
        return int(self.row.shape[-1])


@dataclass(frozen=True)
class RandomRowStep:
    """The prior over a row step: i.i.d. uniform {0,1} entries."""

    n: int


def clause_steps(n: int, literals: np.ndarray) -> list[ClauseStep]:
    """Steps of a formula ``(k, w)`` or a batch ``(B, k, w)`` (step ``i`` holds clause ``i`` of each)."""
    lit = np.asarray(literals)
    if lit.ndim not in (2, 3):
        raise InputValueError(f"literals must have shape (k, w) or (B, k, w), got {lit.shape!r}.")
    return [ClauseStep(lit[..., i, :], n) for i in range(lit.shape[-2])]


def row_steps(C: np.ndarray) -> list[RowStep]:
    """Steps of a matrix ``(n, n)`` or a batch ``(B, n, n)``."""
    C = np.asarray(C)
    if C.ndim not in (2, 3) or C.shape[-1] != C.shape[-2]:
        raise InputValueError(f"C must have shape (n, n) or (B, n, n), got {C.shape!r}.")
    return [RowStep(C[..., i, :], i) for i in range(C.shape[-1])]


@register_pullback(ClauseStep)
def _pullback_clause(claims: ClaimDistribution, step: ClauseStep) -> ClaimDistribution:
    """A known clause multiplies every claim: kernel ``c(x) c(y) k(x, y)``."""
    return MultipliedClaims(claims, step)


@register_pullback(RandomClauseStep)
def _pullback_random_clause(claims: ClaimDistribution, step: RandomClauseStep) -> ClaimDistribution:
    """Independent clauses: ``kappa . kappa^m = kappa^{m+1}`` (exact)."""
    if not isinstance(claims, RandomClauseProduct) or claims.n != step.n or claims.width != step.width:
        raise InputValueError(
            f"pullback through {step!r} is defined for RandomClauseProduct claims on the same cube, got {claims!r}."
        )
    return RandomClauseProduct(claims.m + 1, claims.n, claims.width)


@register_pullback(RandomRowStep)
def _pullback_random_row(claims: ClaimDistribution, step: RandomRowStep) -> ClaimDistribution:
    """One more random row before the remaining ``m``: claims on ``(i-1)``-subsets, ``m + 1``."""
    if not isinstance(claims, RandomRowProduct) or claims.n != step.n or claims.m >= claims.n:
        raise InputValueError(f"pullback through {step!r} needs RandomRowProduct claims with m < n, got {claims!r}.")
    return RandomRowProduct(claims.m + 1, claims.n)
