"""Resumable Monte Carlo truth for WhestBench rounds (numpy float32 forward, float64 sums).

The MLPs are WhestBench's law, bit-identical to ``whestbench.generation.sample_mlp(width,
depth, flopscope.numpy.random.default_rng(seed))`` (:meth:`RandomMLP.whestbench`), with
seeds ``1000 + i``; the round's shape is read from ``whestbench.budget.ROUNDS``. For each
MLP the file ``results/whest_truth/<tag>/mlp<seed>.npz`` holds per-layer sums, the final
layer's sum of squares and the sample count; every ``--chunk`` samples it is rewritten
atomically, so a killed bake resumes where it stopped. Truth draws use a seed stream
(``seed + 7919``) independent of anything an estimator sees.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/whest_truth.py --round warmup \\
        --n-mlps 10 --n-samples 2097152
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402

from lowprob.toy_models.random_mlp import RandomMLP  # noqa: E402

TRUTH_DIR = _HERE / "results" / "whest_truth"
ROUND_KEYS = {"warmup": "v1-warmup", "phase1": "v1-phase1", "phase2": "v2-phase2"}


def round_config(name: str):  # noqa: ANN201 - whestbench's RoundConfig
    """WhestBench's own rulebook for ``name`` (``warmup``, ``phase1``, ``phase2``)."""
    from whestbench.budget import ROUNDS

    if name not in ROUND_KEYS:
        raise SystemExit(f"--round must be one of {sorted(ROUND_KEYS)!r}, got {name!r}.")
    return ROUNDS[ROUND_KEYS[name]]


def truth_path(tag: str, seed: int) -> Path:
    return TRUTH_DIR / tag / f"mlp{seed}.npz"


def load_truth(tag: str, seed: int) -> dict | None:
    """``{"means": (L, n), "avg_variance": float, "n_samples": int}`` or ``None``."""
    p = truth_path(tag, seed)
    if not p.exists():
        return None
    z = np.load(p, allow_pickle=False)
    n = int(z["count"])
    means = z["s1"] / n
    var = z["s2"] / n - means[-1] ** 2
    return {"means": means, "avg_variance": float(var.mean()), "n_samples": n}


def bake_one(mlp: RandomMLP, tag: str, seed: int, n_samples: int, chunk: int) -> int:
    p = truth_path(tag, seed)
    p.parent.mkdir(parents=True, exist_ok=True)
    L, n = mlp.depth, mlp.width
    if p.exists():
        z = np.load(p, allow_pickle=False)
        s1, s2, count, stream = z["s1"], z["s2"], int(z["count"]), int(z["stream"])
    else:
        s1, s2, count, stream = np.zeros((L, n)), np.zeros(n), 0, 0
    ws = [np.asarray(w, dtype=np.float32) for w in mlp.weights]
    while count < n_samples:
        rng = np.random.default_rng([seed + 7919, stream])  # one independent stream per chunk
        b = min(chunk, n_samples - count)
        for start in range(0, b, 8192):
            x = rng.standard_normal((min(8192, b - start), n), dtype=np.float32)
            for li, w in enumerate(ws):
                x = np.maximum(x @ w, 0.0)
                s1[li] += x.sum(axis=0, dtype=np.float64)
            s2 += (x.astype(np.float64) ** 2).sum(axis=0)
        count += b
        stream += 1
        tmp = p.with_suffix(".tmp.npz")
        np.savez(tmp, s1=s1, s2=s2, count=count, stream=stream)
        os.replace(tmp, p)
    return count


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round", required=True, choices=sorted(ROUND_KEYS))
    ap.add_argument("--n-mlps", type=int, default=10)
    ap.add_argument("--n-samples", type=int, default=2**21)
    ap.add_argument("--chunk", type=int, default=2**16)
    a = ap.parse_args(argv)
    r = round_config(a.round)
    for i in range(a.n_mlps):
        seed = 1000 + i
        mlp = RandomMLP.whestbench(r.width, r.depth, seed=seed)
        t0 = time.time()
        c = bake_one(mlp, r.tag, seed, a.n_samples, a.chunk)
        print(f"{r.tag} mlp{seed}: {c} samples ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
