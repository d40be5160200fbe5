"""Target distributions ``D`` (and base measures) with a deterministic reference quadrature.

A sketch must know its target's expectations ``E_D f`` to fit coefficients and to measure its
own error. Every :class:`Measure` therefore offers

* ``sample(n, seed)``: i.i.d. draws (what a :class:`~lowprob.sketching.sketches.SampleSketch` uses);
* ``quadrature()``: a *deterministic* weighted point set (:class:`WeightedPoints`) that
  represents ``D`` accurately (exact for discrete ``D``, exact for polynomials of bounded
  degree for the uniform sphere, a Gauss product rule otherwise). Reference expectations
  never come from random points, so exact errors are not quietly Monte Carlo.

Measures on the sphere set ``on_sphere = True`` and may give ``density_norm2``
``= ||dD/dsigma||^2_{L^2(sigma)}`` (normalised surface measure ``sigma``), used to bound the
spectral truncation of the exact error.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from math import gamma, pi

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp

from lowprob._validation import (
    as_generator,
    check_finite_array,
    check_int,
    check_probability_vector,
)
from lowprob.errors import InputValueError, NumericalError, NumericalWarning
from lowprob.gaussian_polytope import log_normal_le_zero
from lowprob.sketching.sphere_quadrature import sphere_quadrature
from lowprob.toy_models.orthant import (
    MAX_QUADRATURE_DIM,
    _duffy_simplex_rule,
    simplicial_cone_masses,
)

__all__ = [
    "GaussianMixture",
    "Measure",
    "ScaledMeasure",
    "SphericalCone",
    "UniformSphere",
    "WeightedPoints",
]


class Measure(ABC):
    """A probability distribution on ``R^dim`` (or on ``S^{dim-1}`` when ``on_sphere``)."""

    dim: int
    on_sphere: bool = False

    @abstractmethod
    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def quadrature(self) -> WeightedPoints:
        """The deterministic reference rule representing this measure."""

    def sample(self, n: int, *, seed: object = None) -> np.ndarray:
        """``n`` i.i.d. draws, shape ``(n, dim)``."""
        n = check_int("n", n, minimum=1)
        return self._sample(n, as_generator(seed))

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        """``E f`` by the reference quadrature."""
        return self.quadrature().expect(f)

    @property
    def density_norm2(self) -> float | None:
        """``||dD/dsigma||^2`` on the sphere if finite and known, else ``None``."""
        return None

    def scaled(self, mass: float) -> ScaledMeasure:
        """``mass * D``: the unnormalised target of a propagated state whose ``E_M[1]`` estimates ``mass``."""
        return ScaledMeasure(self, mass)


class WeightedPoints(Measure):
    """``sum_i w_i delta_{x_i}``: a discrete (possibly signed) measure.

    Args:
        points: ``(N, dim)`` finite array.
        weights: ``(N,)``; probabilities unless ``signed=True``.
        on_sphere: declare the points to lie on the unit sphere (checked to 1e-8).
    """

    def __init__(self, points: object, weights: object | None = None, *, signed: bool = False, on_sphere: bool = False) -> None:
        X = check_finite_array("points", points, ndim=2)
        if X.shape[0] < 1:
            raise InputValueError("points must contain at least one point.")
        if weights is None:
            weights = np.full(X.shape[0], 1.0 / X.shape[0])
        w = (
            check_finite_array("weights", weights, ndim=1)
            if signed
            else check_probability_vector("weights", weights, atol=1e-9)
        )
        if w.size != X.shape[0]:
            raise InputValueError(f"weights has {w.size} entries but points has {X.shape[0]} rows.")
        if on_sphere and np.max(np.abs(np.linalg.norm(X, axis=1) - 1)) > 1e-8:
            raise InputValueError("on_sphere=True but some points are not unit vectors; normalise them.")
        self.points, self.weights, self.signed = X, w, signed
        self.dim = X.shape[1]
        self.on_sphere = on_sphere

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.signed:
            raise InputValueError("cannot sample from a signed measure (signed=True).")
        return self.points[rng.choice(self.points.shape[0], size=n, p=self.weights)]

    def quadrature(self) -> WeightedPoints:
        return self

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        v = np.asarray(f(self.points), dtype=np.float64)
        if v.shape != (self.points.shape[0],):
            raise InputValueError(f"f must map (N, dim) points to shape (N,), got {v.shape!r}.")
        return float(self.weights @ v)

    def __len__(self) -> int:
        return self.points.shape[0]


class ScaledMeasure(Measure):
    """``c D`` for a measure ``D`` and a mass ``c > 0`` (e.g. ``p`` times a cone's uniform measure).

    Reference rule: ``D``'s, with weights times ``c``; ``density_norm2 = c^2 ||dD/dsigma||^2``.
    Sampling draws from ``D`` (the shape; the mass is not a probability).
    """

    def __init__(self, base: Measure, mass: float) -> None:
        if not isinstance(base, Measure):
            raise InputValueError(f"base must be a Measure, got {base!r}.")
        mass = float(mass)
        if not np.isfinite(mass) or mass <= 0:
            raise InputValueError(f"mass must be finite and > 0, got {mass!r}.")
        self.base, self.mass = base, mass
        self.dim, self.on_sphere = base.dim, base.on_sphere

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.base._sample(n, rng)

    def quadrature(self) -> WeightedPoints:
        Q = self.base.quadrature()
        return WeightedPoints(Q.points, self.mass * Q.weights, signed=True, on_sphere=Q.on_sphere)

    @property
    def density_norm2(self) -> float | None:
        g2 = self.base.density_norm2
        return None if g2 is None else self.mass**2 * g2

    def __repr__(self) -> str:
        return f"ScaledMeasure({self.base!r}, mass={self.mass!r})"


class UniformSphere(Measure):
    """The normalised surface measure on ``S^{n-1}``; reference rule exact to polynomial ``degree``."""

    on_sphere = True

    def __init__(self, n: int, *, degree: int = 40) -> None:
        self.dim = check_int("n", n, minimum=2)
        self.degree = check_int("degree", degree, minimum=0)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal((n, self.dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def quadrature(self) -> WeightedPoints:
        X, w = sphere_quadrature(self.dim, self.degree)
        return WeightedPoints(X, w, on_sphere=True)

    @property
    def density_norm2(self) -> float:
        return 1.0


class SphericalCone(Measure):
    """Uniform distribution on ``S^{n-1} cap {x : W x > 0}`` for a simplicial cone (``W`` is ``n x n``).

    The cone is ``{R t : t >= 0}`` with rays ``R = W^{-1}``. Its reference quadrature pulls the
    sphere measure back to the standard simplex (DESIGN.md §3, *derived*): for ``f`` on the
    sphere,

        int_{cone cap S} f dsigma = c_n |det R| int_Delta f(R u / |R u|) |R u|^{-n} du,
        c_n = Gamma(n/2) / (2 pi^{n/2}),

    and ``int_Delta`` uses a collapsed (Duffy) Gauss–Legendre product rule with ``order``
    points per axis (``order^{n-1}`` nodes); the integrand is smooth because the cone is
    pointed. ``mass`` is the cone's fraction of the sphere.
    """

    on_sphere = True

    def __init__(self, W: object, *, order: int = 24) -> None:
        W = check_finite_array("W", W, ndim=2)
        n = W.shape[1]
        if W.shape != (n, n) or n < 2:
            raise InputValueError(
                f"W must be square (n faces in R^n: a simplicial cone), got shape {W.shape!r}."
            )
        if np.linalg.matrix_rank(W) < n:
            raise InputValueError("W must be invertible (the cone must be pointed with n faces).")
        self.W = W
        self.dim = n
        self.order = check_int("order", order, minimum=1)
        self.rays = np.linalg.inv(W)
        self._quad: WeightedPoints | None = None
        self._mass: float | None = None

    @classmethod
    def random(cls, n: int = 4, *, seed: object = None, order: int = 24) -> SphericalCone:
        """A cone with ``n`` i.i.d. Gaussian face normals."""
        n = check_int("n", n, minimum=2)
        return cls(as_generator(seed).standard_normal((n, n)), order=order)

    def _build(self) -> None:
        n = self.dim
        U, w = _duffy_simplex_rule(n, self.order)
        Y = U @ self.rays.T
        r = np.linalg.norm(Y, axis=1)
        c = gamma(n / 2) / (2 * pi ** (n / 2))
        wt = c * abs(np.linalg.det(self.rays)) * w * r ** (-n)
        self._mass = float(wt.sum())
        self._quad = WeightedPoints(Y / r[:, None], wt / wt.sum(), on_sphere=True)
        if n <= MAX_QUADRATURE_DIM:  # check the rule against the oracle's certified cone mass
            exact, bound = simplicial_cone_masses(self.rays)
            gap = abs(self._mass - float(exact))
            if gap > 1e-3 * float(exact) + float(bound):
                warnings.warn(
                    f"SphericalCone quadrature with order={self.order} gives mass {self._mass:.6g} but "
                    f"the exact mass is {float(exact):.6g} (the cone is too thin for this rule); "
                    "pass a larger order.",
                    NumericalWarning,
                    stacklevel=3,
                )

    def quadrature(self) -> WeightedPoints:
        if self._quad is None:
            self._build()
        assert self._quad is not None
        return self._quad

    @property
    def mass(self) -> float:
        """``sigma(cone cap S^{n-1})``, the fraction of the sphere inside the cone."""
        if self._mass is None:
            self._build()
        return float(self._mass)  # type: ignore[arg-type]

    @property
    def density_norm2(self) -> float:
        return 1.0 / self.mass

    def contains(self, x: np.ndarray) -> np.ndarray:
        return np.all(np.asarray(x) @ self.W.T > 0, axis=-1)

    def _sample(self, n: int, rng: np.random.Generator, max_draws: int = 10**8) -> np.ndarray:
        out, have, drawn = np.empty((n, self.dim)), 0, 0
        batch = int(min(2**20, max(1024, 4 * n / max(self.mass, 1e-6))))
        while have < n:
            if drawn > max_draws:
                raise NumericalError(
                    f"rejection sampling drew {drawn} points for a cone of mass {self.mass:.3g}; "
                    "the cone is too thin for rejection sampling."
                )
            x = rng.standard_normal((batch, self.dim))
            x = x[self.contains(x)]
            k = min(n - have, x.shape[0])
            out[have : have + k] = x[:k] / np.linalg.norm(x[:k], axis=1, keepdims=True)
            have += k
            drawn += batch
        return out


class GaussianMixture(Measure):
    """``sum_c pi_c N(mu_c, Sigma_c)`` on ``R^d``; reference rule: ``order^d``-point Gauss–Hermite per component.

    The one Gaussian-mixture type of the package: a target measure for sketches, and the
    mixture activation model of the LM white-box methods (fit by :meth:`fit`, EM).

    Args:
        weights: ``(C,)`` probability vector. means: ``(C, d)``. covs: ``(C, d, d)`` symmetric
            positive definite. order: Gauss–Hermite points per axis of :meth:`quadrature`.
        log_likelihood: mean log-likelihood of the data it was fit to (``nan`` if not fit).

    Attributes: ``weights`` (alias ``mix``), ``means``, ``covs``, ``chols`` (``(C, d, d)`` lower
    Cholesky factors), ``dim`` (alias ``d``), ``n_components``, ``log_likelihood``.
    """

    def __init__(
        self, weights: object, means: object, covs: object, *, order: int = 20, log_likelihood: float = float("nan")
    ) -> None:
        self.mix = check_probability_vector("weights", weights)
        self.means = check_finite_array("means", means, ndim=2)
        C, d = self.means.shape
        if self.mix.size != C:
            raise InputValueError(f"weights has {self.mix.size} entries but means has {C} rows.")
        self.covs = check_finite_array("covs", covs, shape=(C, d, d))
        chols = []
        for c in range(C):
            S = self.covs[c]
            if not np.allclose(S, S.T, atol=1e-12):
                raise InputValueError(f"covs[{c}] must be symmetric.")
            try:
                chols.append(np.linalg.cholesky(S))
            except np.linalg.LinAlgError:
                raise InputValueError(f"covs[{c}] must be positive definite, got {S!r}.") from None
        self.chols = np.stack(chols)
        self.dim = d
        self.order = check_int("order", order, minimum=1)
        self.log_likelihood = float(log_likelihood)

    @property
    def weights(self) -> np.ndarray:
        return self.mix

    @property
    def d(self) -> int:
        return self.dim

    @property
    def n_components(self) -> int:
        return int(self.mix.size)

    @classmethod
    def fit(
        cls,
        x: object,
        n_components: int = 4,
        *,
        regularization: float = 1e-4,
        n_iter: int = 30,
        tol: float = 1e-6,
        seed: object = None,
    ) -> GaussianMixture:
        """Maximum-likelihood mixture of the samples ``x`` ``(n, d)`` by EM (Dempster, Laird & Rubin
        1977) from a seeded k-means++ start. Each M-step covariance gets ``regularization *
        mean(diag) * I`` added; ``regularization`` must be > 0 (a component fit to few points is
        singular). Stops after ``n_iter`` iterations or when the mean log-likelihood changes by
        less than ``tol`` (relative). Memory ``O(n C + C d^2)``.
        """
        x = check_finite_array("x", np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x,
                                                dtype=np.float64), ndim=2)
        C = check_int("n_components", n_components, minimum=1)
        n_iter = check_int("n_iter", n_iter, minimum=1)
        reg = regularization
        if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not np.isfinite(reg) or reg <= 0:
            raise InputValueError(
                f"regularization must be a finite number > 0 for a Gaussian mixture (a component fit to few "
                f"points has a singular covariance), got {regularization!r}; e.g. regularization=1e-4."
            )
        n, d = x.shape
        if n < 2:
            raise InputValueError(f"x must have at least 2 samples (rows), got shape {x.shape!r}.")
        if C > n:
            raise InputValueError(f"n_components={C!r} exceeds the number of samples {n!r}.")
        rng = as_generator(seed)
        centers = [x[rng.integers(n)]]  # k-means++ seeding
        d2 = np.sum((x - centers[0]) ** 2, axis=1)
        for _ in range(1, C):
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centers.append(x[rng.choice(n, p=p)])
            d2 = np.minimum(d2, np.sum((x - centers[-1]) ** 2, axis=1))
        assign = np.argmin(np.stack([np.sum((x - cc) ** 2, axis=1) for cc in centers], 1), axis=1)
        R = np.zeros((n, C))
        R[np.arange(n), assign] = 1.0
        prev = ll = -np.inf
        for _ in range(n_iter):
            Nk = R.sum(0) + 1e-12  # M step
            weights = Nk / Nk.sum()
            means = (R.T @ x) / Nk[:, None]
            covs = np.empty((C, d, d))
            chols = np.empty((C, d, d))
            for k in range(C):
                xc = x - means[k]
                S = (xc * (R[:, k] / Nk[k])[:, None]).T @ xc
                S = 0.5 * (S + S.T)
                S += reg * max(float(np.mean(np.diag(S))), 1e-300) * np.eye(d)
                covs[k] = S
                chols[k] = np.linalg.cholesky(S)
            logp = np.empty((n, C))  # E step
            for k in range(C):
                z = np.linalg.solve(chols[k], (x - means[k]).T).T
                logdet = 2 * np.sum(np.log(np.diag(chols[k])))
                logp[:, k] = np.log(weights[k]) - 0.5 * (np.sum(z * z, 1) + logdet + d * np.log(2 * pi))
            lse = logsumexp(logp, axis=1)
            ll = float(lse.mean())
            R = np.exp(logp - lse[:, None])
            if abs(ll - prev) < tol * max(1.0, abs(ll)):
                break
            prev = ll
        return cls(weights, means, covs, log_likelihood=ll)

    def log_danger(self, A: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``log P[A_k x + c_k <= 0]`` per row ``k`` of ``A`` ``(K, d)``, ``c`` ``(K,)``: the log of the
        mixture of the components' ``Phi(-(A_k mu_c + c_k) / |A_k L_c|)``."""
        per = np.stack([
            log_normal_le_zero(A @ self.means[k] + c, np.linalg.norm(A @ self.chols[k], axis=1))
            for k in range(self.n_components)
        ])
        return logsumexp(per + np.log(self.mix)[:, None], axis=0)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(self.mix.size, size=n, p=self.mix)
        z = rng.standard_normal((n, self.dim))
        return self.means[comp] + np.einsum("nij,nj->ni", self.chols[comp], z)

    def quadrature(self) -> WeightedPoints:
        z, w = hermegauss(self.order)
        w = w / w.sum()
        Z = np.stack(np.meshgrid(*([z] * self.dim), indexing="ij"), axis=-1).reshape(-1, self.dim)
        Wz = np.prod(np.stack(np.meshgrid(*([w] * self.dim), indexing="ij"), axis=-1).reshape(-1, self.dim), axis=1)
        pts = [self.means[c] + Z @ self.chols[c].T for c in range(self.mix.size)]
        wts = [self.mix[c] * Wz for c in range(self.mix.size)]
        return WeightedPoints(np.concatenate(pts), np.concatenate(wts))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(d,)`` and covariance ``(d, d)``."""
        mu = self.mix @ self.means
        dev = self.means - mu
        cov = np.einsum("c,cij->ij", self.mix, self.covs) + (dev * self.mix[:, None]).T @ dev
        return mu, cov


def _check_measure(name: str, D: object, dim: int | None = None) -> Measure:
    if not isinstance(D, Measure):
        raise InputValueError(
            f"{name} must be a lowprob.sketching.measures.Measure (e.g. WeightedPoints, "
            f"SphericalCone, GaussianMixture), got {D!r}."
        )
    if dim is not None and D.dim != dim:
        raise InputValueError(f"{name} has dimension {D.dim} but the claims have dimension {dim}.")
    return D

