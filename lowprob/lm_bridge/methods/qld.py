"""Quadratic Logit Decomposition (QLD), corrected (Wu & Hilton 2024, arXiv 2410.13211, section 3.2).

Setting. ``x in R^d`` is the final activation (after the final norm), ``logits = x W_U + b_U``
and the event is ``argmax logits = t``: the intersection of the ``V - 1`` half-spaces
``(w_t - w_k) . x + (b_t - b_k) > 0`` (ties count as misses).

Algorithm, on ``n`` samples ``x_1..x_n``:

1. **Whiten in float64.** ``m = mean(x)``, ``C = (x - m)^T (x - m) / n = A A^T``
   (Cholesky with dtype-relative jitter) and ``z_i = (x_i - m) A^{-T}``. In ``z`` the
   constraints read ``P z + c > 0`` with rows ``P_k = A^T (w_t - w_k)`` and
   ``c_k = (w_t - w_k) . m + b_t - b_k``.
2. **Shortest accepting vector.** ``u* = argmin ||u||^2  s.t.  P u + c >= 0``, an exact
   convex QP solved with cvxpy (Clarabel); ``d = u* / ||u*||``. If ``c >= 0`` (the target
   already wins at the mean, ``u* = 0``) take ``d`` = the unit normal of the tightest
   constraint, ``argmin_k c_k / ||P_k||``. If the QP is infeasible the target can never be
   the argmax and ``p = 0`` exactly.
3. **Decompose** ``z_i = a_i d + b_i`` with ``a_i = z_i . d`` and ``b_i`` orthogonal to
   ``d``, and treat ``a`` and ``b`` as independent: the estimate is the fraction of all
   ``n^2`` pairs ``(a_j, b_i)`` whose recombination ``b_i + a_j d`` is accepted,

       p_hat = (1/n^2) sum_i #{ j : lo_i < a_j < hi_i },

   where, with ``num_ik = P_k . b_i + c_k`` and ``den_k = P_k . d``,
   ``lo_i = max_{den_k > 0} -num_ik / den_k`` and ``hi_i = min_{den_k < 0} -num_ik / den_k``
   (and the interval is empty if some ``den_k = 0`` has ``num_ik <= 0``).
4. **Count in O(n log n)** (plus the ``O(n V d)`` bounds): sort ``a`` once, then two
   binary searches per ``i``.

Corrections relative to the published code (see :mod:`.qld_official`): whitening is of
``x - m`` (not ``x - m A^{-T}``), the numerators use ``b_i`` (not ``z_i``), ``d`` is the
exact QP solution (not a random-projection heuristic) and the mean-wins case is handled.
With these, the sorted count equals brute-force pair counting exactly
(:func:`qld_pair_count_bruteforce`; tested).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import torch

from lowprob.errors import NumericalError, NumericalWarning
from lowprob.lm_bridge.budget import CountedModel
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem

__all__ = [
    "QLDResult",
    "QuadraticLogitDecomposition",
    "constraints_in_whitened",
    "qld_from_activations",
    "qld_pair_count",
    "qld_pair_count_bruteforce",
    "shortest_accepting_vector",
    "whiten",
]


def whiten(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(z, m, A)`` with ``z = (x - m) A^{-T}``, ``A A^T = cov(x) + jitter I``, all float64.

    ``x``: ``(n, d)``. The jitter starts at ``1e-12 * trace(C)/d`` and grows tenfold (with a
    :class:`~lowprob.errors.NumericalWarning` past ``1e-8``) until Cholesky succeeds; final
    activations after a LayerNorm have a rank-deficient covariance, so some jitter is normal.
    """
    x = x.to(torch.float64)
    n, d = x.shape
    m = x.mean(0)
    xc = x - m
    C = xc.T @ xc / n
    scale = max(float(torch.diagonal(C).mean()), 1e-300)
    eye = torch.eye(d, dtype=torch.float64, device=x.device)
    rel = 1e-12
    while True:
        A, info = torch.linalg.cholesky_ex(C + rel * scale * eye)
        if int(info) == 0:
            break
        rel *= 10
        if rel > 1e-2:
            raise NumericalError(f"covariance of the activations stayed indefinite with jitter {rel:g} * scale.")
        if rel > 1e-8:
            warnings.warn(f"whitening needed relative jitter {rel:g}", NumericalWarning, stacklevel=2)
    z = torch.linalg.solve_triangular(A, xc.T, upper=False).T
    return z, m, A


def constraints_in_whitened(
    A: torch.Tensor, m: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor, target: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, c)`` with ``P (V-1, d)``, ``c (V-1,)``: ``argmax = t  <=>  P z + c > 0``."""
    W_U, b_U = W_U.to(torch.float64), b_U.to(torch.float64)
    G = A.T @ W_U  # (d, V): logits = z @ G + (m @ W_U + b_U)
    bias = m @ W_U + b_U
    keep = torch.arange(W_U.shape[1], device=W_U.device) != target
    P = (G[:, target : target + 1] - G).T[keep]
    c = (bias[target] - bias)[keep]
    return P, c


def shortest_accepting_vector(P: torch.Tensor, c: torch.Tensor) -> tuple[np.ndarray | None, str]:
    """Solve ``min ||u||^2 s.t. P u + c >= 0`` exactly (cvxpy/Clarabel, float64).

    Returns ``(u, status)``; ``u`` is ``None`` when the constraints are infeasible.
    ``status`` is ``"mean_wins"`` (``c >= 0``, ``u = 0``), ``"optimal"`` or ``"infeasible"``.
    """
    Pn = P.detach().cpu().numpy().astype(np.float64)
    cn = c.detach().cpu().numpy().astype(np.float64)
    if np.all(cn >= 0):
        return np.zeros(Pn.shape[1]), "mean_wins"
    norms = np.linalg.norm(Pn, axis=1)
    if np.any((norms == 0) & (cn < 0)):
        return None, "infeasible"
    act = norms > 0
    # Scale each row to unit norm: same feasible set, better conditioning.
    Ps, cs = Pn[act] / norms[act, None], cn[act] / norms[act]
    # Cutting planes: solve on a working set (the most violated constraints at u = 0), add the
    # constraints the solution violates, repeat. When nothing is violated the working-set optimum
    # is feasible for the full problem and its objective is a lower bound, so it is the exact
    # optimum of the full QP (usually after one or two rounds with far fewer than V rows).
    work = np.argsort(cs)[: min(len(cs), 64)]
    while True:
        u, status = _solve_qp(Ps[work], cs[work])
        if u is None:
            return None, status
        slack = Ps @ u + cs
        viol = np.flatnonzero(slack < -1e-9)
        if viol.size == 0:
            return u, "optimal"
        new = viol[np.argsort(slack[viol])][:64]
        work = np.union1d(work, new)


def _solve_qp(P: np.ndarray, c: np.ndarray) -> tuple[np.ndarray | None, str]:
    u = cp.Variable(P.shape[1])
    prob = cp.Problem(cp.Minimize(cp.sum_squares(u)), [P @ u + c >= 0])
    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError:  # pragma: no cover - fall back to another QP solver
        prob.solve(solver=cp.OSQP, eps_abs=1e-10, eps_rel=1e-10, max_iter=200000)
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return None, "infeasible"
    if u.value is None:
        raise NumericalError(f"shortest-accepting-vector QP failed with status {prob.status!r}.")
    return np.asarray(u.value, dtype=np.float64), "optimal"


def _direction(P: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    u, status = shortest_accepting_vector(P, c)
    if u is None:
        return None, status
    if status == "mean_wins":
        norms = torch.linalg.vector_norm(P, dim=1)
        ok = norms > 0
        if not bool(ok.any()):
            return None, "all_constraints_trivial"
        ratio = torch.where(ok, c / norms.clamp_min(1e-300), torch.full_like(c, math.inf))
        k = int(ratio.argmin())
        return P[k] / norms[k], status
    ut = torch.as_tensor(u, dtype=torch.float64, device=P.device)
    return ut / torch.linalg.vector_norm(ut), status


def _bounds(
    b: torch.Tensor, P: torch.Tensor, c: torch.Tensor, den: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Open interval ``(lo, hi)`` of ``r`` with ``P (b + r d) + c > 0``, per row of ``b``."""
    num = b @ P.T + c  # (B, K)
    ratio = -num / torch.where(den == 0, torch.ones_like(den), den)
    inf = torch.full_like(ratio, math.inf)
    lo = torch.where(den > 0, ratio, -inf).amax(-1)
    hi = torch.where(den < 0, ratio, inf).amin(-1)
    dead = ((den == 0) & (num <= 0)).any(-1)
    hi = torch.where(dead, torch.full_like(hi, -math.inf), hi)
    return lo, hi


def qld_pair_count(
    z: torch.Tensor, d: torch.Tensor, P: torch.Tensor, c: torch.Tensor, *, batch_size: int = 1024
) -> int:
    """``sum_i #{j : b_i + a_j d accepted}`` by sorting ``a`` (see the module docstring)."""
    a = z @ d
    a_sorted = a.sort().values
    den = P @ d
    total = 0
    for zb in z.split(batch_size):
        b = zb - torch.outer(zb @ d, d)
        lo, hi = _bounds(b, P, c, den)
        cnt = torch.searchsorted(a_sorted, hi, side="left") - torch.searchsorted(a_sorted, lo, side="right")
        total += int(cnt.clamp_min(0).sum())
    return total


def qld_pair_count_bruteforce(z: torch.Tensor, d: torch.Tensor, P: torch.Tensor, c: torch.Tensor) -> int:
    """Reference ``O(n^2 V d)`` count: test every pair ``(i, j)`` with ``P_k . b_i + c_k + a_j P_k . d > 0``."""
    a = z @ d
    den = P @ d
    total = 0
    for zi in z:
        b = zi - (zi @ d) * d
        num = P @ b + c  # (K,)
        ok = (num[None, :] + a[:, None] * den[None, :] > 0).all(-1)
        total += int(ok.sum())
    return total


@dataclass(frozen=True)
class QLDResult:
    """``log_p`` (``-inf`` for 0), the pair ``count`` out of ``n^2``, the direction and status."""

    log_p: float
    count: int
    n: int
    direction: np.ndarray | None
    status: str


def qld_from_activations(
    x: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor, target: int, *, batch_size: int = 1024
) -> QLDResult:
    """Corrected QLD on activations ``x`` ``(n, d)``; ``W_U (d, V)``, ``b_U (V,)``."""
    n = int(x.shape[0])
    z, m, A = whiten(x)
    P, c = constraints_in_whitened(A, m, W_U, b_U, target)
    d, status = _direction(P, c)
    if d is None:
        return QLDResult(-math.inf, 0, n, None, status)
    count = qld_pair_count(z, d, P, c, batch_size=batch_size)
    log_p = math.log(count) - 2 * math.log(n) if count else -math.inf
    return QLDResult(log_p, count, n, d.cpu().numpy(), status)


@register_lm_method("qld")
class QuadraticLogitDecomposition(LMMethodBase):
    """Corrected QLD on ``budget`` sampled final activations (``budget`` forwards)."""

    def __init__(self, *, batch_size: int = 1024) -> None:
        super().__init__(batch_size=batch_size)

    def _run(
        self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int
    ) -> MethodResult:
        x = self._sample_activations(problem, model, rng, budget)
        W_U, b_U = problem.unembedding64()
        res = qld_from_activations(x, W_U, b_U, problem.target, batch_size=self.batch_size)
        return MethodResult(
            log_value=res.log_p,
            diagnostics={"pair_count": res.count, "n": res.n, "direction_status": res.status},
        )
