"""Regression tests for issue 16: no silent wrong answers, no lost work, no runaway memory, strict JSON.

Each test reproduces one numbered item of the issue (the number is in the test's name) and
checks the fix: a clear ``LowprobError`` (exit code 2 with one ``lowprob: error:`` line at the
CLI) or a correct answer. LM tests use tiny random GPT-2s saved to ``tmp_path`` (CPU, seconds).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprob.cli import main
from lowprob.errors import (
    BudgetError,
    InputValueError,
    LowprobError,
    NumericalWarning,
    UnavailableError,
)
from lowprob.toy_models.halfspace import HalfspaceToy
from lowprob.toy_models.oracle import exact_probability

REPO = Path(__file__).resolve().parent.parent


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``lowprob ARGV`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors and --help
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, match: str | None = None) -> None:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowprob: error:"), err
    assert "Traceback" not in err
    if match is not None:
        assert match in lines[0], lines[0]


def strict_loads(text: str) -> object:
    """``json.loads`` that rejects the non-standard ``NaN``/``Infinity`` tokens."""

    def bad(token: str) -> None:
        raise AssertionError(f"non-strict JSON token {token!r}")

    return json.loads(text, parse_constant=bad)


# -- 1. oracle scale invariance ---------------------------------------------------------------
W0 = HalfspaceToy.random(d=4, m=6, seed=0).W
P0 = exact_probability(W0).probability


def test_1_oracle_issue_repro():
    assert P0 == pytest.approx(0.00923, rel=1e-3)
    for s in (1e154, 1e200, 1e300, 1e-200, 1e-300):
        r = exact_probability(W0 * s)
        assert r.feasible and r.probability == pytest.approx(P0, rel=1e-12), s
    assert exact_probability(HalfspaceToy(W0 * 1e-200)).probability == pytest.approx(P0, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    exps=st.lists(st.floats(-300, 300, allow_nan=False), min_size=5, max_size=5),
)
def test_1_oracle_scale_invariance_per_row(seed, exps):
    """``p(D W) = p(W)`` for any positive diagonal ``D`` with entries 1e-300..1e300 (exact to 1e-10)."""
    W = HalfspaceToy.random(d=3, m=5, seed=seed).W
    scaled = W * (10.0 ** np.asarray(exps))[:, None]
    assume_finite = np.all(np.isfinite(scaled)) and np.all(np.any(scaled != 0, axis=1))
    if not assume_finite:  # 10**300 * |w| can overflow float64; such a W is rejected, not mis-answered
        with pytest.raises(InputValueError):
            exact_probability(scaled)
        return
    a, b = exact_probability(W), exact_probability(scaled)
    assert a.feasible == b.feasible
    assert b.probability == pytest.approx(a.probability, rel=1e-10, abs=1e-15)


# -- LM fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A 1-layer tiny GPT-2 (vocab 16, context 8) saved as a HF directory."""
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parent))
    from lm_fixtures import save_tiny, tiny_gpt2

    d = tmp_path_factory.mktemp("tiny") / "m1"
    save_tiny(tiny_gpt2(vocab=16, n_layer=1, d=16, n_ctx=8), d)
    return d


def copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.fixture()
def spec_file(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"positions": [{"token": 0}, {"tokens": [1, 2, 3], "probs": [0.2, 0.3, 0.5]}]}))
    return p


# -- 2. config layer count vs weights ----------------------------------------------------------
def test_2_config_says_more_layers_than_weights(tiny_dir, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf

    d = copy_model(tiny_dir, tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["n_layer"] = 2
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputValueError, match="2 layer.*holds weights for 1"):
        load_hf(d)


def test_2_config_shapes_vs_weights(tiny_dir, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf

    d = copy_model(tiny_dir, tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["vocab_size"] = 32
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputValueError, match="wrong shapes"):
        load_hf(d)


# -- 3. non-finite weights ---------------------------------------------------------------------
def test_3_nan_weights_refused(tiny_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from lowprob.lm_bridge.adapters.loading import load_hf

    d = copy_model(tiny_dir, tmp_path / "m")
    state = load_file(d / "model.safetensors")
    state["transformer.ln_f.weight"][0] = float("nan")
    save_file(state, d / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputValueError, match="NaN or infinite weights.*ln_f"):
        load_hf(d)


# -- 4. negative estimates from signed pseudo-distributions -----------------------------------
def test_4_negative_hermite_estimate_is_reported():
    # seed 0, d=4, m=16: p = 0 (infeasible) and hermite at K=200 returns about -1.5e-6
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc, out, err = run_cli("toy", "estimate", "--method", "hermite", "--budget", "200", "--seed", "0", "--json")
    assert rc == 0, err
    rec = strict_loads(out)
    assert rec["exact"]["probability"] == 0.0
    assert rec["estimate"] < 0
    assert rec["log_estimate"] == "nan" and "negative" in rec["note"]
    assert "lowprob: warning: NumericalWarning:" in err and "Traceback" not in err


def test_4_negative_note_is_a_numerical_warning():
    from lowprob.estimate import Cost, Estimate
    from lowprob.toy_models.cli import _negative_note

    e = Estimate.from_value(-1e-6, std_error=None, cost=Cost(), method="kernel")
    with pytest.warns(NumericalWarning, match="signed pseudo-distribution"):
        assert "1 of 1" in _negative_note([e])
    assert _negative_note([Estimate.from_value(0.5, std_error=None, cost=Cost(), method="naive")]) is None


# -- 5. silently ignored / accepted arguments --------------------------------------------------
def test_5_weights_conflicts_with_d_m(tmp_path):
    w = tmp_path / "w.npy"
    np.save(w, W0)
    rc, _, err = run_cli("toy", "exact", "--weights", w, "--d", "3")
    assert_one_line_error(rc, err, "drop --d 3")
    rc, out, err = run_cli("toy", "exact", "--weights", w, "--json")
    assert rc == 0 and strict_loads(out)["probability"] == pytest.approx(P0, rel=1e-12)


def test_5_budgets_for_a_method_not_run():
    rc, _, err = run_cli("curves", "--methods", "sampling", "--budgets", "kernel=1,5", "--instances", "4")
    assert_one_line_error(rc, err, "not in --methods")


def test_5_checkpoint_seconds_nan(tiny_dir, spec_file, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf
    from lowprob.lm_bridge.distributions import TokenSpec
    from lowprob.lm_bridge.ground_truth import count_argmax

    for bad in (float("nan"), float("inf"), -1.0):  # the library refuses it too
        with pytest.raises(InputValueError, match="checkpoint_seconds must be a finite number"):
            count_argmax(load_hf(tiny_dir), TokenSpec.load(spec_file), 64, state_path=tmp_path / "g.json",
                         checkpoint_seconds=bad)
    rc, _, err = run_cli("lm", "ground-truth", "--model", tiny_dir, "--dist", spec_file, "--samples", "64",
                         "--out", tmp_path / "gt.json", "--checkpoint-seconds", "nan", "--device", "cpu")
    assert_one_line_error(rc, err, "--checkpoint-seconds must be a finite number")
    assert not (tmp_path / "gt.json").exists()


@pytest.mark.parametrize("argv", [
    ("toy", "exact", "--seed", str(10**26)),
    ("toy", "estimate", "--method", "naive", "--budget", "10", "--seed", str(10**26)),
    ("sketch", "error", "--seed", str(10**26), "--K", "3"),
    ("curves", "--seed", str(10**26), "--instances", "4"),
])
def test_5_huge_seed_refused(argv):
    rc, _, err = run_cli(*argv)
    assert_one_line_error(rc, err, "2**63")


# -- 6. lm train never writes into the package; shipped models are hash-checked ---------------
def test_6_train_default_dir_is_outside_the_package(monkeypatch, tmp_path):
    import lowprob
    from lowprob.lm_bridge.cli_train import default_train_dir

    package = Path(lowprob.__file__).resolve().parent
    monkeypatch.delenv("LOWPROB_HOME", raising=False)
    assert package not in default_train_dir().resolve().parents
    monkeypatch.setenv("LOWPROB_HOME", str(tmp_path / "home"))
    assert default_train_dir() == tmp_path / "home"
    rc, _, err = run_cli("lm", "train", "--out", package / "data", "--skip-models", "--work-dir", tmp_path / "w")
    assert_one_line_error(rc, err, "inside the installed lowprob package")
    assert not (tmp_path / "w").exists()


def test_6_shipped_model_hash_is_verified(tmp_path):
    pytest.importorskip("transformers")
    from lowprob.lm_bridge.adapters.loading import file_hash, load_hf
    from lowprob.lm_bridge.zoo import SHIPPED_MODEL_HASHES, load_shipped, shipped_model_dir

    for name, h in SHIPPED_MODEL_HASHES.items():
        assert file_hash(shipped_model_dir(name) / "model.safetensors") == h
    assert load_shipped("gelu-1l").model_hash == SHIPPED_MODEL_HASHES["gelu-1l"]
    with pytest.raises(InputValueError, match="was modified"):
        load_hf(shipped_model_dir("gelu-1l"), expected_hash="0" * 16)


# -- 7. ground truth: checkpoint after the first chunk and on SIGTERM/SIGINT -------------------
def _gt_subprocess(model: Path, spec: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lowprob", "lm", "ground-truth", "--model", str(model), "--dist", str(spec),
         "--samples", str(2**40), "--batch-size", "64", "--out", str(out), "--checkpoint-seconds", "1e9",
         "--device", "cpu", "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow  # a subprocess that imports torch + transformers; the in-process test below is fast
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_7_ground_truth_interrupted_keeps_a_checkpoint(tiny_dir, spec_file, tmp_path, sig):
    from lowprob.sharding import shard_dir

    out = tmp_path / "gt.json"
    parts = shard_dir(out)
    proc = _gt_subprocess(tiny_dir, spec_file, out)
    t0 = time.monotonic()
    try:
        while not any(parts.glob("part-*.npz")) and proc.poll() is None and time.monotonic() - t0 < 600:
            time.sleep(0.05)  # the first checkpoint comes after the first chunk, not after 1e9 s
        if not any(parts.glob("part-*.npz")):
            proc.kill()
            pytest.fail(f"no checkpoint after the first chunk: {proc.communicate(timeout=60)[1][-2000:]}")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + int(sig), err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"lowprob: interrupted: {signal.Signals(sig).name} received")
    assert not out.exists()  # the output is written once, complete; the checkpoint is the part files
    saved = _saved_samples(parts)
    assert saved > 0 and saved % 64 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json.shards", "spec.json"]  # no temporary files
    assert all(p.suffix == ".npz" for p in parts.iterdir())


def _saved_samples(parts: Path) -> int:
    """Samples counted in the checkpoint parts (each part's int64 counts sum to its samples)."""
    total = 0
    for p in parts.glob("part-*.npz"):
        with np.load(p, allow_pickle=False) as z:
            total += int(z["values"].sum())
    return total


def test_7_sigterm_in_process_saves_and_stops(tiny_dir, spec_file, tmp_path):
    import threading

    from lowprob.lm_bridge.adapters.loading import load_hf
    from lowprob.lm_bridge.distributions import TokenSpec
    from lowprob.lm_bridge.ground_truth import GroundTruth, RunInterrupted, count_argmax
    from lowprob.sharding import shard_dir

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    ad, spec, out = load_hf(tiny_dir), TokenSpec.load(spec_file), tmp_path / "gt.json"
    before = signal.getsignal(signal.SIGTERM)

    parts = shard_dir(out)

    def killer() -> None:  # SIGTERM once the first-chunk checkpoint exists
        t0 = time.monotonic()
        while not any(parts.glob("part-*.npz")) and time.monotonic() - t0 < 120:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    n = 64 * 1000
    th = threading.Thread(target=killer)
    th.start()
    with pytest.raises(RunInterrupted, match="SIGTERM received after") as exc:
        count_argmax(ad, spec, n, batch_size=64, state_path=out, checkpoint_seconds=1e9)
    th.join()
    assert exc.value.signum == signal.SIGTERM and signal.getsignal(signal.SIGTERM) is before
    saved = _saved_samples(parts)
    assert 0 < saved < n and saved % 64 == 0 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json.shards", "spec.json"]
    # and the run resumes from there, bit-for-bit equal to an uninterrupted run
    resumed = count_argmax(ad, spec, n, batch_size=64, state_path=out)
    fresh = count_argmax(ad, spec, n, batch_size=64)
    assert np.array_equal(resumed.counts, fresh.counts)
    assert GroundTruth.load(out).n_samples == n and not parts.exists()


def test_7_first_chunk_checkpoint_in_process(tiny_dir, spec_file, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf
    from lowprob.lm_bridge.distributions import TokenSpec
    from lowprob.lm_bridge.ground_truth import GroundTruth, count_argmax

    ad = load_hf(tiny_dir)
    spec = TokenSpec.load(spec_file)
    out = tmp_path / "gt.json"
    gt = count_argmax(ad, spec, 256, batch_size=64, state_path=out, checkpoint_seconds=1e9)
    assert GroundTruth.load(out).n_samples == gt.n_samples == 256
    assert [p.name for p in tmp_path.iterdir() if p.name != "spec.json"] == ["gt.json"]
    out.write_text("{not json")
    with pytest.raises(InputValueError, match="corrupt"):
        count_argmax(ad, spec, 256, batch_size=64, state_path=out)


# -- 8. unwritable outputs are refused before computing; no stray gt.tmp ------------------------
def test_8_curves_unwritable_out_fails_fast(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc, _, err = run_cli("curves", "--methods", "sampling", "--budgets", "sampling=10", "--instances", "4",
                         "--out", blocker / "sub", "--no-progress")
    assert_one_line_error(rc, err, "not writable")


def test_8_ground_truth_out_directory(tiny_dir, spec_file, tmp_path):
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    rc, _, err = run_cli("lm", "ground-truth", "--model", tiny_dir, "--dist", spec_file, "--samples", "64",
                         "--out", outdir, "--device", "cpu")
    assert_one_line_error(rc, err, "is a directory")
    assert list(outdir.iterdir()) == [] and not any(p.suffix == ".tmp" for p in tmp_path.rglob("*"))


def test_8_bench_unwritable_out_fails_before_loading(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc, _, err = run_cli("lm", "bench", "--model", tmp_path / "no-such-model", "--out", blocker / "b.json")
    assert_one_line_error(rc, err, "not writable")


# -- 9. unsupported architectures are refused before instantiation ----------------------------
def test_9_unsupported_model_type_before_building(tiny_dir, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf

    d = copy_model(tiny_dir, tmp_path / "m")
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))  # default size: 7B parameters
    with pytest.raises(UnavailableError, match="model_type 'llama'"):
        load_hf(d)


# -- 10. budgets against stated memory/time estimates ------------------------------------------
@pytest.mark.parametrize("argv, match", [
    (("toy", "estimate", "--method", "naive", "--budget", str(10**18), "--no-exact"), "would take about"),
    (("toy", "estimate", "--method", "kernel", "--budget", str(10**9), "--no-exact"), "GiB of memory"),
    (("toy", "estimate", "--method", "sampling", "--budget", str(2**40), "--no-exact"), "GiB of memory"),
    (("sketch", "eigenvalues", "--m", "3", "--L", "100000"), "GiB of memory"),
    (("sketch", "error", "--K", str(10**8)), "GiB of memory"),
    (("curves", "--methods", "sampling", "--budgets", "sampling=1000000000000", "--instances", "4"), "--budget"),
    (("toy", "exact", "--d", "4", "--m", "2000000"), "GiB of memory"),
    (("toy", "estimate", "--method", "smc", "--budget", str(10**18), "--no-exact"), "GiB of memory"),
])
def test_10_runaway_budgets_refused_with_estimate(argv, match):
    rc, _, err = run_cli(*argv)
    assert_one_line_error(rc, err)
    assert ("GiB" in err or "would take about" in err), err
    if match != "--budget":
        assert match in err


def test_10_stats_huge_d_is_refused_not_a_traceback():
    rc, _, err = run_cli("toy", "stats", "--d", str(10**9), "--m", "16")
    assert_one_line_error(rc, err, "d must be <= 10000")


def test_10_library_naive_refuses_runaway_budget():
    from lowprob.toy_models.baselines import NaiveMonteCarlo

    with pytest.raises(BudgetError, match="would take about"):
        NaiveMonteCarlo().estimate(HalfspaceToy(W0), 10**18, seed=0)


# -- errors that were not LowprobError ---------------------------------------------------------
def test_errors_token_id_overflow_and_long_spec(tiny_dir, spec_file, tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"positions": [{"token": 0}, {"token": 10**30}]}))
    rc, _, err = run_cli("lm", "estimate", "--model", tiny_dir, "--dist", big, "--target", "1",
                         "--method", "naive", "--budget", "1024", "--device", "cpu")
    assert_one_line_error(rc, err)
    rc, _, err = run_cli("lm", "estimate", "--model", tiny_dir, "--dist", spec_file, "--target", str(10**30),
                         "--method", "naive", "--budget", "1024", "--device", "cpu")
    assert_one_line_error(rc, err)
    long = tmp_path / "long.json"
    long.write_text(json.dumps({"positions": [{"token": 1}] * 9}))  # context is 8
    rc, _, err = run_cli("lm", "estimate", "--model", tiny_dir, "--dist", long, "--target", "1",
                         "--method", "naive", "--budget", "1024", "--device", "cpu")
    assert_one_line_error(rc, err, "context is 8")


def test_errors_truncated_safetensors_and_pickle_bin(tiny_dir, tmp_path):
    import torch

    from lowprob.lm_bridge.adapters.loading import load_hf

    d = copy_model(tiny_dir, tmp_path / "m")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(InputValueError, match="truncated"):
        load_hf(d)
    (d / "model.safetensors").unlink()
    torch.save({"weights": {"a": object()}}, d / "pytorch_model.bin")  # needs a real unpickle
    with pytest.raises(InputValueError, match="never unpickles"):
        load_hf(d)


def test_errors_broken_tokenizer_and_mps(tiny_dir, tmp_path):
    from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device

    d = copy_model(tiny_dir, tmp_path / "m")
    (d / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": 3}}')
    with pytest.raises(InputValueError, match="tokenizer.json"):
        load_hf(d)
    import torch

    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        with pytest.raises(LowprobError, match="MPS"):
            resolve_device("mps")


@pytest.mark.parametrize("method", ["naive", "smc"])
def test_errors_curves_with_non_batched_methods(method):
    rc, _, err = run_cli("curves", "--methods", method, "--instances", "4")
    assert_one_line_error(rc, err, "cannot run in `lowprob curves`")


# -- strict JSON -------------------------------------------------------------------------------
def test_json_is_strict_for_non_finite_values(tmp_path):
    rc, out, err = run_cli("toy", "exact", "--seed", "0", "--json")  # seed 0: infeasible, log p = -inf
    assert rc == 0, err
    rec = strict_loads(out)
    assert rec["probability"] == 0.0 and rec["log_probability"] == "-inf"
    rc, out, _ = run_cli("toy", "estimate", "--method", "naive", "--budget", "1000", "--seed", "0", "--json")
    rec = strict_loads(out)
    assert rec["estimate"] == 0.0 and rec["log_estimate"] == "-inf"


def test_ctrl_c_has_no_traceback(monkeypatch):
    import lowprob.toy_models.cli as toy_cli

    def boom(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy_cli, "_cmd_stats", boom)
    rc, _, err = run_cli("toy", "stats")
    assert rc == 130 and err.strip() == "lowprob: interrupted" and "Traceback" not in err


def test_help_imports_no_heavy_module():
    code = ("import sys; from lowprob.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('numpy', 'torch', 'scipy', 'transformers') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="
    code = ("import sys, io, contextlib; from lowprob.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['toy', 'exact'])\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'scipy.stats', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "HEAVY="


def test_10_lm_batches_are_lazy():
    """A budget of 2**36 forward passes used to build a 67-million-entry list of batch sizes."""
    from collections.abc import Iterator
    from itertools import islice

    from lowprob.lm_bridge.methods.base import LMMethodBase

    it = LMMethodBase._batches(2**36, 1024)
    assert isinstance(it, Iterator) and not isinstance(it, list)
    assert list(islice(it, 3)) == [1024, 1024, 1024]
    assert list(LMMethodBase._batches(2500, 1024)) == [1024, 1024, 452]
    assert list(LMMethodBase._batches(2048, 1024)) == [1024, 1024]


def test_toy_time_estimate_counts_instances_once(monkeypatch):
    """The batch time estimate is ``once + each * instances`` (it was multiplied by ``instances`` twice)."""
    from lowprob.errors import BudgetError
    from lowprob.toy_models.cost_models import TOY_COST_MODELS, check_toy_budget

    _, once, each = TOY_COST_MODELS.get("hermite")(16, 16, 969)
    n = 1000
    stated = once + each * n
    monkeypatch.setenv("LOWPROB_MAX_SECONDS", repr(stated * 1.01))
    check_toy_budget("hermite", 16, 16, 969, instances=n)  # within the limit: no error
    monkeypatch.setenv("LOWPROB_MAX_SECONDS", repr(stated * 0.99))
    with pytest.raises(BudgetError):
        check_toy_budget("hermite", 16, 16, 969, instances=n)
