"""Backward claim propagation: ``C_{i-1} = law of (f o L_i)`` for ``f ~ C_i`` (DESIGN.md §1).

:func:`pullback` dispatches on the *type of the step* through a registry, walking the
step's MRO, so a new kind of step is one decorated function::

    @register_pullback(MyStep)
    def _(claims, step):
        return ...  # a ClaimDistribution on the step's input

Built-in rules:

* any plain callable ``x -> L(x)`` (``(N, d_in) -> (N, d_out)``): composition,
  :class:`~lowprob.sketching.claims.ComposedClaims`, kernel ``k(Lx, Ly)``;
* :class:`lowprob.toy_models.halfspace.HalfspaceStep` ``F(x) = 1[w . x + b > 0]``: the step keeps
  ``x`` and multiplies the running product by ``F``, so the claim ``f`` becomes
  ``x -> F(x) f(x)`` (:class:`~lowprob.sketching.claims.MultipliedClaims`, kernel
  ``F(x) F(y) k(x, y)``). For a product of remaining random halfspaces, pulling back
  through one fixed factor multiplies by it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lowprob.errors import InputTypeError
from lowprob.registry import Registry
from lowprob.sketching.claims import ClaimDistribution, ComposedClaims, MultipliedClaims
from lowprob.toy_models.halfspace import HalfspaceStep

__all__ = ["PULLBACK_RULES", "pullback", "register_pullback"]

PullbackRule = Callable[[ClaimDistribution, Any], ClaimDistribution]
PULLBACK_RULES: Registry[PullbackRule] = Registry("pullback rule")

R = TypeVar("R", bound=PullbackRule)


def register_pullback(step_type: type, *, overwrite: bool = False) -> Callable[[R], R]:
    """Decorator registering ``rule(claims, step) -> ClaimDistribution`` for ``step_type``."""
    if not isinstance(step_type, type):
        raise InputTypeError(f"step_type must be a class, got {step_type!r}.")
    return PULLBACK_RULES.register(step_type, overwrite=overwrite)  # type: ignore[return-value]


def pullback(claims: ClaimDistribution, step: Any) -> ClaimDistribution:
    """The claim distribution one step earlier: the law of ``f o step`` for ``f ~ claims``.

    The rule is found by the most specific registered class in ``type(step).__mro__``;
    plain callables fall back to composition.
    """
    if not isinstance(claims, ClaimDistribution):
        raise InputTypeError(f"claims must be a ClaimDistribution, got {claims!r}.")
    for cls in type(step).__mro__:
        if cls in PULLBACK_RULES:
            return PULLBACK_RULES.get(cls)(claims, step)
    if callable(step):
        return ComposedClaims(claims, step)
    raise InputTypeError(
        f"no pullback rule for step {step!r} of type {type(step).__name__}; steps must be "
        "callables x -> L(x) or a registered type (see register_pullback)."
    )


@register_pullback(HalfspaceStep)
def _pullback_halfspace(claims: ClaimDistribution, step: HalfspaceStep) -> ClaimDistribution:
    """``f -> F f`` with the known factor ``F = 1[u . x + beta > 0]`` (kernel ``F(x)F(y)k(x,y)``)."""
    return MultipliedClaims(claims, step)
