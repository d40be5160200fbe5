"""White-box final-layer estimators on synthetic final layers (known truth), CPU.

A synthetic final layer: ``x ~ law`` in ``R^d`` and a random unembedding ``W_U (d, V)``, ``b_U``.
For each instance we pick targets whose ``p = P[argmax = t]`` lies in ``[1e-7, 1e-3]``; the
truth is Botev tilting over all ``V - 1`` competitors (Gaussian laws; 2^15 QMC draws, relative
error printed) or the mixture of per-component tilting (mixture laws). Methods see ``N``
i.i.d. activation samples (the analogue of ``N`` model calls) and return ``q``:

* ``naive``: hit fraction; ``gld``: Gaussian logit difference; ``qld``: corrected QLD
  (both from :mod:`lowprob.lm_bridge.methods`);
* ``wb-gauss``: fitted Gaussian + top-K tilting + exact IS correction; ``wb-adf``: fitted
  Gaussian + deduction--projection; ``wb-mixture``: fitted 3-component mixture + tilting/IS.

Scored by the mean squared log error ``(ln p - ln max(q, 1e-12))^2`` over targets and seeds.
Writes ``benchmarks/results/whitebox_synthetic.json`` and ``.png``.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/whitebox_synthetic.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from lowprob._progress import progress
from lowprob.gaussian_polytope import gaussian_polytope_probability
from lowprob.lm_bridge.methods.gld import gaussian_logit_difference
from lowprob.lm_bridge.methods.qld import qld_from_activations
from lowprob.lm_bridge.whitebox import (
    EmpiricalModel,
    FinalLayer,
    GaussianMixture,
    GaussianModel,
    adf_probability,
    corrected_gaussian_probability,
    mixture_components,
    polytope_probability,
)

FLOOR = 1e-12


def make_law(kind: str, d: int, rng: np.random.Generator) -> GaussianModel | GaussianMixture:
    B = rng.standard_normal((d, d))
    S = B @ B.T / d + 0.3 * np.eye(d)
    if kind == "gaussian":
        return GaussianModel.from_moments(0.3 * rng.standard_normal(d), S)
    means = np.stack([0.8 * rng.standard_normal(d) for _ in range(3)])
    covs = np.stack([S * s for s in (0.6, 1.0, 1.6)])
    return GaussianMixture(np.array([0.5, 0.3, 0.2]), means, covs)


def truth(law, layer: FinalLayer) -> tuple[float, float]:
    comps = mixture_components(law) if isinstance(law, GaussianMixture) else [law]
    w = law.weights if isinstance(law, GaussianMixture) else np.ones(1)
    A, c = layer.halfspaces()
    p, var = 0.0, 0.0
    for wk, g in zip(w, comps, strict=True):
        r = gaussian_polytope_probability(A, -c, np.inf, g.mean, g.cov, n_samples=2**15, seed=0)
        p += wk * r.probability
        var += (wk * r.std_error) ** 2
    return p, math.sqrt(var) / max(p, 1e-300)


def run_methods(x: np.ndarray, layer: FinalLayer, seed: int) -> dict[str, float]:
    xt = torch.as_tensor(x)
    W, b = torch.as_tensor(np.array(layer.W_U)), torch.as_tensor(np.array(layer.b_U))
    out = {}
    e = polytope_probability(EmpiricalModel(x), layer)
    out["naive"] = e.probability
    out["gld"] = math.exp(gaussian_logit_difference(xt, W, b, layer.target)[0])
    out["qld"] = math.exp(qld_from_activations(xt, W, b, layer.target).log_p)
    g = GaussianModel.fit(x, regularization=1e-9)
    out["wb-gauss"] = corrected_gaussian_probability(g, layer, K=16, n_samples=2**12, seed=seed).probability
    out["wb-adf"] = adf_probability(g, layer).probability
    fit_x = x[: 2**13]
    gmm = GaussianMixture.fit(fit_x, 3, regularization=1e-4, n_iter=30, seed=seed)
    out["wb-mixture"] = polytope_probability(gmm, layer, K=16, n_samples=2**12, seed=seed).probability
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--d", type=int, default=24)
    ap.add_argument("--V", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/whitebox_synthetic.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    Ns = [2**10, 2**13] if args.quick else [2**10, 2**12, 2**14, 2**16]
    n_inst = 2 if args.quick else 3
    seeds = [0, 1] if args.quick else [0, 1, 2]
    records = []
    t0 = time.time()
    for kind in ("gaussian", "mixture"):
        for inst in range(n_inst):
            rng = np.random.default_rng(1000 * inst + (kind == "mixture"))
            law = make_law(kind, args.d, rng)
            W = rng.standard_normal((args.d, args.V))
            b = 0.5 * rng.standard_normal(args.V)
            xs = law.sample(400_000, seed=inst)
            freq = np.bincount((xs @ W + b).argmax(1), minlength=args.V) / xs.shape[0]
            # candidate targets: rare but reachable (estimated frequency 0 or tiny)
            cands = [int(k) for k in np.argsort(freq) if freq[k] < 1e-3][: 4 * 4]
            chosen = []
            for t in cands:
                layer = FinalLayer(W, b, t)
                p, rel = truth(law, layer)
                if 1e-7 <= p <= 1e-3 and rel < 0.05:
                    chosen.append((t, p, rel))
                if len(chosen) == 4:
                    break
            for t, p, rel in progress(chosen, desc=f"{kind}-{inst}"):
                layer = FinalLayer(W, b, t)
                for N in Ns:
                    for s in seeds:
                        x = law.sample(N, seed=10_000 + 100 * s + N % 97)
                        est = run_methods(x, layer, s)
                        records.append(
                            {"law": kind, "instance": inst, "target": t, "p": p, "p_rel_err": rel, "N": N, "seed": s, **est}
                        )
    methods = ["naive", "gld", "qld", "wb-gauss", "wb-adf", "wb-mixture"]
    table = {}
    print(f"{'law':9s} {'N':>6s} " + " ".join(f"{m:>11s}" for m in methods))
    for kind in ("gaussian", "mixture"):
        for N in Ns:
            rows = [r for r in records if r["law"] == kind and r["N"] == N]
            if not rows:
                continue
            sle = {
                m: float(np.mean([(math.log(r["p"]) - math.log(max(r[m], FLOOR))) ** 2 for r in rows]))
                for m in methods
            }
            table[f"{kind}/{N}"] = sle
            print(f"{kind:9s} {N:6d} " + " ".join(f"{sle[m]:11.3f}" for m in methods))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"d": args.d, "V": args.V, "Ns": Ns, "seeds": seeds, "instances": n_inst, "floor": FLOOR,
            "seconds": time.time() - t0, "metric": "mean squared log error over targets x seeds"}
    out.write_text(json.dumps({"meta": meta, "table": table, "records": records}, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, kind in zip(axes, ("gaussian", "mixture"), strict=True):
            for m in methods:
                ys = [table[f"{kind}/{N}"][m] for N in Ns if f"{kind}/{N}" in table]
                ax.loglog(Ns[: len(ys)], ys, marker="o", label=m)
            ax.set_title(f"{kind} activations (d={args.d}, V={args.V})")
            ax.set_xlabel("activation samples N (= model calls)")
        axes[0].set_ylabel("mean squared log error")
        axes[1].legend()
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=120)
    except ImportError:  # pragma: no cover
        pass
    print(f"wrote {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
