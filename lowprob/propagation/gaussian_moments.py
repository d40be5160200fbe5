"""Moments of activations of Gaussian pre-activations: closed-form ReLU, Gauss-Hermite otherwise.

Everything here answers "if ``h ~ N(m, C)``, what are the moments of ``phi(h)``?", the
nonlinearity step of Gaussian mean/covariance propagation and of cumulant propagation
(:mod:`lowprob.propagation.cumulants`). Per neuron write ``s = sqrt(C_ii)``, ``alpha = m/s``
and ``h = m + s z`` with ``z ~ N(0, 1)``.

**Hermite coefficients** ``a_k = E[phi(m + s z) He_k(z)]`` (probabilists' Hermite ``He_k``),
so ``phi(m + s z) = sum_k a_k He_k(z) / k!`` in ``L^2(N(0,1))``. By Gaussian integration by
parts ``a_k = E[d^k/dz^k phi(m + s z)]``, which for ReLU gives the closed forms (derived)::

    a_0 = m Phi(alpha) + s phi(alpha)      a_1 = s Phi(alpha)
    a_k = s phi(alpha) He_{k-2}(-alpha)    (k >= 2)

and for ``ReLU^2``: ``b_0 = s^2((alpha^2+1) Phi + alpha phi)``, ``b_1 = 2 s^2 (alpha Phi + phi)``,
``b_2 = 2 s^2 Phi``, ``b_k = 2 s^2 phi(alpha) He_{k-3}(-alpha)`` (k >= 3). GELU and tanh use
Gauss-Hermite quadrature (smooth integrands; 100 nodes by default).

**Cross-covariances.** For standardised ``(z_i, z_j)`` with correlation ``rho``, Mehler's
formula gives ``E[f(z_i) g(z_j)] = sum_k f_k g_k rho^k / k!``, hence (:func:`mehler_covariance`)::

    Cov(phi(h_i), phi(h_j)) = sum_{k>=1} a_k(i) a_k(j) rho_ij^k / k!

For ReLU we also have an independent route, exact up to quadrature (derived from Plackett's
identity ``dE[f g]/dC_ij = E[f' g']`` twice; :func:`relu_cross_covariance`)::

    Cov(relu h_i, relu h_j) = s_i s_j [ rho Phi(alpha_i) Phi(alpha_j)
                                        + int_0^rho (rho - t) phi_2(alpha_i, alpha_j; t) dt ]

with ``phi_2`` the standard bivariate normal density, integrated by Gauss-Legendre.

The functions take an :class:`ArrayBackend`, so the same code runs on numpy (our
estimators) and on ``flopscope.numpy`` (the WhestBench adapter, whose FLOPs flopscope
counts). References: Cho & Saul 2009 (arc-cosine kernels); Mehler 1866; Plackett 1954.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.toy_models.random_mlp import check_activation

__all__ = [
    "NUMPY",
    "ArrayBackend",
    "flopscope_backend",
    "gaussian_activation_moments",
    "hermite_coefficients",
    "hermite_polynomials",
    "mehler_covariance",
    "relu_cross_covariance",
    "relu_coefficient_tables",
    "relu_moments",
    "square_hermite_coefficients",
    "third_moment",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class ArrayBackend:
    """An array namespace plus the two special functions the formulas need.

    Attributes:
        xp: ``numpy`` or ``flopscope.numpy``.
        ndtr: standard normal CDF ``Phi``.
        npdf: standard normal density ``phi``.
        name: for diagnostics.
    """

    xp: Any
    ndtr: Any
    npdf: Any
    name: str


def _np_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


#: The numpy backend (scipy's ``ndtr``).
NUMPY = ArrayBackend(np, special.ndtr, _np_pdf, "numpy")


def flopscope_backend() -> ArrayBackend:
    """The ``flopscope.numpy`` backend (FLOPs counted by flopscope); needs ``lowprob[whestbench]``."""
    try:
        import flopscope as flops
        import flopscope.numpy as fnp
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("flopscope is missing: pip install 'lowprob[whestbench]'") from exc
    return ArrayBackend(fnp, flops.stats.norm.cdf, flops.stats.norm.pdf, "flopscope")


def hermite_polynomials(x: Any, order: int, *, backend: ArrayBackend = NUMPY) -> list[Any]:
    """``[He_0(x), ..., He_order(x)]`` by ``He_{k+1} = x He_k - k He_{k-1}``."""
    xp = backend.xp
    out = [xp.ones_like(x), x]
    for k in range(1, order):
        out.append(x * out[k] - k * out[k - 1])
    return out[: order + 1]


def relu_moments(m: Any, s: Any, *, backend: ArrayBackend = NUMPY) -> tuple[Any, Any, Any]:
    """``(E relu(h), E relu(h)^2, E relu(h)^3)`` for ``h ~ N(m, s^2)`` (``s > 0``), closed form.

    ``E relu = s(alpha Phi + phi)``, ``E relu^2 = s^2((alpha^2+1) Phi + alpha phi)``,
    ``E relu^3 = s^3((alpha^3 + 3 alpha) Phi + (alpha^2 + 2) phi)`` with ``alpha = m/s``.
    """
    a = m / s
    Phi = backend.ndtr(a)
    ph = backend.npdf(a)
    e1 = s * (a * Phi + ph)
    e2 = s * s * ((a * a + 1.0) * Phi + a * ph)
    e3 = s * s * s * ((a * a * a + 3.0 * a) * Phi + (a * a + 2.0) * ph)
    return e1, e2, e3


@lru_cache(maxsize=16)
def _gh_rule(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return z, w / _SQRT_2PI


def _act_xp(activation: str, h: Any, backend: ArrayBackend) -> Any:
    xp = backend.xp
    if activation == "relu":
        return xp.maximum(h, 0.0)
    if activation == "gelu":
        return h * backend.ndtr(h)
    return xp.tanh(h)


def _gh_coefficients(
    activation: str, m: Any, s: Any, order: int, power: int, backend: ArrayBackend, n_nodes: int
) -> Any:
    """``E[phi(m + s z)^power He_k(z)]`` for k = 0..order by Gauss-Hermite; shape (order+1, n)."""
    xp = backend.xp
    z, w = _gh_rule(n_nodes)
    he = np.stack(hermite_polynomials(z, order), axis=0)  # (order+1, Q)
    h = m[:, None] + s[:, None] * xp.asarray(z)[None, :]  # (n, Q)
    f = _act_xp(activation, h, backend)
    if power != 1:
        f = f**power
    return xp.asarray(he * w[None, :]) @ f.T  # (order+1, n)


def relu_coefficient_tables(
    m: Any, s: Any, order_a: int, order_b: int, *, backend: ArrayBackend = NUMPY
) -> tuple[Any, Any, Any]:
    """ReLU ``(a, b, E relu^3)``: ``a`` of shape ``(order_a+1, n)``, ``b`` ``(order_b+1, n)``.

    One evaluation of ``Phi(alpha)``, ``phi(alpha)`` and the ``He_k(-alpha)`` recurrence
    serves all three (closed forms in the module docstring).
    """
    xp = backend.xp
    a = m / s
    Phi = backend.ndtr(a)
    ph = backend.npdf(a)
    s2 = s * s
    top = max(order_a - 2, order_b - 3, 0)
    he = hermite_polynomials(-a, top, backend=backend)
    rows_a = [s * (a * Phi + ph), s * Phi][: order_a + 1]
    if order_a >= 2:
        rows_a.append((s * ph)[None, :] * xp.stack(he[: order_a - 1], axis=0))
    rows_b = [s2 * ((a * a + 1.0) * Phi + a * ph), 2.0 * s2 * (a * Phi + ph), 2.0 * s2 * Phi]
    rows_b = rows_b[: order_b + 1]
    if order_b >= 3:
        rows_b.append((2.0 * s2 * ph)[None, :] * xp.stack(he[: order_b - 2], axis=0))
    e3 = s2 * s * ((a * a * a + 3.0 * a) * Phi + (a * a + 2.0) * ph)
    return _stack_rows(rows_a, xp), _stack_rows(rows_b, xp), e3


def _stack_rows(rows: list[Any], xp: Any) -> Any:
    parts = [r[None, :] if r.ndim == 1 else r for r in rows]
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)


def _power_coefficients(
    activation: str, m: Any, s: Any, order: int, power: int, backend: ArrayBackend, n_nodes: int
) -> Any:
    """``E[phi(m + s z)^power He_k(z)]``, ``k = 0..order``, ``power`` in {1, 2}; shape ``(order+1, n)``."""
    act = check_activation(activation)
    order = check_int("order", order, minimum=0)
    if act != "relu":
        return _gh_coefficients(act, m, s, order, power, backend, n_nodes)
    orders = (order, 0) if power == 1 else (0, order)
    return relu_coefficient_tables(m, s, *orders, backend=backend)[power - 1]


def hermite_coefficients(
    activation: str,
    m: Any,
    s: Any,
    order: int,
    *,
    backend: ArrayBackend = NUMPY,
    n_nodes: int = 100,
) -> Any:
    """``a_k(i) = E[phi(m_i + s_i z) He_k(z)]`` for ``k = 0..order``; returns shape ``(order+1, n)``.

    ReLU: closed form (module docstring); GELU/tanh: ``n_nodes``-point Gauss-Hermite.
    ``m``, ``s`` have shape ``(n,)`` and ``s > 0``.
    """
    return _power_coefficients(activation, m, s, order, 1, backend, n_nodes)


def square_hermite_coefficients(
    activation: str,
    m: Any,
    s: Any,
    order: int,
    *,
    backend: ArrayBackend = NUMPY,
    n_nodes: int = 100,
) -> Any:
    """``b_k(i) = E[phi(m_i + s_i z)^2 He_k(z)]``, ``k = 0..order``; shape ``(order+1, n)``."""
    return _power_coefficients(activation, m, s, order, 2, backend, n_nodes)


def third_moment(
    activation: str, m: Any, s: Any, *, backend: ArrayBackend = NUMPY, n_nodes: int = 100
) -> Any:
    """``E[phi(m + s z)^3]`` (ReLU closed form, else Gauss-Hermite); shape ``(n,)``."""
    act = check_activation(activation)
    if act == "relu":
        return relu_moments(m, s, backend=backend)[2]
    return _gh_coefficients(act, m, s, 0, 3, backend, n_nodes)[0]


def mehler_covariance(coeffs_i: Any, coeffs_j: Any, rho: Any, *, backend: ArrayBackend = NUMPY) -> Any:
    """``sum_{k=1}^{K} a_k(i) b_k(j) rho_ij^k / k!`` for coefficient arrays ``(K+1, n)``; ``(n, n)``.

    The ``k = 0`` row is the mean and is skipped. Truncation error is
    ``O(|rho|^{K+1})``; use it off the diagonal, where wide random nets have small ``rho``.
    Computed as one ``einsum`` over the stacked powers ``rho^k`` (``K n^2`` memory), which
    keeps the op count (and flopscope's per-op overhead) independent of ``K``.
    """
    xp = backend.xp
    K = coeffs_i.shape[0] - 1
    n_i, n_j = rho.shape
    inv_fact = np.array([1.0 / math.factorial(k) for k in range(1, K + 1)])
    powers = xp.cumprod(xp.broadcast_to(rho[None], (K, n_i, n_j)), axis=0)
    return xp.einsum("ki,kj,kij->ij", coeffs_i[1:] * xp.asarray(inv_fact)[:, None],
                     coeffs_j[1:], powers)


@lru_cache(maxsize=8)
def _gl_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w  # nodes/weights on [0, 1]


def relu_cross_covariance(
    alpha: np.ndarray, s: np.ndarray, rho: np.ndarray, *, n_quad: int = 24
) -> np.ndarray:
    """``Cov(relu h_i, relu h_j)`` for all pairs via the Plackett integral (numpy only).

    ``alpha = m/s`` and ``s`` have shape ``(n,)``, ``rho`` is the ``(n, n)`` correlation
    matrix (``|rho| < 1`` off the diagonal). ``n_quad``-point Gauss-Legendre on ``[0, rho]``;
    accurate to ~1e-12 for ``|rho| <= 0.9`` (the integrand is analytic there). The diagonal
    is *not* meaningful (``rho = 1`` is singular); callers put the exact variance there.
    """
    rho = np.clip(rho, -0.999999, 0.999999)
    u, w = _gl_rule(n_quad)
    ai = alpha[:, None]
    aj = alpha[None, :]
    a2 = ai * ai + aj * aj
    ab = ai * aj
    integral = np.zeros_like(rho)
    for uq, wq in zip(u, w, strict=True):
        t = rho * uq
        one_m = 1.0 - t * t
        dens = np.exp(-(a2 - 2.0 * t * ab) / (2.0 * one_m)) / (2.0 * math.pi * np.sqrt(one_m))
        integral += wq * (rho - t) * dens
    integral *= rho  # dt = rho du
    Phi = special.ndtr(alpha)
    return (s[:, None] * s[None, :]) * (rho * np.outer(Phi, Phi) + integral)


def gaussian_activation_moments(
    activation: str,
    mean: np.ndarray,
    cov: np.ndarray,
    *,
    hermite_order: int = 16,
    n_quad: int = 24,
    var_floor: float = 1e-30,
) -> tuple[np.ndarray, np.ndarray]:
    """``(E phi(h), Cov phi(h))`` for ``h ~ N(mean, cov)``, exact up to quadrature (numpy).

    Diagonal: exact 1-D moments. Off-diagonal: ReLU by :func:`relu_cross_covariance`
    (Plackett quadrature); GELU/tanh by the Mehler series to ``hermite_order`` with
    Gauss-Hermite coefficients. Shapes: ``mean (n,)``, ``cov (n, n)``.
    """
    act = check_activation(activation)
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (mean.shape[0],) * 2:
        raise InputValueError(f"cov must have shape {(mean.shape[0],) * 2!r}, got {cov.shape!r}.")
    var = np.maximum(np.diag(cov), var_floor)
    s = np.sqrt(var)
    rho = cov / np.outer(s, s)
    if act == "relu":
        e1, e2, _ = relu_moments(mean, s)
        out_cov = relu_cross_covariance(mean / s, s, rho, n_quad=n_quad)
    else:
        a = hermite_coefficients(act, mean, s, hermite_order)
        b = square_hermite_coefficients(act, mean, s, 0)
        e1, e2 = a[0], b[0]
        out_cov = mehler_covariance(a, a, rho)
    np.fill_diagonal(out_cov, np.maximum(e2 - e1 * e1, 0.0))
    return e1, out_cov
