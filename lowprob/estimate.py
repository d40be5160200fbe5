"""Core types every method uses: :class:`Cost`, :class:`Estimate`, the :class:`Estimator` protocol.

An estimator takes a problem, an explicit integer budget and a seed, and returns an
:class:`Estimate` that says what it *actually* spent. The meaning of the budget unit is
the estimator's (samples, sketch terms or model calls) and is recorded in
``Estimate.budget_unit``.

JSON: one schema and one serializer. ``Cost.to_dict()`` is the only cost shape written
anywhere (``{"samples", "model_calls", "backward_calls", "flops", "seconds"}``);
``Estimate.to_dict()`` nests it under ``"cost"``; both go through
:func:`lowprob._io.strict_jsonable` (non-finite floats as ``"inf"``/``"-inf"``/``"nan"``).
:meth:`Cost.from_dict` also reads the older LM shape (``forward``/``backward``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from lowprob._io import strict_jsonable
from lowprob.errors import InputValueError

__all__ = ["Cost", "Estimate", "Estimator", "json_default", "stopwatch"]


@dataclass(frozen=True)
class Cost:
    """What an estimate cost.

    Attributes:
        samples: input samples drawn (or sketch terms used, for deterministic sketches).
        model_calls: forward passes of the model (one per input sequence / sample).
        backward_calls: backward passes (gradients), counted separately from forwards.
        flops: counted floating-point operations (see each method's docstring for how).
        seconds: wall-clock seconds.
    """

    samples: int = 0
    model_calls: int = 0
    backward_calls: int = 0
    flops: float = 0.0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.samples + other.samples,
            self.model_calls + other.model_calls,
            self.backward_calls + other.backward_calls,
            self.flops + other.flops,
            self.seconds + other.seconds,
        )

    def to_dict(self) -> dict[str, float]:
        """The one cost schema: ``{"samples", "model_calls", "backward_calls", "flops", "seconds"}``."""
        return strict_jsonable(
            {
                "samples": self.samples,
                "model_calls": self.model_calls,
                "backward_calls": self.backward_calls,
                "flops": self.flops,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cost:
        """Inverse of :meth:`to_dict`; also reads the legacy ``forward``/``backward`` keys.

        Unknown keys raise (a typo must not silently read as zero cost).
        """
        if not isinstance(d, Mapping):
            raise InputValueError(f"a cost must be a mapping, got {d!r}.")
        alias = {"forward": "model_calls", "backward": "backward_calls"}
        fields = ("samples", "model_calls", "backward_calls", "flops", "seconds")
        out: dict[str, Any] = {}
        for k, v in d.items():
            key = alias.get(k, k)
            if key not in fields:
                raise InputValueError(f"unknown cost field {k!r} in {dict(d)!r}; allowed: {fields!r}.")
            if v is None:
                continue
            out[key] = float(v) if key in ("flops", "seconds") else int(v)
        return cls(**out)


@dataclass(frozen=True)
class Estimate:
    """One probability estimate with its cost and diagnostics.

    ``value`` is float64 and may be negative for signed pseudo-distribution methods
    (kernel sketches); ``log_value`` is ``log(value)`` for ``value > 0``, ``-inf`` for 0
    and ``nan`` for negative values. Construct from a log-probability with
    :meth:`from_log` to keep tiny values exact.
    """

    value: float
    log_value: float
    std_error: float | None
    cost: Cost
    method: str
    budget: int | None = None
    budget_unit: str = "samples"
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "log_value", float(self.log_value))
        if math.isnan(self.value):
            raise InputValueError(f"Estimate.value is NaN (method {self.method!r}).")

    @classmethod
    def from_value(cls, value: float, **kwargs: Any) -> Estimate:
        """Build from a linear-scale value; ``log_value`` is derived."""
        v = float(value)
        log_v = math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan)
        return cls(value=v, log_value=log_v, **kwargs)

    @classmethod
    def from_log(cls, log_value: float, **kwargs: Any) -> Estimate:
        """Build from a log-probability; ``value = exp(log_value)`` (may underflow to 0)."""
        lv = float(log_value)
        return cls(value=math.exp(lv) if lv > -745 else 0.0, log_value=lv, **kwargs)

    def with_cost(self, cost: Cost) -> Estimate:
        return replace(self, cost=cost)

    def to_dict(self) -> dict[str, Any]:
        """The one estimate schema, strict-JSON ready (:func:`lowprob._io.strict_jsonable`)."""
        return strict_jsonable(
            {
                "estimate": self.value,
                "log_estimate": self.log_value,
                "std_error": self.std_error,
                "method": self.method,
                "budget": self.budget,
                "budget_unit": self.budget_unit,
                "cost": self.cost.to_dict(),
                "diagnostics": dict(self.diagnostics),
            }
        )

    def to_json(self) -> dict[str, Any]:
        """Same as :meth:`to_dict` (lets :func:`lowprob._io.dumps_strict` take an ``Estimate``)."""
        return self.to_dict()


def json_default(obj: Any) -> Any:
    """Backward-compatible ``json.dumps(default=...)`` hook; prefer :func:`lowprob._io.dumps_strict`."""
    return strict_jsonable(obj)


_jsonable = strict_jsonable  # backward-compatible private name (one serializer)


@runtime_checkable
class Estimator(Protocol):
    """Anything with ``estimate(problem, budget, *, seed) -> Estimate``.

    ``budget`` is an explicit positive integer in the estimator's ``budget_unit``;
    ``seed`` is an int, ``None`` or a ``numpy.random.Generator`` (see
    :func:`lowprob._validation.as_generator`).
    """

    name: str

    def estimate(self, problem: Any, budget: int, *, seed: Any = None) -> Estimate: ...


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds elapsed seconds."""
    out = [0.0]
    start = time.perf_counter()
    try:
        yield out
    finally:
        out[0] = time.perf_counter() - start
