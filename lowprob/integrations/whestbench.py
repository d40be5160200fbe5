"""WhestBench adapter: lowprob's cumulant propagation as a WhestBench estimator.

WhestBench (PyPI ``whestbench``, ARC's Whitebox Estimation Challenge) scores FLOP-budgeted
predictions of the per-layer post-ReLU means ``E[x_l]``, shape ``(depth, width)``, of random
He-initialised ReLU MLPs, against Monte Carlo truth. Its contract: subclass
``whestbench.BaseEstimator``, implement ``predict(mlp, budget) -> (depth, width)`` and compute
with ``flopscope.numpy`` so flopscope meters the FLOPs; the score of one MLP is
``final_layer_mse * max(0.1, flops_used / budget)``.

:class:`KpropEstimator` runs :mod:`lowprob.propagation.cumulants` (``K = 2``, Mehler
covariances with closed-form ReLU Hermite coefficients) on the flopscope backend, so the
numbers WhestBench reports are produced by the same code as our numpy estimators. It picks
the richest variant whose predicted flopscope cost fits the budget (full covariance, else
power cumulants only) and raises :class:`~lowprob.errors.BudgetError` when even one layer
of the cheapest does not fit.

Install with ``pip install 'lowprob[whestbench]'``. Command line, from the repo root::

    whest run --estimator lowprob/integrations/whestbench.py --class-name KpropEstimator
"""

from __future__ import annotations

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
from lowprob.errors import BudgetError
from lowprob.propagation.cumulants import input_state, linear_step, nonlinear_step
from lowprob.propagation.gaussian_moments import flopscope_backend

__all__ = ["KpropEstimator", "flopscope_layer_cost"]


def flopscope_layer_cost(width: int, *, diagonal: bool, hermite_order: int) -> int:
    """Upper bound on flopscope's bill for one layer of :class:`KpropEstimator` (float64).

    flopscope prices float64 at twice float32: a ``(m,k)@(k,p)`` matmul at ``2 m (2k-1) p``,
    elementwise ops at 2, ``Phi``/``phi`` at 96 per element. Leading terms per layer: full,
    ``8 n^3`` (``W^T C W``) ``+ ~14 P n^2`` (Mehler series); diagonal, ``~12 n^2``. The
    constants carry a margin and are checked against flopscope in the tests.
    """
    n, P = width, hermite_order
    if diagonal:
        return int(16 * n * n + (600 + 40 * P) * n)
    return int(8 * n**3 + (14 * P + 40) * n * n + (600 + 40 * P) * n)


class KpropEstimator(BaseEstimator):
    """Cumulant propagation (``K = 2``) under WhestBench's contract.

    Args:
        hermite_order: Mehler terms ``P`` in the covariance series.
        allow_diagonal: fall back to power cumulants when the budget is below the full cost.
        budget_fraction: plan to spend at most this fraction of the budget (headroom for
            the cost model).
    """

    def __init__(
        self, *, hermite_order: int = 8, allow_diagonal: bool = True, budget_fraction: float = 0.95
    ) -> None:
        self.hermite_order = check_int("hermite_order", hermite_order, minimum=1)
        self.allow_diagonal = bool(allow_diagonal)
        self.budget_fraction = float(budget_fraction)
        self.last_variant: str | None = None

    def plan(self, width: int, depth: int, budget: int) -> bool:
        """Return ``diagonal`` for the richest variant that fits, or raise ``BudgetError``."""
        usable = budget * self.budget_fraction
        full = flopscope_layer_cost(width, diagonal=False, hermite_order=self.hermite_order)
        if full * depth <= usable:
            return False
        diag = flopscope_layer_cost(width, diagonal=True, hermite_order=self.hermite_order)
        cheapest = diag if self.allow_diagonal else full
        if self.allow_diagonal and diag * depth <= usable:
            return True
        if cheapest > usable:
            raise BudgetError(
                f"budget={budget!r} FLOPs is too small for even one layer of cumulant "
                f"propagation at width {width} (needs about {cheapest} FLOPs per layer)."
            )
        raise BudgetError(
            f"budget={budget!r} FLOPs covers only {int(usable // cheapest)} of {depth} layers "
            f"(about {cheapest} FLOPs per layer at width {width}); pass a larger budget."
        )

    def predict(self, mlp: Any, budget: int) -> Any:
        """Per-layer post-ReLU means, a flopscope array of shape ``(mlp.depth, mlp.width)``."""
        backend = flopscope_backend()
        diagonal = self.plan(mlp.width, mlp.depth, int(budget))
        self.last_variant = "kprop2-diag" if diagonal else "kprop2"
        state = input_state(mlp.width, 2, diagonal=diagonal, backend=backend)
        rows = []
        for w in mlp.weights:
            state = linear_step(state, w, backend=backend)
            state = nonlinear_step(
                state, "relu", hermite_order=self.hermite_order, backend=backend
            )
            rows.append(state.mean)
        return fnp.stack(rows, axis=0)
