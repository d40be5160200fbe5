"""Fuzzing the command line (issue 16): hypothesis draws arguments and corrupted files.

Every run must end in one of two ways:

* exit code 0 with a finite, in-range answer (a probability in ``[0, 1]``; a negative estimate
  from a signed pseudo-distribution only with a ``note`` and a ``NumericalWarning``), printed as
  strict JSON (no bare ``NaN``/``Infinity``), or
* exit code 2 with exactly one line ``lowprob: error: ...`` on stderr,

never a traceback, and never a partial output file. Runs are in-process through
``lowprob.cli.main`` (fast); a few cases run ``python -m lowprob`` as a subprocess. Sizes are
kept small so that the file runs in well under a minute; LM cases use a tiny random GPT-2.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lowprob.cli import main

REPO = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return rc, out.getvalue(), err.getvalue()


def _strict(text: str) -> object:
    def bad(token: str) -> None:
        raise AssertionError(f"non-strict JSON token {token!r} in {text[:200]!r}")

    return json.loads(text, parse_constant=bad)


def check_outcome(rc: int, out: str, err: str, *, prob_keys: tuple[str, ...] = ()) -> dict | None:
    """The contract: (0, strict JSON with in-range probabilities) or (2, one error line)."""
    assert "Traceback" not in err and "Traceback" not in out, err
    if rc == 2:
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith("lowprob: warning:")]
        assert len(lines) == 1 and lines[0].startswith("lowprob: error:"), err
        return None
    assert rc == 0, (rc, err)
    rec = _strict(out)
    for key in prob_keys:
        v = rec[key]
        assert isinstance(v, float | int) and math.isfinite(v), (key, v)
        if v < 0:  # a signed pseudo-distribution: allowed only when reported
            assert "note" in rec and "NumericalWarning" in err, rec
        else:
            assert v <= 1.0 + 1e-9, (key, v)
    return rec


def _int_text() -> st.SearchStrategy[str]:
    """Integers small and huge, negative, and some non-integers, as the shell would pass them."""
    return st.one_of(
        st.integers(-3, 6).map(str),
        st.sampled_from(["0", "10**3", "1e3", "nan", "inf", "-1", "1.5", "", "abc", str(2**63), str(10**26)]),
    )


# -- toy -----------------------------------------------------------------------------------------
@FUZZ
@given(d=_int_text(), m=_int_text(), seed=_int_text(), instances=st.sampled_from(["1", "2", "0", "-1", "x"]))
def test_fuzz_toy_exact(d, m, seed, instances):
    rc, out, err = run_cli(["toy", "exact", "--d", d, "--m", m, "--seed", seed, "--instances", instances, "--json"])
    rec = check_outcome(rc, out, err)
    if rec is not None:
        ps = rec.get("probabilities", [rec.get("probability")])
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in ps), rec


@FUZZ
@given(
    method=st.sampled_from(["naive", "smc", "kernel", "hermite", "sampling", "nope"]),
    budget=st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["10**18", str(10**18), str(10**13), "1e9", "x"])),
    d=st.sampled_from(["2", "3", "4"]),
    m=st.sampled_from(["1", "3", "6"]),
    seed=st.sampled_from(["0", "1", "7", str(2**63), "-3"]),
)
def test_fuzz_toy_estimate(method, budget, d, m, seed):
    if method == "smc" and budget.isdigit() and 0 < int(budget) < 10**6:
        budget = str(min(int(budget) * 50, 2000))  # smc needs a few particles per level
    rc, out, err = run_cli(["toy", "estimate", "--method", method, "--budget", budget, "--d", d, "--m", m,
                            "--seed", seed, "--json"])
    check_outcome(rc, out, err, prob_keys=("estimate",))


@FUZZ
@given(payload=st.one_of(
    st.binary(max_size=200),
    st.sampled_from(["nan", "inf", "zero-row", "1d", "object", "ok", "int", "empty", "truncated"]),
))
def test_fuzz_corrupted_weights(tmp_path, payload):
    path = tmp_path / "w.npy"
    W = np.random.default_rng(0).standard_normal((5, 3))
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    elif payload == "nan":
        W[1, 2] = np.nan
        np.save(path, W)
    elif payload == "inf":
        W[0, 0] = np.inf
        np.save(path, W)
    elif payload == "zero-row":
        W[2] = 0.0
        np.save(path, W)
    elif payload == "1d":
        np.save(path, W[0])
    elif payload == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif payload == "int":
        np.save(path, np.arange(1, 16).reshape(5, 3))
    elif payload == "empty":
        np.save(path, np.zeros((0, 3)))
    elif payload == "truncated":
        np.save(path, W)
        path.write_bytes(path.read_bytes()[:-7])
    else:
        np.save(path, W)
    rc, out, err = run_cli(["toy", "exact", "--weights", path, "--json"])
    check_outcome(rc, out, err, prob_keys=("probability",))


# -- sketch --------------------------------------------------------------------------------------
@FUZZ
@given(m=_int_text(), n=st.sampled_from(["1", "2", "3", "4", "0", "x"]),
       L=st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["100000", str(10**9), "nan"])))
def test_fuzz_sketch_eigenvalues(m, n, L):
    rc, out, err = run_cli(["sketch", "eigenvalues", "--m", m, "--n", n, "--L", L, "--json"])
    rec = check_outcome(rc, out, err)
    if rec is not None:
        lam = np.asarray(rec["eigenvalues"], dtype=float)
        assert np.all(np.isfinite(lam)) and np.all(lam >= 0), lam


@pytest.mark.slow  # the kernel sketch's eigen-decomposition makes each example ~1-5 s here
@settings(max_examples=8, deadline=None)
@given(K=st.one_of(st.integers(-1, 6).map(str), st.sampled_from([str(10**8), "1e8", "x"])),
       kind=st.sampled_from(["sample", "kernel", "gaussian"]), m=st.sampled_from(["1", "2", "0"]))
def test_fuzz_sketch_error(K, kind, m):
    rc, out, err = run_cli(["sketch", "error", "--K", K, "--kind", kind, "--m", m, "--degree", "8",
                            "--order", "8", "--json"])
    rec = check_outcome(rc, out, err)
    if rec is not None:
        assert math.isfinite(rec["error"]) and rec["error"] >= -1e-12, rec


# -- curves (argument validation only: every case here must be refused before computing) --------
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    methods=st.lists(st.sampled_from(["naive", "smc", "kernel", "sampling", "bogus"]), min_size=0, max_size=2),
    budgets=st.sampled_from([[], ["kernel=1,5"], ["hermite=3"], ["sampling=0"], ["x"], ["sampling=10**40"]]),
    instances=st.sampled_from(["0", "1", "-5", "x"]),
)
def test_fuzz_curves_bad_arguments(tmp_path, methods, budgets, instances):
    out = tmp_path / "curves-out"
    argv = ["curves", "--instances", instances, "--out", out, "--no-progress"]
    if methods:
        argv += ["--methods", *methods]
    if budgets:
        argv += ["--budgets", *budgets]
    rc, o, err = run_cli(argv)
    assert rc == 2, (argv, o, err)
    check_outcome(rc, o, err)
    assert not out.exists()  # nothing written by a refused run


# -- corrupted model directories ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parent))
    from lm_fixtures import save_tiny, tiny_gpt2

    d = tmp_path_factory.mktemp("fuzz-tiny") / "m"
    save_tiny(tiny_gpt2(vocab=16, n_layer=1, d=16, n_ctx=8), d)
    spec = d.parent / "spec.json"
    spec.write_text(json.dumps({"positions": [{"token": 0}, {"tokens": [1, 2, 3], "probs": [0.2, 0.3, 0.5]}]}))
    return d


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.lm
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.floats(0.0, 1.0),
    flip=st.integers(0, 10**6),
    what=st.sampled_from(["truncate", "flip-header", "config-key", "config-junk", "tokenizer"]),
    value=st.sampled_from([0, 2, 3, -1, 10**9, None, "gpt_neox", "llama", 1.5]),
)
def test_fuzz_corrupted_model_dir(tiny_dir, tmp_path_factory, cut, flip, what, value):
    from lowprob.lm_bridge.adapters.loading import load_hf

    d = _copy(tiny_dir, tmp_path_factory.mktemp("fz") / "m")
    st_path, cfg_path = d / "model.safetensors", d / "config.json"
    data = st_path.read_bytes()
    if what == "truncate":
        st_path.write_bytes(data[: int(cut * (len(data) - 1))])
    elif what == "flip-header":
        b = bytearray(data)
        i = 8 + flip % max(1, int.from_bytes(data[:8], "little"))
        b[i] = (b[i] + 1 + flip % 200) % 256
        st_path.write_bytes(bytes(b))
    elif what == "config-key":
        cfg = json.loads(cfg_path.read_text())
        cfg[["n_layer", "n_embd", "vocab_size", "n_positions", "model_type"][flip % 5]] = value
        cfg_path.write_text(json.dumps(cfg))
    elif what == "config-junk":
        cfg_path.write_bytes(cfg_path.read_bytes()[: int(cut * 200)])
    else:
        (d / "tokenizer.json").write_text(json.dumps({"model": value}))
    rc, out, err = run_cli(["lm", "ground-truth", "--model", d, "--dist", tiny_dir.parent / "spec.json",
                            "--samples", "64", "--out", d / "gt.json", "--device", "cpu", "--no-progress"])
    rec = check_outcome(rc, out, err)
    if rec is not None:  # a change that leaves a valid model (e.g. the same value) must count correctly
        assert rec["n_samples"] == 64
        load_hf(d)
    else:
        assert not (d / "gt.json").exists()
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.lm
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=st.one_of(st.binary(max_size=64), st.sampled_from([
    '{"format": "lowprob.ground_truth/1"}', '{"format": "x"}', "[]", "null",
    '{"format": "lowprob.ground_truth/1", "vocab_size": 16, "counts": {"99": 1}, "n_samples": 1, "seed": 0, '
    '"batch_size": 64, "spec_hash": "x"}',
])))
def test_fuzz_corrupted_ground_truth_state(tiny_dir, tmp_path_factory, state):
    out = tmp_path_factory.mktemp("gt") / "gt.json"
    out.write_bytes(state if isinstance(state, bytes) else state.encode())
    before = out.read_bytes()
    rc, o, err = run_cli(["lm", "ground-truth", "--model", tiny_dir, "--dist", tiny_dir.parent / "spec.json",
                          "--samples", "64", "--out", out, "--device", "cpu", "--no-progress"])
    check_outcome(rc, o, err)
    if rc == 2:
        assert out.read_bytes() == before  # a refused run leaves the file as it was


@pytest.mark.lm
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(["0", "3", "15", "16", "-1", str(10**30), "x"]),
    positions=st.lists(st.one_of(st.integers(-2, 20), st.just(10**30)), min_size=0, max_size=10),
    budget=st.sampled_from(["1024", "0", "-1", "2048"]),
)
def test_fuzz_lm_estimate(tiny_dir, tmp_path_factory, target, positions, budget):
    spec = tmp_path_factory.mktemp("spec") / "s.json"
    spec.write_text(json.dumps({"positions": [{"token": t} for t in positions]}))
    rc, out, err = run_cli(["lm", "estimate", "--model", tiny_dir, "--dist", spec, "--target", target,
                            "--method", "naive", "--budget", budget, "--device", "cpu", "--json"])
    check_outcome(rc, out, err, prob_keys=("estimate",))


# -- a few subprocess cases (the real entry point, stderr as the user sees it) --------------------
@pytest.mark.parametrize("argv, code", [
    (["--help"], 0),
    (["toy", "exact", "--d", "nan"], 2),
    (["toy", "estimate", "--method", "naive", "--budget", "1000000000000000000", "--no-exact"], 2),
    (["sketch", "eigenvalues", "--m", "2", "--L", "100000"], 2),
    (["no-such-command"], 2),
])
def test_subprocess_entry_point(argv, code):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lowprob", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 2:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lowprob: error:"), proc.stderr
