"""Instance statistics: closed forms, the DESIGN.md numbers, and agreement with the oracle.

Tier: fast, except the oracle-average check (``slow``: 20000 random (3, 6) instances, seed 11,
4 standard errors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lowprob.errors import InputTypeError, InputValueError
from lowprob.toy_models.instance_stats import instance_statistics, wendel_feasibility_probability
from lowprob.toy_models.oracle import exact_probabilities


def test_design_numbers_4x16():
    s = instance_statistics(4, 16)
    assert s.mean_p == 2.0**-16
    assert s.mean_p2 == pytest.approx(9.46e-8, rel=1e-3)
    assert s.mean_p_one_minus_p == pytest.approx(1.516e-5, rel=1e-3)
    assert s.trivial_mse_ratio == pytest.approx(6.2e-3, rel=1e-2)
    assert s.trivial_equivalent_samples == pytest.approx(161, abs=1)
    assert s.feasible_probability == pytest.approx(0.0176, abs=1e-4)  # Wendel: 1.76%


def test_closed_forms_small_cases():
    # d = 2, m = 2: p = (pi - theta)/(2 pi) with theta ~ U[0, pi]: E p^2 = 1/12.
    assert instance_statistics(2, 2).mean_p2 == pytest.approx(1 / 12, rel=1e-13)
    # d = 1: p = 1/2 if all m signs agree (prob 2^(1-m)), else 0: E p^2 = 2^-(m+1).
    assert instance_statistics(1, 5).mean_p2 == pytest.approx(2.0**-6, rel=1e-15)
    # m = 1: p = 1/2 always, Var p = 0.
    s = instance_statistics(4, 1)
    assert s.mean_p2 == pytest.approx(0.25, rel=1e-13) and s.var_p == pytest.approx(0, abs=1e-15)
    # d = 3, m = 2: E ((pi - theta)/(2 pi))^2 with density sin(theta)/2:
    # = (1/(8 pi^2)) int (pi - t)^2 sin t dt = (pi^2 - 4)/(8 pi^2).
    assert instance_statistics(3, 2).mean_p2 == pytest.approx((math.pi**2 - 4) / (8 * math.pi**2), rel=1e-13)


def test_wendel():
    assert wendel_feasibility_probability(4, 16) == sum(math.comb(15, i) for i in range(4)) / 2**15
    assert wendel_feasibility_probability(4, 3) == 1.0
    assert wendel_feasibility_probability(2, 3) == 0.75  # 3 random lines through 0 in the plane
    assert 0 < wendel_feasibility_probability(4, 2000) < 1e-500 or wendel_feasibility_probability(4, 2000) == 0.0


def test_large_m_log_space():
    # Laplace asymptotics for m >> 1: E p^2 ~ 2^-m (pi/m)^(d-1) Gamma(d-1) / B_d, B_4 = pi/2,
    # with relative corrections O(d^2/m) (a few per cent at m = 256).
    m = 256
    s = instance_statistics(4, m)
    approx = -m * math.log(2) + 3 * math.log(math.pi / m) + math.log(2.0) - math.log(math.pi / 2)
    assert math.isfinite(s.log_mean_p2) and s.mean_p2 > 0
    assert abs(s.log_mean_p2 - approx) < 0.05
    assert s.log_mean_p2 >= 2 * math.log(s.mean_p)  # E p^2 >= (E p)^2


def test_bad_input():
    with pytest.raises(InputValueError, match="m must be >= 1"):
        instance_statistics(4, 0)
    with pytest.raises(InputTypeError, match="d must be an integer"):
        instance_statistics(4.5, 16)


def test_moments_match_oracle_average_fast():
    """1000 random (2, 4) instances: mean of p and p^2 within 4 standard errors (seed 10)."""
    rng = np.random.default_rng(10)
    ps = exact_probabilities(rng.standard_normal((1000, 4, 2)))
    s = instance_statistics(2, 4)
    for vals, expect in ((ps, s.mean_p), (ps**2, s.mean_p2)):
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        assert abs(vals.mean() - expect) <= 4 * se
    assert abs(np.mean(ps > 0) - s.feasible_probability) <= 4 * math.sqrt(0.25 / 1000)


@pytest.mark.slow
def test_moments_match_oracle_average_slow():
    rng = np.random.default_rng(11)
    ps = exact_probabilities(rng.standard_normal((20000, 6, 3)))
    s = instance_statistics(3, 6)
    for vals, expect in ((ps, s.mean_p), (ps**2, s.mean_p2), (ps * (1 - ps), s.mean_p_one_minus_p)):
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        assert abs(vals.mean() - expect) <= 4 * se
    feas = np.mean(ps > 0)
    assert abs(feas - s.feasible_probability) <= 4 * math.sqrt(s.feasible_probability / 20000)
