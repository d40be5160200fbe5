"""The halfspace toy: ``p(W, b) = P_{x ~ N(0, I_d)}[W x + b > 0]``.

With ``b = 0`` this is the Gaussian measure of the polyhedral cone ``{x : W x > 0}``
("all m ReLU outputs active"), which depends only on the row directions, so Gaussian
``x`` is equivalent to ``x`` uniform on ``S^{d-1}`` (DESIGN.md section 3).

Layered view: the event is the product of ``m`` factors ``F_i(x) = 1[w_i . x + b_i > 0]``,
processed one neuron at a time; :attr:`HalfspaceToy.factors` gives them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowprob._validation import as_generator, check_finite_array, check_int
from lowprob.errors import InputTypeError, InputValueError

__all__ = ["HalfspaceFactor", "HalfspaceStep", "HalfspaceToy", "as_halfspace_toy"]


@dataclass(frozen=True, eq=False)
class HalfspaceStep:
    """One factor ``F(x) = 1[u . x + beta > 0]`` of the toy's event, and one step of the loop.

    The toy's layered view (:attr:`HalfspaceToy.factors`) and the step that
    :func:`lowprob.propagation.loop.propagate` multiplies into a density are the same object:
    deduction rules are registered for ``(HalfspaceStep, representation)`` and the one
    backward rule (``f -> F f``) in :mod:`lowprob.sketching.pullback`.

    Attributes:
        normal: unit normal ``u``, shape ``(n,)``, or ``(B, n)`` for a batch of ``B``
            independent instances propagated together (one row per instance). The input is
            rescaled to unit length (with ``offset``), which leaves the factor unchanged.
        offset: ``beta`` (scalar or shape ``(B,)``); zero for a cone through the origin.
    """

    normal: np.ndarray
    offset: np.ndarray | float = 0.0

    def __post_init__(self) -> None:
        u = check_finite_array("normal", self.normal)
        if u.ndim not in (1, 2):
            raise InputValueError(f"normal must have shape (n,) or (B, n), got {u.shape!r}.")
        norms = np.linalg.norm(u, axis=-1, keepdims=True)
        if np.any(norms == 0):
            raise InputValueError("normal has a zero row; a halfspace needs a non-zero normal.")
        off = check_finite_array("offset", self.offset)
        if off.shape not in ((), u.shape[:-1]):
            raise InputValueError(f"offset must be a scalar or have shape {u.shape[:-1]!r}, got {off.shape!r}.")
        object.__setattr__(self, "normal", u / norms)
        object.__setattr__(self, "offset", off / norms[..., 0])

    @property
    def n(self) -> int:
        return int(self.normal.shape[-1])

    @property
    def unit_normal(self) -> np.ndarray:
        return self.normal

    @property
    def homogeneous(self) -> bool:
        return bool(np.all(self.offset == 0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The factor at points ``x`` of shape ``(..., n)`` (unbatched steps only): float 0/1."""
        if self.normal.ndim != 1:
            raise InputValueError("evaluate a batched HalfspaceStep row by row.")
        return (np.asarray(x, dtype=np.float64) @ self.normal + self.offset > 0).astype(np.float64)


HalfspaceFactor = HalfspaceStep
"""Backward-compatible name of :class:`HalfspaceStep`."""


def as_halfspace_toy(problem: object) -> HalfspaceToy:
    """Accept a :class:`HalfspaceToy` or an ``(m, d)`` weight matrix (validated by :class:`HalfspaceToy`)."""
    if isinstance(problem, HalfspaceToy):
        return problem
    if isinstance(problem, (np.ndarray, list, tuple)):
        return HalfspaceToy(problem)
    raise InputTypeError(
        f"problem must be a HalfspaceToy or an (m, d) weight array, got {type(problem).__name__} "
        f"{problem!r:.80}; build one with HalfspaceToy(W, b) or HalfspaceToy.random(d, m, seed=...)."
    )


class HalfspaceToy:
    """The probability that all ``m`` affine ReLU pre-activations are positive.

    Args:
        W: ``(m, d)`` finite weight matrix; rows must be non-zero.
        b: optional ``(m,)`` finite bias (default zero: a cone through the origin).

    The input distribution is ``x ~ N(0, I_d)``.
    """

    def __init__(self, W: object, b: object | None = None) -> None:
        W = check_finite_array("W", W, ndim=2)
        m, d = W.shape
        if m < 1 or d < 1:
            raise InputValueError(f"W must have at least one row and one column, got shape {W.shape!r}.")
        zero = ~np.any(W != 0, axis=1)  # not |W_i| == 0: that underflows for rows ~1e-200
        if np.any(zero):
            rows = np.flatnonzero(zero).tolist()
            raise InputValueError(
                f"W has zero rows {rows!r}; a zero row gives the empty event 0 > 0. Remove them."
            )
        if b is None:
            b = np.zeros(m)
        b = check_finite_array("b", b, shape=(m,))
        self.W = W
        self.b = b
        W.setflags(write=False)
        b.setflags(write=False)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def random(cls, d: int = 4, m: int = 16, *, seed: object = None) -> HalfspaceToy:
        """A random instance with i.i.d. N(0, 1) weights and no bias."""
        d = check_int("d", d, minimum=1)
        m = check_int("m", m, minimum=1)
        rng = as_generator(seed)
        return cls(rng.standard_normal((m, d)))

    # -- shape ------------------------------------------------------------------------
    @property
    def d(self) -> int:
        return int(self.W.shape[1])

    @property
    def m(self) -> int:
        return int(self.W.shape[0])

    @property
    def has_bias(self) -> bool:
        return bool(np.any(self.b != 0))

    @property
    def factors(self) -> tuple[HalfspaceStep, ...]:
        """The layered view: one factor (loop step) per neuron, in row order."""
        return tuple(HalfspaceStep(self.W[i].copy(), float(self.b[i])) for i in range(self.m))

    # -- evaluation -------------------------------------------------------------------
    def event(self, x: np.ndarray) -> np.ndarray:
        """``1[W x + b > 0]`` for points ``x`` of shape ``(..., d)`` (bool)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.d:
            raise InputValueError(f"x must have last dimension d={self.d}, got shape {x.shape!r}.")
        return np.all(x @ self.W.T + self.b > 0, axis=-1)

    def sample_inputs(self, n: int, *, seed: object = None) -> np.ndarray:
        """``n`` draws of ``x ~ N(0, I_d)``, shape ``(n, d)``."""
        n = check_int("n", n, minimum=0)
        return as_generator(seed).standard_normal((n, self.d))

    def subproblem(self, rows: object) -> HalfspaceToy:
        """The toy restricted to a subset/reordering of the rows."""
        idx = np.asarray(rows, dtype=np.int64)
        return HalfspaceToy(self.W[idx], self.b[idx])

    def __repr__(self) -> str:
        return f"HalfspaceToy(d={self.d}, m={self.m}, bias={self.has_bias})"
