"""The win-map grid runner (``lowprob curves --grid``): skips, reasons, resume, bit-identical JSON.

Tier: fast (a 2-cell grid with 6 instances and tiny budgets, ~10 s). Resume is tested by
stopping after one new cell (``max_new_cells=1``) and rerunning: the second rerun (nothing
left to compute) must write byte-identical ``winmap.json``, and the resumed record must equal a
fresh uninterrupted run's in every field that does not depend on the wall clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lowprob.errors import LowprobError
from lowprob.propagation.winmap import GridConfig, run_grid

TINY = GridConfig(
    ns=(3, 4), ratios=(2, 4), instances=6, bootstrap=50,
    budgets={"kernel": {3: (1, 4, 9), 4: (1, 5, 14)}, "hermite": {3: (1, 4, 10), 4: (1, 5, 15)},
             "quadrature": {3: (16, 64), 4: (16, 64)}, "quadrature-genz": {3: (16, 64), 4: (16, 64)},
             "quadrature-auto": {3: (16, 64), 4: (16, 64)}, "sampling": {3: (10, 100), 4: (10, 100)}},
)


def _strip_clock(obj):
    if isinstance(obj, dict):
        return {k: _strip_clock(v) for k, v in obj.items() if "second" not in k and k != "log10_ratio_seconds"}
    if isinstance(obj, list):
        return [_strip_clock(v) for v in obj]
    return obj


QUIET = {"show_progress": False, "log": lambda s: None}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return run_grid(TINY, tmp_path_factory.mktemp("fresh"), **QUIET)


def test_grid_resume_is_bit_identical(tmp_path, fresh):
    part = run_grid(TINY, tmp_path, max_new_cells=2, **QUIET)  # (3, 6) is skipped, (3, 12) computed
    assert part["complete"] is False
    assert run_grid(TINY, tmp_path, **QUIET)["complete"] is True
    first = (tmp_path / "winmap.json").read_bytes()
    run_grid(TINY, tmp_path, **QUIET)  # everything cached: nothing recomputed
    assert (tmp_path / "winmap.json").read_bytes() == first
    assert (tmp_path / "winmap.png").stat().st_size > 0
    assert _strip_clock(json.loads(first)) == _strip_clock(json.loads(json.dumps(fresh)))


def test_grid_records_skips_with_reasons(tmp_path, fresh):
    rec = fresh
    cells = {(c["n"], c["m"]): c for c in rec["cells"]}
    assert set(cells) == {(3, 6), (3, 12), (4, 8), (4, 16)}
    assert "outside" in cells[(3, 6)]["skipped"]  # E p = 2^-6 > 1e-2
    run = cells[(4, 8)]
    assert {r["method"] for r in run["rows"]} == {"kernel", "hermite", "quadrature", "quadrature-genz",
                                                  "quadrature-auto"}
    assert all(r["flop_decade"] is not None for r in run["rows"])
    assert "(only 3 budgets affordable)" in run["budget_notes"]["kernel"]
    assert run["truth"].startswith("exact oracle")
    assert run["tail_coverage"] == run["trivial_nmse_measured"] / run["trivial_nmse"] > 0
    listed = {u["cell"] for u in rec["targets"]["unreliable_cells"]}
    # reliability: the lower end of the tail coverage's bootstrap 95 % interval must reach 0.5
    assert listed == {f"{c['n']}x{c['m']}" for c in rec["cells"]
                      if not c.get("skipped") and c["tail_coverage_ci95"][0] < 0.5}
    assert all(c["instance_law"] == "mixture" for c in rec["cells"] if not c.get("skipped"))
    assert "4x8 kernel" in rec["map_log10_ratio_at_equal_flops"]
    assert set(rec["map_informative_vs_measured_trivial"]) == set(rec["map_informative"])
    # a cell whose method has no budgets is skipped with the reason, never dropped silently
    cfg = GridConfig(ns=(5,), ratios=(2,), instances=4, bootstrap=20, methods=("kernel", "sampling"),
                     budgets={"sampling": {5: (10, 100)}})
    rec2 = run_grid(cfg, tmp_path / "c", show_progress=False, log=lambda s: None)
    assert "no budgets defined" in rec2["cells"][0]["skipped_methods"]["kernel"]


def test_grid_cli_rejects_bad_ns(tmp_path):
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "lowprob", "curves", "--grid", "--grid-ns", "4,x", "--out", str(tmp_path)],
                       cwd=root, capture_output=True, text=True)
    assert r.returncode != 0 and "--grid-ns" in r.stderr


def test_grid_rejects_unknown_method(tmp_path):
    with pytest.raises(LowprobError):
        run_grid(GridConfig(ns=(4,), ratios=(2,), instances=4, methods=("nope", "sampling")), tmp_path,
                 show_progress=False, log=lambda s: None)


def test_cells_with_an_untrustworthy_truth_are_unreliable(fresh):
    """The targets ignore a cell whose truth is infinite-noise on an instance, or dominated by a
    few draws on one (stated relative error > 0.5); the exact-oracle cells have neither."""
    from lowprob.propagation.winmap import _reliable

    cell = next(c for c in fresh["cells"] if not c.get("skipped"))
    assert cell["truth_dominated_instances"] == 0 and _reliable(cell)
    assert not _reliable({**cell, "truth_dominated_instances": 1})
    assert not _reliable({**cell, "truth_noise_nmse": float("inf")})
