"""Sampling as a propagation scheme for #3-SAT and permanents (the baselines to beat).

The representation is the existing :class:`~lowprob.propagation.sample_cloud.SampleCloud`
``sum_k w_k delta_{x_k}`` with ``w_k = 1/N``; only the points differ:

* cube: ``x_k`` uniform on ``{-1, 1}^n`` (int8, :func:`cube_cloud`); a :class:`ClauseStep`
  multiplies ``w_k`` by ``c(x_k)``;
* permutations: ``sigma_k`` uniform on ``S_n`` (:func:`permutation_cloud`); a :class:`RowStep`
  for row ``i`` multiplies ``w_k`` by ``C[i, sigma_k(i)]``.

The projector is :func:`~lowprob.propagation.sample_cloud.drop_dead_samples` (exact), so
``E_M[1]`` is the plain Monte Carlo estimate, unbiased with variance ``p (1 - p) / N``.

FLOPs (analytic, per live sample per step, generous to sampling): a clause of width ``w``
costs ``w`` compares and one weight multiply (``w + 1``); a row costs one multiply. Random
number generation and the logical OR are not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import register_deduction
from lowprob.propagation.product_steps import ClauseStep, RowStep
from lowprob.propagation.sample_cloud import SampleCloud

__all__ = ["MAX_CLOUD_BYTES", "cube_cloud", "permutation_cloud"]

MAX_CLOUD_BYTES = 2**31
"""Largest sample cloud held at once (points + weights); larger budgets raise before allocating."""


def _check_memory(size: int, n: int, itemsize: int) -> None:
    need = size * (n * itemsize + 8)
    if need > MAX_CLOUD_BYTES:
        from lowprob.errors import BudgetError

        raise BudgetError(
            f"budget={size!r} samples of dimension {n} need {need / 2**30:.1f} GiB, more than the "
            f"{MAX_CLOUD_BYTES / 2**30:.0f} GiB limit; use a smaller budget and average repeated runs."
        )


def cube_cloud(n: int, size: int, *, seed: Any = None) -> SampleCloud:
    """``size`` uniform points of ``{-1, 1}^n`` (int8), weights ``1/size``."""
    n = check_int("n", n, minimum=1)
    size = check_int("size", size, minimum=1)
    _check_memory(size, n, 1)
    pts = (as_generator(seed).integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1).astype(np.int8)
    return SampleCloud(pts, np.full(size, 1.0 / size))


def permutation_cloud(n: int, size: int, *, seed: Any = None) -> SampleCloud:
    """``size`` uniform permutations of ``{0..n-1}`` (rows of an ``(size, n)`` int array)."""
    n = check_int("n", n, minimum=1)
    size = check_int("size", size, minimum=1)
    _check_memory(size, n, 16)  # the random keys (float64) and the argsort (int64)
    pts = np.argsort(as_generator(seed).random((size, n)), axis=1)
    return SampleCloud(pts, np.full(size, 1.0 / size))


@register_deduction(ClauseStep, SampleCloud)
def _clause_times_cloud(rep: SampleCloud, step: ClauseStep, flops: FlopCounter) -> SampleCloud:
    if step.literals.ndim != 1:
        raise InputValueError("SampleCloud propagates one instance at a time; got a batched ClauseStep.")
    keep = np.any(rep.points[:, step.variables] == step.signs, axis=1)
    flops.add(rep.n_terms * (step.literals.size + 1), "clause")
    return SampleCloud(rep.points, rep.weights * keep)


@register_deduction(RowStep, SampleCloud)
def _row_times_cloud(rep: SampleCloud, step: RowStep, flops: FlopCounter) -> SampleCloud:
    if step.row.ndim != 1:
        raise InputValueError("SampleCloud propagates one instance at a time; got a batched RowStep.")
    flops.add(rep.n_terms, "row")
    return SampleCloud(rep.points, rep.weights * step.row[rep.points[:, step.index]])
