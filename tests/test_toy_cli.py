"""``lowprob toy ...`` commands: JSON output, tables, bad input (in-process, fast tier)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lowprob.cli import main
from lowprob.toy_models import HalfspaceToy
from lowprob.toy_models.oracle import exact_probability


def run(capsys, *argv):
    code = main(["toy", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_exact_json_matches_oracle(capsys):
    code, out, _ = run(capsys, "exact", "--seed", "3", "--d", "3", "--m", "5", "--json")
    assert code == 0
    rec = json.loads(out)
    expect = exact_probability(HalfspaceToy.random(3, 5, seed=3))
    assert rec["probability"] == expect.probability and rec["error_bound"] == expect.error_bound
    assert rec["d"] == 3 and rec["m"] == 5 and rec["seed"] == 3


def test_exact_table_and_weights_file(capsys, tmp_path):
    W = np.array([[1.0, 0.0], [1.0, 1.0]])
    f = tmp_path / "W.npy"
    np.save(f, W)
    code, out, _ = run(capsys, "exact", "--weights", str(f))
    assert code == 0 and "error bound" in out and "0.375" in out  # (pi - pi/4) / (2 pi)


def test_exact_many_instances(capsys):
    code, out, _ = run(capsys, "exact", "--instances", "20", "--d", "2", "--m", "3", "--json")
    rec = json.loads(out)
    assert code == 0 and len(rec["probabilities"]) == 20
    assert rec["feasible_fraction"] == np.mean(np.array(rec["probabilities"]) > 0)


@pytest.mark.parametrize("method", ["naive", "smc"])
def test_estimate_json(capsys, method):
    code, out, _ = run(capsys, "estimate", "--method", method, "--budget", "20000", "--seed", "1",
                       "--d", "3", "--m", "4", "--instance-seed", "2", "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["method"] == method and rec["cost"]["samples"] <= 20000
    assert rec["exact"]["probability"] == exact_probability(HalfspaceToy.random(3, 4, seed=2)).probability


def test_estimate_repeats(capsys):
    code, out, _ = run(capsys, "estimate", "--method", "naive", "--budget", "500", "--repeats", "3",
                       "--d", "2", "--m", "2", "--json")
    rec = json.loads(out)
    assert code == 0 and len(rec["estimates"]) == 3 and rec["mse"] >= 0


def test_methods_come_from_the_registry(capsys):
    from lowprob.toy_models.registry import toy_estimator_names

    code, _, err = run(capsys, "estimate", "--method", "no-such", "--budget", "10")
    assert code == 2
    for name in toy_estimator_names():
        assert repr(name) in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["estimate", "--method", "naive", "--budget", "0"], "budget must be >= 1, got 0"),
        (["estimate", "--method", "naive", "--budget", "-3"], "got -3"),
        (["exact", "--d", "5"], "Monte Carlo"),
        (["exact", "--instances", "0"], "--instances must be >= 1"),
    ],
)
def test_bad_input_errors(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_non_integer_seed_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["toy", "estimate", "--method", "naive", "--budget", "10", "--seed", "1.5"])
    assert exc.value.code == 2
    assert "--seed must be a non-negative integer, got '1.5'" in capsys.readouterr().err


def test_unreadable_weights(capsys, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    code, _, err = run(capsys, "exact", "--weights", str(bad))
    assert code == 2 and "is not a .npy file" in err
    code, _, err = run(capsys, "exact", "--weights", str(tmp_path / "missing.npy"))
    assert code == 2 and "does not exist" in err
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run(capsys, "exact", "--weights", str(obj))
    assert code == 2 and "pickles are not accepted" in err
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0, np.nan], [0.0, 1.0]]))
    code, _, err = run(capsys, "exact", "--weights", str(nan))
    assert code == 2 and "NaN" in err
    vec = tmp_path / "vec.npy"
    np.save(vec, np.ones(3))
    code, _, err = run(capsys, "exact", "--weights", str(vec))
    assert code == 2 and "2-dimensional" in err


def test_stats(capsys):
    code, out, _ = run(capsys, "stats", "--json")
    rec = json.loads(out)
    assert code == 0 and abs(rec["trivial_mse_ratio"] - 6.2e-3) < 1e-4


def test_every_cost_in_cli_json_has_the_one_schema(capsys):
    """toy estimate and sketch error print the one Cost shape (lowprob.Cost.to_dict), strict JSON."""
    import json

    from lowprob.cli import main
    from lowprob.estimate import Cost

    schema = set(Cost().to_dict())
    assert schema == {"samples", "model_calls", "backward_calls", "flops", "seconds"}
    for argv in (["toy", "estimate", "--method", "sampling", "--budget", "500", "--seed", "0", "--json"],
                 ["sketch", "error", "--kind", "sample", "--K", "20", "--json"]):
        assert main(argv) == 0
        rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_reject)
        assert set(rec["cost"]) == schema
        assert Cost.from_dict(rec["cost"]).to_dict() == rec["cost"]


def _reject(token):
    raise AssertionError(f"non-strict JSON token {token!r}")


def test_cost_from_dict_reads_legacy_lm_shape_and_rejects_typos():
    import pytest

    from lowprob.errors import InputValueError
    from lowprob.estimate import Cost

    assert Cost.from_dict({"forward": 7, "backward": 2, "seconds": 1.5}) == Cost(model_calls=7, backward_calls=2, seconds=1.5)
    with pytest.raises(InputValueError, match="forwards"):
        Cost.from_dict({"forwards": 3})


def test_atomic_json_files_get_the_usual_permissions(tmp_path):
    """Results written atomically are readable like any file open() creates (mkstemp alone gives 0600)."""
    import os

    from lowprob._io import atomic_write_json

    p = atomic_write_json(tmp_path / "r.json", {"x": float("inf")})
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)
    assert p.read_text().strip() == '{\n  "x": "inf"\n}'
