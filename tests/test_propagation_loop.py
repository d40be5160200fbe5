"""The generic deduction--projection loop: plug-in mechanics, trace, bad input.

Tier: fast. Kinds: closed form (m = 1), plug-in example from docs/propagation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import lowprob.propagation  # noqa: F401  (registers the kernel, hermite and sampling estimators)
from lowprob.errors import InputValueError, UnavailableError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.hermite_density import HermiteDensity, hermite_truncation
from lowprob.propagation.loop import PropagationTrace, deduce, propagate, register_deduction
from lowprob.propagation.steps import HalfspaceStep, RandomHalfspaceStep, halfspace_steps
from lowprob.propagation.toy_estimators import KernelEstimator, random_product_claims
from lowprob.toy_models.halfspace import HalfspaceToy


# --- the "new propagation scheme in < 50 lines" example of docs/propagation.md -----------------
@dataclass(frozen=True)
class WeightedNodes:
    """A deterministic cubature: fixed nodes on the sphere with weights (a signed measure)."""

    nodes: np.ndarray  # (Q, n)
    weights: np.ndarray  # (Q,)

    @property
    def n_terms(self) -> int:
        return int(np.count_nonzero(self.weights))

    def total_mass(self) -> float:
        return float(self.weights.sum())


@register_deduction(HalfspaceStep, WeightedNodes)
def _halfspace_times_nodes(rep, step, flops):
    keep = rep.nodes @ step.normal > 0
    flops.add(rep.nodes.shape[0] * (2 * step.n + 1), "nodes")
    return WeightedNodes(rep.nodes, rep.weights * keep)


def keep_heaviest(rep, claims, budget, flops):
    """Projector: keep the `budget` heaviest nodes and rescale to conserve the mass."""
    order = np.argsort(-np.abs(rep.weights))
    w = np.zeros_like(rep.weights)
    w[order[:budget]] = rep.weights[order[:budget]]
    if w.sum() != 0:
        w *= rep.weights.sum() / w.sum()
    return WeightedNodes(rep.nodes, w)


def test_new_scheme_plugs_into_the_loop():
    from lowprob.sketching.sphere_quadrature import sphere_quadrature

    nodes, weights = sphere_quadrature(3, 60)
    W = np.array([[1.0, 0.2, 0.0], [0.3, 1.0, 0.1]])
    u = W / np.linalg.norm(W, axis=1, keepdims=True)
    exact = 0.25 + np.arcsin(u[0] @ u[1]) / (2 * np.pi)
    trace = propagate(
        WeightedNodes(nodes, weights), halfspace_steps(W),
        projector=keep_heaviest, claims=random_product_claims(3, 2), budget=len(weights),
    )
    assert isinstance(trace, PropagationTrace)
    assert len(trace.records) == 2 and trace.flops > 0
    assert abs(trace.value - exact) < 0.02  # a crude cubature of a discontinuous integrand


# --- trace and closed forms -----------------------------------------------------------------------
def test_single_halfspace_is_one_half_for_every_scheme():
    W = np.array([[0.3, -1.0, 2.0, 0.5]])
    for est in ("kernel", "hermite"):
        from lowprob.toy_models.registry import get_toy_estimator

        e = get_toy_estimator(est).estimate(HalfspaceToy(W), 30, seed=0)
        assert e.value == pytest.approx(0.5, abs=1e-12)


def test_trace_records_terms_and_flops():
    toy = HalfspaceToy.random(4, 6, seed=3)
    tr = KernelEstimator().trace(toy, 55, seed=0)
    assert [r.index for r in tr.records] == list(range(6))
    assert max(r.terms for r in tr.records) == tr.max_terms <= 55
    assert tr.records[-1].terms == 1  # the terminal claim is the constant: only the mass is kept
    assert tr.flops == pytest.approx(sum(r.flops for r in tr.records))
    assert tr.precomputation_flops > 0


def test_claims_are_remaining_random_products():
    claims = random_product_claims(4, 5)
    assert [c.m for c in claims] == [4, 3, 2, 1, 0]


# --- bad input ----------------------------------------------------------------------------------
def test_unknown_pair_names_both_types():
    with pytest.raises(InputValueError, match="RandomHalfspaceStep.*HermiteDensity"):
        deduce(HermiteDensity.gaussian(3), RandomHalfspaceStep(3), FlopCounter())


def test_claims_length_must_match_steps():
    with pytest.raises(InputValueError, match="one model per step"):
        propagate(HermiteDensity.gaussian(2), halfspace_steps(np.eye(2)),
                  projector=hermite_truncation, claims=[None], budget=5)


def test_zero_normal_rejected():
    with pytest.raises(InputValueError, match="zero row"):
        HalfspaceStep(np.zeros(3))


def test_kernel_rejects_bias_with_advice():
    toy = HalfspaceToy(np.eye(3), b=np.array([0.1, 0.0, 0.0]))
    with pytest.raises(UnavailableError, match="hermite"):
        KernelEstimator().estimate(toy, 10, seed=0)


def test_hermite_handles_bias_exactly_for_one_factor():
    from scipy.stats import norm

    from lowprob.propagation.toy_estimators import HermiteEstimator

    toy = HalfspaceToy(np.array([[0.0, 2.0]]), b=np.array([1.0]))  # P[2 x + 1 > 0] = Phi(1/2)
    assert HermiteEstimator().estimate(toy, 6, seed=0).value == pytest.approx(norm.cdf(0.5), abs=1e-14)
