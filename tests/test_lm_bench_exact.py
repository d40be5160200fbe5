"""``lowprob lm bench --truth exact``: budgets x seeds, paired intervals, resume, on a tiny exact suite.

The suite is a tiny GPT-2 (vocab 16) with two 3-position specs whose every target probability is
exact (brute-force enumeration of all 16^3 inputs), laid out like ``lowprob/data/exact/``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_lm_methods import tiny_adapter, tiny_spec

from lowprob.cli import main
from lowprob.errors import InputValueError
from lowprob.lm_bridge.bench import BenchState, case_seed, exact_suite_dirs, load_cases, run_bench
from lowprob.lm_bridge.problem import LMProblem

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module")
def exact_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    adapter = tiny_adapter()
    model_dir = root / "tiny"
    adapter.model.save_pretrained(model_dir, safe_serialization=True)
    (root / "exact" / "specs").mkdir(parents=True)
    (root / "exact" / "tiny").mkdir()
    for fam, seed in (("hex", 0), ("colon", 2), ("caps", 1)):
        spec = tiny_spec(seed)
        spec.save(root / "exact" / "specs" / f"{fam}.json")
        # brute force: every one of the 16^3 inputs through the model once, weighted by its probability
        grid = torch.cartesian_prod(*[torch.arange(16)] * 3)
        with torch.no_grad():
            win = adapter.logits(grid).argmax(-1).numpy()
        w = spec.log_prob(grid).exp().double().numpy()
        probs = np.bincount(win, weights=w, minlength=16)
        chosen = [(t, float(probs[t])) for t in range(16) if 0 < probs[t] < 2e-2][:2]
        assert len(chosen) == 2
        assert chosen[0][1] == pytest.approx(LMProblem(adapter, spec, chosen[0][0]).exact_probability(), rel=1e-9)
        (root / "exact" / "tiny" / f"targets_{fam}.json").write_text(json.dumps({
            "format": "lowprob.targets/1", "family": fam, "spec_hash": spec.spec_hash(), "model_hash": None,
            "targets": [{"token": t, "p": p, "p_low": p, "p_high": p} for t, p in chosen],
        }))
    return root, adapter


def test_exact_suite_dirs(exact_suite):
    root, _ = exact_suite
    t, s = exact_suite_dirs("tiny", root=root / "exact")
    assert t == root / "exact" / "tiny" and s == root / "exact" / "specs"
    with pytest.raises(InputValueError, match="no exact-truth suite"):
        exact_suite_dirs("gelu-9l", root=root / "exact")


def test_run_bench_budgets_seeds_and_skip(exact_suite):
    root, adapter = exact_suite
    cases = load_cases(*exact_suite_dirs("tiny", root=root / "exact"))
    assert all(c.p_low == c.p_true == c.p_high for c in cases)
    recs = run_bench(adapter, cases, [("naive", {"batch_size": 256})], budget=[256, 512], replicates=2,
                     show_progress=False)
    assert len(recs) == len(cases) * 2 * 2
    for r in recs:  # seeds are a function of (seed, family, target, replicate): the same for each budget
        assert r["seed"] == case_seed(0, r["family"], r["target"], r["replicate"])
        assert r["cost"]["model_calls"] == r["budget"]
    assert len({r["seed"] for r in recs}) == len(cases) * 2
    done = {("naive", r["family"], r["target"], r["budget"], r["replicate"]) for r in recs[:5]}
    again = run_bench(adapter, cases, [("naive", {"batch_size": 256})], budget=[256, 512], replicates=2,
                      show_progress=False, done=done)
    assert len(again) == len(recs) - 5
    with pytest.raises(ValueError, match="distinct"):
        run_bench(adapter, cases, [("naive", {})], budget=[256, 256])


def _bench_args(root, out, *extra):
    return ["lm", "bench", "--model", str(root / "tiny"), "--truth", "exact", "--device", "cpu",
            "--targets", str(root / "exact" / "tiny"), "--specs", str(root / "exact" / "specs"),
            "--budgets", "256", "512", "--replicates", "2", "--n-boot", "200", "--out", str(out), *extra]


def test_cli_bench_exact_end_to_end_and_resume(exact_suite, tmp_path, capsys):
    root, _ = exact_suite
    out = tmp_path / "r.json"
    methods = ["--methods", "naive", "gld", "wb-adf", "--param", "gld.batch_size=256", "--param", "naive.batch_size=256",
               "--param", "wb-adf.batch_size=256"]
    assert main(_bench_args(root, out, *methods)) == 0
    text = capsys.readouterr().out
    assert "[budget 512] is_fit" in text and "wb-adf" in text
    saved = json.loads(out.read_text())
    assert saved["meta"]["truth"] == "exact" and saved["meta"]["budgets"] == [256, 512]
    assert len(saved["records"]) == 3 * 6 * 2 * 2  # methods x targets x budgets x seeds
    paired = saved["scores"]["budgets"]["512"]["paired"]
    assert set(paired) == {"gld - naive", "gld - wb-adf", "naive - wb-adf"}
    pr = paired["gld - naive"]["heldout"]["is_fit"]
    assert pr["n"] == 2 and pr["ci95"][0] <= pr["mean"] <= pr["ci95"][1]
    assert out.with_suffix(".png").is_file() and (tmp_path / "r.b256.png").is_file()
    state = tmp_path / "r.json.state.jsonl"
    lines = state.read_text().splitlines()
    assert len(lines) == 1 + len(saved["records"])

    # resume: nothing left to run, the same records come back
    assert main(_bench_args(root, out, *methods, "--resume")) == 0
    capsys.readouterr()
    assert state.read_text().splitlines() == lines
    again = json.loads(out.read_text())
    assert [r["log_estimate"] for r in again["records"]] == [r["log_estimate"] for r in saved["records"]]

    # a crash mid-write leaves a cut line: dropped on resume and that run is redone, identically
    state.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert main(_bench_args(root, out, *methods, "--resume")) == 0
    capsys.readouterr()
    redone = state.read_text().splitlines()
    assert len(redone) == len(lines) and json.loads(redone[-1])["log_estimate"] == json.loads(lines[-1])["log_estimate"]

    # a corrupted line in the middle, or another bench's state: refused, file untouched
    bad = lines[:3] + ["{not json"] + lines[4:]
    state.write_text("\n".join(bad) + "\n")
    before = state.read_bytes()
    assert main(_bench_args(root, out, *methods, "--resume")) == 2
    assert "line 4 is corrupted" in capsys.readouterr().err
    assert state.read_bytes() == before
    state.write_text("\n".join(lines) + "\n")
    assert main(_bench_args(root, out, "--methods", "naive", "--resume")) == 2
    assert "different bench" in capsys.readouterr().err
    assert state.read_text().splitlines() == lines


def test_cli_bench_refuses_unwritable_output_before_running(exact_suite, tmp_path, capsys):
    root, _ = exact_suite
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a regular file where the output directory should be
    assert main(_bench_args(root, blocker / "r.json", "--methods", "naive")) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(_bench_args(root, tmp_path / "r.json", "--methods", "no-such-method")) == 2
    assert "unknown method" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [blocker]


def test_bench_state_header_checks(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text("hello\n")
    with pytest.raises(InputValueError, match="bad header"):
        BenchState.open(p, {"a": 1})
    assert p.read_text() == "hello\n"
    st = BenchState.open(p, {"a": math.inf}, resume=False)  # fresh start overwrites, strict JSON
    assert json.loads(p.read_text().splitlines()[0])["fingerprint"] == {"a": "inf"}
    assert st.done == set()


def test_race_script_verdict_on_tiny_suite(exact_suite, tmp_path, capsys):
    """``benchmarks/lm_race.py`` end to end: bench per model, summary JSON, plot, verdict fields."""
    import importlib.util
    from pathlib import Path

    root, _ = exact_suite
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "lm_race.py"
    spec = importlib.util.spec_from_file_location("lm_race", path)
    race = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(race)
    out_dir = tmp_path / "race"
    rc = race.main(["--models", str(root / "tiny"), "--exact-root", str(root / "exact"), "--methods", "naive", "itgis",
                    "mhis", "wb-adf", "--budgets", "256", "--n-boot", "100", "--out-dir", str(out_dir),
                    "--param", "wb-adf.batch_size=128", "--param", "mhis.batch_size=64"])
    assert rc == 0
    s = json.loads((out_dir / "lm_race.json").read_text())
    assert (out_dir / "lm_race.png").is_file() and (out_dir / "lm_race_tiny.json").is_file()
    M = s["models"]["tiny"]
    assert M["missing_heldout"] == ["english", "spanish", "icl"] and not s["moonshot"]["complete_data"]
    paired = M["budgets"]["256"]["paired_heldout_is_fit"]
    assert set(paired) == {"wb-adf - itgis", "wb-adf - mhis"} and paired["wb-adf - itgis"]["n"] == 2
    v = s["verdict"]["wb-adf"]["per_model"]["tiny"]
    # the verdict is exactly "both paired upper bounds < 0"
    assert v["wins_both"] == all(p["ci95"][1] < 0 for p in paired.values())
    assert "moonshot at budget 256" in capsys.readouterr().out
    # --score-only re-summarizes the per-model files without running anything
    (out_dir / "lm_race.json").unlink()
    assert race.main(["--models", str(root / "tiny"), "--budgets", "256", "--out-dir", str(out_dir), "--score-only",
                      "--n-boot", "100"]) == 0
    assert json.loads((out_dir / "lm_race.json").read_text())["verdict"] == s["verdict"]
    with pytest.raises(SystemExit, match="does not exist"):
        race.main(["--models", "gelu-9l", "--out-dir", str(out_dir), "--score-only"])
