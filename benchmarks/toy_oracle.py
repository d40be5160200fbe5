"""Benchmark the halfspace toy's exact oracle: time per instance and error against Monte Carlo.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/toy_oracle.py [--instances 100] [--mc-samples 4000000]

Draws random 4x16 instances (i.i.d. N(0,1) weights, seed 0) until ``--instances`` are feasible,
times the oracle on each (wall clock and process CPU time, after one warm-up call), and compares
it with an independent naive Monte Carlo estimate (``--mc-samples`` per instance, seed 1) via
``z = (p_mc - p_oracle) / sqrt(p_oracle (1 - p_oracle) / N)``; also a pooled check
``sum hits`` vs ``N sum p`` (Poisson). Writes a table to stdout, ``benchmarks/results/
toy_oracle.json`` and ``benchmarks/results/toy_oracle.png``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob._progress import progress  # noqa: E402
from lowprob.toy_models.oracle import exact_probability  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def mc_hits(W: np.ndarray, n: int, rng: np.random.Generator, batch: int = 1 << 20) -> int:
    hits = 0
    done = 0
    while done < n:
        k = min(batch, n - done)
        x = rng.standard_normal((k, W.shape[1]))
        hits += int(np.count_nonzero(np.all(x @ W.T > 0, axis=1)))
        done += k
    return hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--d", type=int, default=4)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--mc-samples", type=int, default=4_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

    rng = np.random.default_rng(args.seed)
    exact_probability(rng.standard_normal((args.m, args.d)))  # warm-up (imports, caches)
    feas, infeas_wall = [], []
    pbar = progress(range(args.instances), total=args.instances, desc="feasible instances")
    it = iter(pbar)
    while len(feas) < args.instances:
        W = rng.standard_normal((args.m, args.d))
        t0, c0 = time.perf_counter(), time.process_time()
        r = exact_probability(W)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if r.feasible:
            feas.append((W, r, wall, cpu))
            next(it, None)
        else:
            infeas_wall.append(wall)

    mc_rng = np.random.default_rng(args.seed + 1)
    rows = []
    for W, r, wall, cpu in progress(feas, total=len(feas), desc="monte carlo"):
        hits = mc_hits(W, args.mc_samples, mc_rng)
        p_mc = hits / args.mc_samples
        sd = math.sqrt(r.probability * (1 - r.probability) / args.mc_samples)
        rows.append({
            "p": r.probability, "error_bound": r.error_bound, "n_cones": r.n_cones,
            "n_rays": r.n_rays, "wall_s": wall, "cpu_s": cpu, "mc_hits": hits, "p_mc": p_mc,
            "z": (p_mc - r.probability) / sd,
        })

    p = np.array([x["p"] for x in rows])
    wall = np.array([x["wall_s"] for x in rows])
    cpu = np.array([x["cpu_s"] for x in rows])
    z = np.array([x["z"] for x in rows])
    hits = np.array([x["mc_hits"] for x in rows])
    expected = args.mc_samples * p.sum()
    pooled_z = (hits.sum() - expected) / math.sqrt(expected)
    rel_bound = np.array([x["error_bound"] / x["p"] for x in rows])
    informative = args.mc_samples * p >= 20  # enough expected hits for a normal z
    summary = {
        "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs), "
                   f"python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "d": args.d, "m": args.m, "instances": len(rows), "draws_needed": len(rows) + len(infeas_wall),
        "feasible_fraction": len(rows) / (len(rows) + len(infeas_wall)),
        "mc_samples_per_instance": args.mc_samples,
        "feasible_wall_ms": {"mean": wall.mean() * 1e3, "median": float(np.median(wall)) * 1e3,
                             "p90": float(np.quantile(wall, 0.9)) * 1e3, "max": wall.max() * 1e3},
        "feasible_cpu_ms": {"mean": cpu.mean() * 1e3, "median": float(np.median(cpu)) * 1e3,
                            "max": cpu.max() * 1e3},
        "infeasible_wall_ms": {"mean": float(np.mean(infeas_wall)) * 1e3,
                               "median": float(np.median(infeas_wall)) * 1e3},
        "p_range": [float(p.min()), float(p.max())],
        "max_relative_error_bound": float(rel_bound.max()),
        "max_abs_error_bound": float(max(x["error_bound"] for x in rows)),
        "z_informative": {"count": int(informative.sum()),
                          "mean": float(z[informative].mean()) if informative.any() else None,
                          "rms": float(np.sqrt(np.mean(z[informative] ** 2))) if informative.any() else None,
                          "max_abs": float(np.abs(z[informative]).max()) if informative.any() else None},
        "pooled": {"hits": int(hits.sum()), "expected": expected, "z": pooled_z},
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/toy_oracle.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }

    print(f"exact oracle, d={args.d} m={args.m}: {len(rows)} feasible of {summary['draws_needed']} random instances")
    print(f"{'quantity':<38}{'value':>16}")
    for k, v in [
        ("oracle wall ms / feasible (mean)", f"{summary['feasible_wall_ms']['mean']:.2f}"),
        ("oracle wall ms / feasible (median)", f"{summary['feasible_wall_ms']['median']:.2f}"),
        ("oracle wall ms / feasible (p90, max)", f"{summary['feasible_wall_ms']['p90']:.1f}, {summary['feasible_wall_ms']['max']:.1f}"),
        ("oracle CPU ms / feasible (mean)", f"{summary['feasible_cpu_ms']['mean']:.2f}"),
        ("oracle wall ms / infeasible (mean)", f"{summary['infeasible_wall_ms']['mean']:.2f}"),
        ("p range", f"{p.min():.2e}..{p.max():.2e}"),
        ("max relative error bound", f"{summary['max_relative_error_bound']:.1e}"),
        ("MC samples / instance", f"{args.mc_samples:.0e}"),
        ("instances with >= 20 expected hits", f"{int(informative.sum())}"),
        ("z (MC - oracle)/sd: mean, rms", f"{summary['z_informative']['mean']:.2f}, {summary['z_informative']['rms']:.2f}"),
        ("z max |z|", f"{summary['z_informative']['max_abs']:.2f}"),
        ("pooled hits vs expected (z)", f"{hits.sum()} / {expected:.0f} ({pooled_z:+.2f})"),
    ]:
        print(f"{k:<38}{v:>16}")

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "toy_oracle.json", {"summary": summary, "instances": rows}, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: pip install 'lowprob[plot]' for the plot")
        return 0
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    bins = np.linspace(0, max(wall.max(), cpu.max()) * 1e3, 40)
    ax[0].hist(wall * 1e3, bins=bins, alpha=0.6, label=f"wall (mean {wall.mean() * 1e3:.1f} ms)")
    ax[0].hist(cpu * 1e3, bins=bins, alpha=0.6, label=f"process CPU (mean {cpu.mean() * 1e3:.1f} ms)")
    ax[0].axvline(50, color="r", ls="--", label="50 ms target")
    ax[0].set(xlabel="oracle time per feasible instance (ms)", ylabel="count",
              title=f"{args.d}x{args.m} exact oracle")
    ax[0].legend()
    se = np.sqrt(p * (1 - p) / args.mc_samples)
    ok = hits > 0
    ax[1].errorbar(p[ok], np.array([x["p_mc"] for x in rows])[ok], yerr=2 * se[ok], fmt="o", ms=3)
    ax[1].plot([p.min(), p.max()], [p.min(), p.max()], "k--", lw=1)
    ax[1].set(xscale="log", yscale="log", xlabel="oracle p", ylabel="Monte Carlo p (±2 sd)",
              title=f"{args.mc_samples:.0e} samples / instance")
    ax[2].hist(z[informative], bins=20, density=True)
    grid = np.linspace(-4, 4, 200)
    ax[2].plot(grid, np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), "k")
    ax[2].set(xlabel="z = (MC - oracle) / sd", title=f"{int(informative.sum())} instances with >= 20 expected hits")
    fig.tight_layout()
    fig.savefig(args.out / "toy_oracle.png", dpi=120)
    print(f"wrote {args.out / 'toy_oracle.json'} and {args.out / 'toy_oracle.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
