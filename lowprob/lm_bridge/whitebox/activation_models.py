"""Activation models of the final activation ``x`` (DESIGN.md section 6), fit from samples.

Every model answers two questions about the competitor half-spaces ``A x + c > 0`` of
:class:`~lowprob.lm_bridge.whitebox.final_layer.FinalLayer`:

* ``log_danger(A, c)``: ``log P_M[A_k x + c_k <= 0]`` per row, the danger of competitor ``k``
  (used to order the claim model, :func:`~lowprob.lm_bridge.whitebox.final_layer.danger_order`);
* the probability of the whole polytope, computed in :mod:`.polytope`.

Models (``n`` samples ``x_i`` of shape ``(n, d)``):

* :class:`EmpiricalModel`: the samples themselves (``P_M`` = fraction of samples). Danger
  uses a Gaussian fit of each gap ``A_k x + c_k`` (mean ``g_k``, sd ``s_k``):
  ``log Phi(-g_k / s_k)``, because the empirical fraction is 0 for rare competitors.
* :class:`GaussianModel`: ``N(m, S)`` with the sample mean and covariance
  ``S = (x - m)^T (x - m) / (n - 1) + r * mean(diag) * I``. Final activations after a LayerNorm
  lie in a hyperplane, so ``S`` is singular: ``r = 0`` raises; pass ``regularization``.
  Danger ``log Phi(-(A_k m + c_k) / sqrt(A_k S A_k^T))``.
* :class:`~lowprob.sketching.measures.GaussianMixture` (the package's one mixture type):
  ``sum_c pi_c N(m_c, S_c)`` fit by EM (``GaussianMixture.fit``, Dempster, Laird & Rubin
  1977) from a k-means++ start, each covariance regularised as above. Danger is the log of
  the mixture of component dangers; :func:`mixture_components` gives the components.
* :class:`ProductModel`: QLD's product model (Wu & Hilton 2024, section 3.2): whiten, split
  ``z = a d + b`` along the shortest accepting vector ``d`` and pair every ``a_j`` with every
  ``b_i``; the polytope probability is the corrected pair count of
  :mod:`lowprob.lm_bridge.methods.qld` (reused, not re-implemented) restricted to the chosen
  competitors.

A kernel / quadrature sketch from ``lowprob.sketching`` is not offered here yet: that package
has no quadrature sketch of a general point cloud at the time of writing (see docs/whitebox.md).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lowprob._validation import as_generator, check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.gaussian_polytope import log_normal_le_zero
from lowprob.sketching.measures import GaussianMixture

__all__ = [
    "EmpiricalModel",
    "GaussianMixture",
    "GaussianModel",
    "ProductModel",
    "mixture_components",
    "sample_covariance",
]


def _check_samples(x: object, *, min_n: int = 2) -> np.ndarray:
    x = np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    x = check_finite_array("x", x, ndim=2)
    if x.shape[0] < min_n:
        raise InputValueError(f"x must have at least {min_n} samples (rows), got shape {x.shape!r}.")
    return x


def _check_regularization(regularization: object) -> float:
    r = regularization
    if isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r) or r < 0:
        raise InputValueError(
            f"regularization must be a finite number >= 0 (e.g. 1e-6), got {regularization!r}."
        )
    return float(r)


def sample_covariance(
    x: np.ndarray, regularization: float = 0.0, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, cov, chol)`` of (weighted) samples; ``cov += regularization * mean(diag) * I``.

    Raises :class:`~lowprob.errors.InputValueError` if ``cov`` is singular (Cholesky fails or its
    condition number exceeds ``1e12``) and ``regularization == 0``.
    """
    regularization = _check_regularization(regularization)
    n, d = x.shape
    if weights is None:
        m = x.mean(0)
        xc = x - m
        S = xc.T @ xc / max(n - 1, 1)
    else:
        w = weights / weights.sum()
        m = w @ x
        xc = x - m
        S = (xc * w[:, None]).T @ xc
    S = 0.5 * (S + S.T)
    scale = max(float(np.mean(np.diag(S))), 1e-300)
    if regularization > 0:
        S = S + regularization * scale * np.eye(d)
    try:
        L = np.linalg.cholesky(S)
        ok = float(np.min(np.diag(L))) ** 2 > 1e-12 * scale
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        ev = np.linalg.eigvalsh(S)
        raise InputValueError(
            f"the sample covariance of x (shape {x.shape!r}) is singular: eigenvalues range "
            f"{ev[0]!r}..{ev[-1]!r} (n <= d, or activations on a hyperplane, e.g. after a "
            "LayerNorm). Pass regularization > 0 (e.g. 1e-6, a fraction of the mean variance "
            "added to the diagonal)."
        )
    return m, S, L


def _gaussian_log_danger(A: np.ndarray, c: np.ndarray, m: np.ndarray, L: np.ndarray) -> np.ndarray:
    return log_normal_le_zero(A @ m + c, np.linalg.norm(A @ L, axis=1))


_S = TypeVar("_S", bound="_SampleModel")


@dataclass(frozen=True, eq=False)
class _SampleModel:
    """Shared body of the sample-based models: samples ``x`` ``(n, d)`` and the gap-Gaussian danger."""

    x: np.ndarray

    @classmethod
    def fit(cls: type[_S], x: object) -> _S:
        return cls(_check_samples(x))

    @property
    def d(self) -> int:
        return int(self.x.shape[1])

    def log_danger(self, A: np.ndarray, c: np.ndarray) -> np.ndarray:
        g = self.x @ A.T + c  # (n, K)
        return log_normal_le_zero(g.mean(0), g.std(0, ddof=1))


@dataclass(frozen=True, eq=False)
class EmpiricalModel(_SampleModel):
    """The empirical law of ``x`` ``(n, d)`` (equal weights)."""


@dataclass(frozen=True, eq=False)
class GaussianModel:
    """``N(mean, cov)``; ``chol`` is the lower Cholesky factor of ``cov``."""

    mean: np.ndarray
    cov: np.ndarray
    chol: np.ndarray

    @classmethod
    def fit(cls, x: object, *, regularization: float = 0.0) -> GaussianModel:
        """Sample mean and covariance of ``x`` ``(n, d)`` (see :func:`sample_covariance`)."""
        m, S, L = sample_covariance(_check_samples(x), regularization)
        return cls(m, S, L)

    @classmethod
    def from_moments(cls, mean: object, cov: object, *, regularization: float = 0.0) -> GaussianModel:
        m = check_finite_array("mean", mean, ndim=1)
        S = check_finite_array("cov", cov, shape=(m.size, m.size))
        regularization = _check_regularization(regularization)
        S = 0.5 * (S + S.T) + regularization * max(float(np.mean(np.diag(S))), 1e-300) * np.eye(m.size)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise InputValueError(
                f"cov is singular or indefinite (smallest eigenvalue {np.linalg.eigvalsh(S)[0]!r}); "
                "pass regularization > 0."
            ) from None
        return cls(m, S, L)

    @property
    def d(self) -> int:
        return int(self.mean.size)

    def log_danger(self, A: np.ndarray, c: np.ndarray) -> np.ndarray:
        return _gaussian_log_danger(A, c, self.mean, self.chol)

    def sample(self, n: int, *, seed: object = None) -> np.ndarray:
        n = check_int("n", n, minimum=1)
        return self.mean + as_generator(seed).standard_normal((n, self.d)) @ self.chol.T


def mixture_components(model: GaussianMixture) -> list[GaussianModel]:
    """The components of a :class:`~lowprob.sketching.measures.GaussianMixture` as :class:`GaussianModel`."""
    return [GaussianModel(model.means[k], model.covs[k], model.chols[k]) for k in range(model.n_components)]


@dataclass(frozen=True, eq=False)
class ProductModel(_SampleModel):
    """QLD's product model of the samples ``x`` ``(n, d)`` (probability in :mod:`.polytope`)."""
