"""Steps of a layered computation ``x_i = L_i(x_{i-1})``, ``p = E[c(x_n)]`` (DESIGN.md section 1).

A *step* is any object; what a representation does with it is decided by the deduction
rule registered for the pair ``(type(step), type(representation))`` in
:data:`lowprob.propagation.loop.DEDUCTIONS`. The steps of the
halfspace toy, processed one neuron at a time (:class:`HalfspaceStep`, defined with the toy
in :mod:`lowprob.toy_models.halfspace`, its pullback in :mod:`lowprob.sketching.pullback`): step ``i`` multiplies the (unnormalised)
density of ``x`` by the factor ``F_i(x) = 1[u_i . x + beta_i > 0]``, so after all ``m``
steps the total mass is ``p = P[W x + b > 0]``.

A *random* step (:class:`RandomHalfspaceStep`) is the prior over a step whose
direction is not known yet (``u`` uniform on the sphere). It is what the backward
claim model is pulled back through: the claims after ``i`` of ``m`` random factors are
the product of the ``m - i`` remaining random indicators (DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowprob._validation import check_finite_array, check_int
from lowprob.errors import InputValueError
from lowprob.toy_models.halfspace import HalfspaceStep

__all__ = ["HalfspaceStep", "RandomHalfspaceStep", "halfspace_steps"]


@dataclass(frozen=True)
class RandomHalfspaceStep:
    """The prior over a halfspace step: ``1[u . x >= 0]`` with ``u`` uniform on ``S^{n-1}``."""

    n: int

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=2)

    def sample(self, rng: np.random.Generator, size: int) -> HalfspaceStep:
        """``size`` independent draws, as one batched step with normals ``(size, n)``."""
        return HalfspaceStep(rng.standard_normal((size, self.n)))


def halfspace_steps(W: np.ndarray, b: np.ndarray | None = None) -> list[HalfspaceStep]:
    """The toy's steps, one per neuron: ``W`` is ``(m, n)`` or a batch ``(B, m, n)``.

    For a batch, step ``i`` holds row ``i`` of every instance (normals ``(B, n)``).
    """
    W = check_finite_array("W", W)
    if W.ndim not in (2, 3):
        raise InputValueError(f"W must have shape (m, n) or (B, m, n), got {W.shape!r}.")
    if b is None:
        b = np.zeros(W.shape[:-1])
    b = check_finite_array("b", b, shape=W.shape[:-1])
    return [HalfspaceStep(W[..., i, :], b[..., i]) for i in range(W.shape[-2])]



# -- backward claim pullback through these steps (lowprob.sketching.pullback registry) --------
from lowprob.sketching.claims import ClaimDistribution, RandomHalfspaceProduct  # noqa: E402
from lowprob.sketching.pullback import register_pullback  # noqa: E402


@register_pullback(RandomHalfspaceStep)
def _pullback_random_halfspace(claims: ClaimDistribution, step: RandomHalfspaceStep) -> ClaimDistribution:
    """A product of ``m`` random half-spaces times one more random half-space: ``m + 1``.

    Exact because the new factor's direction is independent of the others, so the kernel
    is ``kappa_1 . kappa_m = kappa_{m+1}``.
    """
    if not isinstance(claims, RandomHalfspaceProduct):
        raise InputValueError(
            f"pullback through a RandomHalfspaceStep is defined for RandomHalfspaceProduct claims, "
            f"got {claims!r}."
        )
    if claims.dim != step.n:
        raise InputValueError(f"claims live on dim={claims.dim!r} but the step on n={step.n!r}.")
    return RandomHalfspaceProduct(claims.m + 1, claims.dim)
