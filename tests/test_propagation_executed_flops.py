"""Counted FLOPs equal executed FLOPs (within 10 %) for the deterministic propagation schemes.

Tier: fast. ``Cost.flops`` is an analytic count (:mod:`lowprob.propagation.flops`); the
executed count comes from :mod:`lowprob.propagation.executed`, whose wrappers record the
FLOPs implied by the shapes of the arrays each contraction / element-wise update was actually
given (padding included). The two are computed independently; the test fails if they differ
by more than 10 % in either direction, so hidden padded work (the old Hermite einsum executed
~40 % more than it was charged) or over-charging both fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.propagation import executed
from lowprob.toy_models.registry import get_toy_estimator


def _executed_and_counted(method: str, W: np.ndarray, budget: int) -> tuple[float, float]:
    est = get_toy_estimator(method)
    with executed.ledger() as led:
        res = est.estimate_batch(W, budget)
    return led.total / W.shape[0], float(res.flops[0])


@pytest.mark.parametrize(
    "method, d, m, budget",
    [
        ("hermite", 4, 6, 35),     # D = 3
        ("hermite", 4, 6, 126),    # D = 5
        ("hermite", 8, 4, 165),    # D = 3
        ("hermite", 16, 3, 153),   # D = 2 (subspace route)
        ("hermite_full", 8, 4, 165),
        ("kernel", 3, 6, 25),          # Clenshaw route (n != 4)
        ("kernel", 4, 6, 91),          # rotated (quaternion) route
        ("kernel", 4, 6, 285),
        ("kernel_clenshaw", 4, 6, 91),
        ("kernel", 5, 4, 50),
    ],
)
def test_counted_flops_match_executed(method, d, m, budget):
    W = np.random.default_rng([d, m, budget]).standard_normal((3, m, d))
    ex, counted = _executed_and_counted(method, W, budget)
    assert counted > 0
    assert abs(ex / counted - 1.0) <= 0.10, (ex, counted)


def test_ledger_counts_a_padded_contraction():
    """The ledger sees padding: a matrix product with zero rows costs its full shape."""
    a = np.zeros((5, 7))
    b = np.ones((7, 3))
    with executed.ledger() as led:
        executed.einsum("ij,jk->ik", a, b)
    assert led.total == 2 * 5 * 7 * 3
