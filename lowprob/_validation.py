"""Input checks shared by every public entry point.

Public functions validate with these helpers and then call private ``_`` functions
that assume valid input. Messages name the argument, show the value with ``!r`` and
say what is allowed.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from lowprob.errors import BudgetError, InputTypeError, InputValueError

__all__ = [
    "as_generator",
    "check_budget",
    "check_finite_array",
    "check_int",
    "check_seed",
    "check_probability_vector",
]


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` as ``int``; raise if it is not an integer or is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return value


def check_budget(budget: object, *, name: str = "budget", minimum: int = 1) -> int:
    """Validate a budget: an integer ``>= minimum`` (default 1)."""
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral):
        if isinstance(budget, float) and budget.is_integer():
            budget = int(budget)
        else:
            raise BudgetError(
                f"{name} must be a positive integer (number of samples / terms / model calls), "
                f"got {budget!r}."
            )
    budget = int(budget)
    if budget < minimum:
        raise BudgetError(f"{name} must be >= {minimum}, got {budget!r}. Pass a larger budget.")
    return budget


#: Largest seed accepted everywhere (numpy and torch both take it; larger ones are refused so that
#: a typo such as ``10**26`` is not silently reduced modulo 2**64 by one library and not by another).
MAX_SEED = 2**63 - 1


def check_seed(name: str, value: object) -> int:
    """An integer seed in ``[0, 2**63 - 1]``."""
    value = check_int(name, value, minimum=0)
    if value > MAX_SEED:
        raise InputValueError(f"{name} must be <= 2**63 - 1 = {MAX_SEED}, got {value!r}.")
    return value


def as_generator(seed: object) -> np.random.Generator:
    """Turn ``seed`` (int, ``None`` or ``numpy.random.Generator``) into a Generator.

    ``None`` gives fresh OS entropy; an int gives a reproducible stream. Anything else
    (a float, a string, a legacy ``RandomState``) is rejected: we never seed globally.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(
            f"seed must be an int, None or numpy.random.Generator, got {seed!r} "
            f"({type(seed).__name__})."
        )
    return np.random.default_rng(check_seed("seed", seed))


def check_finite_array(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """Convert to an ndarray of ``dtype`` and check dimensionality, shape and finiteness.

    ``shape`` entries that are ``None`` are free.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"{name} must be numeric array-like, got {type(value).__name__}: {exc}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise InputValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape!r}.")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)):
            want = tuple("*" if s is None else s for s in shape)
            raise InputValueError(f"{name} must have shape {want!r}, got {arr.shape!r}.")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputValueError(f"{name} contains {bad} NaN or infinite entries; all entries must be finite.")
    return arr


def check_probability_vector(name: str, probs: object, *, atol: float = 1e-6) -> np.ndarray:
    """Check a 1-D vector of non-negative probabilities summing to 1 within ``atol``."""
    p = check_finite_array(name, probs, ndim=1)
    if p.size == 0:
        raise InputValueError(f"{name} must be non-empty.")
    if np.any(p < 0):
        raise InputValueError(f"{name} has negative entries (min {p.min()!r}); probabilities must be >= 0.")
    total = float(p.sum())
    if abs(total - 1.0) > atol:
        raise InputValueError(
            f"{name} must sum to 1 within {atol:g}, got sum {total!r}. Normalise it first."
        )
    return p


def parse_int_expr(text: str) -> int:
    """Parse a count written as ``1048576``, ``2**20`` or ``1e6`` (command-line budgets and sizes).

    Raises:
        InputValueError: anything else, or a non-integer such as ``1.5e0``.
    """
    s = str(text).strip()
    try:
        if "**" in s:
            a, b = s.split("**", 1)
            base, exp = int(a), int(b)
            if exp < 0 or exp > 256:
                raise ValueError
            return base**exp
        if "e" in s.lower():
            v = float(s)
            if not v.is_integer():
                raise ValueError
            return int(v)
        return int(s)
    except ValueError:
        raise InputValueError(f"expected an integer such as 1048576, 2**20 or 1e6, got {text!r}.") from None
