"""Random {0,1}-permanents as a random product on ``S_n``, with exact truth and statistics.

Problem (DESIGN.md section 4). ``sigma`` is uniform on ``S_n`` and row ``i`` of ``C``
(``n x n``) gives the factor ``c_i(sigma) = C[i, sigma(i)]``, so

    p = E_sigma prod_i C[i, sigma(i)] = perm(C) / n!.

Random instances have i.i.d. uniform {0,1} entries; the ``{-1, 1}`` variant (entries
uniform in {-1, 1}) is the sanity case with ``E p = 0`` and ``E p^2 = 1/n!`` exactly.

Exact truth (:func:`ryser_permanent`): Ryser's formula
``perm(A) = (-1)^n sum_{S subset [n]} (-1)^{|S|} prod_i sum_{j in S} a_ij`` in exact integer
arithmetic, evaluated modulo several primes below ``2^31`` (row sums from a split of the
columns into two halves, vectorised) and recombined by the Chinese remainder theorem, with
enough primes for the bound ``|perm A| <= prod_i sum_j |a_ij|``. ``O(2^n n)`` work per
prime; the limit is :data:`PERMANENT_EXACT_LIMIT` ``= 22``.

Instance statistics (*derived*): ``E p = 2^-n`` and, pairing two independent uniform
permutations (``E[c(j) c(j')] = 1/2`` if ``j = j'`` else ``1/4``),
``E p^2 = 4^-n E_pi 2^{fix(pi)} = 4^-n sum_{s=0}^n 1/s!``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputTypeError, InputValueError, UnavailableError
from lowprob.toy_models.instance_stats import RandomProductStats

__all__ = [
    "PERMANENT_EXACT_LIMIT",
    "PermanentInstanceStats",
    "PermanentProblem",
    "load_matrix_npy",
    "permanent_instance_statistics",
    "random_binary_matrices",
    "ryser_permanent",
]

PERMANENT_EXACT_LIMIT = 22
"""Largest ``n`` for the exact permanent (Ryser, ``2^n`` column subsets per prime)."""


def _is_prime(q: int) -> bool:
    if q < 2 or q % 2 == 0:
        return q == 2
    f = 3
    while f * f <= q:
        if q % f == 0:
            return False
        f += 2
    return True


def _primes_below(top: int, count: int) -> list[int]:
    out, q = [], top
    while len(out) < count:
        q -= 1
        if _is_prime(q):
            out.append(q)
    return out


_PRIMES = _primes_below(2**31, 8)


@dataclass(frozen=True, eq=False)
class PermanentProblem:
    """A square integer matrix ``C`` (``n x n``); ``binary`` says whether its entries are {0,1}."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        A = np.asarray(self.matrix)
        if A.dtype.kind == "f":
            if not np.all(np.isfinite(A)) or not np.all(A == np.round(A)):
                raise InputValueError("matrix must have integer entries (got non-integer or non-finite floats).")
            A = A.astype(np.int64)
        elif A.dtype.kind == "b":
            A = A.astype(np.int64)
        elif A.dtype.kind not in "iu":
            raise InputTypeError(f"matrix must be an integer (or {{0,1}}) array, got dtype {A.dtype!r}.")
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise InputValueError(f"matrix must be square (n, n) with n >= 1, got shape {A.shape!r}.")
        object.__setattr__(self, "matrix", A.astype(np.int64))

    @classmethod
    def random(cls, n: int, *, seed: object = None, values: str = "binary") -> PermanentProblem:
        """i.i.d. uniform entries in {0,1} (``values="binary"``) or {-1,1} (``"signs"``)."""
        return cls(random_binary_matrices(n, seed=seed, values=values))

    @property
    def n(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def binary(self) -> bool:
        return bool(np.all((self.matrix == 0) | (self.matrix == 1)))

    def require_binary(self) -> None:
        if not self.binary:
            bad = self.matrix[(self.matrix != 0) & (self.matrix != 1)][:3]
            raise InputValueError(
                f"the permanent estimators need a {{0,1}} matrix; found entries {bad.tolist()!r}."
            )

    def evaluate(self, perms: np.ndarray) -> np.ndarray:
        """``prod_i C[i, sigma(i)]`` for permutations ``(N, n)`` (0-based): float, ``(N,)``."""
        P = np.asarray(perms, dtype=np.int64)
        return np.prod(self.matrix[np.arange(self.n), P].astype(np.float64), axis=1)

    def __repr__(self) -> str:
        return f"PermanentProblem(n={self.n})"


def random_binary_matrices(n: int, *, seed: object = None, values: str = "binary", batch: int | None = None) -> np.ndarray:
    """Random ``(n, n)`` (or ``(batch, n, n)``) int64 matrices, entries uniform in {0,1} or {-1,1}."""
    n = check_int("n", n, minimum=1)
    rng = as_generator(seed)
    shape = (n, n) if batch is None else (check_int("batch", batch, minimum=1), n, n)
    bits = rng.integers(0, 2, size=shape, dtype=np.int64)
    if values == "binary":
        return bits
    if values == "signs":
        return 2 * bits - 1
    raise InputValueError(f"values must be 'binary' or 'signs', got {values!r}.")


def load_matrix_npy(path: str | Path) -> PermanentProblem:
    """Load a square {0,1} matrix saved with ``numpy.save`` (never unpickles)."""
    from lowprob._io import load_npy

    p = Path(path)
    A = load_npy(p, what="--matrix", expect="a square {0,1} matrix")
    prob = PermanentProblem(A)
    if not prob.binary:
        raise InputValueError(
            f"--matrix: {str(p)!r} must be a square {{0,1}} matrix; it has entries outside {{0, 1}} "
            f"(e.g. {sorted(set(np.unique(prob.matrix).tolist()) - {0, 1})[:3]!r})."
        )
    return prob


def _ryser_mod(A: np.ndarray, q: int, lo_sums: np.ndarray, hi_sums: np.ndarray,
               lo_par: np.ndarray, hi_par: np.ndarray) -> int:
    n = A.shape[0]
    lo = np.mod(lo_sums, q)  # (2^a, n)
    total = 0
    for h in range(hi_sums.shape[0]):
        rs = np.mod(lo + hi_sums[h], q)
        prod = rs[:, 0].copy()
        for r in range(1, n):
            prod = prod * rs[:, r] % q
        sign = 1 - 2 * ((lo_par + hi_par[h] + n) & 1)  # (-1)^(n - |S|)
        total = (total + int(np.mod(sign * prod, q).sum() % q)) % q
    return total


def ryser_permanent(matrix: object) -> int:
    """``perm(A)`` of a square integer matrix as an exact Python ``int`` (``n <= 22``)."""
    A = PermanentProblem(matrix if not isinstance(matrix, PermanentProblem) else matrix.matrix).matrix
    n = A.shape[0]
    if n > PERMANENT_EXACT_LIMIT:
        raise UnavailableError(
            f"the exact permanent (Ryser, 2^n column subsets) is limited to n <= {PERMANENT_EXACT_LIMIT}, "
            f"got n={n!r}; use an estimator instead."
        )
    if n <= 8:  # small: exact Python integers directly
        total = 0
        for S in range(1, 2**n):
            cols = [j for j in range(n) if S >> j & 1]
            prod = 1
            for i in range(n):
                prod *= int(A[i, cols].sum())
                if prod == 0:
                    break
            total += (-1) ** (n - len(cols)) * prod
        return total
    bound = 1
    for i in range(n):
        bound *= int(np.abs(A[i]).sum())
    if bound == 0:
        return 0
    nprimes, modulus = 0, 1
    while modulus <= 2 * bound:
        modulus *= _PRIMES[nprimes]
        nprimes += 1
    a = n // 2
    lo_idx = np.arange(2**a, dtype=np.int64)
    hi_idx = np.arange(2 ** (n - a), dtype=np.int64)
    lo_bits = (lo_idx[:, None] >> np.arange(a)) & 1  # (2^a, a)
    hi_bits = (hi_idx[:, None] >> np.arange(n - a)) & 1
    lo_sums = lo_bits @ A[:, :a].T  # (2^a, n) exact small ints
    hi_sums = hi_bits @ A[:, a:].T
    lo_par = lo_bits.sum(axis=1)
    hi_par = hi_bits.sum(axis=1)
    residues = [_ryser_mod(A, q, lo_sums, hi_sums, lo_par, hi_par) for q in _PRIMES[:nprimes]]
    x, M = 0, 1
    for r, q in zip(residues, _PRIMES[:nprimes], strict=True):
        # x = r mod q, x = x mod M  (CRT, incremental)
        t = ((r - x) * pow(M, -1, q)) % q
        x += M * t
        M *= q
    return x - M if x > M // 2 else x


#: The statistics type of this family (one type for every discrete product family).
PermanentInstanceStats = RandomProductStats


def permanent_instance_statistics(n: int, values: str = "binary") -> RandomProductStats:
    """``{0,1}``: ``E p = 2^-n``, ``E p^2 = 4^-n sum_{s<=n} 1/s!``; ``{-1,1}``: ``0`` and ``1/n!``."""
    n = check_int("n", n, minimum=1)
    if values == "binary":
        ep = Fraction(1, 2**n)
        ep2 = Fraction(1, 4**n) * sum(Fraction(1, math.factorial(s)) for s in range(n + 1))
    elif values == "signs":
        ep, ep2 = Fraction(0), Fraction(1, math.factorial(n))
    else:
        raise InputValueError(f"values must be 'binary' or 'signs', got {values!r}.")
    return RandomProductStats.from_moments({"n": n, "values": values}, ep, ep2)
