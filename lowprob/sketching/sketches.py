"""K-term sketches ``M`` of a distribution ``D`` and their cost and exact error (DESIGN.md §1, §4).

Every sketch has the same small contract, so the propagation loop never branches on how it
was made:

* ``K``: the number of terms actually used (samples, points, eigenfunctions, moments);
* ``target``: the measure ``D`` it sketches;
* ``expect(f)``: ``E_M f`` (``M`` may be a *signed* pseudo-distribution);
* ``harmonic_moments(sh)``: ``E_M Y_j`` for a :class:`~lowprob.sketching.harmonics.SphericalHarmonics`,
  and ``harmonic_moments_rounding(sh)``: a per-degree bound on their float64 error;
* ``error(claims)``: the exact ``E_{f~C}[(E_M f - E_D f)^2]``
  (:func:`lowprob.sketching.sketch_error.sketch_error`);
* ``cost``: a :class:`lowprob.Cost` (``samples`` = ``K`` terms, ``seconds`` to build;
  FLOPs are not counted for sketch construction, ``flops = 0``).

and, because a sketch *is* an activation model that the propagation loop can carry, the loop's
two members ``n_terms`` (``= K``) and ``total_mass()`` (``E_M[1]``): every sketch satisfies
:class:`lowprob.propagation.loop.Representation`. Conversely :func:`as_sketch` views any loop
state (a sample cloud, a harmonic coefficient block, ...) as a sketch of a given target, by a
rule registered per representation type in :data:`SKETCH_VIEWS`, so
:func:`~lowprob.sketching.sketch_error.sketch_error` measures what the loop produced at any
step.

Kinds: :class:`PointSketch` (any signed weighted point set, e.g. a propagated sample cloud),
:class:`HarmonicSketch` (a density ``sum_j c_j Y_j`` on the sphere, e.g. the ``kernel``
scheme's coefficient blocks), :class:`SampleSketch` (``K`` i.i.d. samples), :class:`KernelSketch` (L2 projection of
``dD/dmu`` onto the top-``K`` eigenfunctions of the claim kernel, whole eigenspaces only),
:class:`QuadratureSketch` (``K`` points with MMD-optimal weights), and
:class:`GaussianMomentSketch` (mean and covariance: the classic activation model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from lowprob._validation import as_generator, check_finite_array, check_int
from lowprob.errors import InputValueError, LowprobError, NumericalError
from lowprob.estimate import Cost, stopwatch
from lowprob.sketching.claims import ClaimDistribution
from lowprob.sketching.eigensystems import Eigensystem, HarmonicEigensystem
from lowprob.sketching.funk_hecke import harmonic_dimension
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.kernels import check_points, psd_eigh
from lowprob.sketching.kterm import SKETCH_VIEWS, KTerm, as_sketch
from lowprob.sketching.measures import Measure, WeightedPoints
from lowprob.sketching.nystrom import NystromEigensystem
from lowprob.sketching.sketch_error import (
    DEFAULT_DEGREE,
    SketchError,
    kernel_mean,
    kernel_mean_norm2,
    point_spectral_tail,
    sketch_error,
)
from lowprob.sketching.sphere_quadrature import sphere_quadrature

__all__ = [
    "SKETCH_VIEWS",
    "GaussianMomentSketch",
    "HarmonicSketch",
    "InfeasibleQPError",
    "KernelSketch",
    "PointSketch",
    "QuadratureSketch",
    "SampleSketch",
    "Sketch",
    "as_sketch",
]


class InfeasibleQPError(LowprobError, ValueError):
    """cvxpy reported the weight QP infeasible (e.g. ``max_weight * K < 1``)."""


def _check_target(target: object, claims: ClaimDistribution | None = None) -> Measure:
    if not isinstance(target, Measure):
        raise InputValueError(
            f"target must be a lowprob.sketching.measures.Measure (SphericalCone, GaussianMixture, "
            f"WeightedPoints, ...), got {target!r}."
        )
    if claims is not None:
        if not isinstance(claims, ClaimDistribution):
            raise InputValueError(f"claims must be a ClaimDistribution, got {claims!r}.")
        if claims.dim is not None and claims.dim != target.dim:
            raise InputValueError(
                f"dimension mismatch: claims act on R^{claims.dim} but target lives in R^{target.dim}."
            )
    return target


class Sketch(KTerm):
    """Base class of the sketches built here: the :class:`~lowprob.sketching.kterm.KTerm`
    contract plus :meth:`error` / :meth:`error_report`."""

    def error(self, claims: ClaimDistribution, *, degree: int = DEFAULT_DEGREE) -> float:
        """Exact ``E_{f~C}[(E_M f - E_D f)^2]`` (see :func:`sketch_error` for bounds)."""
        return self.error_report(claims, degree=degree).value

    def error_report(self, claims: ClaimDistribution, *, degree: int = DEFAULT_DEGREE) -> SketchError:
        return sketch_error(self, claims, degree=degree)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.K})"


class PointSketch(Sketch):
    """``M = sum_i w_i delta_{x_i}`` (weights may be signed, mass need not be 1) sketching ``target``.

    The view of a propagated :class:`~lowprob.propagation.sample_cloud.SampleCloud`, and the
    base of the sample, quadrature and Gaussian-moment sketches. ``K`` = number of points.
    """

    kind = "points"
    measure: WeightedPoints

    def __init__(self, measure: WeightedPoints, target: Measure) -> None:
        if not isinstance(measure, WeightedPoints):
            raise InputValueError(f"measure must be a WeightedPoints, got {measure!r}.")
        self.target = _check_target(target)
        if measure.dim != self.target.dim:
            raise InputValueError(
                f"points live in R^{measure.dim} but the target in R^{self.target.dim}; they must match."
            )
        self.measure = measure
        self.K = len(measure)
        self.cost = Cost(samples=self.K)

    def expect(self, f: Any) -> float:
        return self.measure.expect(f)

    def harmonic_moments(self, sh: SphericalHarmonics) -> np.ndarray:
        return sh.moments(self.measure.points, self.measure.weights, normalize=True)

    def points_and_weights(self) -> WeightedPoints:
        return self.measure

    def spectral_tail(self, zonal: Any, lam: np.ndarray) -> tuple[float, float]:
        return point_spectral_tail(self.measure, zonal, lam)

    @property
    def points(self) -> np.ndarray:
        return self.measure.points

    @property
    def weights(self) -> np.ndarray:
        return self.measure.weights


class SampleSketch(PointSketch):
    """``K`` i.i.d. samples of ``D`` with weights ``1/K``. Expected error ``E_f Var_D(f) / K``."""

    kind = "sample"

    def __init__(self, target: Measure, K: int, *, seed: object = None) -> None:
        self.target = _check_target(target)
        self.K = check_int("K", K, minimum=1)
        with stopwatch() as t:
            X = self.target.sample(self.K, seed=as_generator(seed))
        self.measure = WeightedPoints(X, signed=True)
        self.cost = Cost(samples=self.K, seconds=t[0])

    def expected_error(self, claims: ClaimDistribution, *, degree: int = DEFAULT_DEGREE) -> float:
        """``(E_D k(x, x) - E_{x,y~D} k(x, y)) / K`` (the exact mean over sample draws)."""
        diag = self.target.expect(claims.kernel_diag)
        return (diag - kernel_mean_norm2(claims, self.target, degree=degree)) / self.K


class KernelSketch(Sketch):
    """L2 projection of ``g = dD/dmu`` onto the top eigenspaces of the claim kernel; signed.

    ``E_M f = sum_{j kept} <g, phi_j> <f, phi_j>_mu`` and the error is
    ``sum_{j not kept} lambda_j <g, phi_j>^2 <= lambda_{K+1} ||g||^2`` (DESIGN.md §1).
    Whole eigenspaces are kept or dropped together, in the order and with the tie rule of
    :mod:`lowprob.sketching.eigensystems` (largest eigenvalue first; eigenvalues equal within
    ``1e-9 * lambda_max`` form one eigenspace; null eigenspaces are never kept). ``K`` is the
    number of eigenfunctions actually kept (``<= K_requested``).

    Eigensystem (default): zonal claims with a target on the sphere that has a density (not a
    :class:`WeightedPoints`) use exact harmonics to ``degree`` (default: the smallest degree
    whose blocks hold ``K`` functions, plus 8); anything else uses Nyström over ``base``
    (default: the target itself, with its reference quadrature as the ``R`` reference points).
    """

    kind = "kernel"

    def __init__(
        self,
        target: Measure,
        claims: ClaimDistribution,
        K: int,
        *,
        eigensystem: Eigensystem | None = None,
        base: Measure | None = None,
        degree: int | None = None,
    ) -> None:
        self.target = _check_target(target, claims)
        self.K_requested = check_int("K", K, minimum=1)
        with stopwatch() as t:
            if eigensystem is None:
                discrete = isinstance(self.target, WeightedPoints)
                if claims.zonal is not None and self.target.on_sphere and not discrete and base is None:
                    if degree is None:
                        L, tot = 0, 1
                        while tot < self.K_requested:
                            L += 1
                            tot += harmonic_dimension(L, claims.zonal.n)
                        degree = L + 8
                    eigensystem = HarmonicEigensystem(claims.zonal, degree)
                else:
                    eigensystem = NystromEigensystem(claims.kernel, base or self.target, dim=claims.dim)
            if eigensystem.dim != self.target.dim:
                raise InputValueError(
                    f"eigensystem dimension {eigensystem.dim} != target dimension {self.target.dim}."
                )
            self.eigensystem = eigensystem
            self.columns = eigensystem.select(self.K_requested)
            self.all_coefficients = eigensystem.coefficients(self.target)
            self.coefficients = self.all_coefficients[self.columns]
            self._harmonic = isinstance(eigensystem, HarmonicEigensystem)
            if not self._harmonic:
                w = eigensystem.reference_weights(self.columns, self.coefficients)  # type: ignore[attr-defined]
                self.measure = WeightedPoints(eigensystem.reference.points, w, signed=True)  # type: ignore[attr-defined]
        self.K = int(self.columns.size)
        self.cost = Cost(samples=self.K, seconds=t[0])

    @property
    def kept_eigenvalues(self) -> np.ndarray:
        return self.eigensystem.eigenvalues[self.columns]

    def eigen_error(self) -> float:
        """``sum_{j in the eigensystem, not kept} lambda_j <g, phi_j>^2`` (excludes degrees above the truncation)."""
        mask = np.ones(self.eigensystem.eigenvalues.size, dtype=bool)
        mask[self.columns] = False
        return float(self.eigensystem.eigenvalues[mask] @ self.all_coefficients[mask] ** 2)

    def density(self, x: np.ndarray) -> np.ndarray:
        """The signed density ``g_K(x) = sum_{j kept} <g, phi_j> phi_j(x)`` w.r.t. ``mu``, shape ``(N,)``."""
        return self.eigensystem.functions(np.asarray(x, dtype=np.float64))[:, self.columns] @ self.coefficients

    def expect(self, f: Any, *, quad_degree: int | None = None) -> float:
        """``E_M f``. Harmonic sketches integrate ``f g_K`` with an exact sphere rule of degree
        ``quad_degree`` (default ``2 * max kept degree + 20``): exact when ``f`` is a polynomial of
        degree ``<= quad_degree - max kept degree``."""
        if not self._harmonic:
            return self.measure.expect(f)
        return self._harmonic_rule(quad_degree).expect(f)

    def _harmonic_rule(self, quad_degree: int | None = None) -> WeightedPoints:
        lmax = int(self.eigensystem.sh.degrees[self.columns].max())  # type: ignore[attr-defined]
        deg = 2 * lmax + 20 if quad_degree is None else check_int("quad_degree", quad_degree, minimum=lmax)
        X, w = sphere_quadrature(self.target.dim, deg)
        return WeightedPoints(X, w * self.density(X), signed=True)

    def harmonic_moments(self, sh: SphericalHarmonics) -> np.ndarray:
        if not self._harmonic:
            return sh.moments(self.measure.points, self.measure.weights, normalize=True)
        out = np.zeros(sh.total_dim)
        inside = self.columns < sh.total_dim
        if sh.n != self.target.dim:
            raise InputValueError(f"harmonics on S^{sh.n - 1} do not match the target's S^{self.target.dim - 1}.")
        out[self.columns[inside]] = self.coefficients[inside]
        return out

    def points_and_weights(self) -> WeightedPoints:
        return self.measure if not self._harmonic else self._harmonic_rule()

    def harmonic_moments_rounding(self, sh: SphericalHarmonics) -> np.ndarray:
        if self._harmonic:  # the moments are the stored coefficients themselves
            return np.zeros(sh.L + 1)
        return super().harmonic_moments_rounding(sh)

    def spectral_tail(self, zonal: Any, lam: np.ndarray) -> tuple[float, float]:
        if self._harmonic:
            L = lam.size - 1
            if int(self.eigensystem.sh.degrees[self.columns].max()) > L:  # type: ignore[attr-defined]
                raise InputValueError(f"error degree {L} is below the sketch's kept degrees; raise degree.")
            return 0.0, 0.0
        return point_spectral_tail(self.measure, zonal, lam)

    def __repr__(self) -> str:
        return f"KernelSketch(K={self.K}, requested={self.K_requested}, {self.eigensystem!r})"


class QuadratureSketch(PointSketch):
    """``K`` points with weights minimising ``||sum_i w_i k(x_i, .) - mu_D||_k^2`` (MMD).

    Points are chosen from ``candidates`` (default: ``n_candidates`` draws of ``D`` with
    ``seed``; only a search set, the objective uses the exact kernel mean ``z = E_D k(x, .)``):

    * ``points="herding"``: kernel herding, ``x_{t+1} = argmax_x z(x) - (1/(t+1)) sum_{s<=t} k(x, x_s)``
      (Chen, Welling & Smola 2010, eq. 5);
    * ``points="greedy"``: sequential Bayesian quadrature (Huszar & Duvenaud 2012): add the
      candidate with the largest MMD decrease under optimal weights, ``r(x)^2 / P(x)``, with
      ``r`` the residual kernel mean and ``P`` the power function (Newton basis updates).

    Weights: ``"signed"`` solves ``K_SS w = z_S`` (pseudo-inverse on the PSD-checked spectrum);
    ``"simplex"`` solves the QP ``min w^T K w - 2 z^T w`` s.t. ``w >= 0, sum w = 1`` (and
    ``w <= max_weight`` if given) with cvxpy, raising :class:`InfeasibleQPError` when cvxpy
    reports infeasibility; ``"uniform"`` uses ``1/K`` (herding's own weights).
    """

    kind = "quadrature"

    def __init__(
        self,
        target: Measure,
        claims: ClaimDistribution,
        K: int,
        *,
        points: str = "greedy",
        weights: str = "signed",
        candidates: np.ndarray | None = None,
        n_candidates: int = 2048,
        seed: object = 0,
        max_weight: float | None = None,
        degree: int = DEFAULT_DEGREE,
        _order: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.target = _check_target(target, claims)
        self.K = check_int("K", K, minimum=1)
        if points not in ("greedy", "herding"):
            raise InputValueError(f"points must be 'greedy' or 'herding', got {points!r}.")
        if weights not in ("signed", "simplex", "uniform"):
            raise InputValueError(f"weights must be 'signed', 'simplex' or 'uniform', got {weights!r}.")
        self.point_rule, self.weight_rule = points, weights
        with stopwatch() as t:
            if candidates is None:
                n_candidates = check_int("n_candidates", n_candidates, minimum=1)
                C = self.target.sample(n_candidates, seed=as_generator(seed))
            else:
                C = check_points("candidates", candidates, self.target.dim)
            if self.K > C.shape[0]:
                raise InputValueError(
                    f"K={self.K!r} is larger than the available basis: only {C.shape[0]} candidate points."
                )
            if _order is None:
                z = kernel_mean(claims, self.target, C, degree=degree)
                kdiag = claims.kernel_diag(C)
                idx = (_greedy if points == "greedy" else _herding)(claims, C, z, kdiag, self.K)
            else:
                idx, z = _order[0][: self.K], _order[1]
            X = C[idx]
            KSS = claims.kernel(X, X)
            if weights == "uniform":
                w = np.full(self.K, 1.0 / self.K)
            elif weights == "signed":
                lam, U = psd_eigh(KSS, name="K_SS")
                inv = np.where(lam > 1e-12 * lam[0], 1.0 / np.where(lam > 0, lam, 1.0), 0.0)
                w = U @ (inv * (U.T @ z[idx]))
            else:
                w = _simplex_weights(KSS, z[idx], max_weight)
        self.measure = WeightedPoints(X, w, signed=True)
        self._candidates, self._idx, self._z = C, idx, z
        self.cost = Cost(samples=self.K, seconds=t[0])

    @classmethod
    def nested(
        cls,
        target: Measure,
        claims: ClaimDistribution,
        Ks: list[int],
        *,
        points: str = "greedy",
        weights: str = "signed",
        n_candidates: int = 2048,
        seed: object = 0,
        degree: int = DEFAULT_DEGREE,
        max_weight: float | None = None,
    ) -> list[QuadratureSketch]:
        """Sketches for several ``K`` sharing one greedy/herding run (selection is sequential, so
        the first ``K`` points of a ``max(Ks)`` run are exactly the ``K``-point selection).

        Each sketch's ``cost.seconds`` includes the shared selection run, which it needed."""
        Ks = [check_int("K", K, minimum=1) for K in Ks]
        first = cls(target, claims, max(Ks), points=points, weights="uniform", n_candidates=n_candidates, seed=seed, degree=degree)
        C = first._candidates
        out = []
        for K in Ks:
            sk = cls(target, claims, K, points=points, weights=weights, candidates=C, degree=degree, max_weight=max_weight, _order=(first._idx, first._z))
            sk.cost = sk.cost + Cost(seconds=first.cost.seconds)
            out.append(sk)
        return out


def _herding(claims: ClaimDistribution, C: np.ndarray, z: np.ndarray, kdiag: np.ndarray, K: int) -> np.ndarray:
    acc = np.zeros(C.shape[0])
    chosen: list[int] = []
    free = np.ones(C.shape[0], dtype=bool)
    for t in range(K):
        score = np.where(free, z - acc / (t + 1), -np.inf)
        i = int(np.argmax(score))
        chosen.append(i)
        free[i] = False
        acc += claims.kernel(C, C[i : i + 1])[:, 0]
    return np.array(chosen)


def _greedy(claims: ClaimDistribution, C: np.ndarray, z: np.ndarray, kdiag: np.ndarray, K: int) -> np.ndarray:
    N = C.shape[0]
    V = np.zeros((N, K))
    P = kdiag.astype(np.float64).copy()
    r = z.astype(np.float64).copy()
    floor = 1e-12 * float(np.max(kdiag))
    chosen: list[int] = []
    for t in range(K):
        score = np.where(P > floor, r**2 / np.where(P > floor, P, 1.0), -np.inf)
        score[chosen] = -np.inf
        i = int(np.argmax(score))
        if not np.isfinite(score[i]):
            raise NumericalError(
                f"greedy selection stalled after {t} points: the power function vanished on every "
                "remaining candidate (kernel rank exhausted). Use a smaller K or more candidates."
            )
        col = claims.kernel(C, C[i : i + 1])[:, 0] - V[:, :t] @ V[i, :t]
        v = col / np.sqrt(P[i])
        beta = r[i] / np.sqrt(P[i])
        V[:, t] = v
        r -= v * beta
        P = np.maximum(P - v**2, 0.0)
        chosen.append(i)
    return np.array(chosen)


def _simplex_weights(KSS: np.ndarray, z: np.ndarray, max_weight: float | None) -> np.ndarray:
    import cvxpy as cp

    lam, U = psd_eigh(KSS, name="K_SS")
    scale = lam[0] if lam[0] > 0 else 1.0
    F = (U * np.sqrt(lam / scale)).T  # KSS / scale = F^T F
    w = cp.Variable(KSS.shape[0])
    cons = [w >= 0, cp.sum(w) == 1]
    if max_weight is not None:
        cons.append(w <= float(max_weight))
    prob = cp.Problem(cp.Minimize(cp.sum_squares(F @ w) - 2 * (z / scale) @ w), cons)
    try:
        prob.solve()
    except cp.error.SolverError as exc:
        raise NumericalError(f"cvxpy failed on the simplex-weight QP: {exc}") from exc
    if prob.status in ("infeasible", "infeasible_inaccurate"):
        raise InfeasibleQPError(
            f"cvxpy reports the simplex-weight QP {prob.status} (K={KSS.shape[0]}, max_weight="
            f"{max_weight!r}): weights in [0, max_weight] cannot sum to 1 unless max_weight >= 1/K."
        )
    if w.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise NumericalError(f"cvxpy returned status {prob.status!r} for the simplex-weight QP.")
    return np.clip(np.asarray(w.value, dtype=np.float64), 0.0, None)


class GaussianMomentSketch(PointSketch):
    """``M = N(mean_D, cov_D)``: the classic activation model (mean + covariance, ``K = d + d(d+1)/2``).

    Moments are exact under ``D``'s reference quadrature; expectations under ``M`` use the
    ``order^d``-point Gauss–Hermite product rule (exact for polynomials of degree ``<= 2 order - 1``
    in each coordinate). For targets on the sphere, claims are evaluated at the Gaussian's
    points; zonal errors use the radial projection of ``M`` onto the sphere.
    """

    kind = "gaussian"

    def __init__(self, target: Measure, *, order: int = 8) -> None:
        self.target = _check_target(target)
        order = check_int("order", order, minimum=1)
        with stopwatch() as t:
            Q = self.target.quadrature()
            self.mean = Q.weights @ Q.points
            dev = Q.points - self.mean
            self.cov = (dev * Q.weights[:, None]).T @ dev
            d = self.target.dim
            lam, U = np.linalg.eigh(0.5 * (self.cov + self.cov.T))
            A = U * np.sqrt(np.clip(lam, 0.0, None))
            z, w = hermegauss(order)
            w = w / w.sum()
            Z = np.stack(np.meshgrid(*([z] * d), indexing="ij"), -1).reshape(-1, d)
            W = np.prod(np.stack(np.meshgrid(*([w] * d), indexing="ij"), -1).reshape(-1, d), axis=1)
            X = self.mean + Z @ A.T
            if self.target.on_sphere and np.any(np.linalg.norm(X, axis=1) < 1e-12):
                raise NumericalError("a Gauss–Hermite node hit the origin; use another order.")
        self.measure = WeightedPoints(X, W, signed=True)
        self.K = d + d * (d + 1) // 2
        self.cost = Cost(samples=self.K, seconds=t[0])


_PointSketch = PointSketch  # backward-compatible private name


class HarmonicSketch(Sketch):
    """``M = g sigma`` with ``g = sum_j c_j Y_j`` (degrees ``<= L``) on ``S^{n-1}``, sketching ``target``.

    ``E_M Y_j = c_j`` (orthonormality), so its harmonic moments are the coefficients and it has
    no content above ``L`` (``spectral_tail = 0``; an error degree below ``L`` is refused).
    ``K`` = the number of non-zero-block coefficients given by ``n_terms`` (default: all).
    The view of the ``kernel`` scheme's :class:`~lowprob.propagation.harmonic_density.HarmonicDensity`.
    """

    kind = "harmonic"

    def __init__(self, coefficients: object, target: Measure, *, n_terms: int | None = None) -> None:
        self.target = _check_target(target)
        if not self.target.on_sphere:
            raise InputValueError(f"a HarmonicSketch needs a target on the sphere, got {target!r}.")
        c = check_finite_array("coefficients", coefficients, ndim=1)
        n, L, total = self.target.dim, 0, 1
        while total < c.size:
            L += 1
            total += harmonic_dimension(L, n)
        if total != c.size:
            raise InputValueError(
                f"coefficients has {c.size} entries; harmonics of degrees 0..L on S^{n - 1} have "
                f"1, {1 + n}, ... entries (a whole number of degree blocks)."
            )
        self.coefficients, self.L, self.n = c, L, n
        self.K = c.size if n_terms is None else check_int("n_terms", n_terms, minimum=1)
        self.cost = Cost(samples=self.K)

    def total_mass(self) -> float:
        return float(self.coefficients[0])

    def harmonic_moments(self, sh: SphericalHarmonics) -> np.ndarray:
        if sh.n != self.n:
            raise InputValueError(f"harmonics on S^{sh.n - 1} do not match the sketch's S^{self.n - 1}.")
        out = np.zeros(sh.total_dim)
        k = min(sh.total_dim, self.coefficients.size)
        out[:k] = self.coefficients[:k]
        return out

    def harmonic_moments_rounding(self, sh: SphericalHarmonics) -> np.ndarray:
        return np.zeros(sh.L + 1)

    def spectral_tail(self, zonal: Any, lam: np.ndarray) -> tuple[float, float]:
        if lam.size - 1 < self.L:
            raise InputValueError(
                f"error degree {lam.size - 1} is below the sketch's degree {self.L}; pass degree >= {self.L}."
            )
        return 0.0, 0.0

    def expect(self, f: Any, *, quad_degree: int | None = None) -> float:
        """``E_M f = int f g dsigma`` by an exact sphere rule of degree ``quad_degree`` (default ``2 L + 20``)."""
        return self.points_and_weights(quad_degree).expect(f)

    def points_and_weights(self, quad_degree: int | None = None) -> WeightedPoints:
        deg = 2 * self.L + 20 if quad_degree is None else check_int("quad_degree", quad_degree, minimum=self.L)
        X, w = sphere_quadrature(self.n, deg)
        g = SphericalHarmonics(self.n, self.L).synthesize(X, self.coefficients)
        return WeightedPoints(X, w * g, signed=True)
