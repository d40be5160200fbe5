"""Claim distributions ``C``: random functions ``f`` whose expectations a sketch must get right.

Every claim distribution gives its kernel ``k(x, y) = E_{f ~ C}[f(x) f(y)]`` (DESIGN.md §1):
exactly where a closed form exists (``exact_kernel = True``), by Monte Carlo over sampled
claims otherwise. All of them can draw claim values jointly at a finite point set
(:meth:`ClaimDistribution.sample_values`), which is what brute-force error checks use.

Shapes: points ``x`` are ``(N, dim)``; kernels return ``(N, M)``; ``sample_values(x, S)``
returns ``(S, N)`` (row ``s`` is claim ``f_s`` evaluated at every point).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_int, check_probability_vector
from lowprob.errors import InputTypeError, InputValueError
from lowprob.sketching.funk_hecke import halfspace_product_profile
from lowprob.sketching.kernels import RBFKernel, ZonalKernel, check_points, psd_eigh

__all__ = [
    "ClaimDistribution",
    "ComposedClaims",
    "FiniteClaims",
    "KernelClaims",
    "MultipliedClaims",
    "RandomHalfspaceProduct",
    "SampledClaims",
]


class ClaimDistribution(ABC):
    """A distribution over claims ``f: R^dim -> R``.

    Required: :meth:`sample_values`. Optional: :meth:`kernel` (defaults to a Monte Carlo
    estimate from ``sample_values`` with ``kernel_samples`` claims; ``exact_kernel`` says
    which), :attr:`zonal` (a :class:`ZonalKernel` when the kernel is zonal on the sphere).
    """

    dim: int | None = None
    exact_kernel: bool = False
    kernel_samples: int = 4096

    @abstractmethod
    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_values(self, x: object, n: int, *, seed: object = None) -> np.ndarray:
        """Values of ``n`` independent claims at the points ``x`` ``(N, dim)``: shape ``(n, N)``."""
        x = check_points("x", x, self.dim)
        n = check_int("n", n, minimum=1)
        return self._sample_values(x, n, as_generator(seed))

    def kernel(self, x: object, y: object) -> np.ndarray:
        """``k(x_i, y_j) = E_f f(x_i) f(y_j)``, shape ``(N, M)``.

        Default: Monte Carlo over ``kernel_samples`` claims (seed 0, common to ``x`` and
        ``y``); standard error ``~ sqrt(Var(f(x)f(y)) / kernel_samples)``.
        """
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        V = self._sample_values(np.concatenate([x, y]), self.kernel_samples, np.random.default_rng(0))
        return V[:, : x.shape[0]].T @ V[:, x.shape[0] :] / self.kernel_samples

    def kernel_diag(self, x: object) -> np.ndarray:
        """``k(x_i, x_i)``, shape ``(N,)``.

        Default: the diagonal of the Monte Carlo :meth:`kernel` (the same seed-0 claims), from
        one draw of ``kernel_samples`` claims per block of 512 points, not one per point.
        """
        x = check_points("x", x, self.dim)
        out = []
        for s in range(0, x.shape[0], 512):
            V = self._sample_values(x[s : s + 512], self.kernel_samples, np.random.default_rng(0))
            out.append(np.einsum("ni,ni->i", V, V) / self.kernel_samples)
        return np.concatenate(out) if out else np.zeros(0)

    @property
    def zonal(self) -> ZonalKernel | None:
        """The kernel as a :class:`ZonalKernel` if it is zonal on ``S^{dim-1}``, else ``None``."""
        return None


class FiniteClaims(ClaimDistribution):
    """Finitely many claims ``f_i`` with probabilities ``w_i``: ``k(x, y) = sum_i w_i f_i(x) f_i(y)``.

    Args:
        functions: callables ``(N, dim) -> (N,)``.
        weights: probabilities summing to 1 (default uniform).
        dim: input dimension (checked on every call), or ``None`` for any.
    """

    exact_kernel = True

    def __init__(
        self,
        functions: Sequence[Callable[[np.ndarray], np.ndarray]],
        weights: object | None = None,
        *,
        dim: int | None = None,
    ) -> None:
        functions = list(functions)
        if not functions:
            raise InputValueError("functions must be a non-empty sequence of callables.")
        for i, f in enumerate(functions):
            if not callable(f):
                raise InputTypeError(f"functions[{i}] must be callable, got {f!r}.")
        if weights is None:
            weights = np.full(len(functions), 1.0 / len(functions))
        w = check_probability_vector("weights", weights)
        if w.size != len(functions):
            raise InputValueError(
                f"weights has {w.size} entries but there are {len(functions)} functions."
            )
        self.functions = functions
        self.weights = w
        self.dim = None if dim is None else check_int("dim", dim, minimum=1)

    def values(self, x: object) -> np.ndarray:
        """``F[i, j] = f_i(x_j)``, shape ``(len(functions), N)``."""
        x = check_points("x", x, self.dim)
        return self._values(x)

    def _values(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(self.functions), x.shape[0]))
        for i, f in enumerate(self.functions):
            v = np.asarray(f(x), dtype=np.float64)
            if v.shape != (x.shape[0],):
                raise InputValueError(
                    f"functions[{i}] must map (N, d) points to shape (N,), got {v.shape!r}."
                )
            out[i] = v
        return out

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        return (self._values(x) * self.weights[:, None]).T @ self._values(y)

    def kernel_diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        return self.weights @ self._values(x) ** 2

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        idx = rng.choice(len(self.functions), size=n, p=self.weights)
        return self._values(x)[idx]


class RandomHalfspaceProduct(ClaimDistribution):
    """``f(x) = prod_{i=1}^m 1[u_i . x > 0]`` with ``u_i`` i.i.d. uniform on ``S^{dim-1}``.

    Kernel (exact, zonal): ``k(x, y) = ((pi - arccos(x_hat . y_hat)) / (2 pi))^m``
    (DESIGN.md §4). ``m = 0`` is the constant claim 1.
    """

    exact_kernel = True

    def __init__(self, m: int, dim: int = 4) -> None:
        self.m = check_int("m", m, minimum=0)
        self.dim = check_int("dim", dim, minimum=2)
        self._zonal = ZonalKernel(halfspace_product_profile(self.m), self.dim)

    @property
    def zonal(self) -> ZonalKernel:
        return self._zonal

    def kernel(self, x: object, y: object) -> np.ndarray:
        return self._zonal(x, y)

    def kernel_diag(self, x: object) -> np.ndarray:
        return self._zonal.diag(x)

    def sample_normals(self, n: int, *, seed: object = None) -> np.ndarray:
        """``(n, m, dim)`` unit normals of ``n`` claims."""
        n = check_int("n", n, minimum=1)
        u = as_generator(seed).standard_normal((n, self.m, self.dim))
        return u / np.linalg.norm(u, axis=-1, keepdims=True)

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.ones((n, x.shape[0]))
        if self.m == 0:
            return out
        batch = max(1, 2**22 // max(1, x.shape[0] * self.m))  # bounds memory to ~4M booleans
        for s in range(0, n, batch):
            b = min(batch, n - s)
            u = rng.standard_normal((b, self.m, self.dim))
            out[s : s + b] = np.all(np.einsum("bmd,nd->bnm", u, x) > 0, axis=2)
        return out

    def __repr__(self) -> str:
        return f"RandomHalfspaceProduct(m={self.m}, dim={self.dim})"


class KernelClaims(ClaimDistribution):
    """Claims given by their kernel ``k`` alone (any PSD kernel object ``k(x, y) -> (N, M)``).

    Sampling: kernels with ``sample_features`` (e.g. :class:`RBFKernel`, random Fourier
    features ``sqrt(2 s^2) cos(omega . x + b)``) give genuine random functions; otherwise
    claims are drawn as the centred Gaussian process with covariance ``k`` at the requested
    points (``N(0, K(x, x))``), which has exactly the kernel ``k`` there.
    """

    exact_kernel = True

    def __init__(self, kernel: Callable[[np.ndarray, np.ndarray], np.ndarray], dim: int | None = None) -> None:
        if not callable(kernel):
            raise InputTypeError(f"kernel must be callable k(x, y) -> (N, M), got {kernel!r}.")
        self._kernel = kernel
        kdim = getattr(kernel, "dim", None)
        if dim is not None and kdim is not None and dim != kdim:
            raise InputValueError(f"dim={dim!r} does not match the kernel's dim={kdim!r}.")
        self.dim = dim if dim is not None else kdim

    @property
    def zonal(self) -> ZonalKernel | None:
        return self._kernel if isinstance(self._kernel, ZonalKernel) else None

    @property
    def base_kernel(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return self._kernel

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        K = np.asarray(self._kernel(x, y), dtype=np.float64)
        if K.shape != (x.shape[0], y.shape[0]):
            raise InputValueError(
                f"kernel must return shape {(x.shape[0], y.shape[0])!r}, got {K.shape!r}."
            )
        return K

    def kernel_diag(self, x: object) -> np.ndarray:
        if hasattr(self._kernel, "diag"):
            return self._kernel.diag(x)
        return super().kernel_diag(x)

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        if isinstance(self._kernel, RBFKernel):
            omega, b = self._kernel.sample_features(n, rng)
            return np.sqrt(2.0 * self._kernel.variance) * np.cos(omega @ x.T + b[:, None])
        lam, U = psd_eigh(self.kernel(x, x), name="kernel matrix K(x, x)")
        return (rng.standard_normal((n, lam.size)) * np.sqrt(lam)) @ U.T


class SampledClaims(ClaimDistribution):
    """Claims given only by a sampler ``rng -> f``; the kernel is a Monte Carlo estimate.

    ``kernel(x, y) = (1/S) sum_s f_s(x) f_s(y)`` with ``S = kernel_samples`` claims drawn with
    seed 0 (so the kernel is a fixed PSD function). ``exact_kernel`` is False.
    """

    exact_kernel = False

    def __init__(
        self,
        sampler: Callable[[np.random.Generator], Callable[[np.ndarray], np.ndarray]],
        dim: int | None = None,
        *,
        kernel_samples: int = 4096,
    ) -> None:
        if not callable(sampler):
            raise InputTypeError(f"sampler must be callable rng -> claim, got {sampler!r}.")
        self.sampler = sampler
        self.dim = None if dim is None else check_int("dim", dim, minimum=1)
        self.kernel_samples = check_int("kernel_samples", kernel_samples, minimum=1)

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([np.asarray(self.sampler(rng)(x), dtype=np.float64) for _ in range(n)])


class MultipliedClaims(ClaimDistribution):
    """``f -> F . f`` for a fixed factor ``F``: kernel ``F(x) F(y) k(x, y)``.

    The pullback of a claim distribution through a multiplicative step (one factor of a
    product, e.g. :class:`lowprob.toy_models.HalfspaceFactor`).
    """

    def __init__(self, base: ClaimDistribution, factor: Callable[[np.ndarray], np.ndarray]) -> None:
        if not isinstance(base, ClaimDistribution):
            raise InputTypeError(f"base must be a ClaimDistribution, got {base!r}.")
        self.base = base
        self.factor = factor
        self.dim = base.dim
        self.exact_kernel = base.exact_kernel

    def _F(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.factor(x), dtype=np.float64).reshape(x.shape[0])

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        return self._F(x)[:, None] * self.base.kernel(x, y) * self._F(y)[None, :]

    def kernel_diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        return self._F(x) ** 2 * self.base.kernel_diag(x)

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.base._sample_values(x, n, rng) * self._F(x)[None, :]

    def __repr__(self) -> str:
        return f"MultipliedClaims({self.base!r}, {self.factor!r})"


class ComposedClaims(ClaimDistribution):
    """``f -> f o L`` for a deterministic step ``L: (N, d_in) -> (N, d_out)``: kernel ``k(L x, L y)``."""

    def __init__(self, base: ClaimDistribution, step: Callable[[np.ndarray], Any], dim: int | None = None) -> None:
        if not isinstance(base, ClaimDistribution):
            raise InputTypeError(f"base must be a ClaimDistribution, got {base!r}.")
        if not callable(step):
            raise InputTypeError(f"step must be callable, got {step!r}.")
        self.base = base
        self.step = step
        self.dim = dim
        self.exact_kernel = base.exact_kernel

    def _L(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(self.step(x), dtype=np.float64)
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise InputValueError(f"step must map (N, d) to (N, d_out), got {y.shape!r}.")
        return y

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        return self.base.kernel(self._L(x), self._L(y))

    def kernel_diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        return self.base.kernel_diag(self._L(x))

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.base._sample_values(self._L(x), n, rng)
