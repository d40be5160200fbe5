"""#3-SAT testbed: exact counting against brute force, instance statistics, bad input, CLI."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from lowprob.errors import InputTypeError, InputValueError, LowprobError, UnavailableError
from lowprob.toy_models.sat import (
    SAT_EXACT_LIMIT,
    SatProblem,
    clause_pair_kernel,
    count_satisfying,
    load_sat_json,
    random_clauses,
    sat_instance_statistics,
)


def _brute(problem: SatProblem) -> int:
    n = problem.n
    x = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
    return int(problem.evaluate(x).sum())


@pytest.mark.parametrize("n", [3, 5, 6, 7, 10, 13])
def test_count_matches_brute_force(n):
    for seed in range(4):
        prob = SatProblem.random(n, int(4 * n), seed=seed)
        assert count_satisfying(prob) == _brute(prob)


def test_count_with_high_variables_matches_brute_force():
    # n = 22 > 20 low bits exercises the outer loop over high variables; compare against the
    # brute force on the formula restricted by conditioning on the two high variables.
    prob = SatProblem.random(22, 60, seed=7)
    total = 0
    for a, b in itertools.product([1, -1], repeat=2):
        extra = ((21 * a,), (22 * b,))
        total += count_satisfying(SatProblem(22, prob.clauses + extra))
    assert total == count_satisfying(prob)
    # and a closed form: a formula on x1..x3 only leaves the other 19 variables free
    small = SatProblem.from_literals(22, [[1, 2, 3], [-1, 2, 3]])
    assert count_satisfying(small) == 6 * 2**19


def test_mixed_widths_and_tautologies():
    prob = SatProblem.from_literals(4, [[1], [2, -2], [-3, 4, 1, 2]])
    assert count_satisfying(prob) == _brute(prob) == 8


def test_unsatisfiable_all_sign_patterns():
    clauses = [[s1 * 1, s2 * 2, s3 * 3] for s1, s2, s3 in itertools.product([1, -1], repeat=3)]
    assert count_satisfying(SatProblem.from_literals(9, clauses)) == 0


def test_random_clauses_shape_and_distinct_variables():
    lits = random_clauses(10, 50, seed=0, batch=3)
    assert lits.shape == (3, 50, 3)
    v = np.abs(lits)
    assert v.min() >= 1 and v.max() <= 10
    assert np.all((v[..., 0] != v[..., 1]) & (v[..., 1] != v[..., 2]) & (v[..., 0] != v[..., 2]))


def test_instance_statistics_by_enumerating_all_instances():
    # n = 4, k = 2: all (C(4,3) * 8)^2 = 1024 ordered pairs of clauses, exact rationals.
    n, k = 4, 2
    clauses = [tuple(s * (v + 1) for s, v in zip(signs, vs, strict=True))
               for vs in itertools.combinations(range(n), 3) for signs in itertools.product([1, -1], repeat=3)]
    ps = [Fraction(count_satisfying(SatProblem(n, (a, b))), 2**n) for a in clauses for b in clauses]
    ep = sum(ps) / len(ps)
    ep2 = sum(p * p for p in ps) / len(ps)
    st = sat_instance_statistics(n, k)
    assert st.mean_p == pytest.approx(float(ep), rel=1e-14)
    assert st.mean_p2 == pytest.approx(float(ep2), rel=1e-14)


def test_clause_pair_kernel_by_enumeration():
    n = 6
    clauses = [(vs, signs) for vs in itertools.combinations(range(n), 3) for signs in itertools.product([1, -1], repeat=3)]
    x = np.ones(n)
    for d in range(n + 1):
        y = x.copy()
        y[:d] = -1
        both = np.mean([np.any(x[list(v)] == s) and np.any(y[list(v)] == s) for v, s in clauses])
        assert clause_pair_kernel(n)[d] == pytest.approx(both, abs=1e-15)


def test_statistics_trivial_ratio_consistent():
    st = sat_instance_statistics(16, 68)
    assert st.mean_p == pytest.approx((7 / 8) ** 68, rel=1e-12)
    assert st.var_p == pytest.approx(st.mean_p2 - st.mean_p**2, rel=1e-9)
    assert 0 < st.trivial_mse_ratio < 1
    assert st.trivial_equivalent_samples == pytest.approx(1 / st.trivial_mse_ratio)


@pytest.mark.parametrize(
    ("clauses", "match"),
    [([[1, 2, 4]], "1 <= |literal| <= n = 3"), ([[0, 1, 2]], "literal 0"), ([[1, 2], []], "zero width")],
)
def test_bad_clauses_raise(clauses, match):
    with pytest.raises(InputValueError, match=match.replace("|", r"\|")):
        SatProblem.from_literals(3, clauses)


def test_bad_literal_type_and_n_beyond_limit():
    with pytest.raises(InputTypeError):
        SatProblem.from_literals(3, [[1, "2", 3]])
    with pytest.raises(UnavailableError, match=f"n <= {SAT_EXACT_LIMIT}"):
        count_satisfying(SatProblem.random(SAT_EXACT_LIMIT + 1, 3, seed=0))


def test_load_json_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"clauses": [[1, 2, 3]]}')
    with pytest.raises(InputValueError, match="'n' and 'clauses'"):
        load_sat_json(bad)
    bad.write_text("not json")
    with pytest.raises(InputValueError, match="cannot read"):
        load_sat_json(bad)
    with pytest.raises(InputValueError, match="does not exist"):
        load_sat_json(tmp_path / "missing.json")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from lowprob.cli import main

    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_exact_sat_contract(tmp_path, capsys):
    prob = SatProblem.random(12, 40, seed=3)
    f = tmp_path / "f.json"
    f.write_text(json.dumps(prob.to_json()))
    rc, out, err = _cli(capsys, "toy", "exact", "--problem", "sat", "--clauses", str(f), "--json")
    assert rc == 0, err
    rec = json.loads(out)
    count = _brute(prob)
    assert rec["count"] == count
    assert rec["probability"] == count / 2**12


def test_cli_exact_sat_bad_input(tmp_path, capsys):
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"n": 3, "clauses": [[1, -2, 7]]}))
    rc, _, err = _cli(capsys, "toy", "exact", "--problem", "sat", "--clauses", str(f), "--json")
    assert rc == 2
    assert "1 <= |literal| <= n = 3" in err
    f.write_text(json.dumps({"n": 31, "clauses": [[1, -2, 7]]}))
    rc, _, err = _cli(capsys, "toy", "exact", "--problem", "sat", "--clauses", str(f), "--json")
    assert rc == 2 and "n <= 30" in err


def test_errors_are_lowprob_errors():
    assert issubclass(UnavailableError, LowprobError)
    assert math.isfinite(sat_instance_statistics(8, 10).mean_p2)
