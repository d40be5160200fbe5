"""Why cheap control variates do not reach 0.1x Monte Carlo on WhestBench's random MLPs (issue 13).

Three measurements on WhestBench's own MLP law (``RandomMLP.whestbench``, seeds ``1000 + i``),
each a bound on what one idea of the issue can give, in variance per evaluation:

1. **Exact linear maps for always-on / always-off neurons.** The fraction of neurons of layer
   ``l`` whose pre-activation kept one sign on every one of ``N`` inputs (an upper bound on what
   can be collapsed), and the residual variance of the final layer after its best linear
   prediction from layer ``k`` (``R(k)``: fitted on ``N`` inputs, measured on ``N`` fresh ones).
   A two-level estimator ``E f = A E h_k + E[f - A h_k]`` with cost ``c_k`` per level-``k``
   sample has variance-times-cost ``(sqrt((1 - R) c_k) + sqrt(R c_L))^2`` at the optimal split
   (Giles 2008, multilevel Monte Carlo), against ``c_L`` for plain Monte Carlo; the script
   reports the best ``k``'s ratio.
2. **A control variate with an exact mean on top of the rotated cross-polytope design.** The
   even part of layer 1, ``g(u) = |W_1^T u|`` on the unit sphere, has
   ``E g_j = |W_1[:, j]| E|u_1|`` exactly. The regression coefficient ``B`` is fitted on a
   pilot; the design estimator ``mean_{u in +-Q e_i} (f(u) - (g(u) - E g) B)`` is compared with
   the plain design over random rotations ``Q``. Ratio: design variance x ``2n`` / Monte Carlo
   variance per evaluation (the design's cost is ``2n`` forwards).

Prints a table, writes ``benchmarks/results/whest_structure.json`` and a plot.

    python benchmarks/whest_structure.py                      # 256x8 and 256x32, 2 MLPs each
    python benchmarks/whest_structure.py --shapes 256x8 --n-mlps 1 --inputs 4096
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from lowprob._io import atomic_write_json, check_writable
from lowprob.toy_models.random_mlp import RandomMLP

RESULTS = Path(__file__).resolve().parent / "results"


def _layers(weights: tuple[np.ndarray, ...], x: np.ndarray) -> list[np.ndarray]:
    hs = [x]
    for w in weights:
        x = np.maximum(x @ w, 0.0)
        hs.append(x)
    return hs


def _sphere(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    x = rng.standard_normal((n, width))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(width: int, depth: int, seed: int, inputs: int, rotations: int) -> dict:
    mlp = RandomMLP.whestbench(width, depth, seed=seed)
    W = tuple(np.asarray(w, dtype=np.float64) for w in mlp.weights)
    rng = np.random.default_rng([seed, 7])
    x = rng.standard_normal((inputs, width))
    xt = rng.standard_normal((inputs, width))
    hs, ht = _layers(W, x), _layers(W, xt)
    f, ft = hs[-1], ht[-1]
    var_f = float(ft.var(0).mean())
    # 1a. neurons that never changed sign on the inputs
    fixed = []
    for layer in range(1, depth + 1):
        z = hs[layer - 1] @ W[layer - 1]
        on = (z > 0).mean(0)
        fixed.append({"layer": layer, "always_on": float((on == 1).mean()), "always_off": float((on == 0).mean())})
    # 1b. linear predictability of the final layer from layer k, and the two-level bound
    ks = sorted({0, 1, depth // 4, depth // 2, (3 * depth) // 4, depth - 1})
    lin = []
    for k in ks:
        H = np.c_[hs[k], np.ones(inputs)]
        A, *_ = np.linalg.lstsq(H, f, rcond=None)
        R = float((ft - np.c_[ht[k], np.ones(inputs)] @ A).var(0).mean() / var_f)
        ck, cL = k + 1, depth  # layer matmuls per sample (the map A costs one)
        two_level = (math.sqrt((1 - R) * ck) + math.sqrt(R * cL)) ** 2 / cL
        lin.append({"k": k, "residual_variance_fraction": R, "two_level_cost_x_variance_over_mc": two_level})
    # 2. the |z1| control variate on the rotated cross-polytope design (unit sphere; the radius is exact)
    eabs = math.exp(math.lgamma(width / 2) - math.lgamma((width + 1) / 2)) / math.sqrt(math.pi)
    Eg = np.linalg.norm(W[0], axis=0) * eabs
    P = _sphere(rng, inputs, width)
    fe = 0.5 * (_layers(W, P)[-1] + _layers(W, -P)[-1])
    G = np.abs(P @ W[0]) - Eg
    B, *_ = np.linalg.lstsq(G, fe - fe.mean(0), rcond=None)
    U = _sphere(rng, inputs, width)
    var_mc = float(_layers(W, U)[-1].var(0).mean())
    plain, cv = [], []
    for _ in range(rotations):
        Q, _ = np.linalg.qr(rng.standard_normal((width, width)))
        D = np.r_[Q, -Q]
        F = _layers(W, D)[-1].mean(0)
        plain.append(F)
        cv.append(F - (np.abs(D @ W[0]).mean(0) - Eg) @ B)
    n_pts = 2 * width
    return {
        "width": width, "depth": depth, "seed": seed, "inputs": inputs, "rotations": rotations,
        "fixed_sign_neurons": fixed,
        "linear_tail": lin,
        "best_two_level_ratio": min(r["two_level_cost_x_variance_over_mc"] for r in lin),
        "design_variance_ratio": float(np.var(plain, axis=0).mean() * n_pts / var_mc),
        "design_with_abs_z1_cv_variance_ratio": float(np.var(cv, axis=0).mean() * n_pts / var_mc),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["256x8", "256x32"])
    ap.add_argument("--n-mlps", type=int, default=2)
    ap.add_argument("--inputs", type=int, default=8192)
    ap.add_argument("--rotations", type=int, default=60)
    ap.add_argument("--out", default=str(RESULTS / "whest_structure.json"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    check_writable(out)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes]
    t0 = time.process_time()
    rows = [measure(w, d, 1000 + i, a.inputs, a.rotations) for (w, d) in shapes for i in range(a.n_mlps)]
    print("| shape | MLP | always on/off at last layer | R(k) (best linear map from layer k) | best two-level cost x var / MC "
          "| design var / MC | design + |z1| CV / MC |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        last = r["fixed_sign_neurons"][-1]
        rk = ", ".join(f"{x['k']}: {x['residual_variance_fraction']:.3f}" for x in r["linear_tail"])
        print(f"| {r['width']}x{r['depth']} | {r['seed']} | {last['always_on']:.2f} / {last['always_off']:.2f} | {rk} | "
              f"{r['best_two_level_ratio']:.2f} | {r['design_variance_ratio']:.3f} | {r['design_with_abs_z1_cv_variance_ratio']:.3f} |")
    rec = {"command": "python benchmarks/whest_structure.py " + " ".join(argv or []), "cpu_seconds": time.process_time() - t0,
           "rows": rows}
    atomic_write_json(out, rec, indent=1)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for r in rows:
        lab = f"{r['width']}x{r['depth']} seed {r['seed']}"
        ax[0].plot([x["k"] / r["depth"] for x in r["linear_tail"]],
                   [x["residual_variance_fraction"] for x in r["linear_tail"]], "o-", label=lab)
        ax[1].plot([x["layer"] for x in r["fixed_sign_neurons"]],
                   [x["always_on"] + x["always_off"] for x in r["fixed_sign_neurons"]], "o-", label=lab)
    ax[0].set_xlabel("k / depth")
    ax[0].set_ylabel("final-layer variance left after the best linear map from layer k")
    ax[1].set_xlabel("layer")
    ax[1].set_ylabel("share of neurons with one sign on every input")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    plt.close(fig)
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
