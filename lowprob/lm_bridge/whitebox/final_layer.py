"""The final layer as a halfspace toy: competitor half-spaces and their danger ordering.

With ``x in R^d`` the final activation (after the final norm) and ``logits = x W_U + b_U``,
the target ``t`` is the argmax iff ``x`` lies in the intersection of the ``V - 1`` affine
half-spaces (DESIGN.md section 6, "The final layer *is* the toy")::

    H_k = { x : (w_t - w_k) . x + (b_t - b_k) > 0 },   k != t,

with ``w_k`` the ``k``-th column of ``W_U``. In matrix form ``A x + c > 0`` with rows
``A_k = w_t - w_k`` and ``c_k = b_t - b_k``. Ties (measure zero for continuous ``x``) count
as misses here; ``torch.argmax`` breaks them to the lowest index.

**Danger.** The claim model is the product of the competitor indicators ``1[H_k]``, taken
one competitor at a time in order of *danger*: the probability, under the current
activation model ``M``, that competitor ``k`` beats ``t``, ``P_M[A_k x + c_k <= 0]``. Under a
Gaussian ``N(m, S)`` this is ``Phi(-(A_k m + c_k) / sqrt(A_k S A_k^T))``. The ordering is
deterministic: decreasing log-danger, ties broken by the lower token id (``np.lexsort``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputValueError

__all__ = ["FinalLayer", "danger_order"]


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # torch tensor
        return value.detach().to("cpu").double().numpy()
    return value


@dataclass(frozen=True, eq=False)
class FinalLayer:
    """``(W_U, b_U, target)`` of a final layer, float64 on the CPU.

    Attributes:
        W_U: ``(d, V)`` unembedding. b_U: ``(V,)`` bias. target: ``t`` in ``[0, V)``.
    """

    W_U: np.ndarray
    b_U: np.ndarray
    target: int

    def __post_init__(self) -> None:
        W = check_finite_array("W_U", _to_numpy(self.W_U), ndim=2)
        d, V = W.shape
        if V < 2:
            raise InputValueError(f"W_U must have at least 2 columns (vocabulary entries), got shape {W.shape!r}.")
        b = check_finite_array("b_U", _to_numpy(self.b_U), ndim=1)
        if b.shape != (V,):
            raise InputValueError(
                f"b_U has shape {b.shape!r} but W_U has V={V} columns (shape {W.shape!r}); "
                "the vocabulary and the unembedding disagree. Pass b_U of shape (V,)."
            )
        t = check_int("target", self.target)
        if not 0 <= t < V:
            raise InputValueError(f"target={t!r} is outside the vocabulary [0, {V}); pass a valid token id.")
        W.setflags(write=False)
        b.setflags(write=False)
        object.__setattr__(self, "W_U", W)
        object.__setattr__(self, "b_U", b)
        object.__setattr__(self, "target", t)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_problem(cls, problem: Any) -> FinalLayer:
        """From an :class:`~lowprob.lm_bridge.problem.LMProblem` (which validated shapes)."""
        W_U, b_U = problem.unembedding64()
        return cls(W_U, b_U, int(problem.target))

    @classmethod
    def from_unembedding(
        cls, W_U: object, b_U: object, target: int, *, vocab_size: int | None = None
    ) -> FinalLayer:
        """Validate ``W_U (d, V)`` and ``b_U (V,)`` against an expected ``vocab_size``."""
        layer = cls(W_U, b_U, target)  # type: ignore[arg-type]
        if vocab_size is not None:
            vocab_size = check_int("vocab_size", vocab_size, minimum=2)
            if layer.V != vocab_size:
                raise InputValueError(
                    f"vocab_size={vocab_size!r} but W_U has {layer.V} columns (shape {layer.W_U.shape!r}); "
                    "the tokenizer/vocabulary and the unembedding disagree."
                )
        return layer

    # -- shape -------------------------------------------------------------------------
    @property
    def d(self) -> int:
        return int(self.W_U.shape[0])

    @property
    def V(self) -> int:
        return int(self.W_U.shape[1])

    @property
    def competitors(self) -> np.ndarray:
        """All ``k != t`` in increasing order, shape ``(V - 1,)``."""
        return np.delete(np.arange(self.V), self.target)

    def check_k(self, K: object, *, name: str = "K") -> int:
        """Validate a number of competitors ``1 <= K <= V - 1``."""
        K = check_int(name, K, minimum=1)
        if K > self.V - 1:
            raise InputValueError(
                f"{name}={K!r} is out of range: there are only V - 1 = {self.V - 1} competitors; "
                f"pass 1 <= {name} <= {self.V - 1}."
            )
        return K

    # -- the half-spaces ---------------------------------------------------------------
    def halfspaces(self, competitors: object | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(A, c)`` with ``A (K, d)``, ``c (K,)``: ``t`` beats every listed ``k`` iff ``A x + c > 0``."""
        ks = self.competitors if competitors is None else np.asarray(competitors, dtype=np.int64)
        if ks.ndim != 1 or np.any((ks < 0) | (ks >= self.V)) or np.any(ks == self.target):
            raise InputValueError(
                f"competitors must be token ids in [0, {self.V}) other than the target {self.target}, got {ks!r}."
            )
        A = (self.W_U[:, self.target][:, None] - self.W_U[:, ks]).T
        c = self.b_U[self.target] - self.b_U[ks]
        return A, c

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``x W_U + b_U`` for ``x`` of shape ``(n, d)``."""
        return np.asarray(x, dtype=np.float64) @ self.W_U + self.b_U

    def event(self, x: np.ndarray, *, batch_size: int = 8192) -> np.ndarray:
        """``1[logit_t > logit_k for all k != t]`` for ``x`` ``(n, d)``: bool ``(n,)`` (batched)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise InputValueError(f"x must have shape (n, {self.d}), got {x.shape!r}.")
        out = np.empty(x.shape[0], dtype=bool)
        for s in range(0, x.shape[0], batch_size):
            lg = self.logits(x[s : s + batch_size])
            lt = lg[:, self.target].copy()
            lg[:, self.target] = -np.inf
            out[s : s + batch_size] = lt > lg.max(axis=1)
        return out


def danger_order(log_danger: object) -> np.ndarray:
    """Positions sorting ``log_danger`` decreasingly, ties by position (deterministic).

    ``log_danger[i]`` is ``log P_M[competitor i beats t]``; NaN is rejected.
    """
    s = np.asarray(log_danger, dtype=np.float64)
    if s.ndim != 1 or np.any(np.isnan(s)):
        raise InputValueError(f"log_danger must be a 1-D array without NaN, got shape {s.shape!r}.")
    return np.lexsort((np.arange(s.size), -s))
