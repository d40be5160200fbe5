"""The exception hierarchy and warnings of ``lowprob``.

Every error the library raises on bad input derives from :class:`LowprobError` *and*
from the builtin the caller would expect (``ValueError`` or ``TypeError``), so both
``except LowprobError`` and ``except ValueError`` work (botorch's pattern).
"""

from __future__ import annotations

__all__ = [
    "LowprobError",
    "InputValueError",
    "InputTypeError",
    "BudgetError",
    "UnavailableError",
    "NumericalError",
    "NumericalWarning",
]


class LowprobError(Exception):
    """Root of every exception raised by ``lowprob``."""


class InputValueError(LowprobError, ValueError):
    """An argument has the right type but an invalid value (shape, NaN, range...)."""


class InputTypeError(LowprobError, TypeError):
    """An argument has the wrong type."""


class BudgetError(InputValueError):
    """A budget is invalid (below 1, non-integer) or too small for the method to run."""


class UnavailableError(LowprobError, NotImplementedError):
    """An optional capability is not available for this object or these sizes."""


class NumericalError(LowprobError, ArithmeticError):
    """A numerical procedure failed (e.g. a covariance stayed indefinite after jitter)."""


class NumericalWarning(RuntimeWarning):
    """A numerical procedure needed a fallback (jitter, clipping) that may affect accuracy."""
