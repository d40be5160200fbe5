"""The bench and the CLI on the tiny exactly-enumerable GPT-2 (targets from exact probabilities)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_lm_methods import tiny_adapter, tiny_spec

from lowprob.cli import main
from lowprob.lm_bridge.bench import (
    format_table,
    load_cases,
    plot_bench,
    run_bench,
    write_bench_json,
)
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.registry import LM_METHODS, register_lm_method
from lowprob.lm_bridge.problem import LMProblem
from lowprob.lm_bridge.scoring import score_records

pytestmark = pytest.mark.lm


@register_lm_method("test-constant", overwrite=True)
class ConstantGuess(LMMethodBase):
    """A plug-in defined outside the bench: always guesses ``guess`` with one batch of calls."""

    def __init__(self, *, guess: float = 1e-4, batch_size: int = 16) -> None:
        super().__init__(batch_size=batch_size)
        self.guess = guess

    def _run(self, problem, model, rng, budget):
        model.logits(problem.spec.sample(self.batch_size, torch.Generator().manual_seed(0)))
        return MethodResult(log_value=math.log(self.guess))


@pytest.fixture(scope="module")
def bench_dirs(tmp_path_factory):
    """Specs for two families (hex: development, caps: held out) and exact-probability target lists."""
    root = tmp_path_factory.mktemp("bench")
    adapter = tiny_adapter()
    (root / "specs").mkdir()
    (root / "targets").mkdir()
    model_dir = root / "model"
    adapter.model.save_pretrained(model_dir, safe_serialization=True)
    for fam, seed in (("hex", 0), ("caps", 1)):
        spec = tiny_spec(seed)
        spec.save(root / "specs" / f"{fam}.json")
        ps = [(t, LMProblem(adapter, spec, t).exact_probability()) for t in range(16)]
        chosen = [(t, p) for t, p in ps if 0 < p < 5e-3][:3]
        assert len(chosen) >= 2
        (root / "targets" / f"{fam}.targets.json").write_text(json.dumps({
            "format": "lowprob.targets/1", "family": fam, "spec_hash": spec.spec_hash(), "model_hash": None,
            "targets": [{"token": t, "p": p, "count": 0, "std_err": 0.0} for t, p in chosen],
        }))
    return root, adapter


def test_run_bench_scores_plots_and_accepts_plugins(bench_dirs, tmp_path):
    root, adapter = bench_dirs
    cases = load_cases(root / "targets", root / "specs")
    assert [c.family for c in cases][0] == "hex" and {c.family for c in cases} == {"hex", "caps"}
    methods = [("naive", {}), ("qld", {"batch_size": 512}), ("test-constant", {"guess": 1e-3})]
    records = run_bench(adapter, cases, methods, budget=1024, seed=0, show_progress=False)
    assert len(records) == 3 * len(cases)
    const = [r for r in records if r["method"] == "test-constant"]
    assert all(r["estimate"] == pytest.approx(1e-3) and r["cost"]["model_calls"] == 16 for r in const)
    # common random numbers: the same seed per case for every method
    assert len({r["seed"] for r in records if r["target"] == cases[0].target and r["family"] == "hex"}) == 1
    scores = score_records(records, n_boot=100)
    # the constant guess is fitted on hex only: a = 0 and b = log mean p over hex targets
    hex_p = [c.p_true for c in cases if c.family == "hex"]
    assert scores["fits"]["test-constant"]["b"] == pytest.approx(math.log(np.mean(hex_p)), rel=1e-9)
    table = format_table(scores)
    assert "test-constant" in table and "heldout" in table
    png = plot_bench(records, scores, tmp_path / "b.png")
    out = write_bench_json(tmp_path / "b.json", meta={"x": 1}, records=records, scores=scores)
    assert png.stat().st_size > 1000 and json.loads(out.read_text())["format"] == "lowprob.lm_bench/1"


def test_load_cases_rejects_changed_spec(bench_dirs, tmp_path):
    root, _ = bench_dirs
    obj = json.loads((root / "targets" / "hex.targets.json").read_text())
    obj["spec_hash"] = "0" * 16
    (tmp_path / "hex.json").write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="spec_hash"):
        load_cases(tmp_path, root / "specs")


def test_cli_estimate_json_contract(bench_dirs, capsys):
    root, adapter = bench_dirs
    spec_path = root / "specs" / "hex.json"
    target = json.loads((root / "targets" / "hex.targets.json").read_text())["targets"][0]["token"]
    rc = main(["lm", "estimate", "--model", str(root / "model"), "--dist", str(spec_path), "--target",
               str(target), "--method", "itgis", "--budget", "512", "--seed", "3", "--device", "cpu", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["method"] == "itgis" and isinstance(d["estimate"], float)
    assert d["cost"]["model_calls"] == 512 and d["cost"]["backward_calls"] == 512 and d["cost"]["seconds"] > 0
    assert "log_estimate" in d


def test_cli_bench_end_to_end(bench_dirs, tmp_path, capsys):
    root, _ = bench_dirs
    out = tmp_path / "r.json"
    rc = main(["lm", "bench", "--model", str(root / "model"), "--methods", "naive", "gld", "naive:batch_size=512", "--budget", "1024",
               "--device", "cpu", "--targets", str(root / "targets"), "--specs", str(root / "specs"),
               "--param", "gld.batch_size=256", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "naive" in text and "gld" in text and out.is_file() and out.with_suffix(".png").is_file()
    saved = json.loads(out.read_text())
    assert saved["meta"]["methods"]["gld"] == {"batch_size": 256}
    assert saved["meta"]["methods"]["naive:batch_size=512"] == {"batch_size": 512}
    assert {r["method"] for r in saved["records"]} == {"naive", "gld", "naive:batch_size=512"}


def test_cli_errors(bench_dirs, tmp_path, capsys):
    root, _ = bench_dirs
    spec_path = str(root / "specs" / "hex.json")
    base = ["lm", "estimate", "--dist", spec_path, "--method", "naive", "--budget", "1024"]
    assert main([*base, "--model", str(root / "model"), "--target", "99", "--device", "cpu"]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*base, "--model", str(tmp_path / "empty"), "--target", "1", "--device", "cpu"]) == 2
    capsys.readouterr()
    assert main([*base, "--model", str(root / "model"), "--target", "1", "--device", "cpu", "--budget", "10"]) == 2
    assert "smaller than one batch" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*base, "--model", str(root / "model"), "--target", "1", "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert "test-constant" in LM_METHODS
