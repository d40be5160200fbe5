"""WhestBench under its own rules: one round's budget, residual-time rule and billing, read from WhestBench.

``--round warmup|phase1|phase2`` selects ``whestbench.budget.ROUNDS["v1-warmup" |
"v1-phase1" | "v2-phase2"]``; the :class:`whestbench.scoring.ContestSpec` is built from that
round's own fields (width, depth, ``flop_budget``, ``lambda_flops_per_second`` (priced
residual in v1, 0 in v2), ``residual_wall_time_limit_s`` (the 0.4 s gate in v2, none in
v1), ``wall_time_limit_s``), so the residual gate is on exactly when the round had it. Every
estimator is scored by WhestBench's own ``evaluate_estimator``.

Truth: resumable numpy Monte Carlo from ``benchmarks/whest_truth.py`` (MLP seeds ``1000 +
i``, WhestBench's weight law bit for bit), or a WhestBench-baked dataset (``--dataset``,
refused when its MLP shape is not the round's). Beside WhestBench's adjusted score we print

* ``MC@B``: ``whestbench.budget.mc_at_bm`` (``avg_variance / N`` with N the samples the
  round's budget buys at its own billing), the Monte Carlo reference;
* the **debiased** score ``(final_mse - avg_variance / n_truth) * multiplier``: the truth's
  own noise removed (expected value of the MSE against the exact means).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/whestbench.py --round warmup --n-mlps 10

Writes ``benchmarks/results/whestbench_<round>.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
_HERE = Path(__file__).resolve().parent
# This file is named like the package it benchmarks: drop its folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import flopscope.numpy as fnp  # noqa: E402
import numpy as np  # noqa: E402
from whestbench.budget import mc_at_bm  # noqa: E402
from whestbench.scoring import ContestData, ContestSpec, evaluate_estimator  # noqa: E402

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob.integrations.whestbench import AutoEstimator, DesignEstimator, KpropEstimator  # noqa: E402
from lowprob.toy_models.random_mlp import RandomMLP  # noqa: E402

sys.path.insert(0, str(_HERE))
from whest_truth import ROUND_KEYS, load_truth, round_config  # noqa: E402

RESULTS = _HERE / "results"

ESTIMATORS = {
    "design-shrink": lambda f: DesignEstimator(shrink=True, budget_fraction=f),
    "design": lambda f: DesignEstimator(shrink=False, budget_fraction=f),
    "design-prune": lambda f: DesignEstimator(shrink=False, prune=True, budget_fraction=f),
    "kprop": lambda f: KpropEstimator(dtype="float64"),
    "kprop-f32": lambda f: KpropEstimator(dtype="float32"),
    "auto": lambda f: AutoEstimator(budget_fraction=f),
}

#: Estimators whose predictions do not depend on the seed (``--repeats`` does not apply).
DETERMINISTIC = frozenset({"kprop", "kprop-f32"})


def spend_fraction(r) -> float:  # noqa: ANN001 - RoundConfig
    """Budget share for the design estimators under the round's residual rule.

    Gated rounds (``lambda = 0``): 0.1, the multiplier floor. Priced rounds: the bill is
    ``f B + lambda R``; on this loaded machine ``R`` reached 0.1-0.5 s, i.e. ``lambda R / B``
    up to ~0.8 at the warm-up budget. A larger ``f`` dilutes it (score ~ ``(f + lambda R /
    B) / f``) but must leave room (``C > B`` fails the MLP): 0.25 tolerates ``R`` < 0.5 s
    at 6.8e10 (and < 2 s at phase 1's 2.72e11).
    """
    return 0.1 if r.lambda_flops_per_second == 0 else 0.25


def contest_spec(r, n_mlps: int, n_truth: int) -> ContestSpec:  # noqa: ANN001 - RoundConfig
    """The round's rules, field by field from WhestBench's ``RoundConfig``."""
    return ContestSpec(
        width=r.width, depth=r.depth, n_mlps=n_mlps, flop_budget=r.flop_budget,
        ground_truth_samples=n_truth, wall_time_limit_s=r.wall_time_limit_s,
        residual_wall_time_limit_s=r.residual_wall_time_limit_s,
        lambda_flops_per_second=r.lambda_flops_per_second,
    )


def contest_from_truth(r, n_mlps: int) -> tuple[ContestData, list[dict]]:  # noqa: ANN001
    truths, mlps = [], []
    for i in range(n_mlps):
        t = load_truth(r.tag, 1000 + i)
        if t is None:
            break
        truths.append(t)
        mlps.append(RandomMLP.whestbench(r.width, r.depth, seed=1000 + i).to_whestbench(
            seed=1000 + i))
    if not truths:
        raise SystemExit(f"no truth for {r.tag} yet: run benchmarks/whest_truth.py --round ...")
    spec = contest_spec(r, len(truths), min(t["n_samples"] for t in truths))
    data = ContestData(
        spec=spec, mlps=mlps,
        all_layer_targets=[fnp.asarray(t["means"], dtype=fnp.float32) for t in truths],
        final_targets=[fnp.asarray(t["means"][-1], dtype=fnp.float32) for t in truths],
        avg_variances=[t["avg_variance"] for t in truths],
    )
    return data, truths


def contest_from_dataset(r, path: Path, n_mlps: int,  # noqa: ANN001 - RoundConfig
                         split: str = "public") -> tuple[ContestData, list[dict]]:
    from whestbench.dataset import load_dataset, mlp_at
    from whestbench.scoring import make_contest_from_dataset

    ds = load_dataset(str(path), split=split)
    first = mlp_at(ds, 0)
    if (first.width, first.depth) != (r.width, r.depth):
        raise SystemExit(
            f"--dataset {str(path)!r} holds {first.width}x{first.depth} MLPs, but round "
            f"{r.tag!r} is {r.width}x{r.depth}; pass the matching --round or dataset."
        )
    n = min(n_mlps, len(ds))
    n_truth = int(ds[0].get("n_samples", 0) or 0)
    spec = contest_spec(r, n, max(n_truth, 1))
    data = make_contest_from_dataset(spec, ds, n)
    truths = [{"avg_variance": float(v), "n_samples": n_truth or math.inf}
              for v in data.avg_variances]
    return data, truths


def _reseeded(data: ContestData, repeat: int) -> ContestData:
    """``data`` with every MLP's grader seed moved by ``7919 * repeat`` (same weights, truth)."""
    if repeat == 0:
        return data
    return dataclasses.replace(data, mlps=[dataclasses.replace(m, seed=int(m.seed) + 7919 * repeat)
                                           for m in data.mlps])


def score(name: str, data: ContestData, truths: list[dict], r, repeats: int = 1) -> dict:  # noqa: ANN001
    """WhestBench's ``evaluate_estimator`` on ``data``, ``repeats`` times with re-seeded MLPs.

    Per MLP the final MSE, multiplier and residual time are averaged over the repeats (each
    repeat is an independent run of the estimator on the same weights and truth), so the
    per-MLP ratio's scatter from the estimator's own randomness shrinks by ``sqrt(repeats)``.
    """
    est = ESTIMATORS[name](spend_fraction(r))
    if name in DETERMINISTIC:
        repeats = 1  # same predictions whatever the seed
    t0 = time.time()
    reps = []
    for k in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reps.append(evaluate_estimator(est, _reseeded(data, k)))
    rows = []
    mc_ref = mc_at_bm(float(np.mean(data.avg_variances)), r)
    for i, t in enumerate(truths):
        per = [rep["per_mlp"][i] for rep in reps]
        mses = [float(m["final_layer_mse"]) for m in per]
        adjs = [float(m["adjusted_final_layer_score"]) for m in per]
        mults = [a / m if m else 1.0 for a, m in zip(adjs, mses, strict=True)]
        mse, mult = float(np.mean(mses)), float(np.mean(mults))
        truth_var = t["avg_variance"] / t["n_samples"]
        mc_i = mc_at_bm(t["avg_variance"], r)
        debiased = float(np.mean([(m - truth_var) * u for m, u in zip(mses, mults, strict=True)]))
        rows.append({
            "mlp_seed": 1000 + i, "truth_samples": t["n_samples"], "repeats": repeats,
            "final_layer_mse": mse, "multiplier": mult, "adjusted": float(np.mean(adjs)),
            "debiased": debiased, "mc_at_b": mc_i, "ratio_debiased_over_mc": debiased / mc_i,
            "flops_used": float(np.mean([m.get("flops_used") or 0 for m in per])),
            "residual_wall_time_s": max((m.get("residual_wall_time_s") or 0) for m in per),
            "failed": any(bool(m.get("budget_exhausted") or m.get("time_exhausted")
                               or m.get("residual_wall_time_exhausted")
                               or m.get("combined_budget_exhausted") or m.get("error_code"))
                          for m in per),
        })
    adj = float(np.mean([x["adjusted"] for x in rows]))
    deb = float(np.mean([x["debiased"] for x in rows]))
    wb = float(np.mean([rep.get("adjusted_final_layer_score", adj) for rep in reps]))
    return {"estimator": name, "budget_fraction": getattr(est, "budget_fraction", None),
            "repeats": repeats, "whestbench_adjusted_score": wb, "adjusted_mean": adj,
            "debiased": deb, "mc_at_b": mc_ref, "ratio_debiased_over_mc": deb / mc_ref,
            "n_failed": sum(x["failed"] for x in rows), "seconds": time.time() - t0, "per_mlp": rows}


def plot(result: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for res in result["estimators"]:
        ax.plot([x["mlp_seed"] for x in res["per_mlp"]],
                [max(x["ratio_debiased_over_mc"], 1e-4) for x in res["per_mlp"]], "o-",
                label=res["estimator"])
    ax.axhline(1.0, color="k", lw=0.8, label="Monte Carlo at the budget")
    ax.axhline(0.1, color="gray", ls="--", lw=0.8, label="target 0.1x")
    ax.set_yscale("log")
    ax.set_xlabel("MLP seed")
    ax.set_ylabel("debiased score / MC@B")
    ax.set_title(f"WhestBench {result['round']} ({result['width']}x{result['depth']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round", required=True, choices=sorted(ROUND_KEYS))
    ap.add_argument("--n-mlps", type=int, default=10)
    ap.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), choices=list(ESTIMATORS))
    ap.add_argument("--dataset", type=Path, default=None,
                    help="a WhestBench-baked dataset instead of whest_truth.py's truth")
    ap.add_argument("--split", default="public", help="dataset split (default public)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="independent estimator runs per MLP (re-seeded), averaged per MLP")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--append", action="store_true",
                    help="add these estimators to an existing results file of the same round and "
                         "truth (same MLPs and truth depths; refused otherwise), replacing same names")
    a = ap.parse_args(argv)
    if a.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {a.repeats}.")
    r = round_config(a.round)
    if a.dataset is not None:
        data, truths = contest_from_dataset(r, a.dataset, a.n_mlps, a.split)
    else:
        data, truths = contest_from_truth(r, a.n_mlps)
    result = {"round": r.tag, "width": r.width, "depth": r.depth, "flop_budget": r.flop_budget,
              "lambda_flops_per_second": r.lambda_flops_per_second,
              "residual_wall_time_limit_s": r.residual_wall_time_limit_s,
              "wall_time_limit_s": r.wall_time_limit_s, "n_mlps": len(truths),
              "truth_samples": [t["n_samples"] for t in truths], "repeats": a.repeats,
              "machine": "2 shared CPU cores, loaded by parallel jobs", "estimators": []}
    path = a.out / f"whestbench_{a.round}.json"
    if a.append:
        if not path.exists():
            raise SystemExit(f"--append: no {str(path)!r} to add to; run without --append first.")
        old = json.loads(path.read_text())
        if (old["round"], old["truth_samples"]) != (r.tag, result["truth_samples"]):
            raise SystemExit(f"--append: {str(path)!r} was scored on other MLPs or truth depths "
                             f"({old['truth_samples']}); rerun without --append.")
        result["estimators"] = [e for e in old["estimators"] if e["estimator"] not in a.estimators]
    print(f"{r.tag}: {r.width}x{r.depth}, B={r.flop_budget:.3g}, lambda={r.lambda_flops_per_second}, "
          f"residual gate={r.residual_wall_time_limit_s}, {len(truths)} MLPs, truth "
          f"{min(result['truth_samples'])}-{max(result['truth_samples'])} samples")
    print(f"{'estimator':<15}{'WB adjusted':>13}{'debiased':>12}{'MC@B':>12}{'ratio':>8}"
          f"{'fails':>7}{'max resid s':>13}")
    for name in a.estimators:
        res = score(name, data, truths, r, a.repeats)
        res["command"] = "python benchmarks/whestbench.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        result["estimators"].append(res)
        resid = max((x["residual_wall_time_s"] or 0) for x in res["per_mlp"])
        print(f"{name:<15}{res['whestbench_adjusted_score']:>13.3e}{res['debiased']:>12.3e}"
              f"{res['mc_at_b']:>12.3e}{res['ratio_debiased_over_mc']:>8.3f}{res['n_failed']:>7d}"
              f"{resid:>13.3f}", flush=True)
        a.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, result)
    plot(result, a.out / f"whestbench_{a.round}.png")
    return result


if __name__ == "__main__":
    main()
