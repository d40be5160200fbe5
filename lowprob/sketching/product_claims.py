"""Claim distributions of random #3-SAT and random {0,1}-permanents (DESIGN.md section 4).

* :class:`RandomClauseProduct` ``(m, n)``: ``f(x) = prod_{j=1}^m c_j(x)`` on ``{-1,1}^n`` with
  ``m`` i.i.d. random 3-clauses. Exact kernel ``k(x, y) = kappa(d(x, y))^m``
  (:func:`lowprob.toy_models.sat.clause_pair_kernel`), diagonal in the Walsh levels with
  eigenvalues from Krawtchouk sums (:func:`lowprob.sketching.walsh.hamming_kernel_eigenvalues`).
* :class:`RandomRowProduct` ``(m, n)``: the claims on the *set of used columns* after
  ``i = n - m`` rows of a permanent: ``F(A) = perm(C_R[:, A^c]) / m!`` for ``m`` i.i.d. uniform
  {0,1} rows ``C_R``; points are ``i``-subsets given as ``(N, n)`` 0/1 indicator rows. Exact
  kernel ``h(|A \\ B|)`` (:func:`lowprob.sketching.johnson.permanent_claim_profile`), diagonal in
  the components ``V_j`` of the slice (:func:`lowprob.sketching.johnson.johnson_kernel_eigenvalues`).

Both plug into the backward pass (:func:`lowprob.sketching.pullback.pullback`) through the
rules registered in :mod:`lowprob.propagation.product_steps`: one more random factor gives
``m + 1``.
"""

from __future__ import annotations

import math

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.sketching.claims import ClaimDistribution
from lowprob.sketching.johnson import johnson_kernel_eigenvalues, permanent_claim_profile
from lowprob.sketching.kernels import check_points
from lowprob.sketching.walsh import hamming_kernel_eigenvalues

__all__ = ["RandomClauseProduct", "RandomRowProduct"]


class RandomClauseProduct(ClaimDistribution):
    """The product of ``m`` i.i.d. random ``width``-clauses on ``{-1, 1}^n`` (``m = 0``: the claim 1)."""

    exact_kernel = True

    def __init__(self, m: int, n: int, width: int = 3) -> None:
        self.m = check_int("m", m, minimum=0)
        self.dim = check_int("n", n, minimum=1)
        self.width = check_int("width", width, minimum=1)
        if self.width > self.dim:
            raise InputValueError(f"width={width!r} needs n >= width, got n={n!r}.")

    @property
    def n(self) -> int:
        return int(self.dim)

    def profile(self) -> np.ndarray:
        """``h(d) = kappa(d)^m``, ``d = 0..n``."""
        from lowprob.toy_models.sat import clause_pair_kernel

        return clause_pair_kernel(self.n, self.width) ** self.m

    def eigenvalues(self) -> np.ndarray:
        """Per-function Walsh-level eigenvalues ``lambda_l(m)``, ``l = 0..n``."""
        return hamming_kernel_eigenvalues(self.profile(), self.n)

    def _distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x[:, None, :] != y[None, :, :]).sum(axis=2)

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        y = check_points("y", y, self.dim)
        return self.profile()[self._distance(x, y)]

    def kernel_diag(self, x: object) -> np.ndarray:
        x = check_points("x", x, self.dim)
        return np.full(x.shape[0], self.profile()[0])

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        from lowprob.toy_models.sat import random_clauses

        out = np.ones((n, x.shape[0]))
        if self.m == 0:
            return out
        lits = random_clauses(self.n, self.m, seed=rng, width=self.width, batch=n)  # (n, m, w)
        var, sign = np.abs(lits) - 1, np.sign(lits)
        for j in range(self.m):
            vals = x[:, var[:, j, :]]  # (N, n_claims, w)
            out *= np.any(vals == sign[None, :, j, :], axis=2).T
        return out

    def __repr__(self) -> str:
        return f"RandomClauseProduct(m={self.m}, n={self.n})"


class RandomRowProduct(ClaimDistribution):
    """Claims on ``i``-subsets ``A`` after ``i = n - m`` rows: ``perm(C_R[:, A^c]) / m!``."""

    exact_kernel = True

    def __init__(self, m: int, n: int) -> None:
        self.dim = check_int("n", n, minimum=1)
        self.m = check_int("m", m, minimum=0)
        if self.m > self.dim:
            raise InputValueError(f"m must be <= n = {n}, got {m!r}.")

    @property
    def n(self) -> int:
        return int(self.dim)

    @property
    def i(self) -> int:
        return self.n - self.m

    def profile(self) -> np.ndarray:
        """``h(t)`` for the distance ``t = |A \\ B| = 0..min(i, m)``."""
        return permanent_claim_profile(self.n, self.i)

    def eigenvalues(self) -> np.ndarray:
        """Per-function eigenvalues on ``V_0..V_{min(i, m)}``."""
        return johnson_kernel_eigenvalues(self.profile(), self.n, self.i)

    def _check_subsets(self, x: np.ndarray) -> np.ndarray:
        if not np.all((x == 0) | (x == 1)) or not np.all(x.sum(axis=1) == self.i):
            raise InputValueError(
                f"points must be 0/1 indicator rows of {self.i}-subsets of {self.n} columns."
            )
        return x.astype(bool)

    def kernel(self, x: object, y: object) -> np.ndarray:
        x = self._check_subsets(check_points("x", x, self.dim))
        y = self._check_subsets(check_points("y", y, self.dim))
        t = (x[:, None, :] & ~y[None, :, :]).sum(axis=2)
        return self.profile()[t]

    def kernel_diag(self, x: object) -> np.ndarray:
        x = self._check_subsets(check_points("x", x, self.dim))
        return np.full(x.shape[0], self.profile()[0])

    def _sample_values(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        from lowprob.toy_models.permanent import ryser_permanent

        X = self._check_subsets(x)
        out = np.empty((n, X.shape[0]))
        for s in range(n):
            C = rng.integers(0, 2, size=(self.m, self.n))
            for a in range(X.shape[0]):
                cols = np.flatnonzero(~X[a])
                out[s, a] = ryser_permanent(C[:, cols]) / math.factorial(self.m) if self.m else 1.0
        return out

    def __repr__(self) -> str:
        return f"RandomRowProduct(m={self.m}, n={self.n})"
