"""Seeded instance generators for the test kit (no hypothesis needed)."""

from __future__ import annotations

import numpy as np

__all__ = ["feasible_weight_matrix"]


def feasible_weight_matrix(rng: np.random.Generator, d: int, m: int) -> np.ndarray:
    """i.i.d. N(0,1) rows, each sign-flipped to have ``w . c > 0`` for a random direction ``c``.

    The cone then contains ``c``, so the instance is feasible; this is *not* the conditional
    law of a random instance given feasibility (that has thinner cones) but covers the same
    support.
    """
    W = rng.standard_normal((m, d))
    c = rng.standard_normal(d)
    signs = np.sign(W @ c)
    signs[signs == 0] = 1.0
    return W * signs[:, None]
