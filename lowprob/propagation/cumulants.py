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

The formulas live once, in :mod:`lowprob.array_kernels.cumulant_steps`, as deduction rules
(linear layer: exact; activation: exact but lazy) and a projector (moment matching onto
``K`` cumulants), registered with the loop by :mod:`lowprob.propagation.cumulant_rules`.
This module validates inputs and gives the per-step functions :func:`linear_step` (one
deduction) and :func:`nonlinear_step` (one deduction + projection) and :func:`propagate_mlp`
(the whole net through :func:`lowprob.propagation.loop.propagate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.array_backends import NUMPY, ArrayBackend
from lowprob.array_kernels.activations import TRANSCENDENTAL_FLOPS
from lowprob.array_kernels.cumulant_steps import (
    ActivationLayer,
    CumulantProjector,
    CumulantState,
    LinearLayer,
    WickSource,
    initial_cumulants,
    linear_rule,
    step_flops,
)
from lowprob.errors import InputValueError, UnavailableError
from lowprob.propagation.cumulant_rules import propagate_mlp as _propagate_mlp
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import PropagationTrace
from lowprob.toy_models.random_mlp import get_activation

__all__ = [
    "SUPPORTED_ORDERS",
    "ActivationLayer",
    "LinearLayer",
    "TRANSCENDENTAL_FLOPS",
    "CumulantProjector",
    "CumulantState",
    "WickSource",
    "check_order",
    "input_state",
    "layer_flops",
    "linear_step",
    "nonlinear_step",
    "propagate_mlp",
]

#: Orders ``K`` this module propagates.
SUPPORTED_ORDERS: tuple[int, ...] = (2, 3)
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
    if K == 3 and not diagonal and not structured and n > MAX_FULL_K3_WIDTH:
        raise UnavailableError(
            f"full K=3 propagation stores an n^3 tensor; width={n!r} exceeds "
            f"{MAX_FULL_K3_WIDTH}. Use diagonal=True (power cumulants) or K=2."
        )
    return initial_cumulants(n, K, diagonal, structured, backend.xp, dtype)


def _check_backend(state: CumulantState, backend: ArrayBackend) -> None:
    if backend is not NUMPY and state.k3 is not None and not (state.diagonal or state.structured):
        raise UnavailableError("full K=3 steps run on the numpy backend only.")


def linear_step(
    state: CumulantState, W: np.ndarray, *, backend: ArrayBackend = NUMPY
) -> CumulantState:
    """``h = x @ W``: exact ``kappa_d <- W^{(x)d} kappa_d`` (one deduction of the loop's rule).

    With ``backend=flopscope_backend()`` ``W`` is a flopscope array used as is.
    """
    if backend is NUMPY:
        W = check_finite_array("W", W, shape=(state.width, None))
    _check_backend(state, backend)
    return linear_rule(state, LinearLayer(W, backend), FlopCounter())


def nonlinear_step(
    state: CumulantState,
    activation: Any,
    *,
    hermite_order: int = 8,
    third_order_terms: int = 3,
    var_floor: float = 1e-30,
    backend: ArrayBackend = NUMPY,
) -> CumulantState:
    """``x = phi(h)``: the loop's activation deduction followed by the cumulant projection.

    Args:
        state: cumulants of the pre-activations ``h``.
        activation: a registered name (``"relu"``, ``"gelu"``, ``"tanh"``) or ``Activation``.
        hermite_order: ``P``, Hermite terms kept in the Mehler covariance series.
        third_order_terms: ``P_3``, Hermite terms per leg in the distinct-index Wick sum.
        backend: numpy (default) or flopscope (not the full ``K = 3`` tensor).
    """
    act = get_activation(activation)
    P = check_int("hermite_order", hermite_order, minimum=1)
    P3 = check_int("third_order_terms", third_order_terms, minimum=1)
    _check_backend(state, backend)
    proj = CumulantProjector(P, P3, var_floor)
    return proj.project(state, act, backend)


def propagate_mlp(
    weights: Any,
    activation: Any,
    order: int,
    *,
    diagonal: bool = False,
    structured: bool = False,
    hermite_order: int = 8,
    third_order_terms: int = 3,
    backend: ArrayBackend = NUMPY,
    dtype: Any = np.float64,
    projector: Any = None,
) -> PropagationTrace:
    """Cumulant propagation through ``[W_1, phi, ..., W_L, phi]`` by the generic loop.

    Returns the :class:`~lowprob.propagation.loop.PropagationTrace`; ``trace.states`` holds
    ``[h_1, x_1, ..., h_L, x_L]`` and ``trace.flops`` the analytic count (:func:`layer_flops`).
    """
    weights = list(weights)
    if not weights:
        raise InputValueError("weights must hold at least one (n, n) matrix, got 0.")
    n = int(weights[0].shape[0])
    state = input_state(n, order, diagonal=diagonal, structured=structured, backend=backend,
                        dtype=dtype)
    _check_backend(state, backend)
    if backend is NUMPY:
        weights = [check_finite_array(f"weights[{i}]", w, shape=(n, n), dtype=np.float64)
                   for i, w in enumerate(weights)]
    P = check_int("hermite_order", hermite_order, minimum=1)
    P3 = check_int("third_order_terms", third_order_terms, minimum=1)
    proj = CumulantProjector(P, P3) if projector is None else projector
    return _propagate_mlp(state, weights, get_activation(activation), backend, proj)


def layer_flops(
    width: int,
    order: int,
    *,
    diagonal: bool = False,
    structured: bool = False,
    hermite_order: int = 8,
    third_order_terms: int = 3,
    activation: Any = "relu",
) -> int:
    """FLOPs of one linear + nonlinear step, counted analytically (what the loop's rules report).

    Convention (shared by every MLP estimator in lowprob): an ``(m, k) @ (k, p)`` matmul is
    ``2 m k p``; an elementwise arithmetic op is 1 per element; a transcendental
    (exp, Phi, phi, sqrt, tanh) is :data:`TRANSCENDENTAL_FLOPS` per element; the activation's
    Hermite tables cost ``Activation.tables_flops`` (ReLU closed form ``(4 T + 8 max(P, 3)) n``;
    Gauss-Hermite ``Q (T + 4 (max(P, 3) + 2)) n``).
    """
    n = check_int("width", width, minimum=1)
    K = check_order(order)
    P = check_int("hermite_order", hermite_order, minimum=1)
    P3 = check_int("third_order_terms", third_order_terms, minimum=1)
    act = get_activation(activation)
    probe = CumulantState(np.zeros(n), np.zeros(n) if diagonal else np.zeros((1, 1)),
                          None if K == 2 else np.zeros(1), diagonal, structured)
    lin, nonlin = step_flops(probe, None, P, P3)
    return int(lin + nonlin + act.tables_flops(n, P))

