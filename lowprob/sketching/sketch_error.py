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
  ``[lower, upper] = [a + b - 2 sqrt(bc) - r, a + b + c + 2 sqrt(bc) + r]`` with ``r`` the
  floating-point bound below.
* **general kernels**: ``w^T K_XX w - 2 w^T z(X) + ||mu_D||^2`` with the kernel mean
  ``z(x) = E_D k(x, .)`` in closed form where registered (RBF kernel x Gaussian mixture), and
  by ``D``'s reference quadrature otherwise (then ``method`` says so).

Floating point (every route): ``lower``/``upper`` also carry a bound ``r`` on the rounding of
the computed value (``diagnostics["rounding_bound"]``). In the spectral route ``r`` adds the
harmonic-evaluation model of :func:`lowprob.sketching.harmonics.harmonic_rounding_bound` for the
moments ``m`` and ``d`` (``d`` is exact for the uniform sphere and for point targets), the
recurrence and argument-perturbation error of the point tail ``b`` (per kernel entry,
``max |kappa(t +- delta) - kappa(t)|`` with ``delta = (n + 2) u``, plus the Gegenbauer
synthesis error), and the sensitivity ``sum_l |delta lambda_l| (||d_l||^2 + 2 ||m_l|| ||d_l||)`` to
the Funk–Hecke eigenvalues (``delta lambda`` estimated by doubling their quadrature order).
Targets whose reference rule is not exact (``SphericalCone``) have moments ``d`` that are
only as good as that rule; ``diagnostics["target_moments"]`` says which case applies.

Memory: harmonic moments and syntheses use :meth:`SphericalHarmonics.moments` /
``synthesize`` (at most ``max_bytes``, default 256 MiB, besides the ``(total_dim,)``
vectors, ``total_dim ~ (L + 1)^{n-1}``; 5.8 MB at ``n = 4, L = 128``); kernel matrices
``k(X, X)`` are formed in row blocks of at most ``max_bytes``.

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
from lowprob.sketching.eigensystems import harmonic_moments, target_moments_exact
from lowprob.sketching.funk_hecke import (
    funk_hecke_eigenvalues,
    harmonic_dimension,
    zonal_from_eigenvalues,
)
from lowprob.sketching.harmonics import (
    DEFAULT_MAX_BYTES,
    SphericalHarmonics,
    harmonic_rounding_bound,
)
from lowprob.sketching.kernels import RBFKernel
from lowprob.sketching.kterm import as_sketch
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
_U = np.finfo(np.float64).eps / 2

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
        return sh.synthesize(x, coef, normalize=True)
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


def sketch_error(
    sketch: Any,
    claims: ClaimDistribution,
    *,
    target: Measure | None = None,
    degree: int = DEFAULT_DEGREE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SketchError:
    """Exact ``E_{f~C}[(E_M f - E_D f)^2]`` for ``sketch``; see the module docstring.

    Args:
        sketch: a :class:`~lowprob.sketching.kterm.KTerm` (any sketch; its own ``target``), or
            any state the propagation loop produced (a ``SampleCloud``, a ``HarmonicDensity``,
            ...; viewed through :func:`~lowprob.sketching.kterm.as_sketch`, ``target`` required).
        claims: the claim distribution ``C`` (defines the kernel).
        target: the measure ``D`` the loop state approximates (may be unnormalised:
            :meth:`Measure.scaled`).
        degree: harmonic truncation ``L`` of the spectral route.
        max_bytes: working-memory cap (besides the ``(total_dim,)`` moment vectors).

    ``lower <= true error <= upper`` includes a floating-point bound, so the interval has
    positive width even where nothing is truncated.
    """
    sketch = as_sketch(sketch, target)
    D = sketch.target
    _check_dims(claims, D)
    degree = check_int("degree", degree, minimum=0)
    max_bytes = check_int("max_bytes", max_bytes, minimum=1)
    if isinstance(claims, FiniteClaims):
        em = np.array([sketch.expect(f) for f in claims.functions])
        ed = np.array([D.expect(f) for f in claims.functions])
        v = float(claims.weights @ (em - ed) ** 2)
        r = _rounding(claims.weights @ (np.abs(em) + np.abs(ed)) ** 2, 4 * len(em) + 8)
        return SketchError(v, max(0.0, v - r), v + r, "finite claims (definition)", {"rounding_bound": r})
    if _uses_spectral(claims, D):
        return _spectral_error(sketch, claims, D, degree, max_bytes)
    P = sketch.points_and_weights()
    X, w = P.points, P.weights
    mm, mm_abs = _quadratic_form(claims, X, w, max_bytes)
    z = kernel_mean(claims, D, X, degree=degree)
    md = float(w @ z)
    dd = kernel_mean_norm2(claims, D, degree=degree)
    raw = mm - 2 * md + dd
    r = _rounding(mm_abs + 2 * float(np.abs(w) @ np.abs(z)) + abs(dd), len(w) + 8)
    closed = (type(_base_kernel(claims)), type(D)) in KERNEL_MEAN_RULES or isinstance(D, WeightedPoints)
    method = "mmd (closed-form kernel mean)" if closed else "mmd (target by reference quadrature)"
    if not claims.exact_kernel:
        method += f"; kernel itself Monte Carlo over {claims.kernel_samples} claims"
    v = max(raw, 0.0)
    return SketchError(
        v, max(0.0, raw - r), max(0.0, raw + r), method,
        {"raw": raw, "mm": mm, "md": md, "dd": dd, "rounding_bound": r},
    )


def _rounding(magnitude: float, n_ops: int) -> float:
    """``gamma_k |.|`` with ``gamma_k = k u / (1 - k u)`` (Higham 2002, Lemma 3.1), doubled for safety."""
    k = float(n_ops) * _U
    return float(2.0 * k / (1.0 - k) * magnitude)


def _quadratic_form(claims: ClaimDistribution, X: np.ndarray, w: np.ndarray, max_bytes: int) -> tuple[float, float]:
    """``(w^T k(X, X) w, |w|^T |k(X, X)| |w|)`` in row blocks of at most ``max_bytes``."""
    step = max(1, max_bytes // (8 * 4 * max(1, X.shape[0])))
    val = mag = 0.0
    for s in range(0, X.shape[0], step):
        K = claims.kernel(X[s : s + step], X)
        val += float(w[s : s + step] @ K @ w)
        mag += float(np.abs(w[s : s + step]) @ np.abs(K) @ np.abs(w))
    return val, mag


def _spectral_error(sketch: Any, claims: ClaimDistribution, D: Measure, L: int, max_bytes: int) -> SketchError:
    zonal = claims.zonal
    assert zonal is not None
    n = zonal.n
    sh = SphericalHarmonics(n, L)
    lam_all = zonal.eigenvalues(4 * L + 4)
    lam = lam_all[: L + 1]
    d = harmonic_moments(D, sh)
    m = sketch.harmonic_moments(sh)
    diff = m - d
    a = float(lam[sh.degrees] @ diff**2)
    b, rb = sketch.spectral_tail(zonal, lam)
    g2 = D.density_norm2
    lam_star = float(np.max(lam_all[L + 1 :]))
    c = lam_star * max(0.0, g2 - float(d @ d)) if g2 is not None else np.inf
    cross = 2.0 * np.sqrt(b * c) if np.isfinite(c) else np.inf
    # ---- floating point: moments, low-degree sum, tail, eigenvalues
    rm = sketch.harmonic_moments_rounding(sh)
    exact_d = target_moments_exact(D)
    if exact_d and not isinstance(D, WeightedPoints):
        rd = np.zeros(L + 1)
    else:
        Q = D.quadrature()
        rd = harmonic_rounding_bound(n, L, n_points=len(Q), weight_l1=float(np.abs(Q.weights).sum()))
    delta = (rm + rd)[sh.degrees]
    ra = float(lam[sh.degrees] @ (2 * np.abs(diff) * delta + delta**2)) + _rounding(a, sh.total_dim + 4)
    lam_check = np.clip(funk_hecke_eigenvalues(zonal.profile, n, L, quad_order=2 * (2 * L + 2 * n + 200)), 0.0, None)
    dlam = np.abs(lam_check - lam) + 4 * _U * lam
    blocks = np.add.reduceat
    m2 = blocks(m**2, sh._offsets[:-1].astype(np.intp))
    d2 = blocks(d**2, sh._offsets[:-1].astype(np.intp))
    rl = float(dlam @ (d2 + 2 * np.sqrt(m2 * d2)))
    v = a + b
    r = ra + rb + rl + _rounding(v, 4)
    return SketchError(
        v,
        max(0.0, v - cross - r),
        v + c + cross + r,
        f"spectral (harmonics to degree {L})",
        {
            "low_degree": a,
            "sketch_tail": b,
            "target_tail_bound": c,
            "rounding_bound": r,
            "target_moments": "exact" if exact_d else "reference quadrature (its own error not bounded)",
        },
    )


def point_spectral_tail(
    points: WeightedPoints, zonal: Any, lam: np.ndarray, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[float, float]:
    """``w^T (k - k_L)(X, X) w`` for a weighted point set, and a bound on its rounding error.

    ``k_L(t) = sum_{l <= L} lambda_l dim_l P_l(t)`` (the degrees up to ``L`` of ``||mu_M||^2``).
    Computed in row blocks of at most ``max_bytes`` (about ten ``(block, N)`` float64 arrays).
    Diagonal entries use ``t = 1`` exactly. Rounding bound per entry:
    ``max_{+-} |kappa(t +- delta) - kappa(t)| + u |kappa(t)|`` (argument error of the float64
    inner product, ``delta = (n + 2) u``) plus ``sum_l lambda_l dim_l ((2 l + 2) u + delta P_l'(1))``
    (Gegenbauer synthesis; ``P_l'(1) = l (l + n - 2) / (n - 1)``), summed with ``|w_i| |w_j|``.
    """
    X = points.points / np.linalg.norm(points.points, axis=1, keepdims=True)
    w = points.weights
    N = len(w)
    n = X.shape[1]
    lam = np.asarray(lam, dtype=np.float64)
    ls = np.arange(lam.size, dtype=np.float64)
    dims = np.array([harmonic_dimension(l, n) for l in range(lam.size)], dtype=np.float64)
    delta = (n + 2) * _U
    synth_err = float(lam * dims @ ((2 * ls + 2) * _U + delta * ls * (ls + n - 2) / max(n - 1, 1)))
    step = max(1, int(max_bytes) // (8 * 10 * max(N, 1)))
    total = err = 0.0
    aw = np.abs(w)
    for s in range(0, N, step):
        T = np.clip(X[s : s + step] @ X.T, -1.0, 1.0)
        rows = np.arange(s, min(s + step, N))
        T[rows - s, rows] = 1.0
        kap = zonal.profile(T)
        R = kap - zonal_from_eigenvalues(lam, n, T)
        total += float(w[s : s + step] @ R @ w)
        pert = np.maximum(
            np.abs(zonal.profile(np.clip(T + delta, -1.0, 1.0)) - kap),
            np.abs(zonal.profile(np.clip(T - delta, -1.0, 1.0)) - kap),
        )
        pert[rows - s, rows] = 0.0
        E = pert + _U * np.abs(kap) + synth_err + 2 * N * _U * np.abs(R)
        err += float(aw[s : s + step] @ E @ aw)
    return total, 2.0 * err


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
    if sketch.target.dim != P.dim:
        raise InputValueError(f"the sketch lives in R^{P.dim} but its target in R^{sketch.target.dim}.")
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
