"""Claim kernels ``k(x, y) = E_{f ~ C}[f(x) f(y)]`` as pure, broadcastable functions.

A kernel object is callable as ``k(x, y)`` with ``x`` of shape ``(N, d)`` and ``y`` of shape
``(M, d)`` and returns the ``(N, M)`` Gram matrix (float64). Two families have closed forms
used elsewhere:

* :class:`ZonalKernel` ``k(x, y) = kappa(x_hat . y_hat)`` on ``S^{d-1}`` (inputs are projected
  radially, so it is defined for all non-zero ``x, y``), diagonal in spherical harmonics with
  Funk–Hecke eigenvalues (:mod:`lowprob.sketching.funk_hecke`);
* :class:`RBFKernel` ``k(x, y) = s^2 exp(-|x - y|^2 / (2 ell^2))`` on ``R^d``, which has random
  Fourier features (Rahimi & Recht 2007) and closed-form Gaussian convolutions.

:func:`psd_eigh` is the one place where a symmetric kernel matrix is diagonalised and
checked for positive semi-definiteness (with a dtype-dependent tolerance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputTypeError, InputValueError
from lowprob.sketching.funk_hecke import funk_hecke_eigenvalues, harmonic_dimension

__all__ = [
    "NotPSDError",
    "RBFKernel",
    "ZonalKernel",
    "check_points",
    "psd_eigh",
    "rbf",
]


class NotPSDError(InputValueError):
    """A kernel (matrix) that must be positive semi-definite has a clearly negative eigenvalue."""


def check_points(name: str, x: object, dim: int | None) -> np.ndarray:
    """Validate a ``(N, dim)`` finite float64 point array (``dim=None``: any width)."""
    arr = check_finite_array(name, x, ndim=2)
    if dim is not None and arr.shape[1] != dim:
        raise InputValueError(
            f"{name} must have shape (N, {dim}) to match the claim/kernel dimension {dim}, "
            f"got {arr.shape!r}."
        )
    return arr


def psd_eigh(A: np.ndarray, *, name: str = "kernel matrix", rtol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix, eigenvalues sorted descending.

    Raises :class:`NotPSDError` if the most negative eigenvalue is below
    ``-rtol * max(|eigenvalue|)`` (default ``rtol = 100 * N * eps``); small negative
    round-off is clipped to 0.
    """
    A = np.asarray(A, dtype=np.float64)
    A = 0.5 * (A + A.T)
    lam, U = np.linalg.eigh(A)
    lam, U = lam[::-1], U[:, ::-1]
    scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    tol = (100 * max(A.shape[0], 1) * np.finfo(np.float64).eps if rtol is None else rtol) * scale
    if lam.size and lam[-1] < -tol:
        raise NotPSDError(
            f"{name} is not positive semi-definite: smallest eigenvalue {lam[-1]!r} < -{tol!r} "
            f"(largest {lam[0]!r}). A claim kernel E_f[f(x) f(y)] is always PSD; check the kernel."
        )
    return np.clip(lam, 0.0, None), U


@dataclass(frozen=True)
class ZonalKernel:
    """``k(x, y) = profile(<x/|x|, y/|y|>)`` on ``S^{n-1}``.

    Args:
        profile: vectorised ``t -> kappa(t)`` on ``[-1, 1]``.
        n: ambient dimension.
    """

    profile: Callable[[np.ndarray], np.ndarray]
    n: int

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=2)
        if not callable(self.profile):
            raise InputTypeError(f"profile must be callable, got {self.profile!r}.")

    @property
    def dim(self) -> int:
        return self.n

    def __call__(self, x: object, y: object) -> np.ndarray:
        """Gram matrix ``(N, M)``.

        Near-parallel pairs (``|t| > 1 - 1e-6``) are evaluated from the angle
        ``theta = 2 arcsin(|x - y| / 2)`` (or ``pi - 2 arcsin(|x + y| / 2)``) instead of
        ``arccos t``, whose round-off there is ``~ sqrt(u)`` (a point against itself gives
        exactly ``kappa(1)``). Profiles without ``of_angle`` get ``cos theta``.
        """
        x = _unit(check_points("x", x, self.n), "x")
        y = _unit(check_points("y", y, self.n), "y")
        T = np.clip(x @ y.T, -1.0, 1.0)
        out = np.asarray(self.profile(T), dtype=np.float64)
        i, j = np.nonzero(np.abs(T) > 1.0 - 1e-6)
        if i.size:
            pos = T[i, j] > 0
            chord = np.linalg.norm(np.where(pos[:, None], x[i] - y[j], x[i] + y[j]), axis=1)
            half = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
            theta = np.where(pos, half, np.pi - half)
            of_angle = getattr(self.profile, "of_angle", None)
            vals = of_angle(theta) if of_angle is not None else self.profile(np.cos(theta))
            out[i, j] = np.asarray(vals, dtype=np.float64)
        return out

    def diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.n)
        return np.full(x.shape[0], float(np.asarray(self.profile(np.array(1.0)))))

    def eigenvalues(self, L: int, *, check_psd: bool = True, rtol: float = 1e-9) -> np.ndarray:
        """Funk–Hecke eigenvalues ``lambda_0..lambda_L`` (per function, normalised measure).

        With ``check_psd`` (default) a negative ``lambda_l < -rtol * max|lambda|`` raises
        :class:`NotPSDError`; small negatives from quadrature round-off are clipped to 0.
        """
        lam = self._eigs(L)
        scale = float(np.max(np.abs(lam)))
        if check_psd and np.min(lam) < -rtol * scale:
            l = int(np.argmin(lam))
            raise NotPSDError(
                f"zonal kernel with profile {self.profile!r} is not positive semi-definite on "
                f"S^{self.n - 1}: Funk-Hecke eigenvalue lambda_{l} = {lam[l]!r} < 0 "
                f"(tolerance {rtol!r} x max |lambda| = {rtol * scale!r})."
            )
        return np.clip(lam, 0.0, None)

    def _eigs(self, L: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_eig_cache", {})
        if L not in cache:
            cache[L] = funk_hecke_eigenvalues(self.profile, self.n, L)
        return cache[L]

    def multiplicities(self, L: int) -> np.ndarray:
        return np.array([harmonic_dimension(l, self.n) for l in range(L + 1)], dtype=np.int64)

    def trace(self) -> float:
        """``tr C = E_f int f^2 dsigma = kappa(1)``."""
        return float(np.asarray(self.profile(np.array(1.0))))


def _unit(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    if np.any(norms == 0):
        raise InputValueError(f"{name} has zero rows; a zonal kernel needs non-zero points.")
    return x / norms[:, None]


def rbf(x: np.ndarray, y: np.ndarray, *, lengthscale: float = 1.0, variance: float = 1.0) -> np.ndarray:
    """``variance * exp(-|x_i - y_j|^2 / (2 lengthscale^2))``, shape ``(N, M)``."""
    d2 = (
        np.einsum("ij,ij->i", x, x)[:, None]
        + np.einsum("ij,ij->i", y, y)[None, :]
        - 2.0 * x @ y.T
    )
    return variance * np.exp(-np.clip(d2, 0.0, None) / (2.0 * lengthscale**2))


@dataclass(frozen=True)
class RBFKernel:
    """Squared-exponential kernel ``s^2 exp(-|x-y|^2 / (2 ell^2))`` on ``R^dim``."""

    dim: int
    lengthscale: float = 1.0
    variance: float = 1.0

    def __post_init__(self) -> None:
        check_int("dim", self.dim, minimum=1)
        for nm in ("lengthscale", "variance"):
            v = getattr(self, nm)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise InputValueError(f"{nm} must be a positive finite number, got {v!r}.")

    def __call__(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        return rbf(x, y, lengthscale=self.lengthscale, variance=self.variance)

    def diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        return np.full(x.shape[0], float(self.variance))

    @cached_property
    def _ell2(self) -> float:
        return float(self.lengthscale) ** 2

    def sample_features(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random Fourier features: ``f(x) = sqrt(2 s^2) cos(omega . x + b)``, ``E f(x) f(y) = k(x, y)``.

        Returns ``(omega (n, dim), b (n,))`` with ``omega ~ N(0, I / ell^2)``, ``b ~ U[0, 2 pi)``.
        """
        omega = rng.standard_normal((n, self.dim)) / self.lengthscale
        b = rng.uniform(0.0, 2.0 * np.pi, size=n)
        return omega, b
