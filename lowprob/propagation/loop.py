"""The generic deduction--projection loop (DESIGN.md section 1).

Forward: the activation model ``M_i`` is deduced exactly through step ``i`` and then
projected back onto at most ``K`` terms, chosen with the claim model ``C_i`` of the state
after step ``i``; at the end the loop reads off ``E_M[1]`` (the total mass of the
unnormalised density, which is ``p`` once the event has been absorbed as the last
factor). Backward: ``C_{i-1} = pullback(C_i, step_i)`` (:func:`backward_claims`, rules in
:mod:`lowprob.sketching.pullback`).

The loop knows nothing about half-spaces or harmonics. A propagation scheme is

* a *representation* (anything with ``n_terms`` and ``total_mass()``: the loop's view of the
  one K-term contract :class:`lowprob.sketching.kterm.KTerm`; every sketch is a
  representation, and every representation type registers a view as a sketch in
  :data:`lowprob.sketching.kterm.SKETCH_VIEWS`, see :mod:`lowprob.propagation.sketch_views`),
* a *deduction rule* registered for ``(step type, representation type)`` in
  :data:`DEDUCTIONS`: ``rule(rep, step, flops) -> rep`` (exact; may return a lazy
  "pending product" that the projector evaluates),
* a *projector*: ``projector(rep, claims, budget, flops) -> rep`` with at most
  ``budget`` terms.

Both report counted FLOPs *per instance* into the :class:`~lowprob.propagation.flops.FlopCounter`
they receive. A batch of ``B`` instances may be carried in one representation (leading
axis ``B``); values are then arrays of shape ``(B,)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lowprob.errors import InputTypeError, InputValueError
from lowprob.propagation.flops import FlopCounter
from lowprob.registry import Registry

__all__ = [
    "UnprojectedProduct",
    "DEDUCTIONS",
    "PropagationTrace",
    "Projector",
    "Representation",
    "StepRecord",
    "backward_claims",
    "deduce",
    "propagate",
    "register_deduction",
]


class UnprojectedProduct:
    """Mixin for a deduction's exact, unevaluated output (``g . 1[u . x > 0]`` before truncation).

    It has no mass until the method's projector evaluates it; reading ``total_mass()`` raises
    :class:`~lowprob.errors.InputTypeError` naming the fix, never a silent number.
    """

    def total_mass(self) -> Any:
        raise InputTypeError(
            f"{type(self).__name__} is an unevaluated deduction output: pass it through the method's "
            "projector (propagate(..., projector=...)) before reading its mass."
        )


@runtime_checkable
class Representation(Protocol):
    """An activation model: a (possibly signed) pseudo-distribution with ``n_terms`` numbers.

    The two members the loop needs of :class:`lowprob.sketching.kterm.KTerm` (every sketch
    satisfies this protocol; a state becomes a sketch through ``as_sketch(state, target)``).
    """

    @property
    def n_terms(self) -> int: ...

    def total_mass(self) -> np.ndarray | float:
        """``E_M[1]``: scalar, or shape ``(B,)`` for a batch."""
        ...


class Projector(Protocol):
    """``project(rep, claims, budget, flops) -> rep`` with ``rep.n_terms <= budget``."""

    def __call__(self, rep: Any, claims: Any, budget: int, flops: FlopCounter) -> Any: ...


DeductionRule = Callable[[Any, Any, FlopCounter], Any]
DEDUCTIONS: Registry[DeductionRule] = Registry("deduction rule")
"""``(step type, representation type) -> rule(rep, step, flops) -> rep``."""


def register_deduction(step_type: type, rep_type: type) -> Callable[[DeductionRule], DeductionRule]:
    """Decorator: ``@register_deduction(MyStep, MyRep) def rule(rep, step, flops): ...``."""
    return DEDUCTIONS.register((step_type, rep_type))


def deduce(rep: Any, step: Any, flops: FlopCounter) -> Any:
    """Apply the deduction rule registered for ``(type(step), type(rep))`` (MRO-aware)."""
    for st in type(step).__mro__:
        for rt in type(rep).__mro__:
            if (st, rt) in DEDUCTIONS:
                return DEDUCTIONS.get((st, rt))(rep, step, flops)
    raise InputValueError(
        f"no deduction rule for step {type(step).__name__!r} on representation "
        f"{type(rep).__name__!r}; register one with register_deduction(StepType, RepType)."
    )


@dataclass(frozen=True)
class StepRecord:
    """What one deduction + projection did."""

    index: int
    step: str
    claims: str
    terms: int
    flops: float
    seconds: float


@dataclass(frozen=True)
class PropagationTrace:
    """The result of :func:`propagate`.

    Attributes:
        value: ``E_M[1]`` after the last step (float, or ``(B,)`` array for a batch).
        final: the final representation.
        records: one :class:`StepRecord` per step.
        flops: counted online FLOPs per instance (sum over steps).
        precomputation_flops: instance-independent FLOPs (reported, amortisable).
        max_terms: the largest ``n_terms`` held after any projection.
        seconds: wall time of the whole loop (for the whole batch).
        flops_by_label: the online FLOPs split by operation label.
        states: every projected representation ``(M_1, ..., M_n)`` when
            ``propagate(..., keep_states=True)``, else ``()``.
    """

    value: np.ndarray | float
    final: Any
    records: tuple[StepRecord, ...]
    flops: float
    precomputation_flops: float
    max_terms: int
    seconds: float
    flops_by_label: dict[str, float]
    states: tuple[Any, ...] = ()


def backward_claims(terminal: Any, steps: Sequence[Any]) -> list[Any]:
    """``[C_1, ..., C_n]`` from ``C_n = terminal`` by ``C_{i-1} = pullback(C_i, L_i)``.

    ``C_i`` is the claim model on the state after step ``i`` (what the projector uses after
    deducing step ``i``); the pullback rules live in :mod:`lowprob.sketching.pullback`
    (registered by step type). For random instances pass the *prior* over the future steps
    (e.g. :class:`~lowprob.propagation.steps.RandomHalfspaceStep`), which gives the product
    of the remaining random factors (DESIGN.md section 4).
    """
    from lowprob.sketching.pullback import pullback

    out = [terminal]
    for step in reversed(list(steps)[1:]):
        out.append(pullback(out[-1], step))
    return out[::-1]


def propagate(
    initial: Any,
    steps: Sequence[Any],
    *,
    projector: Projector,
    claims: Sequence[Any],
    budget: int,
    flops: FlopCounter | None = None,
    keep_states: bool = False,
) -> PropagationTrace:
    """Run deduction--projection: ``M_i = project(deduce(M_{i-1}, L_i), C_i, K)``.

    Args:
        initial: ``M_0``, the representation of the input distribution.
        steps: ``L_1..L_n``.
        projector: chooses at most ``budget`` terms given the claims ``C_i``.
        claims: ``[C_1, ..., C_n]`` (e.g. from :func:`backward_claims`).
        budget: ``K``, the number of terms kept after each projection.
        flops: optional counter (pre-filled with precomputation); a new one by default.
        keep_states: also return every ``M_i`` in ``trace.states`` (for layerwise read-outs).

    Returns:
        A :class:`PropagationTrace`; ``trace.value = E_{M_n}[1]``.
    """
    steps = list(steps)
    claims = list(claims)
    if len(claims) != len(steps):
        raise InputValueError(
            f"claims must have one model per step ({len(steps)}), got {len(claims)!r}."
        )
    counter = flops if flops is not None else FlopCounter()
    rep = initial
    records = []
    kept = []
    max_terms = int(rep.n_terms)
    start = time.perf_counter()
    for i, (step, claim) in enumerate(zip(steps, claims, strict=True)):
        t0, f0 = time.perf_counter(), counter.online
        rep = deduce(rep, step, counter)
        rep = projector(rep, claim, budget, counter)
        if keep_states:
            kept.append(rep)
        max_terms = max(max_terms, int(rep.n_terms))
        records.append(
            StepRecord(
                i, type(step).__name__, repr(claim), int(rep.n_terms),
                counter.online - f0, time.perf_counter() - t0,
            )
        )
    value = rep.total_mass()
    return PropagationTrace(
        value=value,
        final=rep,
        records=tuple(records),
        flops=counter.online,
        precomputation_flops=counter.precomputation,
        max_terms=max_terms,
        seconds=time.perf_counter() - start,
        flops_by_label=dict(counter.by_label),
        states=tuple(kept),
    )
