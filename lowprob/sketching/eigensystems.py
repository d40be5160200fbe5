"""Eigen-decompositions of the claim operator ``E_f[f f^T]`` on ``L^2(mu)``, grouped into eigenspaces.

An :class:`Eigensystem` holds eigenpairs ``(lambda_j, phi_j)`` (``phi_j`` orthonormal in
``L^2(mu)``) and their grouping into *clusters*: degenerate eigenspaces that a
:class:`~lowprob.sketching.sketches.KernelSketch` keeps or drops as a whole (DESIGN.md §1, §4).

Ordering and tie-breaking (one rule, :func:`group_clusters`): clusters are sorted by
eigenvalue, largest first; clusters whose eigenvalues agree within
``tie_rtol * lambda_max`` (default ``1e-9``) are merged into one eigenspace; remaining exact
ties are impossible after merging, and equal-valued entries keep their input order (lower
degree first for harmonics, lower index for Nyström). Clusters with eigenvalue
``<= zero_rtol * lambda_max`` (default ``1e-12``) are *null*: keeping them cannot reduce any
claim's error, so they are never kept and do not count as available basis.

Implementations: :class:`HarmonicEigensystem` (zonal kernels on ``S^{n-1}``, ``mu`` = the
normalised surface measure; exact spherical harmonics and Funk–Hecke eigenvalues) and
:class:`lowprob.sketching.nystrom.NystromEigensystem` (any kernel over a base measure).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.kernels import ZonalKernel
from lowprob.sketching.measures import Measure, ScaledMeasure, UniformSphere, WeightedPoints

__all__ = [
    "Eigensystem",
    "HarmonicEigensystem",
    "group_clusters",
    "harmonic_moments",
    "target_moments_exact",
]


def group_clusters(
    values: np.ndarray, sizes: np.ndarray, *, tie_rtol: float = 1e-9, zero_rtol: float = 1e-12
) -> tuple[list[np.ndarray], np.ndarray]:
    """Group input blocks (``values[i]`` with multiplicity ``sizes[i]``) into ordered eigenspaces.

    Returns ``(clusters, cluster_values)``: ``clusters[c]`` lists the *block* indices merged
    into eigenspace ``c``; null blocks are dropped. Order: descending value, stable.
    """
    values = np.asarray(values, dtype=np.float64)
    vmax = float(np.max(values)) if values.size else 0.0
    order = np.argsort(-values, kind="stable")
    clusters: list[list[int]] = []
    cvals: list[float] = []
    for i in order:
        if values[i] <= zero_rtol * vmax or sizes[i] == 0:
            continue
        if clusters and abs(values[i] - cvals[-1]) <= tie_rtol * vmax:
            clusters[-1].append(int(i))
        else:
            clusters.append([int(i)])
            cvals.append(float(values[i]))
    return [np.array(c, dtype=np.int64) for c in clusters], np.array(cvals)


def target_moments_exact(D: Measure) -> bool:
    """Whether :func:`harmonic_moments` of ``D`` is exact up to rounding at every degree.

    True for the uniform sphere (closed form ``e_0``) and for discrete measures (their points
    are the measure); False for targets integrated by a reference rule that is not exact for
    polynomials of every degree (e.g. :class:`~lowprob.sketching.measures.SphericalCone`).
    """
    if isinstance(D, ScaledMeasure):
        return target_moments_exact(D.base)
    return isinstance(D, (UniformSphere, WeightedPoints))


def harmonic_moments(D: Measure, sh: SphericalHarmonics) -> np.ndarray:
    """``E_D Y_j`` for every column of ``sh``, shape ``(total_dim,)``.

    The uniform sphere has ``E Y_0 = 1`` and ``E Y_j = 0`` otherwise (orthogonality), used in
    closed form: its reference rule is exact only to its polynomial ``degree``, and above it
    the rule aliases high-degree harmonics onto O(1) moments. Any other measure uses its
    reference quadrature through :meth:`SphericalHarmonics.moments` (bounded memory). Cached on
    ``D`` per ``(n, L)``; points are projected radially (so measures on ``R^n`` give the moments
    of their radial projection).
    """
    cache = D.__dict__.setdefault("_harmonic_moment_cache", {})
    key = (sh.n, sh.L)
    if key not in cache:
        for (n, L), val in cache.items():
            if n == sh.n and L >= sh.L:
                return val[: sh.total_dim]
        if isinstance(D, ScaledMeasure):
            out = D.mass * harmonic_moments(D.base, sh)
        elif isinstance(D, UniformSphere):
            out = np.zeros(sh.total_dim)
            out[0] = 1.0
        else:
            Q = D.quadrature()
            out = sh.moments(Q.points, Q.weights, normalize=True)
        cache[key] = out
    return cache[key]


class Eigensystem(ABC):
    """Eigenpairs of the claim operator, grouped into ordered eigenspaces (see module docstring)."""

    eigenvalues: np.ndarray  # (J,), lambda of each eigenfunction (column)
    clusters: list[np.ndarray]  # column indices of each eigenspace, in keep order
    cluster_values: np.ndarray  # eigenvalue of each eigenspace
    dim: int

    @abstractmethod
    def functions(self, x: np.ndarray) -> np.ndarray:
        """Eigenfunctions at points ``x`` ``(N, dim)``: shape ``(N, J)``."""

    @abstractmethod
    def coefficients(self, D: Measure) -> np.ndarray:
        """``<g, phi_j>_mu = E_D phi_j`` with ``g = dD/dmu``: shape ``(J,)``."""

    @property
    @abstractmethod
    def trace(self) -> float:
        """``tr C = sum_j lambda_j = E_f ||f||^2_{L^2(mu)}`` (over *all* eigenpairs)."""

    @property
    def available(self) -> int:
        """Number of eigenfunctions in non-null eigenspaces (the largest usable ``K``)."""
        return int(sum(c.size for c in self.clusters))

    def select(self, K: int) -> np.ndarray:
        """Columns of the largest prefix of whole eigenspaces with total size ``<= K``.

        Raises if ``K`` exceeds :attr:`available` or is smaller than the first eigenspace.
        """
        K = check_int("K", K, minimum=1)
        if K > self.available:
            raise InputValueError(
                f"K={K!r} is larger than the available basis: {self.available} eigenfunctions in "
                f"non-null eigenspaces ({type(self).__name__}). Use K <= {self.available} or a "
                "larger truncation (more harmonic degrees / reference points)."
            )
        kept: list[np.ndarray] = []
        total = 0
        for c in self.clusters:
            if total + c.size > K:
                break
            kept.append(c)
            total += c.size
        if not kept:
            raise InputValueError(
                f"K={K!r} is smaller than the top eigenspace (dimension {self.clusters[0].size}); "
                "degenerate eigenspaces are kept whole, so K must be at least that."
            )
        return np.concatenate(kept)


class HarmonicEigensystem(Eigensystem):
    """Zonal kernel on ``S^{n-1}``: ``phi`` = real spherical harmonics of degree ``<= L``,
    ``lambda`` = Funk–Hecke eigenvalues (PSD-checked), one cluster per degree (merged on ties).

    ``trace = kappa(1)`` (Mercer: ``sum_l dim_l lambda_l = kappa(1)``), which includes degrees
    above ``L``.
    """

    def __init__(self, kernel: ZonalKernel, L: int, **cluster_kw: float) -> None:
        self.kernel = kernel
        self.dim = kernel.n
        self.L = check_int("L", L, minimum=0)
        self.sh = SphericalHarmonics(kernel.n, self.L)
        self.degree_values = kernel.eigenvalues(self.L)
        self.eigenvalues = self.degree_values[self.sh.degrees]
        blocks, self.cluster_values = group_clusters(self.degree_values, self.sh.dims, **cluster_kw)
        self.clusters = [np.concatenate([np.arange(self.sh.block(int(l)).start, self.sh.block(int(l)).stop) for l in b]) for b in blocks]
        self.cluster_degrees = [b.copy() for b in blocks]

    def functions(self, x: np.ndarray) -> np.ndarray:
        return self.sh.evaluate(x, normalize=True)

    def coefficients(self, D: Measure) -> np.ndarray:
        if not D.on_sphere or D.dim != self.dim:
            raise InputValueError(
                f"HarmonicEigensystem on S^{self.dim - 1} needs a target measure on that sphere, "
                f"got {D!r} (dim {D.dim}, on_sphere={D.on_sphere})."
            )
        return harmonic_moments(D, self.sh)

    @property
    def trace(self) -> float:
        return self.kernel.trace()

    def __repr__(self) -> str:
        return f"HarmonicEigensystem(n={self.dim}, L={self.L}, kernel={self.kernel.profile!r})"
