"""MSE/Var against FLOPs for cumulant propagation vs Monte Carlo (ARC's kprop figure setting).

Random He-initialised ReLU MLPs, width ``n`` in ``--widths`` (default 64 128 256), ``--depth``
weight matrices (default 4; every layer ReLU, WhestBench's convention), input ``N(0, I_n)``.
Target: the final-layer post-activation means ``E[x_L]`` (all ``n`` neurons).

Error metric, per MLP, averaged over ``--n-mlps`` MLPs per width::

    MSE/Var = [ mean_i (est_i - truth_i)^2 - mean_i se_i^2 ] / mean_i Var(x_{L,i})

``truth`` is an independent Monte Carlo run with ``--truth-samples`` inputs; subtracting its
squared standard errors ``se_i^2`` makes the MSE unbiased (reported floor: the truth's own
``mean se^2 / Var = 1 / N_truth``). Monte Carlo with ``N`` samples sits at ``1/N`` exactly; we
also measure it at a few ``N``. FLOPs are counted analytically
(:func:`lowprob.propagation.cumulants.layer_flops`, :func:`lowprob.propagation.mlp_estimators.mc_flops_per_sample`).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/mlp_curves.py --n-mlps 2   # ~25 min on one shared core

Writes ``benchmarks/results/mlp_curves.{json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lowprob.propagation.mlp_estimators import (  # noqa: E402
    CumulantPropagation,
    MonteCarloMLP,
    mc_flops_per_sample,
)
from lowprob.toy_models.random_mlp import RandomMLP  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def methods(width: int) -> list[CumulantPropagation]:
    out = [
        CumulantPropagation(2, diagonal=True),
        CumulantPropagation(3, diagonal=True),
        CumulantPropagation(2, hermite_order=8),
        CumulantPropagation(3, structured=True, hermite_order=8),
    ]
    if width <= 256:
        out.append(CumulantPropagation(3, hermite_order=4, third_order_terms=3))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--n-mlps", type=int, default=3)
    ap.add_argument("--truth-samples", type=int, default=2**20)
    ap.add_argument("--mc-samples", type=int, nargs="+", default=[16, 256, 4096, 65536])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "mlp_curves.json")
    ap.add_argument("--resummarize", action="store_true",
                    help="recompute the summary/plot from the records already in --out")
    args = ap.parse_args(argv)
    if args.resummarize:
        old = json.loads(args.out.read_text())
        for k in ("widths", "depth", "n_mlps", "truth_samples"):
            setattr(args, k, old["config"][k])
        return _finish(old["records"], args)

    ss = np.random.SeedSequence(args.seed)
    records = []
    for n in args.widths:
        per = mc_flops_per_sample(n, args.depth)
        for k in range(args.n_mlps):
            s_mlp, s_truth, s_mc = ss.spawn(3)
            mlp = RandomMLP.sample(n, args.depth, "relu", init="he", seed=np.random.default_rng(s_mlp))
            t0 = time.time()
            truth = MonteCarloMLP(batch_size=max(1024, 2**22 // n)).estimate_means(
                mlp, per * args.truth_samples, seed=np.random.default_rng(s_truth))
            mu, se2 = truth.means[-1], truth.std_error[-1] ** 2
            var = float(np.mean(se2) * args.truth_samples)
            print(f"n={n} mlp {k}: truth in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

            def score(means: np.ndarray, mu=mu, se2=se2, var=var) -> float:
                return float((np.mean((means[-1] - mu) ** 2) - np.mean(se2)) / var)

            def score_all(means: np.ndarray, truth=truth) -> float:  # all layers, same norm.
                se2_all = truth.std_error**2
                var_all = np.mean(se2_all * args.truth_samples, axis=1, keepdims=True)
                return float(np.mean(((means - truth.means) ** 2 - se2_all) / var_all))

            for est in methods(n):
                t0 = time.time()
                r = est.estimate_means(mlp, est.cost_flops(mlp))
                records.append({"width": n, "mlp": k, "method": est.name
                                + (f"-P{est.hermite_order}" if not est.diagonal else ""),
                                "mse_over_var_all_layers": score_all(r.means),
                                "flops": r.cost.flops, "mse_over_var": score(r.means),
                                "seconds": time.time() - t0})
            rng = np.random.default_rng(s_mc)
            for N in args.mc_samples:
                r = MonteCarloMLP().estimate_means(mlp, per * N, seed=rng)
                records.append({"width": n, "mlp": k, "method": "mc", "n_samples": N,
                                "flops": r.cost.flops, "mse_over_var": score(r.means),
                                "seconds": r.cost.seconds})
            records.append({"width": n, "mlp": k, "method": "truth-floor",
                            "flops": float(per * args.truth_samples),
                            "mse_over_var": 1.0 / args.truth_samples})

    return _finish(records, args)


def budgeted_envelope(summary: list[dict], width: int, per: int) -> dict:
    """Budgeted comparison: at FLOP budget B, kprop runs its best variant costing <= B.

    Returns the budgets (log grid) where that beats MC's ``1/N(B)``, ``N(B) = B / per``.
    """
    pts = [s for s in summary if s["width"] == width and not s["method"].startswith("mc@")]
    grid = np.logspace(np.log10(min(p["flops"] for p in pts)), 13, 800)
    win = np.array([min(p["mse_over_var"] for p in pts if p["flops"] <= B) < per / B
                    for B in grid])
    if not win.any():
        return {"width": width, "wins_from": None, "wins_to": None, "decades": 0.0}
    start = int(np.argmax(win))
    stop = start
    while stop + 1 < len(grid) and win[stop + 1]:
        stop += 1
    return {"width": width, "wins_from": float(grid[start]), "wins_to": float(grid[stop]),
            "decades": float(np.log10(grid[stop] / grid[start])),
            "also_wins_at": [float(b) for b in grid[stop + 1:][win[stop + 1:]]][:1]}


def _finish(records: list[dict], args: argparse.Namespace) -> dict:
    # aggregate over MLPs
    summary = []
    for n in args.widths:
        per = mc_flops_per_sample(n, args.depth)
        names = sorted({r["method"] + (f"@{r['n_samples']}" if r["method"] == "mc" else "")
                        for r in records if r["width"] == n and r["method"] != "truth-floor"})
        for name in names:
            rs = [r for r in records if r["width"] == n
                  and r["method"] + (f"@{r['n_samples']}" if r["method"] == "mc" else "") == name]
            flops = float(np.mean([r["flops"] for r in rs]))
            mse = float(np.mean([r["mse_over_var"] for r in rs]))
            mc_same = per / flops  # MC MSE/Var at the same FLOPs: 1/N with N = flops/per
            summary.append({"width": n, "method": name, "flops": flops, "mse_over_var": mse,
                            "mc_mse_over_var_same_flops": mc_same,
                            "gain_vs_mc": mc_same / mse if mse > 0 else float("inf")})

    print(f"\nReLU, depth {args.depth}, {args.n_mlps} MLPs/width, truth {args.truth_samples:,} "
          f"samples (floor 1/N_truth = {1 / args.truth_samples:.1e})")
    print(f"{'width':>5s} {'method':18s} {'FLOPs':>10s} {'MSE/Var':>10s} {'MC@same':>10s} "
          f"{'MC/ours':>8s}")
    for s in summary:
        print(f"{s['width']:5d} {s['method']:18s} {s['flops']:10.2e} {s['mse_over_var']:10.2e} "
              f"{s['mc_mse_over_var_same_flops']:10.2e} {s['gain_vs_mc']:8.1f}")
    envelopes = [budgeted_envelope(summary, n, mc_flops_per_sample(n, args.depth))
                 for n in args.widths]
    print("\nBudgeted comparison (at budget B, kprop runs its best variant costing <= B):")
    for e in envelopes:
        if e["wins_from"] is None:
            print(f"  width {e['width']}: never below MC")
            continue
        print(f"  width {e['width']}: kprop below MC for every B in [{e['wins_from']:.2e}, "
              f"{e['wins_to']:.2e}] FLOPs = {e['decades']:.1f} decades"
              + (f"; again at {e['also_wins_at'][0]:.2e}" if e["also_wins_at"] else ""))
    record = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "records": records, "summary": summary, "budgeted_envelope": envelopes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str))
    _plot(summary, args, args.out.with_suffix(".png"))
    return record


def _plot(summary: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.widths), figsize=(4.2 * len(args.widths), 3.6),
                             squeeze=False)
    for ax, n in zip(axes[0], args.widths, strict=True):
        per = mc_flops_per_sample(n, args.depth)
        rows = [s for s in summary if s["width"] == n]
        f = np.logspace(np.log10(per), np.log10(per * 2**22), 50)
        ax.plot(f, per / f, "k--", lw=1, label="MC theory 1/N")
        mc = [s for s in rows if s["method"].startswith("mc@")]
        ax.plot([s["flops"] for s in mc], [max(s["mse_over_var"], 1e-12) for s in mc], "ko",
                label="MC measured")
        for s in rows:
            if not s["method"].startswith("mc@"):
                ax.plot(s["flops"], max(s["mse_over_var"], 1e-12), "o", label=s["method"])
        ax.axhline(1 / args.truth_samples, color="gray", ls=":", lw=1, label="truth floor")
        ax.set(xscale="log", yscale="log", xlabel="FLOPs", title=f"ReLU n={n}, L={args.depth}")
    axes[0][0].set_ylabel("MSE / Var (final layer means)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
