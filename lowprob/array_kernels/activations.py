"""Activations as objects: the forward map and the Gaussian Hermite tables, on any array backend.

Per neuron write ``h = m + s z`` with ``z ~ N(0, 1)`` and ``alpha = m / s``. An
:class:`Activation` knows

* ``forward(h, backend)``: ``phi(h)`` elementwise;
* ``tables(m, s, order_a, order_b, need_e3, backend) -> (a, b, e3)``: the Hermite
  coefficients ``a_k = E[phi(h) He_k(z)]`` (``k = 0..order_a``, shape ``(order_a+1, n)``),
  ``b_k = E[phi(h)^2 He_k(z)]`` (``(order_b+1, n)``) and ``E[phi(h)^3]`` (``(n,)`` or ``None``);
* ``homogeneous``: ``phi(c h) = c phi(h)`` for ``c > 0`` (ReLU), which makes a bias-free
  net positively homogeneous, ``f(r u) = r f(u)``: the sampler then integrates the radius
  exactly (:mod:`lowprob.array_kernels.designs`);
* ``flops_per_element``: our analytic count of one ``phi`` evaluation (1 for ReLU, the
  transcendental price otherwise);
* ``critical_variance``: ``1 / E[phi(z)^2]`` when known in closed form (ReLU: 2), else ``None``.

ReLU closed forms (Gaussian integration by parts, ``a_k = E[d^k/dz^k phi(m + s z)]``)::

    a_0 = m Phi(alpha) + s phi(alpha)      a_1 = s Phi(alpha)
    a_k = s phi(alpha) He_{k-2}(-alpha)    (k >= 2)
    b_0 = s^2((alpha^2+1) Phi + alpha phi),  b_1 = 2 s^2 (alpha Phi + phi),  b_2 = 2 s^2 Phi,
    b_k = 2 s^2 phi(alpha) He_{k-3}(-alpha)  (k >= 3)
    E relu^3 = s^3((alpha^3 + 3 alpha) Phi + (alpha^2 + 2) phi)

Smooth activations (GELU ``h Phi(h)``, tanh) use ``Q``-node Gauss-Hermite quadrature; the
backend supplies the rule (``backend.gh_rule``). References: Cho & Saul 2009; Abramowitz &
Stegun 22.

This module imports nothing but the standard library: it is bundled verbatim into the
WhestBench export (:mod:`lowprob.integrations.whestbench_export`), where the backend is
``flopscope.numpy``. Validation lives in the numpy-facing callers.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GELU",
    "RELU",
    "TANH",
    "Activation",
    "ArrayBackend",
    "QuadratureActivation",
    "ReLU",
    "TRANSCENDENTAL_FLOPS",
    "flopscope_backend",
    "hermite_polynomials",
    "stack_rows",
]


#: Transcendental functions (exp, Phi, phi, sqrt, tanh) count this many FLOPs per element.
TRANSCENDENTAL_FLOPS = 16


@dataclass(frozen=True)
class ArrayBackend:
    """An array namespace plus the special functions the formulas need.

    Attributes:
        xp: ``numpy`` or ``flopscope.numpy``.
        ndtr: standard normal CDF ``Phi``.
        npdf: standard normal density ``phi``.
        name: for diagnostics.
        gh_rule: ``n -> (nodes, weights)`` of the probabilists' Gauss-Hermite rule with
            weights summing to 1, or ``None`` where unavailable (flopscope).
    """

    xp: Any
    ndtr: Any
    npdf: Any
    name: str
    gh_rule: Any = None


def flopscope_backend() -> ArrayBackend:
    """The ``flopscope.numpy`` backend: every op metered by flopscope; no Gauss-Hermite rule."""
    import flopscope as flops
    import flopscope.numpy as fnp

    return ArrayBackend(fnp, flops.stats.norm.cdf, flops.stats.norm.pdf, "flopscope")


def _normal_cdf_pdf(a: Any, backend: ArrayBackend) -> tuple[Any, Any]:
    """``(Phi(a), phi(a))`` in ``a``'s dtype (flopscope's ``norm.cdf``/``pdf`` return float64
    for float32 input, which would silently promote a float32 propagation to float64)."""
    xp = backend.xp
    return (xp.asarray(backend.ndtr(a), dtype=a.dtype), xp.asarray(backend.npdf(a), dtype=a.dtype))


def hermite_polynomials(x: Any, order: int, xp: Any) -> list[Any]:
    """``[He_0(x), ..., He_order(x)]`` by ``He_{k+1} = x He_k - k He_{k-1}``."""
    out = [xp.ones_like(x), x]
    for k in range(1, order):
        out.append(x * out[k] - k * out[k - 1])
    return out[: order + 1]


def stack_rows(rows: list[Any], xp: Any) -> Any:
    """Stack ``(n,)`` rows and ``(r, n)`` blocks into one ``(R, n)`` array."""
    parts = [r[None, :] if r.ndim == 1 else r for r in rows]
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)


class Activation(abc.ABC):
    """An elementwise nonlinearity ``phi`` with its Gaussian Hermite tables (module docstring).

    Subclasses implement :meth:`forward`, :meth:`tables` and :meth:`tables_flops`.
    """

    name: str = "activation"
    homogeneous: bool = False
    flops_per_element: int = 16
    critical_variance: float | None = None

    @abc.abstractmethod
    def forward(self, h: Any, backend: ArrayBackend) -> Any:
        """``phi(h)`` elementwise, on ``backend``."""

    @abc.abstractmethod
    def tables_flops(self, width: int, order: int) -> int:
        """Analytic FLOPs of :meth:`tables` for ``width`` neurons to Hermite order ``order``."""

    @abc.abstractmethod
    def tables(
        self, m: Any, s: Any, order_a: int, order_b: int, need_e3: bool, backend: ArrayBackend
    ) -> tuple[Any, Any, Any]:
        """Hermite/Wick tables of ``phi`` under ``N(m, s^2)`` per neuron (module docstring)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ReLU(Activation):
    """``phi(h) = max(h, 0)``: closed-form tables, positively homogeneous."""

    name = "relu"
    homogeneous = True
    flops_per_element = 1
    critical_variance = 2.0

    def forward(self, h: Any, backend: ArrayBackend) -> Any:
        return backend.xp.maximum(h, 0.0)

    def tables_flops(self, width: int, order: int) -> int:
        return (4 * TRANSCENDENTAL_FLOPS + 8 * max(order, 3)) * width

    def moments(self, m: Any, s: Any, backend: ArrayBackend) -> tuple[Any, Any, Any]:
        """``(E relu(h), E relu(h)^2, E relu(h)^3)`` elementwise, any shape."""
        a = m / s
        Phi, ph = _normal_cdf_pdf(a, backend)
        return (s * (a * Phi + ph), s * s * ((a * a + 1.0) * Phi + a * ph),
                s * s * s * ((a * a * a + 3.0 * a) * Phi + (a * a + 2.0) * ph))

    def tables(
        self, m: Any, s: Any, order_a: int, order_b: int, need_e3: bool, backend: ArrayBackend
    ) -> tuple[Any, Any, Any]:
        """One evaluation of ``Phi(alpha)``, ``phi(alpha)`` and ``He_k(-alpha)`` for all three."""
        xp = backend.xp
        a = m / s
        Phi, ph = _normal_cdf_pdf(a, backend)
        s2 = s * s
        top = max(order_a - 2, order_b - 3, 0)
        he = hermite_polynomials(-a, top, xp)
        rows_a = [s * (a * Phi + ph), s * Phi][: order_a + 1]
        if order_a >= 2:
            rows_a.append((s * ph)[None, :] * xp.stack(he[: order_a - 1], axis=0))
        rows_b = [s2 * ((a * a + 1.0) * Phi + a * ph), 2.0 * s2 * (a * Phi + ph), 2.0 * s2 * Phi]
        rows_b = rows_b[: order_b + 1]
        if order_b >= 3:
            rows_b.append((2.0 * s2 * ph)[None, :] * xp.stack(he[: order_b - 2], axis=0))
        e3 = s2 * s * ((a * a * a + 3.0 * a) * Phi + (a * a + 2.0) * ph) if need_e3 else None
        return stack_rows(rows_a, xp), stack_rows(rows_b, xp), e3


class QuadratureActivation(Activation):
    """A smooth ``phi`` whose tables come from ``n_nodes``-point Gauss-Hermite quadrature.

    ``E[phi(m + s z)^p He_k(z)] ~ sum_q w_q phi(m + s z_q)^p He_k(z_q)``; exact for
    polynomials of degree ``< 2 n_nodes``, spectrally accurate for analytic ``phi``.
    """

    def __init__(self, name: str, fn: Callable[[Any, ArrayBackend], Any], n_nodes: int = 100) -> None:
        self.name = name
        self._fn = fn
        self.n_nodes = n_nodes

    def forward(self, h: Any, backend: ArrayBackend) -> Any:
        return self._fn(h, backend)

    def tables_flops(self, width: int, order: int) -> int:
        return self.n_nodes * (TRANSCENDENTAL_FLOPS + 4 * (max(order, 3) + 2)) * width

    def _moments(self, m: Any, s: Any, order: int, power: int, backend: ArrayBackend) -> Any:
        if backend.gh_rule is None:
            raise ValueError(
                f"activation {self.name!r} needs Gauss-Hermite nodes, which the "
                f"{backend.name!r} backend does not provide; use the numpy backend."
            )
        xp = backend.xp
        z, w = backend.gh_rule(self.n_nodes)
        z = xp.asarray(z)
        he = xp.stack(hermite_polynomials(z, order, xp), axis=0)  # (order+1, Q)
        f = self.forward(m[:, None] + s[:, None] * z[None, :], backend)  # (n, Q)
        if power != 1:
            f = f**power
        return (he * xp.asarray(w)[None, :]) @ f.T  # (order+1, n)

    def tables(
        self, m: Any, s: Any, order_a: int, order_b: int, need_e3: bool, backend: ArrayBackend
    ) -> tuple[Any, Any, Any]:
        a = self._moments(m, s, order_a, 1, backend)
        b = self._moments(m, s, order_b, 2, backend)
        e3 = self._moments(m, s, 0, 3, backend)[0] if need_e3 else None
        return a, b, e3


#: The activations lowprob knows (registered by name in
#: :data:`lowprob.toy_models.random_mlp.ACTIVATIONS`).
RELU = ReLU()
def _gelu(h: Any, backend: ArrayBackend) -> Any:
    return h * backend.ndtr(h)


def _tanh(h: Any, backend: ArrayBackend) -> Any:
    return backend.xp.tanh(h)


GELU = QuadratureActivation("gelu", _gelu)
TANH = QuadratureActivation("tanh", _tanh)
