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
from lowprob.array_backends import NUMPY, ArrayBackend, flopscope_backend
from lowprob.array_kernels import activations as _acts
from lowprob.array_kernels.cumulant_steps import mehler_covariance as _mehler
from lowprob.errors import InputValueError
from lowprob.registry import Registry
from lowprob.toy_models.random_mlp import get_activation

__all__ = [
    "CROSS_COVARIANCE",
    "CrossCovarianceRule",
    "cross_covariance_rule",
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


def hermite_polynomials(x: Any, order: int, *, backend: ArrayBackend = NUMPY) -> list[Any]:
    """``[He_0(x), ..., He_order(x)]`` by ``He_{k+1} = x He_k - k He_{k-1}``."""
    return _acts.hermite_polynomials(x, order, backend.xp)


def relu_moments(m: Any, s: Any, *, backend: ArrayBackend = NUMPY) -> tuple[Any, Any, Any]:
    """``(E relu(h), E relu(h)^2, E relu(h)^3)`` for ``h ~ N(m, s^2)`` (``s > 0``), closed form.

    ``E relu = s(alpha Phi + phi)``, ``E relu^2 = s^2((alpha^2+1) Phi + alpha phi)``,
    ``E relu^3 = s^3((alpha^3 + 3 alpha) Phi + (alpha^2 + 2) phi)`` with ``alpha = m/s``.
    """
    return _acts.RELU.moments(m, s, backend)


def relu_coefficient_tables(
    m: Any, s: Any, order_a: int, order_b: int, *, backend: ArrayBackend = NUMPY
) -> tuple[Any, Any, Any]:
    """ReLU ``(a, b, E relu^3)``: ``a`` of shape ``(order_a+1, n)``, ``b`` ``(order_b+1, n)``."""
    return _acts.RELU.tables(m, s, order_a, order_b, True, backend)


def hermite_coefficients(
    activation: Any, m: Any, s: Any, order: int, *, backend: ArrayBackend = NUMPY,
) -> Any:
    """``a_k(i) = E[phi(m_i + s_i z) He_k(z)]`` for ``k = 0..order``; shape ``(order+1, n)``.

    Dispatched to the :class:`~lowprob.array_kernels.activations.Activation` (ReLU closed
    form; GELU/tanh Gauss-Hermite). ``m``, ``s`` have shape ``(n,)`` and ``s > 0``.
    """
    order = check_int("order", order, minimum=0)
    return get_activation(activation).tables(m, s, order, 0, False, backend)[0]


def square_hermite_coefficients(
    activation: Any, m: Any, s: Any, order: int, *, backend: ArrayBackend = NUMPY,
) -> Any:
    """``b_k(i) = E[phi(m_i + s_i z)^2 He_k(z)]``, ``k = 0..order``; shape ``(order+1, n)``."""
    order = check_int("order", order, minimum=0)
    return get_activation(activation).tables(m, s, 0, order, False, backend)[1]


def third_moment(activation: Any, m: Any, s: Any, *, backend: ArrayBackend = NUMPY) -> Any:
    """``E[phi(m + s z)^3]``; shape ``(n,)``."""
    return get_activation(activation).tables(m, s, 0, 0, True, backend)[2]


def mehler_covariance(coeffs_i: Any, coeffs_j: Any, rho: Any, *, backend: ArrayBackend = NUMPY) -> Any:
    """``sum_{k=1}^{K} a_k(i) b_k(j) rho_ij^k / k!`` for coefficient arrays ``(K+1, n)``; ``(n, n)``.

    Truncation error ``O(|rho|^{K+1})``; use it off the diagonal, where wide random nets
    have small ``rho``.
    """
    return _mehler(coeffs_i, coeffs_j, rho, backend.xp)


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


def _mehler_cross_covariance(act: Any, mean: np.ndarray, s: np.ndarray, rho: np.ndarray, *,
                             hermite_order: int, n_quad: int) -> np.ndarray:
    a = hermite_coefficients(act, mean, s, hermite_order)
    return mehler_covariance(a, a, rho)


def _plackett_cross_covariance(act: Any, mean: np.ndarray, s: np.ndarray, rho: np.ndarray, *,
                               hermite_order: int, n_quad: int) -> np.ndarray:
    return relu_cross_covariance(mean / s, s, rho, n_quad=n_quad)


@dataclass(frozen=True)
class CrossCovarianceRule:
    """``fn(act, mean, s, rho, *, hermite_order, n_quad) -> (n, n)`` and its analytic FLOPs
    ``flops(act, n, hermite_order, n_quad)`` (elementwise 1, transcendental ``T``)."""

    fn: Any
    flops: Any


_T = _acts.TRANSCENDENTAL_FLOPS
#: Activation type -> :class:`CrossCovarianceRule` for the off-diagonal
#: ``Cov(phi(h_i), phi(h_j))`` (MRO lookup); the Mehler series is the default.
CROSS_COVARIANCE: Registry[CrossCovarianceRule] = Registry("cross-covariance rule")
CROSS_COVARIANCE.add(_acts.Activation, CrossCovarianceRule(
    _mehler_cross_covariance,
    lambda act, n, P, Q: (4 * P + 6) * n * n + act.tables_flops(n, P) + 4 * _T * n))
CROSS_COVARIANCE.add(_acts.ReLU, CrossCovarianceRule(
    _plackett_cross_covariance, lambda act, n, P, Q: Q * (2 * _T + 14) * n * n + 4 * _T * n))


def cross_covariance_rule(activation: Any) -> CrossCovarianceRule:
    """The :data:`CROSS_COVARIANCE` entry for an activation (most specific type first)."""
    act = get_activation(activation)
    return next(CROSS_COVARIANCE.get(t) for t in type(act).__mro__ if t in CROSS_COVARIANCE)


def gaussian_activation_moments(
    activation: Any,
    mean: np.ndarray,
    cov: np.ndarray,
    *,
    hermite_order: int = 16,
    n_quad: int = 24,
    var_floor: float = 1e-30,
) -> tuple[np.ndarray, np.ndarray]:
    """``(E phi(h), Cov phi(h))`` for ``h ~ N(mean, cov)``, exact up to quadrature (numpy).

    Diagonal: exact 1-D moments. Off-diagonal: the rule in :data:`CROSS_COVARIANCE` for the
    activation's type (ReLU: Plackett quadrature; otherwise the Mehler series to
    ``hermite_order``). Shapes: ``mean (n,)``, ``cov (n, n)``.
    """
    act = get_activation(activation)
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (mean.shape[0],) * 2:
        raise InputValueError(f"cov must have shape {(mean.shape[0],) * 2!r}, got {cov.shape!r}.")
    var = np.maximum(np.diag(cov), var_floor)
    s = np.sqrt(var)
    rho = cov / np.outer(s, s)
    a, b, _ = act.tables(mean, s, 0, 0, False, NUMPY)
    e1, e2 = a[0], b[0]
    out_cov = cross_covariance_rule(act).fn(act, mean, s, rho, hermite_order=hermite_order, n_quad=n_quad)
    np.fill_diagonal(out_cov, np.maximum(e2 - e1 * e1, 0.0))
    return e1, out_cov
