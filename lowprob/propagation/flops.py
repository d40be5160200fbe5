"""Analytic FLOP accounting for propagation schemes.

Every deduction/projection rule reports the floating-point operations it performs,
counted *analytically from the operations it executes* (not measured by hardware
counters): a multiply, an add and a compare each count as one FLOP per scalar, a fused
multiply-add as two, a dense ``(a, b) @ (b, c)`` product counts
``2 a b c``, a gather/copy/index operation counts zero. Random-number generation is
*not* counted (this favours sampling, the conservative choice when comparing against
it). Instance-independent precomputation (basis tables, quadrature rules) is counted
separately, in :attr:`FlopCounter.precomputation`, so it can be reported and amortised.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["FlopCounter", "matmul_flops"]


def matmul_flops(a: int, b: int, c: int) -> float:
    """FLOPs of a dense ``(a, b) @ (b, c)`` product: ``2 a b c``."""
    return 2.0 * a * b * c


@dataclass
class FlopCounter:
    """Accumulates counted FLOPs by label.

    ``online`` is the per-instance work; ``precomputation`` is instance-independent
    work that can be shared by every instance of the same size.
    """

    by_label: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    precomputation: float = 0.0

    def add(self, flops: float, label: str = "other") -> None:
        self.by_label[label] += float(flops)

    @property
    def online(self) -> float:
        return float(sum(self.by_label.values()))
