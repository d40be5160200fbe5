"""Cumulant propagation ("kprop") through a random MLP, to order ``K`` = 2 or 3.

Following ARC's cumulant propagation (Wu, Lecomte, Winer, Robinson, Hilton, Christiano,
arXiv 2605.05179); the formulas below are our own derivation and are checked by tests
(exact on linear networks; order 2 equals Gaussian mean/covariance propagation).

State after a step: the joint cumulants ``kappa_1 = mean (n,)``, ``kappa_2 = cov (n, n)`` and,
for ``K = 3``, ``kappa_3 (n, n, n)``. With ``diagonal=True`` only the *power cumulants*
``kappa_d(i, ..., i)`` are kept (shapes ``(n,)``): ``O(n^2)`` per layer instead of
``O(n^3)`` / ``O(n^4)``.

**Linear step** ``h = x @ W`` (exact): ``kappa_d(h) = W^{(x)d} kappa_d(x)``, i.e.
``mean @ W``, ``W^T C W`` and ``kappa_3 x_1 W x_2 W x_3 W``. Power cumulants only:
``kappa_d(h_j) = sum_a W_aj^d kappa_d(x_a)`` (off-diagonal cumulants dropped).

**Nonlinear step** ``x = phi(h)``: per neuron, moment-match a Gaussian ``h_i = m_i + s_i z_i``
and expand ``phi(h_i) = sum_k a_k(i) He_k(z_i)/k!`` (Hermite/Wick coefficients,
:func:`~lowprob.propagation.gaussian_moments.hermite_coefficients`); ``b_k`` are those of
``phi^2``, ``rho = corr(h)`` and ``t_ijk = kappa_3(h)_ijk / (s_i s_j s_k)``. Then (derived):

* mean: ``a_0 + a_3 t_iii / 6``  (first-order Edgeworth correction; ``K = 3`` only);
* variance: ``b_0 + b_3 t_iii / 6 - mean^2``;
* covariance ``i != j``: ``sum_{k=1}^P a_k(i) a_k(j) rho^k / k!`` (Mehler)
  ``+ (a_1(i) a_2(j) t_ijj + a_2(i) a_1(j) t_iij) / 2``  (``K = 3``);
* third cumulant (``K = 3``): the Gaussian part plus ``a_1(i) a_1(j) a_1(k) t_ijk``. The
  Gaussian part is exact on the diagonal (1-D moments), exact-up-to-Mehler-truncation on
  ``(i, i, k)`` (``Cov((phi_i - mu_i)^2, phi_k)`` with coefficients ``b_k - 2 mu a_k``), and
  for distinct indices the Wick/diagram sum
  ``sum_{p,q,r=1}^{P_3} a_p a_q a_r rho_ij^{s_1} rho_jk^{s_2} rho_ik^{s_3} / (s_1! s_2! s_3!)``
  with ``s_1 = (p+q-r)/2`` etc. (non-negative integers).

The power-cumulant piece ``sum_a W_aj^3 kappa_3(a)`` and the pair ("trace") pieces
``kappa_3(a, a, c)`` are both kept by the full ``K = 3`` step. Everything uses numpy;
see :func:`layer_flops` for how FLOPs are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputValueError, UnavailableError
from lowprob.propagation.gaussian_moments import (
    NUMPY,
    ArrayBackend,
    hermite_coefficients,
    mehler_covariance,
    relu_coefficient_tables,
    square_hermite_coefficients,
    third_moment,
)
from lowprob.toy_models.random_mlp import check_activation

__all__ = [
    "SUPPORTED_ORDERS",
    "CumulantState",
    "check_order",
    "input_state",
    "layer_flops",
    "linear_step",
    "nonlinear_step",
]

#: Orders ``K`` this module propagates.
SUPPORTED_ORDERS: tuple[int, ...] = (2, 3)
#: Transcendental functions (exp, Phi, phi, sqrt, tanh) count this many FLOPs per element.
TRANSCENDENTAL_FLOPS = 16
#: Above this width a full third-cumulant tensor (n^3 float64) is refused.
MAX_FULL_K3_WIDTH = 320


def check_order(order: object) -> int:
    """Validate ``K`` (an int in :data:`SUPPORTED_ORDERS`)."""
    K = check_int("order", order)
    if K not in SUPPORTED_ORDERS:
        raise InputValueError(
            f"order (K) must be one of {list(SUPPORTED_ORDERS)!r}, got {order!r}. "
            "K=2 is Gaussian mean/covariance propagation; K=3 adds third cumulants."
        )
    return K


@dataclass(frozen=True)
class WickSource:
    """Pair third cumulants carried between steps in structured ``K = 3`` mode.

    After a nonlinearity: ``pair[a, c] = kappa_3(x_a, x_a, x_c)`` (zero diagonal); ``a1``,
    ``a2`` are the Hermite coefficients of ``phi`` and ``rho_off`` the correlations (zero
    diagonal) of its input (diagnostics). After a linear step: ``pair[i, j] =
    kappa_3(h_i, h_i, h_j)`` (diagonal = ``kappa_3(h_i)``) and the other fields are ``None``.
    """

    pair: Any
    a1: Any
    a2: Any
    rho_off: Any


@dataclass(frozen=True)
class CumulantState:
    """Joint cumulants of one layer's activations.

    Attributes:
        mean: ``(n,)`` first cumulants.
        cov: ``(n, n)`` second cumulants, or ``(n,)`` variances when ``diagonal``.
        k3: ``(n, n, n)`` third cumulants, ``(n,)`` when ``diagonal`` or ``structured``,
            ``None`` for ``K = 2``.
        diagonal: whether only power cumulants ``kappa_d(i,...,i)`` are kept.
        structured: full covariance, per-neuron ``kappa_3`` from the ``O(n^3)`` Wick
            contraction (see :func:`linear_step`).
        wick: after a nonlinearity in structured mode, the pieces of ``kappa_3(x)`` that
            the next linear step contracts.
    """

    mean: np.ndarray
    cov: np.ndarray
    k3: np.ndarray | None = None
    diagonal: bool = False
    structured: bool = False
    wick: WickSource | None = None

    @property
    def order(self) -> int:
        return 2 if self.k3 is None else 3

    @property
    def width(self) -> int:
        return int(self.mean.shape[0])

    @property
    def variance(self) -> np.ndarray:
        return self.cov if self.diagonal else np.diag(np.asarray(self.cov)).copy()

    @property
    def third(self) -> np.ndarray | None:
        """Per-neuron third cumulants ``kappa_3(i, i, i)`` (``None`` for ``K = 2``)."""
        if self.k3 is None:
            return None
        if self.diagonal or self.structured:
            return self.k3
        i = np.arange(self.width)
        return self.k3[i, i, i].copy()


def input_state(
    width: int,
    order: int,
    *,
    diagonal: bool = False,
    structured: bool = False,
    backend: ArrayBackend = NUMPY,
    dtype: Any = np.float64,
) -> CumulantState:
    """Cumulants of ``x_0 ~ N(0, I_n)``: zero mean, identity covariance, zero ``kappa_3``.

    ``dtype`` (default float64) sets the working precision of everything propagated after.
    """
    n = check_int("width", width, minimum=1)
    K = check_order(order)
    if structured and (diagonal or K != 3):
        raise InputValueError(
            f"structured=True needs order=3 and diagonal=False, got order={order!r}, "
            f"diagonal={diagonal!r}."
        )
    xp = backend.xp
    if structured:
        return CumulantState(xp.zeros(n, dtype=dtype), xp.eye(n, dtype=dtype),
                             xp.zeros(n, dtype=dtype), structured=True)
    if K == 3 and not diagonal and n > MAX_FULL_K3_WIDTH:
        raise UnavailableError(
            f"full K=3 propagation stores an n^3 tensor; width={n!r} exceeds "
            f"{MAX_FULL_K3_WIDTH}. Use diagonal=True (power cumulants) or K=2."
        )
    mean = xp.zeros(n, dtype=dtype)
    cov = xp.ones(n, dtype=dtype) if diagonal else xp.eye(n, dtype=dtype)
    k3 = None
    if K == 3:
        k3 = xp.zeros(n, dtype=dtype) if diagonal else xp.zeros((n, n, n), dtype=dtype)
    return CumulantState(mean, cov, k3, diagonal)


def linear_step(
    state: CumulantState, W: np.ndarray, *, backend: ArrayBackend = NUMPY
) -> CumulantState:
    """``h = x @ W``: exact ``kappa_d <- W^{(x)d} kappa_d`` (power cumulants: ``W**d``).

    With ``backend=flopscope_backend()`` (``K = 2`` only) ``W`` is a flopscope array and
    is used as is (validation would leave flopscope's metering).
    """
    if backend is NUMPY:
        W = check_finite_array("W", W, shape=(state.width, None))
    elif state.k3 is not None and not (state.diagonal or state.structured):
        raise UnavailableError("the full K=3 step runs on the numpy backend only.")
    if state.structured:
        return _structured_linear_step(state, W, backend.xp)
    mean = state.mean @ W
    if state.diagonal:
        W2 = W * W
        cov = state.cov @ W2
        k3 = None if state.k3 is None else state.k3 @ (W2 * W)
        return CumulantState(mean, cov, k3, True)
    cov = W.T @ state.cov @ W
    cov = 0.5 * (cov + cov.T)
    k3 = None
    if state.k3 is not None:
        k3 = np.tensordot(state.k3, W, axes=([0], [0]))  # (b, c, j)
        k3 = np.tensordot(k3, W, axes=([0], [0]))  # (c, j, k)
        k3 = np.tensordot(k3, W, axes=([0], [0]))  # (j, k, l)
    return CumulantState(mean, cov, k3, False)


def _structured_linear_step(state: CumulantState, W: Any, xp: Any) -> CumulantState:
    """Pair third cumulants ``M[i, j] = kappa_3(h_i, h_i, h_j)`` of ``h = x @ W`` in ``O(n^3)``.

    ``kappa_3(x)`` is kept as its diagonal ``d_a = kappa_3(x_a)`` plus pair entries
    ``Q[a, c] = kappa_3(x_a, x_a, c)`` (``a != c``, zero diagonal, and the two other
    placements by symmetry); entries with three distinct indices are dropped. Then (derived)::

        M = W2^T (d W + Q W) + 2 (W o (Q W))^T W ,   W2 = W o W

    i.e. three ``n x n`` matmuls and no ``n^3`` storage; ``kappa_3(h_j) = M[j, j]`` (the
    power-cumulant piece ``sum_a W_aj^3 d_a`` plus the pair/trace pieces).
    """
    mean = state.mean @ W
    cov = W.T @ state.cov @ W
    if state.wick is None:  # Gaussian input: kappa_3(x) = 0 apart from the carried diagonal
        d3 = state.k3 @ (W * W * W)
        return CumulantState(mean, cov, d3, structured=True, wick=None)
    Q = state.wick.pair
    QW = Q @ W
    M = (W * W).T @ (state.k3[:, None] * W + QW) + 2.0 * ((W * QW).T @ W)
    return CumulantState(mean, cov, xp.diag(M), structured=True,
                         wick=WickSource(M, None, None, None))


def _diagram_triples(P: int) -> list[tuple[int, int, int, int, int, int]]:
    """``(p, q, r, s1, s2, s3)`` with ``p,q,r in 1..P`` and valid Wick pairings."""
    out = []
    for p in range(1, P + 1):
        for q in range(1, P + 1):
            for r in range(1, P + 1):
                if (p + q + r) % 2:
                    continue
                s1, s2, s3 = (p + q - r) // 2, (q + r - p) // 2, (p + r - q) // 2
                if min(s1, s2, s3) < 0:
                    continue
                out.append((p, q, r, s1, s2, s3))
    return out


def _gaussian_third_cumulant(
    a: np.ndarray, c: np.ndarray, d3: np.ndarray, rho: np.ndarray, P3: int
) -> np.ndarray:
    """Third cumulant tensor of ``phi(h)`` for Gaussian ``h`` (see module docstring)."""
    n = rho.shape[0]
    rho_off = rho.copy()
    np.fill_diagonal(rho_off, 0.0)
    powers = [np.ones_like(rho_off)]
    for _ in range(P3 + 1):
        powers.append(powers[-1] * rho_off)
    G = np.zeros((n, n, n))
    for p, q, r, s1, s2, s3 in _diagram_triples(P3):
        coef = 1.0 / (math.factorial(s1) * math.factorial(s2) * math.factorial(s3))
        outer = np.multiply.outer(np.multiply.outer(a[p] * coef, a[q]), a[r])
        G += outer * powers[s1][:, :, None] * powers[s2][None, :, :] * powers[s3][:, None, :]
    # pairs (i, i, k): Cov((phi_i - mu_i)^2, phi_k) by Mehler, exact up to truncation
    pair = mehler_covariance(c, a, rho_off)  # pair[i, k]
    idx = np.arange(n)
    G[idx, idx, :] = pair
    G[idx, :, idx] = pair
    G[:, idx, idx] = pair.T
    G[idx, idx, idx] = d3
    return G


def _activation_tables(
    act: str, m: Any, s: Any, order_a: int, order_b: int, need_e3: bool, backend: ArrayBackend
) -> tuple[Any, Any, Any]:
    """Hermite coefficients of ``phi`` and ``phi^2`` and ``E phi^3`` (ReLU: one fused pass)."""
    if act == "relu":
        return relu_coefficient_tables(m, s, order_a, order_b, backend=backend)
    a = hermite_coefficients(act, m, s, order_a, backend=backend)
    b = square_hermite_coefficients(act, m, s, order_b, backend=backend)
    e3 = third_moment(act, m, s, backend=backend) if need_e3 else None
    return a, b, e3


def nonlinear_step(
    state: CumulantState,
    activation: str,
    *,
    hermite_order: int = 8,
    third_order_terms: int = 3,
    var_floor: float = 1e-30,
    backend: ArrayBackend = NUMPY,
) -> CumulantState:
    """``x = phi(h)`` under per-neuron moment-matched Gaussians plus first-order ``kappa_3``.

    Args:
        state: cumulants of the pre-activations ``h``.
        activation: ``"relu"``, ``"gelu"`` or ``"tanh"``.
        hermite_order: ``P``, Hermite terms kept in the Mehler covariance series.
        third_order_terms: ``P_3``, Hermite terms per leg in the distinct-index Wick sum.
        backend: numpy (default) or flopscope (``K = 2`` only).
    """
    act = check_activation(activation)
    P = check_int("hermite_order", hermite_order, minimum=1)
    P3 = check_int("third_order_terms", third_order_terms, minimum=1)
    K3 = state.k3 is not None
    if backend is not NUMPY and K3 and not (state.diagonal or state.structured):
        raise UnavailableError("full K=3 nonlinear steps run on the numpy backend only.")
    xp = backend.xp
    var = xp.maximum(state.cov if state.diagonal else xp.diag(state.cov), var_floor)
    s = xp.sqrt(var)
    m = state.mean
    P_need = max(P, P3, 3) if K3 else P
    a, b, e3 = _activation_tables(act, m, s, P_need, max(P, 3) if K3 else 0, K3, backend)
    mu_g = a[0]
    e2_g = b[0]
    if K3:
        t_diag = state.third / (s * s * s)
        mean = mu_g + a[3] * t_diag / 6.0
        e2 = e2_g + b[3] * t_diag / 6.0
    else:
        mean, e2 = mu_g, e2_g
    var_out = xp.maximum(e2 - mean * mean, 0.0)

    if state.diagonal:
        k3 = None
        if K3:
            d3_g = e3 - 3.0 * mu_g * e2_g + 2.0 * mu_g**3
            k3 = d3_g + a[1] ** 3 * t_diag
        return CumulantState(mean, var_out, k3, True)

    rho = state.cov / xp.outer(s, s)
    cov = mehler_covariance(a[: P + 1], a[: P + 1], rho, backend=backend)
    if state.structured:
        n = m.shape[0]
        off = 1.0 - xp.eye(n)
        rho_off = rho * off
        c = b[: P + 1] - 2.0 * mu_g[None, :] * a[: P + 1]
        pair = mehler_covariance(c, a[: P + 1], rho_off, backend=backend)
        d3_g = e3 - 3.0 * mu_g * e2_g + 2.0 * mu_g**3
        k3s = d3_g + a[1] * a[1] * a[1] * t_diag
        if state.wick is not None:
            # t_iij = M[i, j] / (s_i^2 s_j): covariance correction and carried pair cumulants
            T = state.wick.pair / (xp.outer(s * s, s))
            cov = cov + 0.5 * (xp.outer(a[1], a[2]) * T.T + xp.outer(a[2], a[1]) * T)
            pair = pair + (xp.outer(a[1] * a[1], a[1]) * T) * off
        xp.fill_diagonal(cov, var_out)
        return CumulantState(mean, cov, k3s, structured=True,
                             wick=WickSource(pair, a[1], a[2], rho_off))
    k3 = None
    if K3:
        t = state.k3 / (s[:, None, None] * s[None, :, None] * s[None, None, :])
        n = m.shape[0]
        idx = np.arange(n)
        t_iij = t[idx, idx, :]  # t[i, i, j]
        t_ijj = t[:, idx, idx]  # t[i, j, j]
        cov = cov + 0.5 * (np.outer(a[1], a[2]) * t_ijj + np.outer(a[2], a[1]) * t_iij)
        c = b[: P + 1] - 2.0 * mu_g[None, :] * a[: P + 1]
        d3_g = e3 - 3.0 * mu_g * e2_g + 2.0 * mu_g**3
        G = _gaussian_third_cumulant(a, c, d3_g, rho, P3)
        a1 = a[1]
        k3 = G + np.multiply.outer(np.multiply.outer(a1, a1), a1) * t
    xp.fill_diagonal(cov, var_out)
    return replace(state, mean=mean, cov=cov, k3=k3)


def layer_flops(
    width: int,
    order: int,
    *,
    diagonal: bool = False,
    structured: bool = False,
    hermite_order: int = 8,
    third_order_terms: int = 3,
    activation: str = "relu",
) -> int:
    """FLOPs of one linear + nonlinear step, counted analytically.

    Convention (shared by every MLP estimator in lowprob): an ``(m, k) @ (k, p)`` matmul is
    ``2 m k p``; an elementwise arithmetic op is 1 per element; a transcendental
    (exp, Phi, phi, sqrt, tanh) is :data:`TRANSCENDENTAL_FLOPS` per element. Gauss-Hermite
    coefficients for GELU/tanh cost ``100`` nodes x ``(P + 4)`` terms per neuron.
    """
    n = check_int("width", width, minimum=1)
    K = check_order(order)
    P = check_int("hermite_order", hermite_order, minimum=1)
    act = check_activation(activation)
    T = TRANSCENDENTAL_FLOPS
    coef = (4 * T + 8 * max(P, 3)) * n if act == "relu" else 100 * (T + 4 * (max(P, 3) + 2)) * n
    if diagonal:
        lin = 2 * n * n * K + (K - 1) * n * n
        return int(lin + coef + 20 * n)
    lin = 2 * n * n + 4 * n**3
    nonlin = coef + (4 * P + 6) * n * n + T * n
    if structured:
        # three n x n matmuls (Q @ W, W2^T(...), (W o QW)^T W) + elementwise; pair Mehler series
        return int(lin + 6 * n**3 + 8 * n * n + nonlin + (5 * P + 24) * n * n)
    if K == 3:
        lin += 6 * n**4
        n_tri = len(_diagram_triples(third_order_terms))
        nonlin += (8 * n_tri + 12) * n**3 + (4 * P + 10) * n * n
    return int(lin + nonlin)
