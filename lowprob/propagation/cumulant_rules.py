"""Registers the cumulant deduction rules of :mod:`lowprob.array_kernels.cumulant_steps` with the loop.

``(LinearLayer, CumulantState) -> linear_rule`` (exact) and ``(ActivationLayer,
CumulantState) -> activation_rule`` (exact, lazy); the projection onto ``K`` cumulants is a
projector (:class:`~lowprob.array_kernels.cumulant_steps.CumulantProjector`, or the
Gaussian-moment projector of :mod:`lowprob.propagation.mlp_estimators`) passed to
:func:`~lowprob.propagation.loop.propagate`. Kept free of scipy so that the WhestBench
adapter imports fast.
"""

from __future__ import annotations

from typing import Any

from lowprob.array_kernels.cumulant_steps import (
    ActivationLayer,
    CumulantProjector,
    CumulantState,
    LinearLayer,
    activation_rule,
    linear_rule,
    mlp_steps,
)
from lowprob.propagation.loop import PropagationTrace, propagate, register_deduction

__all__ = ["propagate_mlp"]

register_deduction(LinearLayer, CumulantState)(linear_rule)
register_deduction(ActivationLayer, CumulantState)(activation_rule)


def propagate_mlp(
    initial: CumulantState, weights: Any, activation: Any, backend: Any, projector: Any = None,
) -> PropagationTrace:
    """Run ``[W_1, phi, ..., W_L, phi]`` through :func:`propagate`, keeping every state.

    ``trace.states[2l]`` is the law of ``h_{l+1}`` and ``trace.states[2l+1]`` that of
    ``x_{l+1}``; ``projector`` defaults to ``CumulantProjector()``.
    """
    steps = mlp_steps(weights, activation, backend)
    proj = CumulantProjector() if projector is None else projector
    return propagate(initial, steps, projector=proj, claims=[None] * len(steps),
                     budget=initial.n_terms, keep_states=True)
