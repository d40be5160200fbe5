"""WhestBench adapter: lowprob's cumulant propagation as a WhestBench estimator.

WhestBench (PyPI ``whestbench``, ARC's Whitebox Estimation Challenge) scores FLOP-budgeted
predictions of the per-layer post-ReLU means ``E[x_l]``, shape ``(depth, width)``, of random
He-initialised ReLU MLPs, against Monte Carlo truth. Its contract: subclass
``whestbench.BaseEstimator``, implement ``predict(mlp, budget) -> (depth, width)`` and compute
with ``flopscope.numpy`` so flopscope meters the FLOPs; the score of one MLP is
``final_layer_mse * max(0.1, flops_used / budget)``.

:class:`KpropEstimator` runs :mod:`lowprob.propagation.cumulants` (structured ``K = 3``,
``K = 2`` or power cumulants; Mehler covariances with closed-form ReLU Hermite coefficients)
on the flopscope backend, so the numbers WhestBench reports are produced by the same code as
our numpy estimators. It picks the richest variant whose predicted flopscope cost fits the
budget and raises :class:`~lowprob.errors.BudgetError` when even one layer of the cheapest
does not fit.

Install with ``pip install 'lowprob[whestbench]'``. Command line, from the repo root::

    whest run --estimator lowprob/integrations/whestbench.py --class-name KpropEstimator
"""

from __future__ import annotations

import warnings
from typing import Any

try:
    import flopscope.numpy as fnp
    from whestbench import BaseEstimator
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "lowprob.integrations.whestbench needs the optional extra: "
        "pip install 'lowprob[whestbench]'"
    ) from exc

from lowprob._validation import check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.propagation.cumulants import input_state, linear_step, nonlinear_step
from lowprob.propagation.gaussian_moments import flopscope_backend

__all__ = ["VARIANTS", "KpropEstimator", "flopscope_layer_cost"]


#: Variants, richest first: (name, order, diagonal, structured).
VARIANTS: tuple[tuple[str, int, bool, bool], ...] = (
    ("kprop3-struct", 3, False, True),
    ("kprop2", 2, False, False),
    ("kprop2-diag", 2, True, False),
)


def flopscope_layer_cost(variant: str, width: int, *, hermite_order: int) -> int:
    """Upper bound on flopscope's bill for one layer of a :class:`KpropEstimator` variant.

    We compute in float64, which flopscope prices at twice float32: a ``(m,k)@(k,p)``
    matmul at ``2 m (2k-1) p``, elementwise ops at 2, ``Phi``/``phi`` at 96 per element.
    Leading terms per layer (before the factor 2): ``kprop2``, ``4 n^3`` (``W^T C W``) +
    ``~7 P n^2`` (Mehler series); ``kprop3-struct``, ``10 n^3`` (three more matmuls for the
    pair third cumulants) + ``~14 P n^2``; ``kprop2-diag``, ``~8 n^2``. The constants carry
    a margin and are checked against flopscope in the tests.
    """
    n, P = width, hermite_order
    r = 2
    if variant == "kprop2-diag":
        cost = 8 * n * n + (300 + 20 * P) * n
    elif variant == "kprop2":
        cost = 4 * n**3 + (10 * P + 40) * n * n + (300 + 20 * P) * n
    elif variant == "kprop3-struct":
        cost = 10 * n**3 + (14 * P + 60) * n * n + (400 + 40 * P) * n
    else:
        raise InputValueError(f"unknown variant {variant!r}; known: {[v[0] for v in VARIANTS]!r}.")
    return int(r * cost)


class KpropEstimator(BaseEstimator):
    """Cumulant propagation under WhestBench's contract.

    Runs the richest of :data:`VARIANTS` (``kprop3-struct``: covariance plus pair third
    cumulants, ``O(n^3)``; ``kprop2``: Gaussian mean/covariance; ``kprop2-diag``: power
    cumulants, ``O(n^2)``) whose predicted cost fits ``budget_fraction * budget``.

    Args:
        hermite_order: Mehler terms ``P`` in the covariance series.
        variants: names allowed, richest first (default: all of :data:`VARIANTS`).
        budget_fraction: plan to spend at most this fraction of the budget. WhestBench
            multiplies the MSE by ``max(0.1, flops / budget)``, so 0.1 is "free"; the default
            0.2 lets ``kprop3-struct`` run at width 1024, depth 16, budget ``2**41``.
    """

    def __init__(
        self,
        *,
        hermite_order: int = 4,
        variants: tuple[str, ...] | None = None,
        budget_fraction: float = 0.2,
    ) -> None:
        self.hermite_order = check_int("hermite_order", hermite_order, minimum=1)
        known = {v[0]: v for v in VARIANTS}
        names = tuple(known) if variants is None else tuple(variants)
        for v in names:
            if v not in known:
                raise InputValueError(f"unknown variant {v!r}; known: {list(known)!r}.")
        self.variants = tuple(known[v] for v in names)
        if not 0 < float(budget_fraction) <= 1:
            raise InputValueError(f"budget_fraction must be in (0, 1], got {budget_fraction!r}.")
        self.budget_fraction = float(budget_fraction)
        self.last_variant: str | None = None

    def _cost(self, name: str, width: int) -> int:
        return flopscope_layer_cost(name, width, hermite_order=self.hermite_order)

    def plan(self, width: int, depth: int, budget: int) -> tuple[str, int, bool, bool]:
        """The richest allowed variant whose whole-net cost fits, or raise ``BudgetError``."""
        usable = budget * self.budget_fraction
        for v in self.variants:
            if self._cost(v[0], width) * depth <= usable:
                return v
        cheapest = min(self._cost(v[0], width) for v in self.variants)
        if cheapest > usable:
            raise BudgetError(
                f"budget={budget!r} FLOPs (x budget_fraction {self.budget_fraction}) is too "
                f"small for even one layer of cumulant propagation at width {width} (needs "
                f"about {cheapest} FLOPs per layer)."
            )
        raise BudgetError(
            f"budget={budget!r} FLOPs (x budget_fraction {self.budget_fraction}) covers only "
            f"{int(usable // cheapest)} of {depth} layers (about {cheapest} FLOPs per layer at "
            f"width {width}); pass a larger budget."
        )

    def predict(self, mlp: Any, budget: int) -> Any:
        """Per-layer post-ReLU means, a flopscope array of shape ``(mlp.depth, mlp.width)``."""
        backend = flopscope_backend()
        name, order, diagonal, structured = self.plan(mlp.width, mlp.depth, int(budget))
        self.last_variant = name
        state = input_state(mlp.width, order, diagonal=diagonal, structured=structured,
                            backend=backend, dtype=fnp.float64)
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flopscope's symmetry-tracking notes
            for w in mlp.weights:
                w = fnp.asarray(w, dtype=fnp.float64)
                state = linear_step(state, w, backend=backend)
                state = nonlinear_step(
                    state, "relu", hermite_order=self.hermite_order, backend=backend
                )
                rows.append(state.mean)
        return fnp.stack(rows, axis=0)
