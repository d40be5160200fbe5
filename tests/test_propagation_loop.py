"""The generic deduction--projection loop: plug-in mechanics, trace, bad input.

Tier: fast. Kinds: closed form (m = 1), plug-in mechanics (the docs example runs in test_docs_examples.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import lowprob.propagation  # noqa: F401  (registers the kernel, hermite and sampling estimators)
from lowprob.errors import InputValueError, UnavailableError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.hermite_density import HermiteDensity, hermite_truncation
from lowprob.propagation.loop import deduce, propagate
from lowprob.propagation.steps import HalfspaceStep, RandomHalfspaceStep, halfspace_steps
from lowprob.propagation.toy_estimators import KernelEstimator, random_product_claims
from lowprob.toy_models.halfspace import HalfspaceToy


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


def test_unevaluated_deduction_outputs_refuse_their_mass():
    """Every exact-product deduction output shares one mechanism: reading its mass before the
    projector ran is a clear InputTypeError naming the fix (it was a bare NotImplementedError)."""
    import dataclasses

    from lowprob.errors import InputTypeError
    from lowprob.lm_bridge.whitebox.adf import TruncatedGaussianDensity
    from lowprob.propagation.harmonic_density import HarmonicProduct
    from lowprob.propagation.hermite_density import HermiteProduct
    from lowprob.propagation.loop import UnprojectedProduct
    from lowprob.propagation.permutation_density import SliceProduct
    from lowprob.propagation.quaternion_density import QuaternionHarmonicProduct
    from lowprob.propagation.walsh_density import WalshProduct

    for cls in (HarmonicProduct, HermiteProduct, SliceProduct, QuaternionHarmonicProduct, WalshProduct,
                TruncatedGaussianDensity):
        assert issubclass(cls, UnprojectedProduct)
        fields = {f.name: None for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        obj = cls(**fields)  # fields are not read before the error
        with pytest.raises(InputTypeError, match=f"{cls.__name__} is an unevaluated deduction output.*projector"):
            obj.total_mass()
