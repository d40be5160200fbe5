"""Hypothesis strategies for halfspace-toy instances.

``hypothesis`` is an optional (test) dependency: ``pip install 'lowprob[test]'``.

Instances are drawn from a seed (so shrinking moves between instances, not towards
degenerate matrices) with optional guaranteed feasibility, random positive row scales, and
a lower bound on the exact probability; :func:`weight_matrices` draws the entries themselves
and is meant for input-validation and invariance properties.
"""

from __future__ import annotations

try:
    from hypothesis import assume
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "lowprob.testing.strategies needs hypothesis: pip install 'lowprob[test]' "
        "(or pip install hypothesis)."
    ) from exc

import numpy as np

from lowprob.testing.instances import feasible_weight_matrix
from lowprob.toy_models.halfspace import HalfspaceToy

__all__ = [
    "feasible_weight_matrix",
    "halfspace_toys",
    "positive_row_scales",
    "row_permutations",
    "weight_matrices",
]


@st.composite
def halfspace_toys(
    draw: st.DrawFn,
    d: int | st.SearchStrategy[int] = 4,
    m: int | st.SearchStrategy[int] = 16,
    *,
    feasible: bool | None = None,
    min_probability: float = 0.0,
    scale_rows: bool = False,
) -> HalfspaceToy:
    """Random :class:`HalfspaceToy` instances.

    Args:
        d, m: sizes, or strategies for them (e.g. ``st.integers(2, 4)``).
        feasible: ``True``: every instance has a non-empty cone (rows flipped towards a random
            direction); ``None``: plain i.i.d. N(0,1) weights (mostly infeasible for m >> d);
            ``False``: a random instance conditioned to be infeasible (rejection, d <= 4).
        min_probability: reject instances whose exact ``p`` is below this (needs d <= 4).
        scale_rows: multiply each row by a log-uniform factor in [1e-2, 1e2].
    """
    d_ = draw(d) if isinstance(d, st.SearchStrategy) else d
    m_ = draw(m) if isinstance(m, st.SearchStrategy) else m
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    W = feasible_weight_matrix(rng, d_, m_) if feasible else rng.standard_normal((m_, d_))
    if scale_rows:
        W = W * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), size=(m_, 1)))
    if feasible is False or min_probability > 0:
        from lowprob.toy_models.oracle import exact_probability

        p = exact_probability(W).probability
        if feasible is False:
            assume(p == 0.0)
        assume(p >= min_probability)
    return HalfspaceToy(W)


def weight_matrices(
    d: int = 4,
    m: int = 16,
    *,
    magnitude: float = 10.0,
    min_row_norm: float = 1e-3,
) -> st.SearchStrategy[np.ndarray]:
    """``(m, d)`` float64 arrays with entries in ``[-magnitude, magnitude]`` drawn by hypothesis.

    Rows with norm below ``min_row_norm`` are rejected (zero rows are invalid input).
    """
    elems = st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, (m, d), elements=elems).filter(
        lambda W: bool(np.all(np.linalg.norm(W, axis=1) >= min_row_norm))
    )


def row_permutations(m: int) -> st.SearchStrategy[list[int]]:
    """Permutations of ``range(m)``."""
    return st.permutations(list(range(m)))


def positive_row_scales(m: int, *, low: float = 1e-3, high: float = 1e3) -> st.SearchStrategy[np.ndarray]:
    """``(m,)`` positive scale factors, log-uniform-ish in ``[low, high]``."""
    exps = st.floats(np.log(low), np.log(high), allow_nan=False, width=64)
    return hnp.arrays(np.float64, (m,), elements=exps).map(np.exp)
