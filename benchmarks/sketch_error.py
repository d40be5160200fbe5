"""Exact sketch error against K for every sketch kind.

Problems:
  * cone-m{2,8,15}: D = uniform on S^3 restricted to a random simplicial cone (4 faces,
    N(0,1) normals, --seed), claims C = RandomHalfspaceProduct(m). Exact error by the
    spectral route (harmonics to degree --degree, with rigorous truncation bounds).
  * gmm-rbf: D = a 3-component Gaussian mixture in R^2, claims with an RBF kernel
    (lengthscale 0.5). Exact error by the closed-form kernel mean.

Sketches: sample (the exact mean error over draws, E_f Var_D f / K), kernel (top-K
eigenspaces; harmonics on the cone, Nyström over D's reference rule on the mixture),
quadrature greedy/herding with signed or simplex weights (candidates: --candidates draws of D),
gaussian (mean + covariance, one K). Slopes are least-squares fits of log(error) on log(K)
over the K grid (K >= 10).

Usage:  .venv/bin/python benchmarks/sketch_error.py [--quick] [--seed 0] [--out benchmarks/results]
Writes sketch_error.json and sketch_error.png to --out and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob._progress import progress  # noqa: E402
from lowprob.sketching.claims import KernelClaims, RandomHalfspaceProduct  # noqa: E402
from lowprob.sketching.kernels import RBFKernel  # noqa: E402
from lowprob.sketching.measures import GaussianMixture, SphericalCone  # noqa: E402
from lowprob.sketching.sketches import (  # noqa: E402
    GaussianMomentSketch,
    KernelSketch,
    QuadratureSketch,
    SampleSketch,
)


def _slope(Ks: list[int], errs: list[float]) -> float:
    K = np.asarray(Ks, dtype=float)
    e = np.asarray(errs, dtype=float)
    ok = (K >= 10) & (e > 0) & np.isfinite(e)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(K[ok]), np.log(e[ok]), 1)[0])


def run_problem(name: str, D, C, Ks: list[int], args: argparse.Namespace) -> dict:
    deg = args.degree
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    rows["sample"] = {
        "K": Ks,
        "error": [SampleSketch(D, K, seed=0).expected_error(C, degree=deg) for K in Ks],
        "note": "exact mean over draws, (E_D k(x,x) - E_DD k)/K",
    }
    kk, ke, kub = [], [], []
    for K in Ks:
        ks = KernelSketch(D, C, K)
        rep = ks.error_report(C, degree=deg)
        if kk and kk[-1] == ks.K:
            continue
        kk.append(ks.K)
        ke.append(rep.value)
        kub.append(rep.upper)
    rows["kernel"] = {"K": kk, "error": ke, "upper": kub, "note": repr(ks.eigensystem)}
    for pts in ("greedy", "herding"):
        for w in ("signed", "simplex"):
            sks = QuadratureSketch.nested(D, C, Ks, points=pts, weights=w, n_candidates=args.candidates, seed=args.seed, degree=deg)
            reps = [s.error_report(C, degree=deg) for s in sks]
            rows[f"quad-{pts}-{w}"] = {"K": Ks, "error": [r.value for r in reps], "upper": [r.upper for r in reps]}
    g = GaussianMomentSketch(D)
    rows["gaussian"] = {"K": [g.K], "error": [g.error(C, degree=deg)]}
    for r in rows.values():
        r["slope"] = _slope(r["K"], r["error"])
    return {"problem": name, "rows": rows, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small K grid and rules (smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--degree", type=int, default=32, help="harmonic degree of the exact error")
    ap.add_argument("--order", type=int, default=48, help="cone reference rule: points per axis")
    ap.add_argument("--candidates", type=int, default=4096)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.degree, args.order, args.candidates = 16, 24, 512
    Ks = [5, 10, 20, 40, 80] if args.quick else [5, 10, 20, 40, 80, 160, 320]
    ms = [2] if args.quick else [2, 8, 15]

    cone = SphericalCone.random(4, seed=args.seed, order=args.order)
    gmm = GaussianMixture(
        [0.5, 0.3, 0.2],
        [[0.0, 0.0], [2.0, 1.0], [-1.5, 2.0]],
        [np.eye(2) * 0.5, [[0.3, 0.1], [0.1, 0.2]], np.eye(2) * 0.8],
        order=12 if args.quick else 20,
    )
    problems = [(f"cone-m{m}", cone, RandomHalfspaceProduct(m, 4)) for m in ms]
    problems.append(("gmm-rbf", gmm, KernelClaims(RBFKernel(2, lengthscale=0.5))))
    results = []
    for name, D, C in progress(problems, desc="problems", enabled=True):
        results.append(run_problem(name, D, C, Ks, args))

    print(f"# exact sketch error vs K (seed {args.seed}, cone mass {cone.mass:.4f}, degree {args.degree}, "
          f"cone rule {args.order}^3, gmm rule {len(gmm.quadrature())} pts)")
    kinds = list(results[0]["rows"])
    print("| problem | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for res in results:
        cells = []
        for k in kinds:
            r = res["rows"][k]
            cells.append(f"{r['slope']:.2f}" if np.isfinite(r["slope"]) else f"{r['error'][0]:.2e} @K={r['K'][0]}")
        print(f"| {res['problem']} slope | " + " | ".join(cells) + " |")
    print()
    for res in results:
        print(f"## {res['problem']} ({res['seconds']:.0f} s)")
        for k, r in res["rows"].items():
            pairs = ", ".join(f"{K}:{e:.2e}" for K, e in zip(r["K"], r["error"], strict=True))
            print(f"  {k:24s} slope {r['slope']:6.2f}   {pairs}")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python benchmarks/sketch_error.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "degree": args.degree,
        "cone_order": args.order,
        "cone_W": cone.W.tolist(),
        "cone_mass": cone.mass,
        "candidates": args.candidates,
        "results": results,
    }
    atomic_write_json(args.out / "sketch_error.json", record, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8))
        for ax, res in zip(np.atleast_1d(axes), results, strict=True):
            for k, r in res["rows"].items():
                style = "o" if len(r["K"]) == 1 else ".-"
                ax.loglog(r["K"], r["error"], style, label=f"{k} ({r['slope']:.2f})")
            ax.set_title(res["problem"])
            ax.set_xlabel("K (terms)")
            ax.set_ylabel("exact error E_f (E_M f - E_D f)^2")
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(args.out / "sketch_error.png", dpi=120)
    except ImportError:  # pragma: no cover
        print("matplotlib missing: no plot", file=sys.stderr)
    print(f"wrote {args.out / 'sketch_error.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
