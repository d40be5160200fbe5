"""Exact product quadrature on the sphere ``S^{n-1}`` for polynomials of bounded total degree.

Write ``x = (sqrt(1 - t^2) xi, t)`` with ``t = x_n`` and ``xi`` in ``S^{n-2}``. The normalised
surface measure factors as ``dsigma_{n-1}(x) = c_n (1-t^2)^{(n-3)/2} dt dsigma_{n-2}(xi)``
with ``c_n = Gamma(n/2) / (sqrt(pi) Gamma((n-1)/2))``. For a polynomial ``p`` of total degree
``<= D``, integrating over ``xi`` first leaves a polynomial in ``t`` of degree ``<= D`` (only even
powers of ``sqrt(1-t^2)`` survive), so the rule

* ``q = floor(D/2) + 1`` Gauss–Jacobi nodes in ``t`` with weight ``(1-t^2)^{(n-3)/2}``
  (exact to degree ``2q - 1 >= D``), times
* a degree-``D`` rule on ``S^{n-2}`` (recursively), bottoming out at
* ``D + 1`` equispaced points on the circle ``S^1`` (exact for trigonometric degree ``<= D``),

is exact for every polynomial of total degree ``<= D``. Reference: Atkinson & Han,
*Spherical Harmonics and Approximations on the Unit Sphere* (2012), section 5.3 (product
Gauss rules); Stroud, *Approximate Calculation of Multiple Integrals* (1971).

Number of nodes: ``(D+1) * (floor(D/2)+1)^(n-2)``; e.g. ``n = 4, D = 40``: 9 261.
"""

from __future__ import annotations

import numpy as np
from scipy.special import roots_jacobi

from lowprob._validation import check_int

__all__ = ["sphere_quadrature", "sphere_quadrature_size"]


def sphere_quadrature_size(n: int, degree: int) -> int:
    """Number of nodes :func:`sphere_quadrature` returns for ``(n, degree)``."""
    n = check_int("n", n, minimum=2)
    degree = check_int("degree", degree, minimum=0)
    return (degree + 1) * (degree // 2 + 1) ** (n - 2)


def sphere_quadrature(n: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(Q, n)`` on ``S^{n-1}`` and positive weights ``(Q,)`` summing to 1.

    ``sum_q w_q p(x_q) = int p dsigma`` (normalised surface measure) for every polynomial
    ``p`` of total degree ``<= degree``.
    """
    n = check_int("n", n, minimum=2)
    degree = check_int("degree", degree, minimum=0)
    return _rule(n, degree)


def _rule(n: int, D: int) -> tuple[np.ndarray, np.ndarray]:
    if n == 2:
        M = D + 1
        phi = 2.0 * np.pi * (np.arange(M) + 0.5) / M
        return np.stack([np.cos(phi), np.sin(phi)], axis=1), np.full(M, 1.0 / M)
    a = (n - 3) / 2
    q = D // 2 + 1
    t, wt = roots_jacobi(q, a, a)
    wt = wt / wt.sum()
    xi, wxi = _rule(n - 1, D)
    s = np.sqrt(np.clip(1.0 - t**2, 0.0, None))
    nodes = np.empty((q, xi.shape[0], n))
    nodes[:, :, : n - 1] = s[:, None, None] * xi[None, :, :]
    nodes[:, :, n - 1] = t[:, None]
    weights = wt[:, None] * wxi[None, :]
    return nodes.reshape(-1, n), weights.reshape(-1)
