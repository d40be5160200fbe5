"""The exact sketch error ``err(M; D, C) = E_{f~C}[(E_M f - E_D f)^2] = ||mu_M - mu_D||_k^2``.

Three exact routes, chosen by what the claims and the target allow (DESIGN.md §1):

* **finite claims** (:class:`~lowprob.sketching.claims.FiniteClaims`): the definition,
  ``sum_i w_i (E_M f_i - E_D f_i)^2``, with ``E_D`` by ``D``'s reference quadrature;
* **zonal claims on the sphere** with a target that has a density (not a point set):
  the spectral (Funk–Hecke / Parseval) form, a sum of non-negative terms with no
  cancellation::

      err = sum_{l <= L} lambda_l ||m_l - d_l||^2   (a)
          + w^T (k - k_L)(X, X) w                    (b, point sketches only; k_L = degree-<=L part)
          + tail cross/target terms                  (bounded, see below)

  with ``m_l, d_l`` the degree-``l`` harmonic moments of ``M`` and ``D``. The target's own
  tail ``c = sum_{l>L} lambda_l ||d_l||^2 <= lambda*_{>L} (||g||^2 - sum_{l<=L} ||d_l||^2)``
  (``g = dD/dsigma``; ``lambda*`` the largest eigenvalue over degrees ``L+1..4L``) and, by
  Cauchy–Schwarz, the cross tail is at most ``2 sqrt(b c)``. ``value = a + b`` and
  ``[lower, upper] = [a + b - 2 sqrt(bc), a + b + c + 2 sqrt(bc)]``.
* **general kernels**: ``w^T K_XX w - 2 w^T z(X) + ||mu_D||^2`` with the kernel mean
  ``z(x) = E_D k(x, .)`` in closed form where registered (RBF kernel x Gaussian mixture), and
  by ``D``'s reference quadrature otherwise (then ``method`` says so).

:func:`sampled_sketch_error` is the brute-force check: the average of
``(E_M f - E_D f)^2`` over sampled claims, with its standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError, UnavailableError
from lowprob.registry import Registry
from lowprob.sketching.claims import ClaimDistribution, FiniteClaims, KernelClaims
from lowprob.sketching.eigensystems import harmonic_moments
from lowprob.sketching.funk_hecke import zonal_from_eigenvalues
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.kernels import RBFKernel
from lowprob.sketching.measures import GaussianMixture, Measure, WeightedPoints

__all__ = [
    "KERNEL_MEAN_RULES",
    "SketchError",
    "kernel_mean",
    "kernel_mean_norm2",
    "sampled_sketch_error",
    "sketch_error",
]

DEFAULT_DEGREE = 32

KERNEL_MEAN_RULES: Registry[tuple[Callable[..., np.ndarray], Callable[..., float]]] = Registry(
    "closed-form kernel mean"
)


@dataclass(frozen=True)
class SketchError:
    """An exact sketch error with rigorous bounds (equal to ``value`` where nothing is truncated)."""

    value: float
    lower: float
    upper: float
    method: str
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _uses_spectral(claims: ClaimDistribution, D: Measure) -> bool:
    return claims.zonal is not None and D.on_sphere and not isinstance(D, WeightedPoints)


def _base_kernel(claims: ClaimDistribution) -> object:
    return claims.base_kernel if isinstance(claims, KernelClaims) else None


def _check_dims(claims: ClaimDistribution, D: Measure) -> None:
    if not isinstance(D, Measure):
        raise InputValueError(f"target must be a Measure, got {D!r}.")
    if claims.dim is not None and claims.dim != D.dim:
        raise InputValueError(
            f"dimension mismatch: claims act on R^{claims.dim} but the target lives in R^{D.dim}."
        )


def kernel_mean(claims: ClaimDistribution, D: Measure, x: np.ndarray, *, degree: int = DEFAULT_DEGREE) -> np.ndarray:
    """``z(x_i) = E_{y~D} k(x_i, y)``, shape ``(N,)`` (spectral, closed form, or reference quadrature)."""
    _check_dims(claims, D)
    x = np.asarray(x, dtype=np.float64)
    if _uses_spectral(claims, D):
        zonal = claims.zonal
        assert zonal is not None
        sh = SphericalHarmonics(zonal.n, degree)
        coef = zonal.eigenvalues(degree)[sh.degrees] * harmonic_moments(D, sh)
        return np.concatenate([sh.evaluate(x[s : s + 2048], normalize=True) @ coef for s in range(0, len(x), 2048)])
    key = (type(_base_kernel(claims)), type(D))
    if key in KERNEL_MEAN_RULES:
        return KERNEL_MEAN_RULES.get(key)[0](_base_kernel(claims), D, x)
    Q = D.quadrature()
    return np.concatenate([claims.kernel(x[s : s + 512], Q.points) @ Q.weights for s in range(0, len(x), 512)])


def kernel_mean_norm2(claims: ClaimDistribution, D: Measure, *, degree: int = DEFAULT_DEGREE, max_points: int = 20000) -> float:
    """``||mu_D||_k^2 = E_{x,y~D} k(x, y)`` (spectral part up to ``degree`` for zonal claims)."""
    _check_dims(claims, D)
    if _uses_spectral(claims, D):
        zonal = claims.zonal
        assert zonal is not None
        sh = SphericalHarmonics(zonal.n, degree)
        return float(zonal.eigenvalues(degree)[sh.degrees] @ harmonic_moments(D, sh) ** 2)
    key = (type(_base_kernel(claims)), type(D))
    if key in KERNEL_MEAN_RULES:
        return KERNEL_MEAN_RULES.get(key)[1](_base_kernel(claims), D)
    Q = D.quadrature()
    if len(Q) > max_points:
        raise UnavailableError(
            f"E_DD k by quadrature needs {len(Q)}^2 kernel evaluations (> max_points={max_points}^2)."
        )
    return float(Q.weights @ kernel_mean(claims, Q, Q.points))


def sketch_error(sketch: Any, claims: ClaimDistribution, *, degree: int = DEFAULT_DEGREE) -> SketchError:
    """Exact ``E_{f~C}[(E_M f - E_D f)^2]`` for ``sketch`` (target ``sketch.target``); see module docstring."""
    D = sketch.target
    _check_dims(claims, D)
    degree = check_int("degree", degree, minimum=0)
    if isinstance(claims, FiniteClaims):
        diffs = np.array([sketch.expect(f) - D.expect(f) for f in claims.functions])
        v = float(claims.weights @ diffs**2)
        return SketchError(v, v, v, "finite claims (definition)")
    if _uses_spectral(claims, D):
        return _spectral_error(sketch, claims, D, degree)
    P = sketch.points_and_weights()
    X, w = P.points, P.weights
    mm = float(w @ claims.kernel(X, X) @ w)
    md = float(w @ kernel_mean(claims, D, X, degree=degree))
    dd = kernel_mean_norm2(claims, D, degree=degree)
    raw = mm - 2 * md + dd
    closed = (type(_base_kernel(claims)), type(D)) in KERNEL_MEAN_RULES or isinstance(D, WeightedPoints)
    method = "mmd (closed-form kernel mean)" if closed else "mmd (target by reference quadrature)"
    if not claims.exact_kernel:
        method += f"; kernel itself Monte Carlo over {claims.kernel_samples} claims"
    v = max(raw, 0.0)
    return SketchError(v, v, v, method, {"raw": raw, "mm": mm, "md": md, "dd": dd})


def _spectral_error(sketch: Any, claims: ClaimDistribution, D: Measure, L: int) -> SketchError:
    zonal = claims.zonal
    assert zonal is not None
    sh = SphericalHarmonics(zonal.n, L)
    lam_all = zonal.eigenvalues(4 * L + 4)
    lam = lam_all[: L + 1]
    d = harmonic_moments(D, sh)
    m = sketch.harmonic_moments(sh)
    a = float(lam[sh.degrees] @ (m - d) ** 2)
    b = float(sketch.spectral_tail(zonal, lam))
    g2 = D.density_norm2
    lam_star = float(np.max(lam_all[L + 1 :]))
    c = lam_star * max(0.0, g2 - float(d @ d)) if g2 is not None else np.inf
    cross = 2.0 * np.sqrt(b * c) if np.isfinite(c) else np.inf
    v = a + b
    return SketchError(
        v,
        max(0.0, v - cross),
        v + c + cross,
        f"spectral (harmonics to degree {L})",
        {"low_degree": a, "sketch_tail": b, "target_tail_bound": c},
    )


def point_spectral_tail(points: WeightedPoints, zonal: Any, lam: np.ndarray, *, batch: int = 1024) -> float:
    """``w^T (k - k_L)(X, X) w`` for a weighted point set (the degrees above ``L`` of ``||mu_M||^2``)."""
    X = points.points / np.linalg.norm(points.points, axis=1, keepdims=True)
    w = points.weights
    total = 0.0
    for s in range(0, len(w), batch):
        T = np.clip(X[s : s + batch] @ X.T, -1.0, 1.0)
        R = zonal.profile(T) - zonal_from_eigenvalues(lam, zonal.n, T)
        total += float(w[s : s + batch] @ R @ w)
    return total


def sampled_sketch_error(
    sketch: Any, claims: ClaimDistribution, n_claims: int, *, seed: object = None, batch: int = 256
) -> tuple[float, float]:
    """Brute force: mean of ``(E_M f - E_D f)^2`` over ``n_claims`` sampled claims, and its standard error.

    ``E_M`` uses the sketch's weighted points; ``E_D`` the target's reference quadrature.
    """
    n_claims = check_int("n_claims", n_claims, minimum=2)
    rng = as_generator(seed)
    P = sketch.points_and_weights()
    Q = sketch.target.quadrature()
    X = np.concatenate([P.points, Q.points])
    sq = []
    for s in range(0, n_claims, batch):
        V = claims.sample_values(X, min(batch, n_claims - s), seed=rng)
        sq.append((V[:, : len(P)] @ P.weights - V[:, len(P) :] @ Q.weights) ** 2)
    e = np.concatenate(sq)
    return float(e.mean()), float(e.std(ddof=1) / np.sqrt(e.size))


# ------------------------------------------------------------------ closed forms: RBF x GMM
def _rbf_gmm_mean(k: RBFKernel, D: GaussianMixture, x: np.ndarray) -> np.ndarray:
    """``E_{y~D} s^2 exp(-|x-y|^2/(2 l^2)) = s^2 l^d sum_c pi_c |S_c + l^2 I|^{-1/2} exp(-q_c(x)/2)``."""
    ell2, d = k.lengthscale**2, D.dim
    out = np.zeros(x.shape[0])
    for c in range(D.mix.size):
        A = D.covs[c] + ell2 * np.eye(d)
        diff = x - D.means[c]
        q = np.einsum("ni,ni->n", diff, np.linalg.solve(A, diff.T).T)
        out += D.mix[c] * np.exp(-0.5 * q) / np.sqrt(np.linalg.det(A))
    return k.variance * k.lengthscale**d * out


def _rbf_gmm_norm2(k: RBFKernel, D: GaussianMixture) -> float:
    """``E_{x,y~D} k = s^2 l^d sum_{c,c'} pi_c pi_c' |S_c + S_c' + l^2 I|^{-1/2} exp(-dmu^T (...)^{-1} dmu / 2)``."""
    ell2, d = k.lengthscale**2, D.dim
    tot = 0.0
    for c in range(D.mix.size):
        for e in range(D.mix.size):
            A = D.covs[c] + D.covs[e] + ell2 * np.eye(d)
            dm = D.means[c] - D.means[e]
            tot += D.mix[c] * D.mix[e] * np.exp(-0.5 * dm @ np.linalg.solve(A, dm)) / np.sqrt(np.linalg.det(A))
    return float(k.variance * k.lengthscale**d * tot)


KERNEL_MEAN_RULES.add((RBFKernel, GaussianMixture), (_rbf_gmm_mean, _rbf_gmm_norm2))
