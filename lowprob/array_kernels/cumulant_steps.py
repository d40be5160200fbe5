"""Cumulant propagation ("kprop") through an MLP as deduction and projection rules, on any backend.

Following ARC's cumulant propagation (Wu, Lecomte, Winer, Robinson, Hilton, Christiano,
arXiv 2605.05179); the formulas are our own derivation, checked by tests (exact on linear
networks; order 2 equals Gaussian mean/covariance propagation).

The representation is a :class:`CumulantState`: ``kappa_1 = mean (n,)``, ``kappa_2 = cov
(n, n)`` and for ``K = 3`` ``kappa_3 (n, n, n)``; ``diagonal=True`` keeps only the power
cumulants ``kappa_d(i, ..., i)`` (all ``(n,)``), ``structured=True`` the full covariance plus
per-neuron ``kappa_3`` and the pair cumulants of :class:`WickSource`.

* **Deduction through a** :class:`LinearLayer` ``h = x @ W`` (exact): ``kappa_d(h) =
  W^{(x)d} kappa_d(x)``: ``mean @ W``, ``W^T C W``, ``kappa_3 x_1 W x_2 W x_3 W``; power
  cumulants ``kappa_d(h_j) = sum_a W_aj^d kappa_d(x_a)``. Structured: pair third cumulants
  ``M = W2^T (d W + Q W) + 2 (W o (Q W))^T W`` (``W2 = W o W``; three matmuls, no ``n^3``).
* **Deduction through an** :class:`ActivationLayer` is exact but not representable: it
  returns a :class:`PendingActivation` (the law of ``phi(h)``), which
* **the projector** (:class:`CumulantProjector`) maps back onto ``K`` cumulants by
  moment-matching a Gaussian per neuron, ``h_i = m_i + s_i z_i``, expanding
  ``phi(h_i) = sum_k a_k(i) He_k(z_i)/k!`` with ``rho = corr(h)``, ``t_ijk =
  kappa_3(h)_ijk/(s_i s_j s_k)``:

  - mean ``a_0 + a_3 t_iii / 6`` (first-order Edgeworth; ``K = 3``), variance ``b_0 + b_3
    t_iii / 6 - mean^2``;
  - covariance ``sum_{k=1}^P a_k(i) a_k(j) rho^k / k!`` (Mehler) ``+ (a_1(i) a_2(j) t_ijj +
    a_2(i) a_1(j) t_iij) / 2``;
  - third cumulant: the Gaussian part (exact on the diagonal, Mehler on ``(i, i, k)``, the
    Wick sum ``sum_{p,q,r} a_p a_q a_r rho_ij^{s1} rho_jk^{s2} rho_ik^{s3}/(s1! s2! s3!)`` on
    distinct indices) plus ``a_1(i) a_1(j) a_1(k) t_ijk``.

Each rule reports its analytic FLOPs (``(m,k)@(k,p)`` = ``2mkp``, elementwise 1,
transcendental :data:`~lowprob.array_kernels.activations.TRANSCENDENTAL_FLOPS`) to the loop's
counter. Standard library only (bundled into the WhestBench export); validation is done by
:mod:`lowprob.propagation.cumulants`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from lowprob.array_kernels.activations import TRANSCENDENTAL_FLOPS, Activation, ArrayBackend

__all__ = [
    "ActivationLayer",
    "CumulantProjector",
    "CumulantState",
    "LinearLayer",
    "PendingActivation",
    "WickSource",
    "activation_rule",
    "diagram_triples",
    "initial_cumulants",
    "linear_rule",
    "mehler_covariance",
    "mlp_steps",
    "step_flops",
]


def mehler_covariance(coeffs_i: Any, coeffs_j: Any, rho: Any, xp: Any) -> Any:
    """``sum_{k=1}^{K} a_k(i) b_k(j) rho_ij^k / k!`` for coefficient arrays ``(K+1, n)``; ``(n, n)``.

    The ``k = 0`` row (the mean) is skipped; truncation error ``O(|rho|^{K+1})``. One
    ``einsum`` over the stacked powers ``rho^k`` (``K n^2`` memory), so the op count (and
    flopscope's per-op overhead) does not grow with ``K``.
    """
    K = coeffs_i.shape[0] - 1
    n_i, n_j = rho.shape
    inv_fact = xp.asarray([1.0 / math.factorial(k) for k in range(1, K + 1)], dtype=rho.dtype)
    powers = xp.cumprod(xp.broadcast_to(rho[None], (K, n_i, n_j)), axis=0)
    return xp.einsum("ki,kj,kij->ij", coeffs_i[1:] * inv_fact[:, None], coeffs_j[1:], powers)


@dataclass(frozen=True)
class WickSource:
    """Pair third cumulants carried between steps in structured ``K = 3`` mode.

    After a nonlinearity ``pair[a, c] = kappa_3(x_a, x_a, x_c)`` (zero diagonal), with the
    Hermite coefficients ``a1``, ``a2`` of ``phi`` and the input correlations ``rho_off``
    (diagnostics); after a linear step ``pair[i, j] = kappa_3(h_i, h_i, h_j)`` (diagonal
    ``kappa_3(h_i)``) and the other fields are ``None``.
    """

    pair: Any
    a1: Any
    a2: Any
    rho_off: Any


@dataclass(frozen=True)
class CumulantState:
    """Joint cumulants of one layer's activations (a representation for the loop).

    Attributes:
        mean: ``(n,)`` first cumulants.
        cov: ``(n, n)`` second cumulants, or ``(n,)`` variances when ``diagonal``.
        k3: ``(n, n, n)`` third cumulants; ``(n,)`` when ``diagonal`` or ``structured``;
            ``None`` for ``K = 2``.
        diagonal: only power cumulants are kept.
        structured: full covariance, per-neuron ``kappa_3``, pair cumulants in ``wick``.
        wick: the pieces of ``kappa_3`` the next linear step contracts (structured mode).
    """

    mean: Any
    cov: Any
    k3: Any = None
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
    def n_terms(self) -> int:
        """Numbers held: ``n + n^2 (+ n^3)``, ``n`` per power cumulant when diagonal."""
        n = self.width
        second = n if self.diagonal else n * n
        third = 0 if self.k3 is None else (n if (self.diagonal or self.structured) else n**3)
        return n + second + third

    def total_mass(self) -> float:
        """A probability law: ``E_M[1] = 1``."""
        return 1.0

    @property
    def variance(self) -> Any:
        return self.cov if self.diagonal else self.cov.diagonal().copy()

    @property
    def third(self) -> Any:
        """Per-neuron third cumulants ``kappa_3(i, i, i)`` (``None`` for ``K = 2``)."""
        if self.k3 is None:
            return None
        if self.diagonal or self.structured:
            return self.k3
        n = self.width
        return self.k3.reshape(-1)[:: n * n + n + 1].copy()


def initial_cumulants(
    width: int, order: int, diagonal: bool, structured: bool, xp: Any, dtype: Any
) -> CumulantState:
    """Cumulants of ``x_0 ~ N(0, I_n)``: zero mean, identity covariance, zero ``kappa_3``."""
    n = width
    if structured:
        return CumulantState(xp.zeros(n, dtype=dtype), xp.eye(n, dtype=dtype),
                             xp.zeros(n, dtype=dtype), structured=True)
    mean = xp.zeros(n, dtype=dtype)
    cov = xp.ones(n, dtype=dtype) if diagonal else xp.eye(n, dtype=dtype)
    k3 = None
    if order == 3:
        k3 = xp.zeros(n, dtype=dtype) if diagonal else xp.zeros((n, n, n), dtype=dtype)
    return CumulantState(mean, cov, k3, diagonal)


@dataclass(frozen=True)
class LinearLayer:
    """The step ``h = x @ W`` (``W`` of shape ``(n, n)``, row-vector convention)."""

    W: Any
    backend: ArrayBackend


@dataclass(frozen=True)
class ActivationLayer:
    """The step ``x = phi(h)`` elementwise."""

    activation: Activation
    backend: ArrayBackend


@dataclass(frozen=True)
class PendingActivation:
    """The exact law of ``phi(h)`` for ``h`` with cumulants ``state``, not yet projected."""

    state: CumulantState
    activation: Activation
    backend: ArrayBackend

    @property
    def n_terms(self) -> int:
        return self.state.n_terms

    def total_mass(self) -> float:
        return 1.0


def mlp_steps(weights: Any, activation: Activation, backend: ArrayBackend) -> list[Any]:
    """``[LinearLayer(W_1), ActivationLayer(phi), ..., LinearLayer(W_L), ActivationLayer(phi)]``."""
    steps: list[Any] = []
    for w in weights:
        steps.append(LinearLayer(w, backend))
        steps.append(ActivationLayer(activation, backend))
    return steps


def step_flops(
    state: CumulantState, step: Any, hermite_order: int, third_order_terms: int
) -> tuple[int, int]:
    """Analytic FLOPs ``(linear, nonlinear)`` of one layer from ``state`` (module docstring)."""
    n = state.width
    K = state.order
    P = hermite_order
    T = TRANSCENDENTAL_FLOPS
    if state.diagonal:
        return 2 * n * n * K + (K - 1) * n * n, 20 * n
    lin = 2 * n * n + 4 * n**3
    nonlin = (4 * P + 6) * n * n + T * n
    if state.structured:
        return lin + 6 * n**3 + 8 * n * n, nonlin + (5 * P + 24) * n * n
    if K == 3:
        lin += 6 * n**4
        nonlin += (8 * len(diagram_triples(third_order_terms)) + 12) * n**3 + (4 * P + 10) * n * n
    return lin, nonlin


def linear_rule(rep: CumulantState, step: LinearLayer, flops: Any) -> CumulantState:
    """Deduction ``(LinearLayer, CumulantState)``: exact ``kappa_d <- W^{(x)d} kappa_d``."""
    xp = step.backend.xp
    W = step.W
    flops.add(step_flops(rep, step, 1, 1)[0], "linear")
    mean = rep.mean @ W
    if rep.structured:
        cov = W.T @ rep.cov @ W
        if rep.wick is None:  # Gaussian input: only the carried diagonal of kappa_3
            return CumulantState(mean, cov, rep.k3 @ (W * W * W), structured=True)
        Q = rep.wick.pair
        QW = Q @ W
        M = (W * W).T @ (rep.k3[:, None] * W + QW) + 2.0 * ((W * QW).T @ W)
        return CumulantState(mean, cov, xp.diag(M), structured=True,
                             wick=WickSource(M, None, None, None))
    if rep.diagonal:
        W2 = W * W
        k3 = None if rep.k3 is None else rep.k3 @ (W2 * W)
        return CumulantState(mean, rep.cov @ W2, k3, True)
    cov = W.T @ rep.cov @ W
    cov = 0.5 * (cov + cov.T)
    k3 = None
    if rep.k3 is not None:
        k3 = xp.tensordot(rep.k3, W, axes=([0], [0]))  # (b, c, j)
        k3 = xp.tensordot(k3, W, axes=([0], [0]))  # (c, j, k)
        k3 = xp.tensordot(k3, W, axes=([0], [0]))  # (j, k, l)
    return CumulantState(mean, cov, k3, False)


def activation_rule(rep: CumulantState, step: ActivationLayer, flops: Any) -> PendingActivation:
    """Deduction ``(ActivationLayer, CumulantState)``: the exact law, kept lazy for the projector."""
    return PendingActivation(rep, step.activation, step.backend)


def diagram_triples(P: int) -> list[tuple[int, int, int, int, int, int]]:
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


def _outer3(a: Any, b: Any, c: Any) -> Any:
    return a[:, None, None] * b[None, :, None] * c[None, None, :]


def _gaussian_third_cumulant(a: Any, c: Any, d3: Any, rho: Any, P3: int, xp: Any) -> Any:
    """Third cumulant tensor of ``phi(h)`` for Gaussian ``h`` (module docstring)."""
    n = rho.shape[0]
    rho_off = rho * (1.0 - xp.eye(n, dtype=rho.dtype))
    powers = [xp.ones_like(rho_off)]
    for _ in range(P3 + 1):
        powers.append(powers[-1] * rho_off)
    G = xp.zeros((n, n, n), dtype=rho.dtype)
    for p, q, r, s1, s2, s3 in diagram_triples(P3):
        coef = 1.0 / (math.factorial(s1) * math.factorial(s2) * math.factorial(s3))
        G += (_outer3(a[p] * coef, a[q], a[r]) * powers[s1][:, :, None]
              * powers[s2][None, :, :] * powers[s3][:, None, :])
    pair = mehler_covariance(c, a, rho_off, xp)  # pair[i, k] = Cov((phi_i - mu_i)^2, phi_k)
    idx = xp.arange(n)
    G[idx, idx, :] = pair
    G[idx, :, idx] = pair
    G[:, idx, idx] = pair.T
    G[idx, idx, idx] = d3
    return G


@dataclass(frozen=True)
class CumulantProjector:
    """Project a :class:`PendingActivation` back onto ``K`` cumulants (module docstring).

    Attributes:
        hermite_order: ``P``, Mehler terms for covariances.
        third_order_terms: ``P_3``, Hermite terms per leg in the distinct-index Wick sum.
        var_floor: variances are floored here before ``s = sqrt(var)`` (at least 1e-20 in
            float32, where ``s^3`` of a smaller variance underflows to 0).

    Anything else (a state after a linear step) is already in the family and passes through.
    """

    hermite_order: int = 8
    third_order_terms: int = 3
    var_floor: float = 1e-30

    def __call__(self, rep: Any, claims: Any, budget: int, flops: Any) -> Any:
        if not isinstance(rep, PendingActivation):
            return rep
        _, nonlin = step_flops(rep.state, None, self.hermite_order, self.third_order_terms)
        flops.add(nonlin + rep.activation.tables_flops(rep.state.width, self.hermite_order),
                  "nonlinear")
        return self.project(rep.state, rep.activation, rep.backend)

    def project(self, state: CumulantState, act: Activation, backend: ArrayBackend) -> CumulantState:
        """Cumulants of ``phi(h)`` for ``h`` with cumulants ``state``."""
        xp = backend.xp
        P, P3 = self.hermite_order, self.third_order_terms
        K3 = state.k3 is not None
        # float32: floor at 1e-20 so that s^3 (third cumulants) stays a normal number
        floor = self.var_floor if state.mean.dtype.itemsize >= 8 else max(self.var_floor, 1e-20)
        var = xp.maximum(state.cov if state.diagonal else xp.diag(state.cov), floor)
        s = xp.sqrt(var)
        m = state.mean
        P_need = max(P, P3, 3) if K3 else P
        a, b, e3 = act.tables(m, s, P_need, max(P, 3) if K3 else 0, K3, backend)
        mu_g, e2_g = a[0], b[0]
        if K3:
            t_diag = state.third / (s * s * s)
            mean = mu_g + a[3] * t_diag / 6.0
            e2 = e2_g + b[3] * t_diag / 6.0
            d3_g = e3 - 3.0 * mu_g * e2_g + 2.0 * mu_g**3
        else:
            mean, e2 = mu_g, e2_g
        var_out = xp.maximum(e2 - mean * mean, 0.0)
        if state.diagonal:
            k3 = d3_g + a[1] ** 3 * t_diag if K3 else None
            return CumulantState(mean, var_out, k3, True)
        rho = xp.clip(state.cov / xp.outer(s, s), -1.0, 1.0)  # a correlation (Cauchy-Schwarz)
        cov = mehler_covariance(a[: P + 1], a[: P + 1], rho, xp)
        if state.structured:
            off = 1.0 - xp.eye(m.shape[0], dtype=rho.dtype)
            rho_off = rho * off
            c = b[: P + 1] - 2.0 * mu_g[None, :] * a[: P + 1]
            pair = mehler_covariance(c, a[: P + 1], rho_off, xp)
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
            n = m.shape[0]
            t = state.k3 / _outer3(s, s, s)
            idx = xp.arange(n)
            t_iij = t[idx, idx, :]
            t_ijj = t[:, idx, idx]
            cov = cov + 0.5 * (xp.outer(a[1], a[2]) * t_ijj + xp.outer(a[2], a[1]) * t_iij)
            c = b[: P + 1] - 2.0 * mu_g[None, :] * a[: P + 1]
            G = _gaussian_third_cumulant(a, c, d3_g, rho, P3, xp)
            k3 = G + _outer3(a[1], a[1], a[1]) * t
        xp.fill_diagonal(cov, var_out)
        return replace(state, mean=mean, cov=cov, k3=k3)
