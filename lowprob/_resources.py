"""Refuse, before computing, work whose stated memory or time estimate is out of reach.

Every command that turns a user number (a budget, a degree, a number of terms) into memory or
time states its estimate through :func:`check_memory` / :func:`check_time`; when the estimate
exceeds the limit, a :class:`~lowprob.errors.BudgetError` names the argument, the estimate, the
limit and the fix, instead of a hang, a ``MemoryError`` traceback or a swap storm.

Limits: memory = ``LOWPROB_MAX_MEMORY_GB`` if set, else half of ``MemAvailable`` (Linux) or of
physical memory; time = ``LOWPROB_MAX_SECONDS`` if set, else one day.
"""

from __future__ import annotations

import os

from lowprob.errors import BudgetError

__all__ = ["available_memory_bytes", "check_memory", "check_time", "memory_limit_bytes", "time_limit_seconds"]

_GIB = float(1 << 30)


def available_memory_bytes() -> float:
    """``MemAvailable`` from ``/proc/meminfo``, else physical memory, else 8 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * _GIB


def memory_limit_bytes() -> float:
    env = os.environ.get("LOWPROB_MAX_MEMORY_GB")
    if env:
        try:
            return float(env) * _GIB
        except ValueError:
            pass
    return 0.5 * available_memory_bytes()


def time_limit_seconds() -> float:
    env = os.environ.get("LOWPROB_MAX_SECONDS")
    if env:
        try:
            return float(env)
        except ValueError:
            pass
    return 86400.0


def check_memory(what: str, nbytes: float, *, fix: str) -> None:
    """Raise :class:`BudgetError` if ``nbytes`` (the stated estimate for ``what``) exceeds the limit."""
    limit = memory_limit_bytes()
    if not nbytes <= limit:  # also catches nan/inf estimates
        raise BudgetError(
            f"{what} needs about {nbytes / _GIB:.3g} GiB of memory, more than the limit of "
            f"{limit / _GIB:.3g} GiB (half the available memory; set LOWPROB_MAX_MEMORY_GB to change it). {fix}"
        )


def check_time(what: str, seconds: float, *, fix: str) -> None:
    """Raise :class:`BudgetError` if ``seconds`` (the stated estimate for ``what``) exceeds the limit."""
    limit = time_limit_seconds()
    if not seconds <= limit:
        raise BudgetError(
            f"{what} would take about {seconds:.3g} s ({seconds / 86400:.3g} days), more than the limit of "
            f"{limit:.3g} s (set LOWPROB_MAX_SECONDS to change it). {fix}"
        )
