"""The win map: where deterministic propagation beats sampling, over dimensions, sizes and budgets.

For each cell ``(n, m)`` of a grid (default ``n in {4, 8, 16, 32, 64}``, ``m in {n, 2n, 4n}``)
we run :func:`lowprob.propagation.curves.run_curves` (every method at several budgets on the
same random instances; truth by the exact oracle for ``n <= 4``, by Botev minimax tilting
otherwise, with its noise floor stated) and compare every deterministic method with sampling.
Instances are drawn by ``GridConfig.instance_law``: by default the ``"mixture"`` of the
feasibility strata of ``P`` and the exact tail law ``Q_2 ∝ p^2 P`` (``tail_share`` of the
instances), weighted by the balance heuristic (:mod:`lowprob.toy_models.instance_law`): with
``P`` alone, 40-200 instances of a cell with ``m >= 2 n``, ``n >= 8`` miss the heavy tail of
``p`` and every nMSE there is optimistic. A cell is *reliable* when the lower end of the
bootstrap 95 % interval of its tail coverage (measured / exact trivial nMSE) is at least
:data:`MIN_TAIL_COVERAGE`. Per cell:

* at equal counted FLOPs, ``ratio_F = nMSE_method / (f_s / F)`` where ``f_s`` is sampling's
  measured FLOPs per sample (sampling's nMSE is exactly ``1/N``, unbiased);
* at equal wall seconds on this machine, ``ratio_S = nMSE_method / (s_s / S)`` with ``s_s``
  sampling's measured seconds per sample.

``log10`` ratios are binned by the method's FLOP decade (``floor(log10 F)``, best point per
decade) and drawn as two heat maps. A point is *informative* when its 95 % bootstrap interval
lies below the trivial predictor's nMSE (``Var p / E p(1-p)``); elsewhere even ``E p`` beats
sampling, so a "win" there means nothing, and the map marks it.

Cells with ``E p = 2^-m`` outside ``p_range`` (default ``1e-12..1e-2``) are skipped, and so are
methods a cell does not support, each with its reason in the JSON. Every cell is written to
``<out>/winmap_cells/cell_n<n>_m<m>.json`` as soon as it is done (atomic), keyed by the
parameters that determine it; a rerun loads finished cells instead of recomputing them
(resume), so the assembled ``winmap.json`` is bit-identical however often the run was
interrupted (wall seconds are measured once per cell and stored with it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import atomic_write_json, check_writable, dumps_strict
from lowprob._progress import progress
from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.propagation.curves import (
    CURVE_PROBLEMS,
    CurveConfig,
    check_instance_law,
    check_problem_law,
    run_curves,
)

__all__ = [
    "DEFAULT_GRID_BUDGETS",
    "GridConfig",
    "cell_budgets",
    "plot_winmap",
    "run_cell",
    "run_grid",
]


def _hermite_budgets(n: int, max_degree: int) -> tuple[int, ...]:
    return tuple(math.comb(n + D, n) for D in range(max_degree + 1))


#: ``method -> n -> budgets`` (and a note on why the list stops where it does).
DEFAULT_GRID_BUDGETS: dict[str, dict[int, tuple[tuple[int, ...], str]]] = {
    "kernel": {
        4: ((5, 14, 30, 55, 91, 140, 285, 506, 1015), "rotated (quaternion) product"),
        8: ((1, 9, 44), "Clenshaw product; degree >= 3 needs a coupling precomputation of ~1e11 FLOPs"),
        16: ((1, 17), "Clenshaw product; degree >= 2 needs a coupling precomputation of ~1e11+ FLOPs"),
        32: ((1, 33), "Clenshaw product; degree >= 2 coupling precomputation unaffordable"),
        64: ((1, 65), "Clenshaw product; degree >= 2 coupling precomputation unaffordable"),
    },
    "hermite": {
        4: (_hermite_budgets(4, 8), "total degree 0..8"),
        8: (_hermite_budgets(8, 6), "total degree 0..6"),
        16: (_hermite_budgets(16, 5), "total degree 0..5"),
        32: (_hermite_budgets(32, 3), "total degree 0..3 (degree 4: ~3e9 FLOPs per instance)"),
        64: (_hermite_budgets(64, 2), "total degree 0..2"),
    },
    "sampling": {n: ((100, 1_000, 10_000, 100_000), "exact 1/N law used for the comparison") for n in (4, 8, 16, 32, 64)},
    "quadrature": {
        n: ((16, 64, 256, 1024, 4096, 16384, 65536), "Sobol points through Botev's tilted pivots (powers of two)")
        for n in (4, 8, 16, 32, 64)
    },
    "quadrature-auto": {
        n: (
            (16, 64, 256, 1024, 4096, 16384, 65536),
            "Genz's pivots, or Botev's tilt once its predicted cost is at most the points' (powers of two)",
        )
        for n in (4, 8, 16, 32, 64)
    },
    "quadrature-genz": {
        n: ((16, 64, 256, 1024, 4096, 16384, 65536), "Sobol points through Genz's pivots, mu = 0 (powers of two)")
        for n in (4, 8, 16, 32, 64)
    },
}


@dataclass(frozen=True)
class GridConfig:
    """What :func:`run_grid` runs. ``budgets`` overrides :data:`DEFAULT_GRID_BUDGETS` per method
    (``{method: {n: (K1, K2, ...)}}``); ``instance_law`` / ``tail_share`` as in
    :class:`~lowprob.propagation.curves.CurveConfig` (default: the tail-biased mixture)."""

    ns: tuple[int, ...] = (4, 8, 16, 32, 64)
    ratios: tuple[int, ...] = (1, 2, 4)
    instances: int = 40
    methods: tuple[str, ...] = ("kernel", "hermite", "quadrature", "quadrature-genz", "quadrature-auto", "sampling")
    problem: str = "halfspace"
    seed: int = 0
    bootstrap: int = 400
    truth_samples: int = 2**13
    p_range: tuple[float, float] = (1e-12, 1e-2)
    budgets: dict[str, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    instance_law: str = "mixture"
    tail_share: float = 0.5

    def __post_init__(self) -> None:
        check_instance_law(self.instance_law, self.tail_share)


def cell_budgets(config: GridConfig, method: str, n: int) -> tuple[tuple[int, ...], str]:
    """Budgets of ``method`` at dimension ``n`` and the note on their range (``()`` if unsupported)."""
    if method in config.budgets and n in config.budgets[method]:
        return tuple(config.budgets[method][n]), "user budgets"
    table = DEFAULT_GRID_BUDGETS.get(method, {})
    if n in table:
        return table[n]
    return (), f"no budgets defined for {method!r} at n={n}"


def _cell_key(config: GridConfig, n: int, m: int) -> str:
    """The parameters that determine a cell's result (a changed key forces recomputation)."""
    return dumps_strict({
        "version": 3,
        "problem": config.problem, "n": n, "m": m, "instances": config.instances, "seed": config.seed,
        "instance_law": config.instance_law,
        "tail_share": config.tail_share if config.instance_law == "mixture" else 0.0,
        "bootstrap": config.bootstrap, "truth_samples": config.truth_samples,
        "methods": {meth: list(cell_budgets(config, meth, n)[0]) for meth in config.methods},
    }, sort_keys=True)


def run_cell(config: GridConfig, n: int, m: int) -> dict[str, Any]:
    """One grid cell: the curves record plus the equal-FLOPs / equal-seconds comparison rows."""
    Ep = 2.0 ** -m
    lo, hi = config.p_range
    base = {"n": n, "m": m, "mean_p": Ep}
    if not lo <= Ep <= hi:
        return {**base, "skipped": f"E p = 2^-{m} = {Ep:.3g} outside [{lo:g}, {hi:g}]"}
    methods, skipped, notes = [], {}, {}
    budgets: dict[str, tuple[int, ...]] = {}
    for meth in config.methods:
        ks, note = cell_budgets(config, meth, n)
        if not ks:
            skipped[meth] = note
            continue
        methods.append(meth)
        budgets[meth] = ks
        notes[meth] = note + ("" if len(ks) >= 5 or meth == "sampling" else f" (only {len(ks)} budgets affordable)")
    if "sampling" not in methods:
        return {**base, "skipped": "sampling is needed as the reference", "skipped_methods": skipped}
    cc = CurveConfig(
        d=n, m=m, instances=config.instances, methods=tuple(methods), budgets=budgets,
        seed=config.seed * 1_000_003 + 1000 * n + m, bootstrap=config.bootstrap,
        truth_samples=config.truth_samples, problem=config.problem,
        instance_law=config.instance_law, tail_share=config.tail_share,
        fit_from={meth: (ks[1] if len(ks) > 2 else ks[0]) for meth, ks in budgets.items()},
    )
    res = run_curves(cc, show_progress=False, log=lambda s: None)
    trivial = res["trivial_nmse"]
    sp = max(res["methods"]["sampling"]["points"], key=lambda p: p["budget"])
    fs = sp["flops_per_instance"] / sp["budget"]
    ss = sp["seconds_per_instance"] / sp["budget"]
    rows = []
    for meth, rec in res["methods"].items():
        if meth == "sampling":
            continue
        for p in rec["points"]:
            F, S = p["flops_per_instance"], p["seconds_per_instance"]
            rows.append({
                "method": meth, "budget": p["budget"], "flops": F, "seconds": S, "nmse": p["nmse"],
                "nmse_ci95": p["nmse_ci95"],
                "log10_ratio_flops": math.log10(p["nmse"] * F / fs) if p["nmse"] > 0 and F > 0 else None,
                "log10_ratio_flops_ci95_hi": math.log10(p["nmse_ci95"][1] * F / fs) if p["nmse_ci95"][1] > 0 and F > 0 else None,
                "log10_ratio_seconds": math.log10(p["nmse"] * S / ss) if p["nmse"] > 0 and S > 0 else None,
                "flop_decade": int(math.floor(math.log10(F))) if F > 0 else None,
                "informative": bool(p["nmse_ci95"][1] < trivial),
                "precomputation_flops": p.get("precomputation_flops", 0.0),
                "precomputation_amortised_over": p.get("precomputation_amortised_over"),
            })
    det_nmse = [r["nmse"] for r in rows if r["nmse"] > 0]
    noise = res["truth_noise_nmse"]
    return {
        **base,
        "skipped_methods": skipped,
        "budget_notes": notes,
        "trivial_nmse": trivial,
        "trivial_nmse_measured": res["trivial_nmse_measured"],
        "tail_coverage": res["tail_coverage"],
        "tail_coverage_ci95": res["tail_coverage_ci95"],
        "instance_law": res["instance_law"],
        "tail_share": res["tail_share"],
        "sum_weights": res["sum_weights"],
        "sum_weights_ci95": res["sum_weights_ci95"],
        "truth": res["truth"],
        "truth_noise_nmse": noise,
        "truth_dominated_instances": res.get("truth_dominated_instances"),
        "truth_noise_over_smallest_nmse": noise / min(det_nmse) if det_nmse else None,
        "sampling_flops_per_sample": fs,
        "sampling_seconds_per_sample": ss,
        "rows": rows,
        "slopes_vs_flops": {meth: rec.get("slope_vs_flops") for meth, rec in res["methods"].items()},
        "slopes_vs_budget": {meth: rec.get("slope_vs_budget") for meth, rec in res["methods"].items()},
        "curves": res,
    }


def _cell_path(out: Path, n: int, m: int) -> Path:
    return out / "winmap_cells" / f"cell_n{n}_m{m}.json"


def run_grid(config: GridConfig, out: str | Path, *, show_progress: bool | None = None,
             max_new_cells: int | None = None, log: Any = None) -> dict[str, Any]:
    """Run (or resume) the grid; write ``<out>/winmap.json`` and ``<out>/winmap.png``; return the record.

    ``max_new_cells`` stops after computing that many new cells (the record then has
    ``complete: false``; rerunning resumes).
    """
    check_int("instances", config.instances, minimum=2)
    for n in config.ns:
        check_int("n", n, minimum=2)
    for meth in config.methods:
        from lowprob.toy_models.registry import get_toy_estimator

        if config.problem == "halfspace":
            get_toy_estimator(meth)  # unknown names fail before any work
    CURVE_PROBLEMS.get(config.problem)
    check_problem_law(config.problem, config.instance_law)
    out = check_writable(Path(out))
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)
    cells = [(n, n * r) for n in config.ns for r in config.ratios]
    records, new = [], 0
    complete = True
    for n, m in progress(cells, total=len(cells), desc="win map cells", enabled=show_progress):
        path = _cell_path(out, n, m)
        key = _cell_key(config, n, m)
        if path.exists():
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                records.append(stored["cell"])
                continue
        if max_new_cells is not None and new >= max_new_cells:
            complete = False
            continue
        cell = run_cell(config, n, m)
        atomic_write_json(path, {"key": key, "cell": cell}, indent=1)
        # the stored (strict-JSON) form is what every later assembly reads: use it now as well
        records.append(json.loads(path.read_text())["cell"])
        new += 1
        log(_cell_line(records[-1]))
    record = _assemble(config, records, complete)
    atomic_write_json(out / "winmap.json", record, indent=1)
    plot_winmap(record, out / "winmap.png")
    return record


def _cell_line(cell: dict[str, Any]) -> str:
    if "skipped" in cell:
        return f"  n={cell['n']:>2d} m={cell['m']:>3d}: skipped ({cell['skipped']})"
    best = {}
    for r in cell["rows"]:
        if r["informative"] and r["log10_ratio_flops"] is not None:
            best[r["method"]] = min(best.get(r["method"], math.inf), r["log10_ratio_flops"])
    txt = ", ".join(f"{k} best log10 ratio {v:+.2f}" for k, v in best.items()) or "no informative point"
    cov = cell.get("tail_coverage")
    ci = cell.get("tail_coverage_ci95") or [math.nan, math.nan]
    return (f"  n={cell['n']:>2d} m={cell['m']:>3d}: {txt} (tail coverage = measured/exact trivial nMSE "
            f"{cov:.2f} [{ci[0]:.2f}, {ci[1]:.2f}], {cell.get('instance_law', 'stratified')} law)")


def _assemble(config: GridConfig, cells: list[dict[str, Any]], complete: bool) -> dict[str, Any]:
    """The map (best log10 ratio per cell, method and FLOP decade) and the issue's target checks."""
    from dataclasses import asdict

    # best point per (row, FLOP decade): informative points first, then the smallest ratio
    best: dict[tuple[str, str, str], tuple[bool, float]] = {}
    for c in cells:
        for r in c.get("rows", []):
            if r["flop_decade"] is None:
                continue
            row, dec = f"{c['n']}x{c['m']} {r['method']}", str(r["flop_decade"])
            for kind, key in (("flops", "log10_ratio_flops"), ("seconds", "log10_ratio_seconds")):
                if r[key] is not None:
                    cand = (not r["informative"], r[key])
                    if (row, dec, kind) not in best or cand < best[(row, dec, kind)]:
                        best[(row, dec, kind)] = cand
    maps: dict[str, dict[str, dict[str, float]]] = {"flops": {}, "seconds": {}}
    informative: dict[str, dict[str, bool]] = {}
    # the stricter reading: 95 % CI below the trivial predictor's nMSE *measured on the same
    # instances* (robust to a sample that missed the tail; the exact level is not)
    strict: dict[str, dict[str, bool]] = {}
    for c in cells:
        for r in c.get("rows", []):
            if r["flop_decade"] is None:
                continue
            row, dec = f"{c['n']}x{c['m']} {r['method']}", str(r["flop_decade"])
            ok = bool(r["nmse_ci95"][1] < c["trivial_nmse_measured"])
            strict.setdefault(row, {})[dec] = strict.get(row, {}).get(dec, False) or ok
    for (row, dec, kind), (not_inf, val) in best.items():
        maps[kind].setdefault(row, {})[dec] = val
        if kind == "flops":
            informative.setdefault(row, {})[dec] = not not_inf
    return {
        "config": {**asdict(config), "budgets_used": {
            meth: {str(n): list(cell_budgets(config, meth, n)[0]) for n in config.ns} for meth in config.methods}},
        "complete": complete,
        "cells": cells,
        "map_log10_ratio_at_equal_flops": maps["flops"],
        "map_log10_ratio_at_equal_seconds": maps["seconds"],
        "map_informative": informative,
        "map_informative_vs_measured_trivial": strict,
        "targets": _targets(cells),
        "notes": (
            "ratio = method nMSE / sampling nMSE (exact 1/N law) at equal counted FLOPs per instance "
            "(or equal measured wall seconds per instance on this machine); negative log10 = method wins. "
            "Instance-independent precomputation is excluded from the FLOPs and reported per row "
            "(precomputation_flops, amortised over precomputation_amortised_over instances)."
        ),
    }


#: a cell whose measured trivial nMSE may be below this fraction of the exact one (the lower end
#: of its bootstrap 95 % interval is) has not reliably seen the heavy tail of p; its nMSEs may be
#: optimistic and the targets ignore it (it stays in the map).
MIN_TAIL_COVERAGE = 0.5


#: a point counts for the targets only if its nMSE is at least this multiple of the truth's own noise
MIN_NMSE_OVER_TRUTH_NOISE = 4.0


def _reliable(c: dict[str, Any]) -> bool:
    """Tail coverage interval's lower end >= :data:`MIN_TAIL_COVERAGE` (cells stored before the
    interval existed: the point value), and a truth with finite noise on every instance (the
    Botev truth can fail on thin cones with ``m > n``: then its noise is infinite), none of whose
    instances is dominated by a few draws (stated relative error above
    :data:`~lowprob.propagation.curves.TRUTH_DOMINATED_RELATIVE_ERROR`; cells stored before this
    count existed are not checked for it)."""
    ci = c.get("tail_coverage_ci95")
    cov = ci[0] if ci else c.get("tail_coverage")
    noise = c.get("truth_noise_nmse")
    truth_ok = noise is None or (isinstance(noise, (int, float)) and math.isfinite(noise))
    truth_ok = truth_ok and not (c.get("truth_dominated_instances") or 0)
    return cov is not None and cov >= MIN_TAIL_COVERAGE and truth_ok


def _informative(c: dict[str, Any], r: dict[str, Any]) -> bool:
    """For the targets: the 95 % CI lies below both the exact trivial nMSE and the trivial nMSE
    measured on the same instances (a constant predictor is never informative, whatever the
    sampling noise of the instances)."""
    return bool(r["nmse_ci95"][1] < min(c["trivial_nmse"], c["trivial_nmse_measured"]))


def _resolved(c: dict[str, Any], r: dict[str, Any]) -> bool:
    """The point's nMSE is at least :data:`MIN_NMSE_OVER_TRUTH_NOISE` times the truth's noise."""
    noise = c.get("truth_noise_nmse") or 0.0
    return r["nmse"] >= MIN_NMSE_OVER_TRUTH_NOISE * noise


def _targets(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three targets, evaluated on the stored cells (reported whichever way they fall).

    Only cells whose sample has seen the tail (``tail_coverage >= MIN_TAIL_COVERAGE``) count;
    the others are listed in ``unreliable_cells``.
    """
    competing = []
    for c in cells:
        if c.get("skipped") or c["n"] < 16 or not _reliable(c):
            continue
        for meth, sl in c["slopes_vs_flops"].items():
            if meth == "sampling":
                continue
            pts = [r for r in c["rows"] if r["method"] == meth and _informative(c, r) and _resolved(c, r)]
            if not pts:
                competing.append({"cell": f"{c['n']}x{c['m']}", "method": meth, "met": False, "why": "no informative budget"})
                continue
            wins = all(r["log10_ratio_flops_ci95_hi"] is not None and r["log10_ratio_flops"] <= 0 for r in pts)
            span = math.log10(max(r["flops"] for r in pts) / min(r["flops"] for r in pts))
            ci = (sl or {}).get("ci95", [math.nan, math.nan])
            slope = (sl or {}).get("slope", math.nan)
            ok = bool(wins and span >= 3 and slope <= -1 and ci[1] < -0.9)
            competing.append({"cell": f"{c['n']}x{c['m']}", "method": meth, "met": ok, "wins_every_informative_budget": wins,
                              "informative_flop_span_decades": span, "slope_vs_flops": slope, "slope_ci95": ci})
    kernel_4x16 = None
    for c in cells:
        if c["n"] == 4 and c["m"] == 16 and not c.get("skipped") and _reliable(c):
            pts = [r for r in c["rows"] if r["method"] == "kernel" and r["flops"] >= 1e6]
            best = min(pts, key=lambda r: r["log10_ratio_flops"]) if pts else None
            kernel_4x16 = {"best_ratio_at_ge_1e6_flops": 10 ** best["log10_ratio_flops"] if best else None,
                           "budget": best["budget"] if best else None, "flops": best["flops"] if best else None,
                           "met": bool(best and 10 ** best["log10_ratio_flops"] <= 5),
                           "slope_vs_budget": c["slopes_vs_budget"].get("kernel")}
    gain: dict[str, list[dict[str, Any]]] = {}
    for c in cells:
        if c.get("skipped") or not _reliable(c):
            continue
        inf = [r for r in c["rows"] if _informative(c, r) and _resolved(c, r) and r["log10_ratio_flops"] is not None]
        best = min(inf, key=lambda r: r["log10_ratio_flops"]) if inf else None
        gain.setdefault(f"m/n={c['m'] // c['n']}", []).append({
            "n": c["n"], "m": c["m"],
            "best_gain_over_sampling": 10 ** -best["log10_ratio_flops"] if best else None,
            "method": best["method"] if best else None, "flops": best["flops"] if best else None})
    return {"min_tail_coverage": MIN_TAIL_COVERAGE,
            "reliability_rule": "lower end of the tail coverage's bootstrap 95 % interval >= min_tail_coverage, "
                                "and the truth's noise finite on every instance and no instance's truth dominated by "
                                "a few draws (stated relative error > 0.5; recorded from this version of the cells on)",
            "informative_rule": "95 % CI below both the exact and the measured trivial nMSE",
            "resolution_rule": f"competing points need nMSE >= {MIN_NMSE_OVER_TRUTH_NOISE:g} x the truth's noise nMSE",
            "unreliable_cells": [{"cell": f"{c['n']}x{c['m']}", "tail_coverage": c.get("tail_coverage"),
                                  "tail_coverage_ci95": c.get("tail_coverage_ci95")}
                                 for c in cells if not c.get("skipped") and not _reliable(c)],
            "competing_at_every_budget_n_ge_16": competing,
            "competing_met_in_cells": sorted({x["cell"] for x in competing if x["met"]}),
            "kernel_4x16_within_5x": kernel_4x16,
            "gain_vs_n": gain}


def _unreliable_label(c: dict[str, Any] | None) -> str:
    """``''`` for a reliable cell, else why not (``tail x!`` or ``truth!``)."""
    if c is None or _reliable(c):
        return ""
    ci = c.get("tail_coverage_ci95")
    cov = ci[0] if ci else c.get("tail_coverage")
    if cov is not None and cov >= MIN_TAIL_COVERAGE:
        return " (truth!)"
    return f" (tail {c.get('tail_coverage') or 0:.2f}!)"


def plot_winmap(record: dict[str, Any], path: str | Path) -> None:
    """Two heat maps (equal FLOPs, equal seconds): rows ``n x m method``, columns FLOP decades."""
    import matplotlib.pyplot as plt

    fmap = record["map_log10_ratio_at_equal_flops"]
    smap = record["map_log10_ratio_at_equal_seconds"]
    inf = record["map_informative"]
    rows = list(fmap)
    decs = sorted({int(d) for r in fmap.values() for d in r})
    if not rows:  # nothing computed yet (e.g. every finished cell was skipped)
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "win map: no computed cell yet", ha="center", va="center")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, 2, figsize=(6 + 1.1 * max(len(decs), 1) * 2, 1.2 + 0.38 * max(len(rows), 1)))
    for ax, mp, title in ((axes[0], fmap, "equal counted FLOPs"), (axes[1], smap, "equal wall seconds (this machine)")):
        A = np.full((len(rows), len(decs)), np.nan)
        for i, r in enumerate(rows):
            for j, d in enumerate(decs):
                v = mp.get(r, {}).get(str(d))
                if v is not None:
                    A[i, j] = v
        im = ax.imshow(A, cmap="RdBu_r", vmin=-3, vmax=3, aspect="auto")
        for i, r in enumerate(rows):
            for j, d in enumerate(decs):
                if np.isfinite(A[i, j]):
                    mark = "" if inf.get(r, {}).get(str(d), False) else "*"
                    ax.text(j, i, f"{A[i, j]:+.1f}{mark}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(decs)), [f"1e{d}" for d in decs])
        cov = {f"{c['n']}x{c['m']}": c for c in record["cells"] if not c.get("skipped")}
        labels = [r + _unreliable_label(cov.get(r.split()[0])) for r in rows]
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.set_xlabel("method's counted FLOPs per instance (decade)")
        ax.set_title(f"log10 nMSE ratio vs sampling, {title}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.suptitle("win map (blue: deterministic method beats sampling; * = 95% CI not below the trivial E p level; "
                 "'tail x!' = tail coverage x, its 95% CI reaching below 0.5: possibly optimistic; "
                 "'truth!' = the truth failed on some instance)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_grid_ints(name: str, spec: str) -> tuple[int, ...]:
    """``"4,8,16"`` -> ``(4, 8, 16)`` (validated positive integers)."""
    try:
        vals = tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise InputValueError(f"{name} must be comma-separated integers like '4,8,16', got {spec!r}.") from None
    if not vals or min(vals) < 1:
        raise InputValueError(f"{name} must list integers >= 1, got {spec!r}.")
    return vals


def with_instances(config: GridConfig, instances: int) -> GridConfig:
    """``config`` with another instance count."""
    return replace(config, instances=check_int("instances", instances, minimum=2))
