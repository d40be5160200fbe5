"""The array backends the kernels of :mod:`lowprob.array_kernels` run on: numpy and flopscope.

:data:`NUMPY` uses numpy with scipy's ``ndtr`` and a Gauss-Hermite rule;
:func:`flopscope_backend` uses ``flopscope.numpy`` (every op metered by flopscope; needs
the ``lowprob[whestbench]`` extra) and has no Gauss-Hermite rule (ReLU only).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from lowprob.array_kernels.activations import ArrayBackend, flopscope_backend

__all__ = ["NUMPY", "ArrayBackend", "flopscope_backend", "gauss_hermite_rule"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _np_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


@lru_cache(maxsize=16)
def gauss_hermite_rule(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights (weights sum to 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return z, w / _SQRT_2PI


#: The numpy backend (scipy's ``ndtr``).
NUMPY = ArrayBackend(np, special.ndtr, _np_pdf, "numpy", gauss_hermite_rule)
