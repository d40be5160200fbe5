"""Fast block rotations of spherical harmonics on ``S^3 = SU(2)`` (Wigner ``D`` matrices).

Identify ``x in S^3`` with the unit quaternion / SU(2) matrix
``q(x) = [[x0 + i x3, x2 + i x1], [-x2 + i x1, x0 - i x3]]`` (a linear isometry,
``x . y = Re tr(q(x)^H q(y)) / 2``). The spin-``j`` representation (``l = 2 j``) acts on
homogeneous polynomials of degree ``l`` in ``(z1, z2)`` by ``(pi(U) P)(z) = P(U^{-1} z)``; in the
orthonormal basis ``e_p = z1^p z2^(l-p) / sqrt(p! (l-p)!)`` its matrix is ``D^l(U)``
(:func:`wigner_d`), unitary, with ``D^l(U V) = D^l(U) D^l(V)``. By Peter--Weyl the functions
``sqrt(l + 1) D^l_{pq}(q(x))`` are an orthonormal basis of the degree-``l`` harmonics ``H_l``
on ``S^3`` (normalised surface measure), ``dim H_l = (l + 1)^2``.

Rotations are applied in the Euler form (the classic "fixed ``d(pi/2)``" trick, e.g. Pinchon &
Hoggan, J. Phys. A 40 (2007) 1597)::

    V = R_z(alpha) R_y(beta) R_z(gamma),   R_y(beta) = R_z(pi/2) Y R_z(beta) Y^{-1} R_z(-pi/2),
    D^l(V) = Z(alpha + pi/2) d Z(beta) d^T Z(gamma - pi/2),

with ``Y = R_y(pi/2)``, ``d = D^l(Y)`` a fixed real orthogonal matrix (instance-independent
precomputation) and ``Z(phi) = D^l(R_z(phi)) = diag(exp(i phi (2 p - l) / 2))``. Applying
``D^l(V)^T`` to an ``(l+1) x (l+1)`` coefficient matrix costs two real-by-complex matrix
products, ``8 (l+1)^3`` FLOPs, i.e. ``O(l)`` per coefficient, instead of forming ``D^l(V)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lowprob.propagation import executed
from lowprob.propagation.flops import FlopCounter

__all__ = [
    "apply_rotation_transpose",
    "euler_angles",
    "quaternion",
    "su2_generator",
    "wigner_d",
    "wigner_d_half_pi",
]


def quaternion(x: np.ndarray) -> np.ndarray:
    """``q(x)`` for ``x (..., 4)``: ``(..., 2, 2)`` complex (SU(2) when ``|x| = 1``)."""
    x = np.asarray(x, dtype=np.float64)
    q = np.empty(x.shape[:-1] + (2, 2), dtype=np.complex128)
    q[..., 0, 0] = x[..., 0] + 1j * x[..., 3]
    q[..., 0, 1] = x[..., 2] + 1j * x[..., 1]
    q[..., 1, 0] = -x[..., 2] + 1j * x[..., 1]
    q[..., 1, 1] = x[..., 0] - 1j * x[..., 3]
    return q


def wigner_d(l: int, U: np.ndarray) -> np.ndarray:
    """``D^l(U)`` for ``U (..., 2, 2)``: ``(..., l+1, l+1)``, ``D[p, q]`` = coefficient of ``e_p`` in ``pi(U) e_q``.

    ``pi(U) e_q = (conj(a) z1 + conj(c) z2)^q (conj(b) z1 + conj(d) z2)^(l-q) / sqrt(q! (l-q)!)``
    for ``U = [[a, b], [c, d]]``, expanded by binomial convolutions (precomputation and tests
    only: the online path uses :func:`apply_rotation_transpose`).
    """
    U = np.asarray(U, dtype=np.complex128)
    a, b, c, d = (np.conj(U[..., i, j]) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    shape = U.shape[:-2]
    out = np.zeros(shape + (l + 1, l + 1), dtype=np.complex128)
    lf = [math.lgamma(k + 1.0) for k in range(l + 2)]

    def power(x1: np.ndarray, x2: np.ndarray, s: int) -> np.ndarray:  # coeffs of (x1 z1 + x2 z2)^s by z1-power
        t = np.arange(s + 1)
        binom = np.array([math.comb(s, int(k)) for k in t], dtype=np.float64)
        return binom * x1[..., None] ** t * x2[..., None] ** (s - t)

    for q in range(l + 1):
        A, Bq = power(a, c, q), power(b, d, l - q)
        col = np.zeros(shape + (l + 1,), dtype=np.complex128)
        for t in range(q + 1):
            col[..., t : t + l - q + 1] += A[..., t : t + 1] * Bq
        p = np.arange(l + 1)
        scale = np.exp(0.5 * (np.array([lf[k] + lf[l - k] for k in p]) - lf[q] - lf[l - q]))
        out[..., :, q] = col * scale
    return out


@lru_cache(maxsize=64)
def wigner_d_half_pi(l: int) -> np.ndarray:
    """``d = D^l(R_y(pi/2))``, real orthogonal (imaginary part is exactly zero).

    The binomial expansion loses digits as ``l`` grows (orthogonality error 2e-14 at ``l = 20``,
    2e-11 at ``l = 40``, 3e-8 at ``l = 60``); beyond ``1e-10`` a :class:`~lowprob.errors.NumericalError`
    is raised (degree ``l`` about 45, i.e. kernel budgets ``K`` of about 3e4 on ``S^3``).
    """
    s = math.sqrt(0.5)
    d = np.ascontiguousarray(wigner_d(l, np.array([[s, -s], [s, s]])).real)
    err = float(np.max(np.abs(d @ d.T - np.eye(l + 1))))
    if err > 1e-10:
        from lowprob.errors import NumericalError

        raise NumericalError(
            f"Wigner d(pi/2) for degree l={l!r} is orthogonal only to {err:.1e} (binomial expansion); "
            "use a smaller kernel budget (degrees <= ~45) or the 'kernel_clenshaw' estimator."
        )
    return d


def euler_angles(V: np.ndarray, flops: FlopCounter | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alpha, beta, gamma)`` with ``V = R_z(alpha) R_y(beta) R_z(gamma)`` (``V (..., 2, 2)`` in SU(2)).

    ``R_z(phi) = diag(e^{-i phi/2}, e^{i phi/2})``, ``R_y(b) = [[cos b/2, -sin b/2], [sin b/2, cos b/2]]``;
    ``V = [[a, b], [-conj b, conj a]]`` gives ``cos(beta/2) = |a|``, ``sin(beta/2) = |b|``,
    ``alpha + gamma = -2 arg a``, ``alpha - gamma = -2 arg(-b)``.
    """
    a, b = V[..., 0, 0], V[..., 0, 1]
    beta = 2.0 * np.arctan2(np.abs(b), np.abs(a))
    s, t = -2.0 * np.angle(a), -2.0 * np.angle(-b)
    if flops is not None:
        flops.add(40.0, "rotation_angles")
    return 0.5 * (s + t), beta, 0.5 * (s - t)


def _phase(l: int, phi: np.ndarray) -> np.ndarray:
    """``diag(Z(phi))`` for ``phi (B,)``: ``(B, l+1, 1)``."""
    return np.exp(0.5j * phi[:, None] * (2.0 * np.arange(l + 1) - l))[:, :, None]


def apply_rotation_transpose(C: np.ndarray, l: int, angles: tuple[np.ndarray, np.ndarray, np.ndarray],
                             flops: FlopCounter) -> np.ndarray:
    """``D^l(V)^T C`` for coefficient matrices ``C (B, l+1, l+1)`` and ``V`` given by its Euler angles.

    ``D^l(V)^T = Z(gamma - pi/2) d Z(beta) d^T Z(alpha + pi/2)`` (``Z`` diagonal, ``d`` real and
    fixed): three complex diagonal scalings and two real-by-complex products. Counted:
    ``8 (l+1)^3 + 18 (l+1)^2 + 30 (l+1)`` FLOPs per instance (the last term for the phases).
    """
    if l == 0:
        return C
    alpha, beta, gamma = angles
    d = wigner_d_half_pi(l)
    X = executed.mul(_phase(l, alpha + 0.5 * np.pi), C, "rotation")
    X = executed.einsum("qp,bqr->bpr", d, X, "rotation")  # d^T X
    X = executed.mul(_phase(l, beta), X, "rotation")
    X = executed.einsum("pq,bqr->bpr", d, X, "rotation")  # d X
    X = executed.mul(_phase(l, gamma - 0.5 * np.pi), X, "rotation")
    k = l + 1
    flops.add(8.0 * k**3 + 18.0 * k**2 + 30.0 * k, "rotation")
    return X


def su2_generator(l: int, X: np.ndarray) -> np.ndarray:
    """``d pi(X)`` for ``X`` in ``su(2)`` on the basis ``e_p``: ``(d pi(X) P)(z) = -(X z) . grad P``.

    Nonzero entries: ``[q, q] = -(X11 q + X22 (l - q))``, ``[q-1, q] = -X12 sqrt(q (l-q+1))``,
    ``[q+1, q] = -X21 sqrt((q+1)(l-q))``.
    """
    G = np.zeros((l + 1, l + 1), dtype=np.complex128)
    for q in range(l + 1):
        G[q, q] = -(X[0, 0] * q + X[1, 1] * (l - q))
        if q >= 1:
            G[q - 1, q] = -X[0, 1] * math.sqrt(q * (l - q + 1))
        if q + 1 <= l:
            G[q + 1, q] = -X[1, 0] * math.sqrt((q + 1) * (l - q))
    return G
