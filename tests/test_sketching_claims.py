"""Claim distributions: exact kernels against Monte Carlo over sampled claims; pullback rules."""

from __future__ import annotations

import numpy as np
import pytest

from lowprob.errors import InputTypeError, InputValueError
from lowprob.sketching.claims import (
    ComposedClaims,
    FiniteClaims,
    KernelClaims,
    MultipliedClaims,
    RandomHalfspaceProduct,
    SampledClaims,
)
from lowprob.sketching.kernels import NotPSDError, RBFKernel, ZonalKernel, psd_eigh
from lowprob.sketching.pullback import pullback, register_pullback
from lowprob.toy_models import HalfspaceFactor


def _points(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mc_kernel_check(claims, x: np.ndarray, S: int, seed: int, k_sigma: float = 5.0) -> None:
    """Exact kernel within k_sigma standard errors of the mean of f(x_i) f(x_j) over S claims."""
    V = claims.sample_values(x, S, seed=seed)
    prods = V[:, :, None] * V[:, None, :]
    mean = prods.mean(0)
    se = prods.std(0) / np.sqrt(S) + 1e-12
    K = claims.kernel(x, x)
    assert np.all(np.abs(mean - K) <= k_sigma * se + 1e-3 / np.sqrt(S)), np.max(np.abs(mean - K) / se)


@pytest.mark.parametrize("m", [0, 1, 3])
def test_halfspace_product_kernel_matches_sampled_claims(m: int) -> None:
    """k = ((pi - theta)/(2 pi))^m vs 20 000 sampled claims, 5 sigma, seed 3."""
    C = RandomHalfspaceProduct(m, 4)
    _mc_kernel_check(C, _points(6, 4, 0), 20_000, seed=3)
    assert C.zonal is not None and C.zonal.trace() == 0.5**m


def test_rbf_random_fourier_features_kernel() -> None:
    C = KernelClaims(RBFKernel(2, lengthscale=0.7, variance=2.0))
    x = np.random.default_rng(0).standard_normal((5, 2))
    _mc_kernel_check(C, x, 20_000, seed=4)


def test_gp_claims_for_generic_kernel_and_finite_claims() -> None:
    C = KernelClaims(lambda x, y: (1 + x @ y.T) ** 2, dim=3)
    x = np.random.default_rng(0).standard_normal((4, 3))
    _mc_kernel_check(C, x, 20_000, seed=5)
    F = FiniteClaims([lambda x: x[:, 0], lambda x: np.ones(len(x)), lambda x: x[:, 1] ** 2], [0.2, 0.5, 0.3])
    _mc_kernel_check(F, x, 20_000, seed=6)
    np.testing.assert_allclose(F.kernel_diag(x), np.diag(F.kernel(x, x)))


def test_sampled_claims_kernel_is_monte_carlo() -> None:
    C = RandomHalfspaceProduct(2, 3)
    def sampler(rng: np.random.Generator):
        u = rng.standard_normal((2, 3))
        return lambda x: np.all(x @ u.T > 0, axis=1) * 1.0

    S = SampledClaims(sampler, dim=3, kernel_samples=8000)
    x = _points(4, 3, 1)
    # MC over 8000 claims: standard error <= 0.5/sqrt(8000) ~ 0.0056; allow 5 sigma
    assert np.max(np.abs(S.kernel(x, x) - C.kernel(x, x))) < 5 * 0.5 / np.sqrt(8000)
    assert not S.exact_kernel


def test_pullback_halfspace_factor_and_callable() -> None:
    C = RandomHalfspaceProduct(2, 4)
    F = HalfspaceFactor(np.array([1.0, -0.5, 0.2, 0.0]))
    P = pullback(C, F)
    assert isinstance(P, MultipliedClaims)
    x = _points(7, 4, 2)
    np.testing.assert_allclose(P.kernel(x, x), F(x)[:, None] * C.kernel(x, x) * F(x)[None, :])
    _mc_kernel_check(P, x, 20_000, seed=7)
    A = np.random.default_rng(3).standard_normal((4, 4))
    Q = pullback(C, lambda x: x @ A.T)
    assert isinstance(Q, ComposedClaims)
    np.testing.assert_allclose(Q.kernel(x, x), C.kernel(x @ A.T, x @ A.T))

    class MyStep:
        pass

    with pytest.raises(InputTypeError, match="no pullback rule"):
        pullback(C, MyStep())

    @register_pullback(MyStep)
    def _rule(claims, step):
        return claims

    assert pullback(C, MyStep()) is C
    with pytest.raises(InputTypeError):
        pullback("not claims", F)  # type: ignore[arg-type]


def test_claims_bad_input() -> None:
    with pytest.raises(InputValueError, match="sum to 1"):
        FiniteClaims([np.sum, np.sum], [0.5, 0.6])
    with pytest.raises(InputValueError, match="entries"):
        FiniteClaims([np.sum], [0.5, 0.5])
    with pytest.raises(InputValueError, match="shape"):
        RandomHalfspaceProduct(2, 4).kernel(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(InputValueError):
        RandomHalfspaceProduct(-1, 4)
    with pytest.raises(NotPSDError, match="positive semi-definite"):
        psd_eigh(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(NotPSDError, match="lambda_"):
        ZonalKernel(lambda t: t - 0.5, 3).eigenvalues(4)  # lambda_0 = -1/2 < 0
    with pytest.raises(InputValueError, match="lengthscale"):
        RBFKernel(2, lengthscale=-1.0)
    with pytest.raises(InputValueError, match="dim"):
        KernelClaims(RBFKernel(2), dim=3)
