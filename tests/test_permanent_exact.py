"""{0,1}-permanent testbed: Ryser in exact integers against brute force, instance statistics
by enumerating every matrix, the {-1,1} sanity case, bad input, the CLI contract."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from lowprob.errors import InputTypeError, InputValueError, UnavailableError
from lowprob.toy_models.permanent import (
    PERMANENT_EXACT_LIMIT,
    PermanentProblem,
    load_matrix_npy,
    permanent_instance_statistics,
    random_binary_matrices,
    ryser_permanent,
)


def _brute(A: np.ndarray) -> int:
    n = A.shape[0]
    return sum(math.prod(int(A[i, p[i]]) for i in range(n)) for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("values", ["binary", "signs"])
def test_ryser_matches_brute_force(n, values):
    for seed in range(3):
        A = random_binary_matrices(n, seed=seed, values=values)
        assert ryser_permanent(A) == _brute(A)


def test_ryser_large_closed_forms_are_exact_integers():
    # multi-modular path (n > 8): all-ones gives n!, the identity 1, J - I the derangements
    for n in (9, 12, 16):
        assert ryser_permanent(np.ones((n, n), dtype=np.int64)) == math.factorial(n)
        assert ryser_permanent(np.eye(n, dtype=np.int64)) == 1
    n = 12
    der = round(math.factorial(n) / math.e)
    assert ryser_permanent(np.ones((n, n), dtype=np.int64) - np.eye(n, dtype=np.int64)) == der
    # signed entries and a row expansion check: perm(A) = sum_j a_0j perm(minor_0j)
    A = random_binary_matrices(10, seed=5, values="signs")
    expand = sum(int(A[0, j]) * ryser_permanent(np.delete(np.delete(A, 0, 0), j, 1)) for j in range(10))
    assert ryser_permanent(A) == expand
    assert isinstance(ryser_permanent(A), int)


@pytest.mark.parametrize("values", ["binary", "signs"])
def test_instance_statistics_by_enumerating_all_matrices(values):
    n = 3
    lo = 0 if values == "binary" else -1
    ps = []
    for bits in itertools.product([lo, 1], repeat=n * n):
        ps.append(Fraction(_brute(np.array(bits).reshape(n, n)), math.factorial(n)))
    st = permanent_instance_statistics(n, values)
    assert st.mean_p == pytest.approx(float(sum(ps) / len(ps)), abs=1e-15)
    assert st.mean_p2 == pytest.approx(float(sum(p * p for p in ps) / len(ps)), rel=1e-14)
    if values == "signs":  # the sanity case: E p = 0, E p^2 = 1/n!
        assert st.mean_p == 0 and st.mean_p2 == pytest.approx(1 / math.factorial(n))


def test_statistics_closed_form_binary():
    st = permanent_instance_statistics(12)
    assert st.mean_p == 2.0**-12
    assert st.mean_p2 == pytest.approx(4.0**-12 * sum(1 / math.factorial(s) for s in range(13)), rel=1e-14)
    assert 0 < st.trivial_mse_ratio < 1e-3


def test_bad_matrices():
    with pytest.raises(InputValueError, match="square"):
        PermanentProblem(np.ones((3, 4), dtype=np.int64))
    with pytest.raises(InputValueError, match="integer"):
        PermanentProblem(np.full((3, 3), 0.5))
    with pytest.raises(InputTypeError):
        PermanentProblem(np.array([["a"]]))
    with pytest.raises(UnavailableError, match=f"n <= {PERMANENT_EXACT_LIMIT}"):
        ryser_permanent(np.ones((PERMANENT_EXACT_LIMIT + 1,) * 2, dtype=np.int64))
    with pytest.raises(InputValueError, match=r"\{0,1\}"):
        PermanentProblem(np.full((3, 3), 2)).require_binary()


def test_load_matrix_rejects_non_binary_and_pickles(tmp_path):
    f = tmp_path / "m.npy"
    np.save(f, np.full((3, 3), 2))
    with pytest.raises(InputValueError, match=r"\{0,1\}"):
        load_matrix_npy(f)
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputValueError, match="pickles are not accepted"):
        load_matrix_npy(f)
    np.save(f, np.ones((2, 3), dtype=np.int64))
    with pytest.raises(InputValueError, match="square"):
        load_matrix_npy(f)


def test_cli_exact_permanent_contract(tmp_path, capsys):
    from lowprob.cli import main

    A = random_binary_matrices(7, seed=3)
    f = tmp_path / "m.npy"
    np.save(f, A)
    assert main(["toy", "exact", "--problem", "permanent", "--matrix", str(f), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    want = _brute(A)
    assert rec["permanent"] == want and isinstance(rec["permanent"], int)
    assert rec["probability"] == pytest.approx(want / math.factorial(7), rel=1e-15)
    np.save(f, np.ones((23, 23), dtype=np.int64))
    assert main(["toy", "exact", "--problem", "permanent", "--matrix", str(f), "--json"]) == 2
    assert "n <= 22" in capsys.readouterr().err
