"""benchmarks/whestbench.py applies each round's rules as WhestBench defines them (read, not retyped),
and refuses a dataset whose MLP shape is not the round's."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("whestbench")

from whestbench.budget import ROUNDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_whestbench", ROOT / "benchmarks" / "whestbench.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,tag", [("warmup", "v1-warmup"), ("phase1", "v1-phase1"),
                                      ("phase2", "v2-phase2")])
def test_round_rules_come_from_whestbench(bench, name, tag):
    r = bench.round_config(name)
    assert r is ROUNDS[tag]
    spec = bench.contest_spec(r, 3, 1000)
    assert (spec.width, spec.depth, spec.flop_budget) == (r.width, r.depth, r.flop_budget)
    assert spec.lambda_flops_per_second == r.lambda_flops_per_second
    assert spec.residual_wall_time_limit_s == r.residual_wall_time_limit_s
    assert spec.wall_time_limit_s == r.wall_time_limit_s
    spec.validate()
    # priced rounds spend more so that the priced residual is diluted; gated ones sit on the floor
    assert bench.spend_fraction(r) == (0.1 if r.residual_mode == "gated" else 0.25)


def test_unknown_round_refused(bench):
    with pytest.raises(SystemExit, match="--round"):
        bench.round_config("phase9")


def test_dataset_of_the_wrong_shape_is_refused(bench, tmp_path):
    from whestbench.dataset import create_dataset

    path = create_dataset(n_mlps=1, n_samples=64, width=8, depth=2, mlp_seeds=[5],
                          output_path=tmp_path / "tiny")
    with pytest.raises(SystemExit, match=r"8x2.*v1-warmup.*256x8"):
        bench.contest_from_dataset(bench.round_config("warmup"), path, 1)


def test_repeats_reseed_the_estimator_not_the_weights(bench):
    """Repeat k moves every MLP's grader seed by 7919 k; weights and truth are untouched, and
    the design estimator (seeded off ``mlp.seed``) then gives a different, independent run."""
    import flopscope.numpy as fnp
    import numpy as np
    from whestbench.scoring import ContestData

    from lowprob.integrations.whestbench import DesignEstimator
    from lowprob.toy_models.random_mlp import RandomMLP

    mlps = [RandomMLP.whestbench(8, 2, seed=s).to_whestbench(seed=s) for s in (3, 4)]
    spec = bench.contest_spec(bench.round_config("warmup"), 2, 100)
    targets = [fnp.zeros((2, 8), dtype=fnp.float32) for _ in mlps]
    data = ContestData(spec=spec, mlps=mlps, all_layer_targets=targets,
                       final_targets=[t[-1] for t in targets], avg_variances=[1.0, 1.0])
    assert bench._reseeded(data, 0) is data
    moved = bench._reseeded(data, 2)
    assert [m.seed for m in moved.mlps] == [3 + 2 * 7919, 4 + 2 * 7919]
    for a, b in zip(data.mlps, moved.mlps, strict=True):
        assert all(np.array_equal(np.asarray(x), np.asarray(y))
                   for x, y in zip(a.weights, b.weights, strict=True))
    est = DesignEstimator(shrink=False)
    p0 = np.asarray(est.predict(data.mlps[0], 10**7))
    p2 = np.asarray(est.predict(moved.mlps[0], 10**7))
    assert p0.shape == p2.shape == (2, 8) and not np.array_equal(p0, p2)


def test_bad_repeats_and_append_refused_before_any_scoring(bench, tmp_path):
    """``--repeats 0`` is refused; ``--append`` needs a results file of the same round and truth."""
    import json

    with pytest.raises(SystemExit, match="--repeats"):
        bench.main(["--round", "warmup", "--n-mlps", "1", "--repeats", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--append: no"):
        bench.main(["--round", "warmup", "--n-mlps", "1", "--append", "--out", str(tmp_path)])
    (tmp_path / "whestbench_warmup.json").write_text(json.dumps(
        {"round": "v1-warmup", "truth_samples": [123], "estimators": []}))
    with pytest.raises(SystemExit, match="other MLPs or truth"):
        bench.main(["--round", "warmup", "--n-mlps", "1", "--append", "--out", str(tmp_path)])
