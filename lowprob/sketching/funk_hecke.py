"""Zonal kernels on the sphere ``S^{n-1}``: normalised Gegenbauer polynomials and Funk–Hecke eigenvalues.

A zonal kernel ``k(x, y) = kappa(x . y)`` on ``S^{n-1}`` is diagonal in spherical harmonics
(Funk–Hecke theorem). With ``sigma`` the *normalised* surface measure and
``P_l = P_l^{(n)}`` the Gegenbauer polynomial normalised so that ``P_l(1) = 1``::

    int k(x, y) Y(y) dsigma(y) = lambda_l Y(x)      for every harmonic Y of degree l,
    lambda_l = (|S^{n-2}| / |S^{n-1}|) int_{-1}^{1} kappa(t) P_l(t) (1 - t^2)^{(n-3)/2} dt,

and the addition theorem gives ``kappa(x . y) = sum_l lambda_l dim_l P_l(x . y)`` with
``dim_l = dim H_l(S^{n-1})``. References: Atkinson & Han, *Spherical Harmonics and
Approximations on the Unit Sphere* (Springer LNM 2044, 2012), Thm 2.22 (Funk–Hecke) and
eq. (2.38) (dimension); Dai & Xu, *Approximation Theory and Harmonic Analysis on Spheres
and Balls* (2013), Thm 1.2.9. DESIGN.md section 4.

Quadrature. For profiles that are smooth in ``t`` the Gauss–Jacobi rule in ``t`` is exact
for polynomials. Profiles built from ``arccos t`` (the halfspace kernel) have square-root
singularities at ``t = +-1`` in ``t`` but are smooth in the angle ``theta = arccos t``;
the default ``rule="angle"`` therefore integrates in ``theta`` with Gauss–Legendre,
``int_0^pi kappa(cos theta) P_l(cos theta) sin^{n-2} theta dtheta``, which converges
exponentially for every profile that is analytic in ``theta`` (and exactly for
trigonometric polynomials of degree < 2 * quad_order). A profile may expose
``of_angle(theta)`` to avoid the round-off of ``arccos(cos theta)``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb, lgamma, pi

import numpy as np
from scipy.special import roots_jacobi, roots_legendre

from lowprob._validation import check_int
from lowprob.errors import InputTypeError, InputValueError

__all__ = [
    "HalfspaceProductProfile",
    "funk_hecke_eigenvalues",
    "funk_hecke_constant",
    "gegenbauer_table",
    "halfspace_product_profile",
    "harmonic_dimension",
    "zonal_from_eigenvalues",
]


def _check_n(n: object) -> int:
    return check_int("n (ambient dimension of S^{n-1})", n, minimum=2)


def gegenbauer_table(L: int, n: int, t: np.ndarray) -> np.ndarray:
    """Normalised Gegenbauer polynomials ``P_l^{(n)}(t) = C_l^{(n-2)/2}(t) / C_l^{(n-2)/2}(1)``, ``l = 0..L``.

    For ``n = 2`` these are the Chebyshev polynomials ``T_l`` (the ``alpha -> 0`` limit);
    for ``n = 3`` the Legendre polynomials. Computed with the stable three-term recurrence
    (Atkinson & Han eq. 2.79)::

        P_0 = 1,  P_1 = t,  P_{l+1} = ((2l + n - 2) t P_l - l P_{l-1}) / (l + n - 2).

    Args:
        L: maximum degree (>= 0).
        n: ambient dimension (the sphere is ``S^{n-1}``), >= 2.
        t: array of any shape with entries in ``[-1, 1]`` (not checked, values outside
            simply evaluate the polynomial).

    Returns:
        float64 array of shape ``(L + 1, *t.shape)``.
    """
    L = check_int("L", L, minimum=0)
    n = _check_n(n)
    t = np.asarray(t, dtype=np.float64)
    out = np.empty((L + 1, *t.shape), dtype=np.float64)
    out[0] = 1.0
    if L >= 1:
        out[1] = t
    for l in range(1, L):
        out[l + 1] = ((2 * l + n - 2) * t * out[l] - l * out[l - 1]) / (l + n - 2)
    return out


def harmonic_dimension(l: int, n: int) -> int:
    """``dim H_l(S^{n-1}) = C(l+n-1, n-1) - C(l+n-3, n-1)``; ``(l+1)^2`` for ``n = 4``, ``2l+1`` for ``n = 3``."""
    l = check_int("l", l, minimum=0)
    n = _check_n(n)
    lower = comb(l + n - 3, n - 1) if l >= 2 else 0
    return comb(l + n - 1, n - 1) - lower


def funk_hecke_constant(n: int) -> float:
    """``|S^{n-2}| / |S^{n-1}| = Gamma(n/2) / (sqrt(pi) Gamma((n-1)/2))`` (``1/pi`` for ``n = 2``)."""
    n = _check_n(n)
    return float(np.exp(lgamma(n / 2) - 0.5 * np.log(pi) - lgamma((n - 1) / 2)))


def funk_hecke_eigenvalues(
    profile: Callable[[np.ndarray], np.ndarray],
    n: int,
    L: int,
    *,
    quad_order: int | None = None,
    rule: str = "angle",
) -> np.ndarray:
    """Per-function eigenvalues ``lambda_0..lambda_L`` of the zonal kernel ``k(x,y) = profile(x . y)``.

    ``lambda_l = (|S^{n-2}|/|S^{n-1}|) int_{-1}^{1} profile(t) P_l(t) (1-t^2)^{(n-3)/2} dt``,
    the eigenvalue of the integral operator w.r.t. the normalised surface measure on
    ``S^{n-1}``; each has multiplicity :func:`harmonic_dimension` ``(l, n)``.

    Args:
        profile: vectorised ``t -> kappa(t)`` on ``[-1, 1]``. If it has an ``of_angle``
            attribute, ``of_angle(theta)`` is used with ``rule="angle"``.
        n: ambient dimension (>= 2).
        L: maximum degree (>= 0).
        quad_order: number of quadrature nodes; default ``2 * L + 2 * n + 200``
            (the tests check that 1000 nodes change nothing above 1e-12 * lambda_0 for the
            halfspace profiles up to ``L = 80``).
        rule: ``"angle"`` (Gauss–Legendre in ``theta``; default, right for arccos-type
            profiles) or ``"jacobi"`` (Gauss–Jacobi in ``t`` with weight ``(1-t^2)^{(n-3)/2}``;
            exact for polynomial profiles of degree ``<= 2 * quad_order - 1 - L``).

    Returns:
        float64 array of shape ``(L + 1,)``.
    """
    n = _check_n(n)
    L = check_int("L", L, minimum=0)
    if not callable(profile):
        raise InputTypeError(f"profile must be callable t -> kappa(t), got {profile!r}.")
    q = 2 * L + 2 * n + 200 if quad_order is None else check_int("quad_order", quad_order, minimum=1)
    if rule == "angle":
        x, w = roots_legendre(q)
        theta = 0.5 * pi * (x + 1.0)
        w = 0.5 * pi * w * np.sin(theta) ** (n - 2)
        t = np.cos(theta)
        vals = profile.of_angle(theta) if hasattr(profile, "of_angle") else profile(t)
    elif rule == "jacobi":
        a = (n - 3) / 2
        t, w = roots_jacobi(q, a, a)
        vals = profile(t)
    else:
        raise InputValueError(f"rule must be 'angle' or 'jacobi', got {rule!r}.")
    vals = np.asarray(vals, dtype=np.float64)
    if vals.shape != t.shape:
        raise InputValueError(
            f"profile must map an array of shape {t.shape!r} to the same shape, got {vals.shape!r}."
        )
    if not np.all(np.isfinite(vals)):
        raise InputValueError("profile returned NaN or infinite values on [-1, 1].")
    P = gegenbauer_table(L, n, t)
    return funk_hecke_constant(n) * (P @ (w * vals))


class HalfspaceProductProfile:
    """``kappa_m(t) = ((pi - arccos t) / (2 pi))^m``: the kernel of a product of ``m`` random halfspaces.

    For ``u`` uniform on the sphere, ``P[u.x > 0, u.y > 0] = (pi - theta) / (2 pi)`` with
    ``theta`` the angle between ``x`` and ``y`` (Goemans & Williamson 1995, Lemma 3.2); a
    product of ``m`` independent such indicators has kernel ``kappa_1^m`` (DESIGN.md §4).
    """

    def __init__(self, m: int) -> None:
        self.m = check_int("m", m, minimum=0)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        return self.of_angle(np.arccos(t))

    def of_angle(self, theta: np.ndarray) -> np.ndarray:
        """The profile as a function of the angle ``theta`` in ``[0, pi]``."""
        return ((pi - np.asarray(theta, dtype=np.float64)) / (2 * pi)) ** self.m

    def __repr__(self) -> str:
        return f"HalfspaceProductProfile(m={self.m})"


def halfspace_product_profile(m: int) -> HalfspaceProductProfile:
    """``t -> ((pi - arccos t) / (2 pi))^m`` (callable, with ``.of_angle``)."""
    return HalfspaceProductProfile(m)


def zonal_from_eigenvalues(eigenvalues: np.ndarray, n: int, t: np.ndarray) -> np.ndarray:
    """Addition-theorem synthesis ``sum_l lambda_l dim_l P_l(t)`` (a truncated zonal profile).

    Runs the recurrence of :func:`gegenbauer_table` with three arrays of ``t``'s shape, so the
    memory is ``O(t.size)`` at any degree (no ``(L + 1, *t.shape)`` table). Forward error per
    entry: at most ``sum_l lambda_l dim_l (2 l + 2) u`` for ``|t| <= 1`` (``|P_l| <= 1``).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    n = _check_n(n)
    L = lam.size - 1
    coef = lam * np.array([harmonic_dimension(l, n) for l in range(L + 1)], dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    p_prev, p_cur = np.ones_like(t), t.copy()
    out = np.full_like(t, coef[0]) if L >= 0 else np.zeros_like(t)
    if L >= 1:
        out += coef[1] * p_cur
    for l in range(1, L):
        p_prev, p_cur = p_cur, ((2 * l + n - 2) * t * p_cur - l * p_prev) / (l + n - 2)
        out += coef[l + 1] * p_cur
    return out
