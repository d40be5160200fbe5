"""Random #3-SAT as a random product on the cube, with exact truth and instance statistics.

Problem (DESIGN.md section 4, "other random products"). ``x`` is uniform on ``{-1, 1}^n``;
a clause is a set of signed 1-based literals (DIMACS convention: ``+v`` is true when
``x_v = +1``, ``-v`` when ``x_v = -1``) and ``c(x) = 1`` iff one of its literals is true.
The quantity is

    p = E_x prod_{i=1}^k c_i(x) = #{satisfying assignments} / 2^n.

A *random* 3-clause picks 3 distinct variables uniformly and independent uniform signs.

Exact truth (:func:`count_satisfying`): exhaustive enumeration of all ``2^n`` assignments
with bit-parallel clause evaluation. The low ``min(n, 20)`` variables index the bits of
packed ``uint64`` words (one precomputed bit pattern per literal); the high variables are
enumerated in an outer loop, where a clause with a true high literal is skipped and a
clause whose literals are all high and false empties the chunk. Work
``O(2^n k / 64)`` word operations; the limit is :data:`SAT_EXACT_LIMIT` ``= 30``
variables (``2^30`` assignments, about a minute on one core at ``k = 128``).

Instance statistics (:func:`sat_instance_statistics`, exact, *derived*):

* ``E p = (7/8)^k``: each random clause is false at a fixed ``x`` with probability 1/8.
* ``E p^2 = E_{x,y} kappa(d(x,y))^k`` with ``d`` the Hamming distance
  (``P[d] = C(n,d) / 2^n``) and the clause-pair kernel
  ``kappa(d) = P[c(x) = c(y) = 1] = 3/4 + (1/8) C(n-d, 3) / C(n, 3)``
  (both false needs ``y`` to agree with ``x`` on the clause's 3 variables).
* ``E p(1-p)``, ``Var p``, the trivial estimator's ``Var p / E p(1-p)`` as for the
  halfspace toy (:mod:`lowprob.toy_models.instance_stats`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputTypeError, InputValueError, UnavailableError
from lowprob.toy_models.instance_stats import RandomProductStats

__all__ = [
    "SAT_EXACT_LIMIT",
    "SatInstanceStats",
    "SatProblem",
    "clause_pair_kernel",
    "count_satisfying",
    "load_sat_json",
    "random_clauses",
    "sat_instance_statistics",
]

SAT_EXACT_LIMIT = 30
"""Largest ``n`` for exact counting (exhaustive bit-parallel enumeration of ``2^n`` assignments)."""

_LOW_BITS = 20


@dataclass(frozen=True, eq=False)
class SatProblem:
    """A CNF formula on ``n`` variables: ``clauses`` is a tuple of signed 1-based literal tuples.

    Use :meth:`from_literals` (validates) or :meth:`random`. ``literals`` is the ``(k, 3)``
    array of a uniform-width formula (``None`` when widths differ).
    """

    n: int
    clauses: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        n = check_int("n", self.n, minimum=1)
        if not isinstance(self.clauses, tuple):
            raise InputTypeError(f"clauses must be a tuple of tuples, got {type(self.clauses).__name__!r}.")
        for i, c in enumerate(self.clauses):
            if len(c) == 0:
                raise InputValueError(
                    f"clause {i} is empty (zero width); every clause needs at least one literal."
                )
            for lit in c:
                if isinstance(lit, bool) or not isinstance(lit, (int, np.integer)):
                    raise InputTypeError(f"clause {i} has a non-integer literal {lit!r}.")
                if lit == 0 or abs(int(lit)) > n:
                    raise InputValueError(
                        f"clause {i} has literal {int(lit)!r}: literals are signed 1-based variable "
                        f"indices with 1 <= |literal| <= n = {n}."
                    )
        object.__setattr__(self, "n", n)

    @classmethod
    def from_literals(cls, n: int, clauses: Sequence[Sequence[int]] | np.ndarray) -> SatProblem:
        """Build from any nested sequence of signed 1-based literals (validated)."""
        if isinstance(clauses, (str, bytes)) or not hasattr(clauses, "__iter__"):
            raise InputTypeError(f"clauses must be a list of literal lists, got {clauses!r}.")
        out = []
        for i, c in enumerate(clauses):
            if isinstance(c, (str, bytes)) or not hasattr(c, "__iter__"):
                raise InputTypeError(f"clause {i} must be a list of literals, got {c!r}.")
            out.append(tuple(int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v for v in c))
        return cls(n, tuple(out))

    @classmethod
    def random(cls, n: int, k: int, *, seed: object = None, width: int = 3) -> SatProblem:
        """``k`` random clauses of ``width`` distinct variables with uniform signs."""
        lits = random_clauses(n, k, seed=seed, width=width)
        return cls(int(n), tuple(tuple(int(v) for v in row) for row in lits))

    @property
    def k(self) -> int:
        return len(self.clauses)

    @property
    def literals(self) -> np.ndarray | None:
        widths = {len(c) for c in self.clauses}
        if len(widths) != 1:
            return None
        return np.array(self.clauses, dtype=np.int64).reshape(self.k, -1)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """``prod_i c_i(x)`` at points ``x`` of shape ``(N, n)`` with entries +-1: float 0/1, ``(N,)``."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n:
            raise InputValueError(f"x must have shape (N, {self.n}), got {x.shape!r}.")
        ok = np.ones(x.shape[0], dtype=bool)
        for c in self.clauses:
            lit = np.array(c)
            ok &= np.any(x[:, np.abs(lit) - 1] == np.sign(lit), axis=1)
        return ok.astype(np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "clauses": [list(c) for c in self.clauses]}

    def __repr__(self) -> str:
        return f"SatProblem(n={self.n}, k={self.k})"


def random_clauses(n: int, k: int, *, seed: object = None, width: int = 3, batch: int | None = None) -> np.ndarray:
    """Signed 1-based literals of random clauses: ``(k, width)``, or ``(batch, k, width)``.

    Each clause: ``width`` distinct variables uniformly at random, independent uniform signs.
    """
    n = check_int("n", n, minimum=1)
    k = check_int("k", k, minimum=0)
    width = check_int("width", width, minimum=1)
    if width > n:
        raise InputValueError(f"width={width!r} distinct variables need n >= width, got n={n!r}.")
    rng = as_generator(seed)
    B = 1 if batch is None else check_int("batch", batch, minimum=1)
    keys = rng.random((B, k, n))
    var = np.argsort(keys, axis=2)[..., :width] + 1
    sign = rng.integers(0, 2, size=(B, k, width)) * 2 - 1
    lits = (var * sign).astype(np.int64)
    return lits[0] if batch is None else lits


def load_sat_json(path: str | Path) -> SatProblem:
    """Read ``{"n": N, "clauses": [[i, j, k], ...]}`` (signed 1-based literals) from a JSON file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputValueError(f"--clauses: file {str(p)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputValueError(
            f"--clauses: cannot read {str(p)!r} as JSON ({exc}); expected "
            '{"n": N, "clauses": [[1, -2, 3], ...]}.'
        ) from None
    if not isinstance(data, dict) or "n" not in data or "clauses" not in data:
        raise InputValueError(
            f"--clauses: {str(p)!r} must hold an object with keys 'n' and 'clauses', got {type(data).__name__} "
            f"with keys {sorted(data) if isinstance(data, dict) else None!r}."
        )
    n, clauses = data["n"], data["clauses"]
    if isinstance(n, bool) or not isinstance(n, int):
        raise InputTypeError(f"--clauses: 'n' must be an integer, got {n!r}.")
    if not isinstance(clauses, list) or not all(isinstance(c, list) for c in clauses):
        raise InputTypeError(f"--clauses: 'clauses' must be a list of literal lists, got {clauses!r:.200}.")
    return SatProblem.from_literals(n, clauses)


def _check_exact_size(n: int) -> None:
    if n > SAT_EXACT_LIMIT:
        raise UnavailableError(
            f"exact #SAT counting enumerates 2^n assignments and is limited to n <= {SAT_EXACT_LIMIT}, "
            f"got n={n!r}; use an estimator instead."
        )


def _pattern(low: int, v: int, positive: bool) -> np.ndarray:
    """Packed bits over the ``2^low`` low assignments: bit ``a`` set iff literal true at ``a``."""
    bits = ((np.arange(2**low, dtype=np.int64) >> v) & 1).astype(bool)
    if not positive:
        bits = ~bits
    return np.packbits(bits, bitorder="little").view("<u8")


def count_satisfying(problem: SatProblem) -> int:
    """The exact number of satisfying assignments (exhaustive bit-parallel enumeration, ``n <= 30``)."""
    if not isinstance(problem, SatProblem):
        raise InputTypeError(f"problem must be a SatProblem, got {type(problem).__name__!r}.")
    n = problem.n
    _check_exact_size(n)
    if problem.k == 0:
        return 2**n
    if n < 6:  # fewer than 64 assignments: plain evaluation
        x = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        return int(problem.evaluate(x).sum())
    low = min(n, _LOW_BITS)
    high = n - low
    cache: dict[tuple[int, bool], np.ndarray] = {}

    def pat(v: int, pos: bool) -> np.ndarray:
        if (v, pos) not in cache:
            cache[(v, pos)] = _pattern(low, v, pos)
        return cache[(v, pos)]

    # split each clause into its low literals (patterns) and high literals (outer loop)
    split = []
    for c in problem.clauses:
        lo = [(abs(t) - 1, t > 0) for t in c if abs(t) - 1 < low]
        hi = [(abs(t) - 1 - low, t > 0) for t in c if abs(t) - 1 >= low]
        split.append((lo, hi))
    total = 0
    words = 2**low // 64
    for h in range(2**high):
        acc = np.full(words, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        dead = False
        for lo, hi in split:
            if any(((h >> v) & 1) == int(pos) for v, pos in hi):
                continue  # a high literal is true: the clause holds on the whole chunk
            if not lo:
                dead = True
                break
            cl = pat(*lo[0]).copy()
            for v, pos in lo[1:]:
                cl |= pat(v, pos)
            acc &= cl
        if not dead:
            total += int(np.bitwise_count(acc).sum())
    return total


def clause_pair_kernel(n: int, width: int = 3) -> np.ndarray:
    """``kappa(d) = P_c[c(x) = 1, c(y) = 1]`` for ``d(x, y) = d = 0..n`` (random ``width``-clause).

    ``kappa(d) = 1 - 2^{1-w} + 2^{-w} C(n-d, w) / C(n, w)``: ``(n + 1,)`` float64. This is the
    claim kernel of one random clause on the cube (DESIGN.md section 4).
    """
    n = check_int("n", n, minimum=1)
    w = check_int("width", width, minimum=1)
    d = np.arange(n + 1)
    agree = np.array([math.comb(n - int(t), w) for t in d], dtype=np.float64) / math.comb(n, w)
    return 1.0 - 2.0 ** (1 - w) + 2.0**-w * agree


#: The statistics type of this family (one type for every discrete product family).
SatInstanceStats = RandomProductStats


def sat_instance_statistics(n: int, k: int, width: int = 3) -> RandomProductStats:
    """``E p = (1 - 2^-w)^k`` and ``E p^2 = sum_d C(n,d) 2^-n kappa(d)^k`` (exact rationals)."""
    n = check_int("n", n, minimum=width)
    k = check_int("k", k, minimum=0)
    w = check_int("width", width, minimum=1)
    cnw = math.comb(n, w)
    kap = [1 - Fraction(2, 2**w) + Fraction(math.comb(n - d, w), 2**w * cnw) for d in range(n + 1)]
    ep = (1 - Fraction(1, 2**w)) ** k
    ep2 = sum(Fraction(math.comb(n, d), 2**n) * kap[d] ** k for d in range(n + 1))
    return RandomProductStats.from_moments({"n": n, "k": k}, ep, ep2)
