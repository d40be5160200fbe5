"""Executed-operation ledger: an independent count of the arithmetic the hot paths perform.

The FLOP counts reported in ``Cost.flops`` are *analytic* (:mod:`lowprob.propagation.flops`):
each rule adds a formula. To check those formulas against what actually runs, the hot
contractions and element-wise updates of the deterministic schemes go through the thin
wrappers below. Each wrapper performs the numpy operation and, while a :func:`ledger` is
active, adds the FLOPs implied by the *shapes of the arrays it was actually given*:

* ``einsum(spec, a, b)``: ``2 prod(all index extents)`` (one multiply and one add per term),
  i.e. ``2 a b c`` for a matrix product; complex operands count 4x (a complex
  multiply-add is 8 real FLOPs), a complex-by-real one 2x;
* ``spmm(S, X)`` (sparse ``S`` times dense ``X``): ``2 nnz(S) cols(X)``;
* ``mul``/``add``/``sub``/``axpy``: the number of output scalars (x 2 for ``axpy``),
  complex doubled;
* ``record(flops, label)``: a LAPACK call (the subspace frame's QR), by its standard formula —
  the one place where the ledger is not independent of the analytic count.

Padded entries are counted like any others: if a rule multiplies zeros it pays for them,
so ``executed == counted`` means no hidden work. The ledger divides by the batch size the
caller states (costs are per instance). ``tests/test_propagation_executed_flops.py``
compares the two counts and fails beyond 10 %.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ledger", "add", "axpy", "einsum", "ledger", "mul", "record", "spmm", "sub"]


@dataclass
class Ledger:
    """Executed FLOPs by label, summed over the batch (divide by ``batch`` for per instance)."""

    total: float = 0.0
    by_label: dict[str, float] = field(default_factory=dict)

    def add(self, flops: float, label: str) -> None:
        self.total += float(flops)
        self.by_label[label] = self.by_label.get(label, 0.0) + float(flops)


_ACTIVE: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("lowprob_executed_ledger", default=None)


@contextlib.contextmanager
def ledger() -> Iterator[Ledger]:
    """Record executed FLOPs of every wrapped operation inside the ``with`` block."""
    led = Ledger()
    token = _ACTIVE.set(led)
    try:
        yield led
    finally:
        _ACTIVE.reset(token)


def _factor(*arrays: np.ndarray) -> float:
    cplx = sum(bool(np.iscomplexobj(a)) for a in arrays)
    return 4.0 if cplx >= 2 else (2.0 if cplx == 1 else 1.0)


def _record(flops: float, label: str) -> None:
    led = _ACTIVE.get()
    if led is not None:
        led.add(flops, label)


def record(flops: float, label: str) -> None:
    """Record FLOPs of a library call whose work is known only by formula (e.g. a LAPACK QR)."""
    _record(flops, label)


def einsum(spec: str, a: np.ndarray, b: np.ndarray, label: str = "einsum") -> np.ndarray:
    """``np.einsum(spec, a, b)``; records ``2 prod(index extents)`` (x complex factor)."""
    out = np.einsum(spec, a, b, optimize=False)
    if _ACTIVE.get() is not None:
        ins = spec.split("->")[0].split(",")
        ext: dict[str, int] = {}
        for sub_, arr in zip(ins, (a, b), strict=True):
            for ch, sz in zip(sub_, arr.shape, strict=True):
                ext[ch] = max(ext.get(ch, 1), int(sz))
        _record(2.0 * float(np.prod([float(v) for v in ext.values()])) * _factor(a, b), label)
    return out


def spmm(S, X: np.ndarray, label: str = "spmm") -> np.ndarray:
    """``S @ X`` for sparse ``S``; records ``2 nnz(S) cols(X)``."""
    out = S @ X
    _record(2.0 * S.nnz * (X.shape[1] if X.ndim == 2 else 1) * _factor(X), label)
    return out


def mul(a: np.ndarray, b: np.ndarray | float, label: str = "mul") -> np.ndarray:
    """``a * b``; records the output size (x 2 complex-by-real, x 6 complex-by-complex)."""
    out = a * b
    ca, cb = np.iscomplexobj(a), np.iscomplexobj(b)
    _record(float(np.size(out)) * (6.0 if (ca and cb) else 2.0 if (ca or cb) else 1.0), label)
    return out


def add(a: np.ndarray, b: np.ndarray, label: str = "add") -> np.ndarray:
    """``a + b``; records the output size (x 2 if complex)."""
    out = a + b
    _record(float(np.size(out)) * (2.0 if np.iscomplexobj(out) else 1.0), label)
    return out


def sub(a: np.ndarray, b: np.ndarray, label: str = "sub") -> np.ndarray:
    """``a - b``; records the output size (x 2 if complex)."""
    out = a - b
    _record(float(np.size(out)) * (2.0 if np.iscomplexobj(out) else 1.0), label)
    return out


def axpy(alpha: np.ndarray | float, x: np.ndarray, y: np.ndarray, label: str = "axpy") -> np.ndarray:
    """``y + alpha * x`` (new array); records ``2 size`` (x 2 if complex)."""
    out = y + alpha * x
    _record(2.0 * float(np.size(out)) * (2.0 if np.iscomplexobj(out) else 1.0), label)
    return out
