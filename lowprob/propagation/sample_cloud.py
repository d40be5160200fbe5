"""Sampling as a propagation scheme: a weighted point cloud pushed through the loop.

Representation: ``M = sum_k w_k delta_{x_k}`` with ``x_k ~ N(0, I_n)`` i.i.d. and
``w_k = 1/N``, so ``E_M[1] = (1/N) sum_k prod_i F_i(x_k)`` is the plain Monte Carlo
estimate of ``p`` and is unbiased with variance ``p (1 - p) / N``.

Deduction through a halfspace step is exact: ``w_k <- w_k 1[u . x_k + beta > 0]``.
Projection (:func:`drop_dead_samples`) removes zero-weight points, which changes no
expectation, so the cloud never exceeds its ``N`` samples and later steps only touch the
survivors (the cheapest honest implementation of sampling, the baseline to beat).

FLOPs (analytic, per instance): ``2 n`` per live sample per step for ``u . x`` and the
offset, ``1`` for the comparison, ``1`` for the weight update; RNG is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import register_deduction
from lowprob.propagation.steps import HalfspaceStep

__all__ = ["SampleCloud", "drop_dead_samples"]


@dataclass(frozen=True)
class SampleCloud:
    """``sum_k weights[k] delta_{points[k]}``; ``points (N, n)``, ``weights (N,)``."""

    points: np.ndarray
    weights: np.ndarray

    @classmethod
    def gaussian(cls, n: int, size: int, *, seed: Any = None, base_samples: np.ndarray | None = None) -> SampleCloud:
        """``size`` i.i.d. ``N(0, I_n)`` points with weights ``1/size``.

        ``base_samples`` (shape ``(size, n)``) may be passed for common random numbers.
        """
        n = check_int("n", n, minimum=1)
        size = check_int("size", size, minimum=1)
        if base_samples is None:
            pts = as_generator(seed).standard_normal((size, n))
        else:
            pts = np.asarray(base_samples, dtype=np.float64)
            if pts.shape != (size, n):
                raise InputValueError(f"base_samples must have shape {(size, n)!r}, got {pts.shape!r}.")
        return cls(pts, np.full(size, 1.0 / size))

    @property
    def n_terms(self) -> int:
        return int(self.weights.shape[0])

    def total_mass(self) -> float:
        return float(self.weights.sum())


@register_deduction(HalfspaceStep, SampleCloud)
def _halfspace_times_cloud(rep: SampleCloud, step: HalfspaceStep, flops: FlopCounter) -> SampleCloud:
    if step.normal.ndim != 1:
        raise InputValueError("SampleCloud propagates one instance at a time; got a batched step.")
    keep = rep.points @ step.normal + step.offset > 0
    flops.add(rep.n_terms * (2 * step.n + 2), "halfspace")
    return SampleCloud(rep.points, rep.weights * keep)


def drop_dead_samples(rep: SampleCloud, claims: Any, budget: int, flops: FlopCounter) -> SampleCloud:
    """Projector for clouds: drop zero-weight points (exact; never exceeds the budget)."""
    if rep.n_terms > budget:
        raise InputValueError(f"the cloud has {rep.n_terms!r} points, more than budget={budget!r}.")
    alive = rep.weights != 0
    return SampleCloud(rep.points[alive], rep.weights[alive])
