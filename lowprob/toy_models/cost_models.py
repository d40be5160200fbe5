"""Stated memory and time estimates for toy-estimator budgets, checked before computing.

``check_toy_budget(method, d, m, budget)`` looks up ``method`` in :data:`TOY_COST_MODELS`
(a registry: a method without a model is not checked) and refuses, with the estimate, a budget
whose memory or time exceeds the limits of :mod:`lowprob._resources` -- instead of hanging for
years (``naive`` with ``budget=10**18``) or dying with ``MemoryError`` (``kernel`` with a huge
``K``). The models are deliberately simple, fitted to measurements on the development machine
(2 shared CPU cores; ``benchmarks/RESULTS-reliab.md``), and err towards *allowing* work:

* ``naive``: streams in batches of 65,536 samples (memory ``O(batch * d)``); time
  ``N * (2 m d / 1e9 + 2e-8)`` s (``2 m d`` flops per sample at 1 GFLOP/s + sampling).
* ``smc``: ``budget`` forward evaluations over ``~budget / m`` particles held at once:
  ``4 * 8 (d + 2) budget / m`` bytes; time ``5 budget (2 d / 1e9 + 2e-8)`` s.
* ``sampling``: ``N`` points at once, ``~ 3 * 8 (d + 2) N`` bytes; time as ``naive``.
* ``kernel``: measured 0.46 GB and ~60-180 s at ``K = 1000`` (d = 4, m = 16), ~0.14 GB at
  ``K = 200``; modelled as ``4.6e4 K^1.3`` bytes and ``60 (K / 1000)^1.7 * m / 16`` s, once
  (the precomputation dominates and is shared by a batch of instances).
* ``quadrature`` / ``quadrature-genz`` / ``quadrature-auto``: ``K`` points of ``d + 4`` floats, a few copies:
  ``4 * 8 (d + 4) K`` bytes; time per instance ``K d 3e-7 + K m d 2e-9 + 0.05`` s (measured
  0.06 s per 16x16 instance at ``K = 16384``: about 0.25 us per point and pivot, plus the setup).
* ``hermite``: measured 0.11 GB / 1.1 s CPU at ``K = 1000`` and 0.17 GB / 4.7 s at ``K = 10^4``;
  modelled as ``6e3 K max(1, K/1e4)^0.5`` bytes and ``5 (K / 1e4)^1.5 * m / 16`` s, once.
"""

from __future__ import annotations

from collections.abc import Callable

from lowprob._resources import check_memory, check_time
from lowprob.registry import Registry

__all__ = ["TOY_COST_MODELS", "check_toy_budget"]

#: method name -> ``(d, m, budget) -> (bytes, seconds once, seconds per instance)``
TOY_COST_MODELS: Registry[Callable[[int, int, int], tuple[float, float, float]]] = Registry("toy cost model")


def _sampling_time(d: int, m: int, n: int) -> float:
    return float(n) * (2.0 * m * d / 1e9 + 2e-8)


@TOY_COST_MODELS.register("naive")
def _naive(d: int, m: int, n: int) -> tuple[float, float, float]:
    return 8.0 * (1 << 16) * (d + m) * 3, 0.0, _sampling_time(d, m, n)


@TOY_COST_MODELS.register("smc")
def _smc(d: int, m: int, n: int) -> tuple[float, float, float]:
    # budget = forward evaluations; a run holds ~ budget / m particles of d floats (a few copies)
    return 4 * 8.0 * (d + 2) * n / max(m, 1), 0.0, _sampling_time(d, 1, n) * 5


@TOY_COST_MODELS.register("sampling")
def _sampling(d: int, m: int, n: int) -> tuple[float, float, float]:
    return 3 * 8.0 * (d + 2) * n, 0.0, _sampling_time(d, m, n)


@TOY_COST_MODELS.register("hermite")
def _hermite(d: int, m: int, k: int) -> tuple[float, float, float]:
    # measured (d = 4, m = 16): K = 1e3: ~0.11 GB, 1.1 s; K = 1e4: 0.17 GB, 4.7 s CPU
    kk = float(k) / 1e4
    return 6e3 * float(k) * max(kk, 1.0) ** 0.5, 5.0 * kk**1.5 * max(m, 1) / 16.0, 0.0


@TOY_COST_MODELS.register("kernel")
def _expansion(d: int, m: int, k: int) -> tuple[float, float, float]:
    # the measured time is dominated by the per-(n, L) precomputation, shared by a batch of
    # instances: counted once (the per-instance part is not modelled, so not checked)
    return 4.6e4 * float(k) ** 1.3, 60.0 * (float(k) / 1000.0) ** 1.7 * max(m, 1) / 16.0, 0.0


def _quadrature(d: int, m: int, k: int) -> tuple[float, float, float]:
    return 4 * 8.0 * (d + 4) * k, 0.0, float(k) * d * 3e-7 + float(k) * m * d * 2e-9 + 0.05


TOY_COST_MODELS.add("quadrature", _quadrature)
TOY_COST_MODELS.add("quadrature-genz", _quadrature)
TOY_COST_MODELS.add("quadrature-auto", _quadrature)


def check_toy_budget(method: str, d: int, m: int, budget: int, *, instances: int = 1) -> None:
    """Refuse ``budget`` for ``method`` on ``instances`` ``d x m`` toys if its estimate is out of reach."""
    if method not in TOY_COST_MODELS:
        return
    nbytes, once, each = TOY_COST_MODELS.get(method)(int(d), int(m), int(budget))
    seconds = once + each * instances
    fix = f"Pass a smaller budget for {method!r} (got {budget!r})."
    check_memory(f"{method!r} with budget {budget!r} on a d={d}, m={m} toy", nbytes, fix=fix)
    check_time(f"{method!r} with budget {budget!r} on {instances} d={d}, m={m} toy(s)", seconds, fix=fix)
