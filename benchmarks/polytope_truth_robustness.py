"""Robustness of the Botev truth on polyhedral cones with more faces than dimensions (``m > d``).

For cones ``{W x > 0}`` (``W`` ``m x d``) the pivots of the pivoted LQ own several rows, Botev's
``psi`` is non-smooth and the minimax root search of :func:`lowprob.gaussian_polytope.minimax_tilt`
often fails. This compares, on the same instances and seeds:

* **old**: the failure branch as it was (``mu = 0`` or an unconverged root iterate, picked on the
  fixed pilot stream), obtained by switching the smoothed solver off;
* **new**: the same branch with the log-sum-exp-smoothed tilts of
  :mod:`lowprob.polytope_smooth_tilt` added as candidates.

Instances: ``--instances`` feasible draws from ``P`` (i.i.d. N(0, 1) entries, conditioned on a
non-empty cone: feasibility by :func:`lowprob.propagation.curves.feasible_mask`) per shape, and
``--mixture`` draws from the win map's tail-biased mixture (half from ``Q_2 ∝ p^2 P`` via
:func:`lowprob.toy_models.instance_law.sample_q2`, half feasible draws from ``P``; the infeasible
stratum is certified empty by the LP and is no test). Per instance: the tilt (converged / smoothed
used), the RQMC estimate (16 scrambles) at ``2^14`` and ``2^18`` points with the replicate standard
error, old and new on independent seeds; unresolved = no draw hit the cone (``relative_error =
inf``). Agreement: ``z = (p_old - p_new) / sqrt(se_old^2 + se_new^2)`` where both are finite and
the tilts differ; and against an independent plain Monte Carlo reference (``2^--ref-log2`` draws)
on ``d = 8`` instances with ``p >= 1e-5``.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/polytope_truth_robustness.py

(writes ``benchmarks/results/polytope_truth_robustness.json`` and ``.png``; the instances are
cached in ``benchmarks/results/polytope_truth_instances_<instances>_<mixture>_<seed>.npz``: the ``32 x 8`` feasible draws need
~10^5 LPs, since ``P[feasible] = 1.6e-3`` there).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from unittest import mock

import numpy as np

import lowprob.gaussian_polytope as gp
import lowprob.polytope_smooth_tilt as smooth_mod
from lowprob._io import atomic_write_json
from lowprob.gaussian_polytope import TiltedPolytopeSampler, minimax_tilt
from lowprob.propagation.curves import feasible_mask
from lowprob.toy_models.instance_law import sample_q2

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = ((16, 8), (32, 8), (32, 16))  # (m, d): W has m rows, d columns


def feasible_draws(m: int, d: int, count: int, seed: list[int]) -> np.ndarray:
    """``count`` draws of ``W`` with i.i.d. N(0,1) entries conditioned on a non-empty cone."""
    rng = np.random.default_rng(seed)
    got: list[np.ndarray] = []
    have = 0
    while have < count:
        W = rng.standard_normal((1024, m, d))
        f = W[feasible_mask(W)]
        got.append(f)
        have += f.shape[0]
    return np.concatenate(got)[:count]


def instances(n_p: int, n_mix: int, seed: int, cache: Path) -> dict[str, np.ndarray]:
    key = f"{n_p}_{n_mix}_{seed}"
    if cache.exists():
        z = np.load(cache)
        if str(z["key"]) == key:
            return {k: z[k] for k in z.files if k != "key"}
    out: dict[str, np.ndarray] = {}
    for m, d in SHAPES:
        print(f"drawing instances {m}x{d} ...", flush=True)
        out[f"P_{m}x{d}"] = feasible_draws(m, d, n_p, [seed, m, d])
        n_t = n_mix // 2
        out[f"mix_{m}x{d}"] = np.concatenate(
            [
                sample_q2(d, m, n_t, np.random.default_rng([seed, m, d, 3])),
                feasible_draws(m, d, n_mix - n_t, [seed, m, d, 7]),
            ]
        )
    np.savez_compressed(cache, key=key, **out)
    return out


class _NoSmooth:
    """Context switching the smoothed solver off (the failure branch as before)."""

    def __enter__(self) -> None:
        self._p = mock.patch.object(
            smooth_mod,
            "smooth_minimax_tilt",
            lambda st, y0, **kw: smooth_mod.SmoothTiltResult((), (), ()),
        )
        self._p.start()

    def __exit__(self, *exc: object) -> None:
        self._p.stop()


_LAST: list = [None]


def _recording_tilt(st: object, **kw: object) -> object:
    """:func:`minimax_tilt`, keeping its :class:`TiltSolution` (the sampler keeps only ``mu``)."""
    _LAST[0] = minimax_tilt(st, **kw)
    return _LAST[0]


def estimate(s: TiltedPolytopeSampler, n: int, seed: int) -> tuple[float, float]:
    r = s.probability(n, seed=seed)
    return r.log_probability, r.relative_error


def _old_new_z(recs: list, n: int) -> list[float]:
    """``(p_old - p_new) / combined std`` at ``n`` points, over records whose tilts differ and
    whose two errors are finite."""
    z = []
    for r in recs:
        (lo_, ro), (ln, rn) = r["old"][n], r["new"][n]
        if r["same_mu"] or not (math.isfinite(ro) and math.isfinite(rn)):
            continue
        po, pn = math.exp(lo_), math.exp(ln)
        se = math.hypot(po * ro, pn * rn)
        if se > 0:
            z.append((po - pn) / se)
    return z


def _z_against_reference(lp: float, rel: float, p_mc: float, se_mc: float) -> dict:
    """``{p, rel, z}`` of an estimate ``(log p, relative error)`` against a Monte Carlo reference."""
    p = math.exp(lp) if math.isfinite(lp) else 0.0
    se = p * rel if math.isfinite(rel) else math.inf
    return {"p": p, "rel": rel, "z": (p - p_mc) / math.hypot(se, se_mc) if math.isfinite(se) else None}


def mc_reference(W: np.ndarray, log2n: int, seed: int) -> tuple[float, float]:
    """Plain Monte Carlo ``P[W x > 0]``: ``(p, standard error)`` from ``2^log2n`` draws."""
    rng = np.random.default_rng(seed)
    hits = 0
    n = 2**log2n
    chunk = 2**20
    for _ in range(n // chunk):
        x = rng.standard_normal((chunk, W.shape[1]))
        hits += int(np.count_nonzero(np.all(x @ W.T > 0, axis=1)))
    p = hits / n
    return p, math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def run_instance(W: np.ndarray, seed: int, budgets: tuple[int, ...]) -> dict:
    """Old and new tilt on one cone ``{W x > 0}``; estimates at each budget (new on seed + 7919)."""
    m = W.shape[0]
    lo, hi = np.zeros(m), np.full(m, np.inf)
    with _NoSmooth():
        t0 = time.perf_counter()
        so = TiltedPolytopeSampler(W, lo, hi)
        t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    _LAST[0] = None
    with mock.patch.object(gp, "minimax_tilt", _recording_tilt):
        sn = TiltedPolytopeSampler(W, lo, hi)
    t_new = time.perf_counter() - t0
    same_mu = bool(np.array_equal(so.mu, sn.mu))
    sol = _LAST[0]
    smoothed, n_cand = (
        (bool(sol.smoothed), int(sol.smooth_candidates)) if sol is not None else (False, 0)
    )
    smooth_conv = bool(sol.smooth_converged) if sol is not None else False
    rec: dict = {
        "converged": bool(sn.converged),
        "same_mu": same_mu,
        "tilt_s_old": t_old,
        "tilt_s_new": t_new,
        "rank": sn.rank,
        "smoothed": smoothed,
        "smooth_converged": smooth_conv,
        "smooth_candidates": n_cand,
        "old": {},
        "new": {},
    }
    for n in budgets:
        rec["old"][n] = estimate(so, n, seed)
        # independent seed for the new estimate (identical tilt: identical estimator, reuse)
        rec["new"][n] = rec["old"][n] if same_mu else estimate(sn, n, seed + 7919)
    return rec


def summarise(recs: list[dict], budgets: tuple[int, ...]) -> dict:
    N = len(recs)
    out: dict = {
        "instances": N,
        "tilt_converged": sum(r["converged"] for r in recs) / N,
        "tilt_smooth_converged": sum(r["smooth_converged"] for r in recs) / N,
        "tilt_smoothed_used": sum(r.get("smoothed", False) for r in recs) / N,
        "tilt_s_old_mean": float(np.mean([r["tilt_s_old"] for r in recs])),
        "tilt_s_new_mean": float(np.mean([r["tilt_s_new"] for r in recs])),
    }
    for n in budgets:
        rs = [r for r in recs if n in r["old"]]
        out[f"instances_{n}"] = len(rs)
        for which in ("old", "new"):
            rel = np.array([r[which][n][1] for r in rs])
            fin = rel[np.isfinite(rel)]
            out[f"{which}_{n}"] = {
                "unresolved": int(np.sum(~np.isfinite(rel))),
                "unresolved_frac": float(np.mean(~np.isfinite(rel))),
                "median_rel": float(np.median(rel)) if rel.size else math.nan,
                "max_finite_rel": float(fin.max()) if fin.size else math.nan,
                "frac_rel_gt_0.1": float(np.mean(rel > 0.1)),
                "frac_rel_gt_0.5": float(np.mean(rel > 0.5)),
            }
        za = np.array(_old_new_z(rs, n))
        out[f"agreement_{n}"] = {
            "count": int(za.size),
            "mean_z": float(za.mean()) if za.size else math.nan,
            "std_z": float(za.std(ddof=1)) if za.size > 1 else math.nan,
            "max_abs_z": float(np.abs(za).max()) if za.size else math.nan,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--mixture", type=int, default=50)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--log2-budgets", type=int, nargs="+", default=[14, 18])
    ap.add_argument(
        "--n-large",
        type=int,
        default=60,
        help="P instances per shape that also get the largest budget (all mixture instances do)",
    )
    ap.add_argument("--ref-log2", type=int, default=24)
    ap.add_argument("--ref-count", type=int, default=20, help="MC references per d=8 P set")
    ap.add_argument("--out", type=Path, default=RESULTS / "polytope_truth_robustness")
    ap.add_argument(
        "--postprocess-only", action="store_true", help="only add the filtered agreement to --out"
    )
    ap.add_argument(
        "--reference-sets", nargs="*", default=None, help="only add MC references for these sets"
    )
    args = ap.parse_args()
    if args.reference_sets:
        cache = (
            RESULTS / f"polytope_truth_instances_{args.instances}_{args.mixture}_{args.seed}.npz"
        )
        reference_sets(
            args.out.with_suffix(".json"),
            cache,
            args.reference_sets,
            args.ref_log2,
            args.ref_count,
            args.seed,
        )
        return
    if args.postprocess_only:
        postprocess(args.out.with_suffix(".json"))
        return
    budgets = tuple(2**k for k in args.log2_budgets)
    cache = RESULTS / f"polytope_truth_instances_{args.instances}_{args.mixture}_{args.seed}.npz"
    inst = instances(args.instances, args.mixture, args.seed, cache)
    result: dict = {
        "command": "OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/polytope_truth_robustness.py",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sets": {},
    }
    all_recs: dict[str, list[dict]] = {}
    for name, Ws in inst.items():
        t0 = time.perf_counter()
        recs = []
        for i, W in enumerate(Ws):
            bud = budgets if (i < args.n_large or name.startswith("mix")) else budgets[:-1]
            recs.append(run_instance(W, args.seed + 1000 * i, bud))
            if (i + 1) % 25 == 0:
                print(f"  {name}: {i + 1}/{len(Ws)} ({time.perf_counter() - t0:.0f} s)", flush=True)
        all_recs[name] = recs
        summ = summarise(recs, budgets)
        summ["seconds"] = time.perf_counter() - t0
        result["sets"][name] = summ
        print(name, json.dumps(summ), flush=True)
    # independent plain-MC reference on d = 8 P instances with p >= 1e-5
    ref: dict = {}
    nb = budgets[-1]
    for name in [k for k in all_recs if k.startswith("P_") and k.endswith("x8")]:
        Ws, recs = inst[name], all_recs[name]
        pick = [
            i
            for i, r in enumerate(recs)
            if nb in r["new"]
            and not r["same_mu"]
            and math.isfinite(r["new"][nb][1])
            and r["new"][nb][0] >= math.log(1e-5)
        ]
        pick = pick[: args.ref_count]
        rows = []
        for i in pick:
            p_mc, se_mc = mc_reference(Ws[i], args.ref_log2, args.seed + 31 * i)
            row = {"index": i, "p_mc": p_mc, "se_mc": se_mc}
            for which in ("old", "new"):
                row[which] = _z_against_reference(*recs[i][which][nb], p_mc, se_mc)
            rows.append(row)
        zs = {w: [r[w]["z"] for r in rows if r[w]["z"] is not None] for w in ("old", "new")}
        ref[name] = {
            "rows": rows,
            "count": len(rows),
            **{f"{w}_z_mean": float(np.mean(zs[w])) if zs[w] else math.nan for w in zs},
            **{
                f"{w}_z_std": float(np.std(zs[w], ddof=1)) if len(zs[w]) > 1 else math.nan
                for w in zs
            },
            **{f"{w}_max_abs_z": float(np.max(np.abs(zs[w]))) if zs[w] else math.nan for w in zs},
            **{f"{w}_unresolved": sum(1 for r in rows if r[w]["z"] is None) for w in zs},
        }
        print("reference", name, {k: v for k, v in ref[name].items() if k != "rows"}, flush=True)
    result["mc_reference"] = ref
    result["per_instance"] = {
        k: [
            {
                "converged": r["converged"],
                "smoothed": r["smoothed"],
                "smooth_converged": r["smooth_converged"],
                "same_mu": r["same_mu"],
                **{f"{w}_{n}": list(r[w][n]) for w in ("old", "new") for n in budgets if n in r[w]},
            }
            for r in v
        ]
        for k, v in all_recs.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), result)
    print_table(result, budgets)
    plot(all_recs, budgets, args.out.with_suffix(".png"))
    postprocess(args.out.with_suffix(".json"))


def filtered_agreement(result: dict, max_rel: float = 0.1) -> dict:
    """``z = (p_old - p_new) / sqrt(se_old^2 + se_new^2)`` per set and budget over the instances
    where the tilts differ and *both* stated relative errors are below ``max_rel`` (where both
    claim to be resolved; a one-draw-dominated estimate has relative error ~1 and a meaningless
    standard error, so the unfiltered z is dominated by them)."""
    out: dict = {}
    for name, rows in result["per_instance"].items():
        for key in sorted(
            {k.split("_", 1)[1] for r in rows for k in r if k.startswith("old_")}, key=int
        ):
            z = []
            for r in rows:
                if r["same_mu"] or f"old_{key}" not in r:
                    continue
                (lo_, ro), (ln, rn) = (tuple(map(float, r[f"{w}_{key}"])) for w in ("old", "new"))
                if not (ro < max_rel and rn < max_rel):
                    continue
                po, pn = math.exp(lo_), math.exp(ln)
                z.append((po - pn) / math.hypot(po * ro, pn * rn))
            za = np.array(z)
            out[f"{name}_{key}"] = {
                "count": int(za.size),
                "mean_z": float(za.mean()) if za.size else math.nan,
                "std_z": float(za.std(ddof=1)) if za.size > 1 else math.nan,
                "frac_abs_z_gt_3": float(np.mean(np.abs(za) > 3)) if za.size else math.nan,
                "max_abs_z": float(np.abs(za).max()) if za.size else math.nan,
            }
    return out


def reference_sets(
    path: Path, cache: Path, names: list[str], log2n: int, count: int, seed: int
) -> None:
    """Plain-MC references (``2^log2n`` draws) for up to ``count`` instances of each named set with
    ``p_new >= 1e-5`` at the largest budget (tilts differing or not), added to the results JSON
    under ``mc_reference_extra``: ``z = (p - p_mc) / sqrt(se^2 + se_mc^2)`` for old and new."""
    result = json.loads(path.read_text())
    inst = np.load(cache)
    extra = result.setdefault("mc_reference_extra", {})
    for name in names:
        rows_in = result["per_instance"][name]
        key = max(int(k.split("_", 1)[1]) for k in rows_in[0] if k.startswith("new_"))
        pick = [
            i
            for i, r in enumerate(rows_in)
            if f"new_{key}" in r
            and math.isfinite(float(r[f"new_{key}"][1]))
            and float(r[f"new_{key}"][0]) >= math.log(1e-5)
        ][:count]
        rows = []
        for i in pick:
            p_mc, se_mc = mc_reference(inst[name][i], log2n, seed + 31 * i)
            row: dict = {"index": i, "p_mc": p_mc, "se_mc": se_mc, "same_mu": rows_in[i]["same_mu"]}
            for w in ("old", "new"):
                row[w] = _z_against_reference(*map(float, rows_in[i][f"{w}_{key}"]), p_mc, se_mc)
            rows.append(row)
        zs = {
            w: np.array([r[w]["z"] for r in rows if r[w]["z"] is not None]) for w in ("old", "new")
        }
        extra[name] = {
            "budget": key,
            "count": len(rows),
            "differing_tilt": sum(not r["same_mu"] for r in rows),
            **{f"{w}_z_sd": float(zs[w].std(ddof=1)) if zs[w].size > 1 else math.nan for w in zs},
            **{
                f"{w}_max_abs_z": float(np.abs(zs[w]).max()) if zs[w].size else math.nan for w in zs
            },
            **{f"{w}_unresolved": sum(r[w]["z"] is None for r in rows) for w in zs},
            "rows": rows,
        }
        print("reference", name, {k: v for k, v in extra[name].items() if k != "rows"}, flush=True)
    atomic_write_json(path, result)


def postprocess(path: Path) -> None:
    """Add :func:`filtered_agreement` (relative errors below 0.1 and 0.02) to a results JSON."""
    result = json.loads(path.read_text())
    result["agreement_both_resolved"] = {
        f"max_rel_{t}": filtered_agreement(result, t) for t in (0.1, 0.02)
    }
    atomic_write_json(path, result)
    for t, tab in result["agreement_both_resolved"].items():
        print(f"agreement where both relative errors < {t[8:]}:")
        for k, v in tab.items():
            print(
                f"  {k:<18} n={v['count']:>4} mean z={v['mean_z']:+.2f} sd z={v['std_z']:.2f} "
                f"|z|>3: {v['frac_abs_z_gt_3']:.3f} max |z|={v['max_abs_z']:.1f}"
            )


def print_table(result: dict, budgets: tuple[int, ...]) -> None:
    hdr = f"{'set':<10} {'N':>4} {'conv':>5} {'s-conv':>6} {'s-used':>6}"
    for n in budgets:
        k = int(math.log2(n))
        hdr += f" | 2^{k}: unres old/new  med rel old/new    max rel old/new    z(n, sd)"
    print(hdr)
    for name, s in result["sets"].items():
        line = (
            f"{name:<10} {s['instances']:>4} {s['tilt_converged']:>5.2f} {s['tilt_smooth_converged']:>6.2f}"
            f" {s['tilt_smoothed_used']:>6.2f}"
        )
        for n in budgets:
            o, nw, a = s[f"old_{n}"], s[f"new_{n}"], s[f"agreement_{n}"]
            line += (
                f" | {o['unresolved']:>4}/{nw['unresolved']:<4} {o['median_rel']:>8.2e}/{nw['median_rel']:<8.2e}"
                f" {o['max_finite_rel']:>8.2e}/{nw['max_finite_rel']:<8.2e} ({a['count']}, {a['std_z']:.2f})"
            )
        print(line)


def plot(all_recs: dict[str, list[dict]], budgets: tuple[int, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = budgets[-1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    for name, recs in all_recs.items():
        o = np.array([r["old"][nb][1] for r in recs if nb in r["old"]])
        nw = np.array([r["new"][nb][1] for r in recs if nb in r["old"]])
        o = np.where(np.isfinite(o), o, 1e3)
        nw = np.where(np.isfinite(nw), nw, 1e3)
        ax.scatter(o, nw, s=8, label=name)
    ax.plot([1e-4, 1e3], [1e-4, 1e3], "k:", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"old relative error at {nb} points (1e3 = unresolved)")
    ax.set_ylabel("new relative error")
    ax.legend(fontsize=7)
    ax = axes[1]
    z = [v for recs in all_recs.values() for v in _old_new_z([r for r in recs if nb in r["old"]], nb)]
    ax.hist(np.clip(z, -6, 6), bins=40, density=True, alpha=0.7, label=f"old - new, n={len(z)}")
    t = np.linspace(-5, 5, 200)
    ax.plot(t, np.exp(-t * t / 2) / math.sqrt(2 * math.pi), "k-", lw=1, label="N(0,1)")
    ax.set_xlabel("(p_old - p_new) / combined std error")
    ax.legend(fontsize=7)
    fig.suptitle("Botev truth on m > d cones: old fallback vs smoothed tilt")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
