"""Do quasi-Monte Carlo inputs or a low-dimensional active subspace beat the rotated design? (issue 13)

Three measurements on WhestBench's MLP law (``RandomMLP.whestbench``, seeds ``1000 + i``),
all per evaluation (same number ``N`` of forwards for every input scheme), each a bound on what
one more idea of issue 13 can give:

1. **Input schemes, variance of the final-layer mean estimate** over ``R`` independent
   replicates of ``N`` points, averaged over neurons, divided by plain Monte Carlo's:
   ``mc`` (``x ~ N(0, I)``); ``cross`` (rotated cross-polytopes ``+-r Q e_i``, radius
   ``r = E chi_n``: the estimator in ``lowprob.array_kernels.designs``); ``sobol-anti``
   (scrambled Sobol' points, Owen 1995 / Joe & Kuo 2008 via :mod:`scipy.stats.qmc`, mapped to
   ``N(0, I)`` by the inverse normal CDF, projected to the radius-``r`` sphere, with antithetic
   partners ``-x``); ``sobol-rot-anti`` (the same, randomly rotated). Randomised QMC has
   variance ``o(1/N)`` only for functions of low effective dimension (Caflisch, Morokoff & Owen
   1997); a deep ReLU net in 256 dimensions is the test.
2. **Active subspace** (Constantine 2015): eigenvalues of ``C = E[J J^T]``, ``J`` the input
   Jacobian of the final layer (summed over outputs). The share of ``tr C`` in the top ``r``
   eigenvectors says whether a few input directions carry the variation (they would then be
   worth a high-order rule).
3. **Output structure**: share of the even part's (antithetic pair mean) output covariance in
   its top ``k`` principal components.

Writes ``benchmarks/results/whest_quadrature_limits.json`` and prints a table.

    OMP_NUM_THREADS=1 python benchmarks/whest_quadrature_limits.py
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm, qmc

from lowprob._io import atomic_write_json, check_writable
from lowprob.array_kernels.designs import chi_mean
from lowprob.toy_models.random_mlp import RandomMLP

RESULTS = Path(__file__).resolve().parent / "results"
SCHEMES = ("mc", "cross", "sobol-anti", "sobol-rot-anti")


def _final(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float32)
    for w in weights:
        h = np.maximum(h @ w, 0.0)
    return h.astype(np.float64)


def _haar(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _points(scheme: str, rng: np.random.Generator, n: int, N: int, radius: float) -> np.ndarray:
    if scheme == "mc":
        return rng.standard_normal((N, n))
    if scheme == "cross":
        blocks = []
        for _ in range(N // (2 * n)):
            q = _haar(rng, n)
            blocks += [q.T, -q.T]
        return radius * np.vstack(blocks)
    u = np.clip(qmc.Sobol(n, scramble=True, seed=rng).random(N // 2), 1e-12, 1 - 1e-12)
    z = norm.ppf(u)
    if scheme == "sobol-rot-anti":
        z = z @ _haar(rng, n)
    z = radius * z / np.linalg.norm(z, axis=1, keepdims=True)
    return np.vstack([z, -z])


def input_schemes(weights: list[np.ndarray], n: int, N: int, reps: int, seed: int) -> dict:
    """Variance of each scheme's final-layer mean over ``reps`` replicates, relative to ``mc``."""
    rng = np.random.default_rng(seed)
    radius = chi_mean(n)
    est: dict[str, list[np.ndarray]] = {s: [] for s in SCHEMES}
    for _ in range(reps):
        for s in SCHEMES:
            est[s].append(_final(weights, _points(s, rng, n, N, radius)).mean(axis=0))
    var = {s: float(np.mean(np.var(np.stack(v), axis=0, ddof=1))) for s, v in est.items()}
    return {s: var[s] / var["mc"] for s in SCHEMES}


def active_subspace(weights: list[np.ndarray], n: int, grads: int, seed: int) -> dict:
    """Share of ``tr E[J J^T]`` in the top ``r`` eigenvectors, ``r`` in 1..128."""
    rng = np.random.default_rng(seed)
    C = np.zeros((n, n))
    w64 = [w.astype(np.float64) for w in weights]
    for _ in range(grads):
        h = rng.standard_normal(n)
        J = np.eye(n)
        for w in w64:
            z = h @ w
            m = z > 0
            h = np.where(m, z, 0.0)
            J = (J @ w) * m[None, :]
        C += J @ J.T
    ev = np.linalg.eigvalsh(C / grads)[::-1]
    cs = np.cumsum(ev) / ev.sum()
    return {str(r): float(cs[r - 1]) for r in (1, 4, 16, 64, 128) if r <= n}


def output_structure(weights: list[np.ndarray], n: int, N: int, seed: int) -> dict:
    """Share of the even part's output covariance in its top ``k`` principal components."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, n))
    even = 0.5 * (_final(weights, x) + _final(weights, -x))
    ev = np.linalg.eigvalsh(np.cov(even.T))[::-1]
    cs = np.cumsum(ev) / ev.sum()
    return {str(k): float(cs[k - 1]) for k in (1, 4, 16)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["256x8", "256x32"])
    ap.add_argument("--n-mlps", type=int, default=2)
    ap.add_argument("--points", type=int, default=4096, help="N forwards per replicate")
    ap.add_argument("--reps", type=int, default=24)
    ap.add_argument("--grads", type=int, default=200)
    ap.add_argument("--out", default=str(RESULTS / "whest_quadrature_limits.json"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    check_writable(out)
    rows = []
    print("| shape | MLP | var/MC: cross | sobol-anti | sobol-rot-anti | active subspace: top-1/4/16/64/128 "
          "share | even-part output PCs: top-1/4/16 share | s |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in a.shapes:
        n, depth = (int(v) for v in shape.split("x"))
        if a.points % (2 * n):
            raise SystemExit(f"--points must be a multiple of 2 x width = {2 * n}, got {a.points}.")
        for i in range(a.n_mlps):
            t0 = time.process_time()
            seed = 1000 + i
            ws = [np.asarray(w, np.float32) for w in RandomMLP.whestbench(n, depth, seed=seed).weights]
            row = {"shape": shape, "mlp_seed": seed, "points": a.points, "reps": a.reps,
                   "var_over_mc": input_schemes(ws, n, a.points, a.reps, seed=7 + i),
                   "active_subspace_share": active_subspace(ws, n, a.grads, seed=11 + i),
                   "even_output_pc_share": output_structure(ws, n, a.points, seed=13 + i)}
            row["cpu_s"] = time.process_time() - t0
            rows.append(row)
            v, s, o = row["var_over_mc"], row["active_subspace_share"], row["even_output_pc_share"]
            print(f"| {shape} | {seed} | {v['cross']:.3f} | {v['sobol-anti']:.3f} | "
                  f"{v['sobol-rot-anti']:.3f} | {' / '.join(f'{x:.2f}' for x in s.values())} | "
                  f"{' / '.join(f'{x:.2f}' for x in o.values())} | {row['cpu_s']:.0f} |")
    atomic_write_json(out, {"command": "python benchmarks/whest_quadrature_limits.py", "args": vars(a),
                            "rows": rows, "mc_se_note": f"ratios from {a.reps} replicates: per neuron "
                            f"relative standard error about {math.sqrt(2 / (a.reps - 1)):.2f}, the neuron average is tighter"})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
