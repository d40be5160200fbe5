"""Seeded statistical checks of the LM methods against exact probabilities (``-m slow``).

Tiny exactly enumerable GPT-2 of ``test_lm_methods.py``. Unbiased methods (naive, ITGIS):
the mean of R independent estimates lies within k = 4 standard errors (the empirical
standard deviation over the R runs / sqrt(R)) of the exact p. MHIS is consistent but not
unbiased: its median absolute log error shrinks as the budget grows and ends below ln 2.
Seeds are fixed (0..R-1), so these tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_lm_methods import LOW_TARGET, MID_TARGET, tiny_adapter, tiny_spec

from lowprob.lm_bridge.methods import make_lm_method
from lowprob.lm_bridge.problem import LMProblem

pytestmark = [pytest.mark.slow, pytest.mark.lm]


@pytest.fixture(scope="module")
def problems():
    adapter, spec = tiny_adapter(), tiny_spec()
    return {t: LMProblem(adapter, spec, t) for t in (LOW_TARGET, MID_TARGET)}


@pytest.mark.parametrize(
    ("name", "params", "target"),
    [
        ("naive", {}, LOW_TARGET),
        ("itgis", {"temperature": 1.0}, LOW_TARGET),
        ("itgis", {"temperature": 0.5}, MID_TARGET),
    ],
)
def test_unbiased_methods_mean_matches_exact(problems, name, params, target):
    problem = problems[target]
    p = problem.exact_probability()
    R = 120
    vals = np.array([make_lm_method(name, **params).estimate(problem, 2048, seed=s).value for s in range(R)])
    se = vals.std(ddof=1) / math.sqrt(R)
    assert se > 0
    assert abs(vals.mean() - p) < 4 * se, (name, params, vals.mean(), se, p)


def test_mhis_is_consistent(problems):
    problem = problems[MID_TARGET]
    log_p = math.log(problem.exact_probability())

    def median_abs_log_error(budget: int) -> float:
        errs = []
        for s in range(6):
            e = make_lm_method("mhis", temperature=1.0).estimate(problem, budget, seed=s)
            errs.append(abs(e.log_value - log_p) if e.value > 0 else 20.0)
        return float(np.median(errs))

    small, large = median_abs_log_error(2**10), median_abs_log_error(2**14)
    assert large < small, (small, large)
    assert large < math.log(2), large
