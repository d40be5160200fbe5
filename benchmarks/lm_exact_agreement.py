"""How far the exact enumerator's float32 logits are from the HF forward's, and what the prefix tree buys.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lm_exact_agreement.py

For each shipped model, on the colon exact-suite spec cut to ``k`` tokens per free position:
(1) the max |tree logit - HF ``native_logits``| over every input of the ``k = 8`` cut (this is what
the near-tie threshold must dominate: docs/lm_exact.md), and (2) inputs/s of ``exact_argmax`` with the
tree enumerator against the generic ``ModelAdapter.logits`` fallback (``fast=False``) on the
``k = 24`` cut, both giving the same ``probs``. Prints a table, writes
``benchmarks/results/lm_exact_agreement.json``.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob.lm_bridge.distributions import CategoricalPosition, TokenSpec  # noqa: E402
from lowprob.lm_bridge.exact_truth import _TreeEnumerator, exact_argmax, shipped_exact_dir  # noqa: E402
from lowprob.lm_bridge.zoo import SHIPPED_MODELS, load_shipped  # noqa: E402


def cut(spec: TokenSpec, k: int) -> TokenSpec:
    pos = []
    for p in spec.positions:
        if isinstance(p, CategoricalPosition) and p.tokens.size > k:
            order = np.sort(np.argsort(-p.normalized, kind="stable")[:k])
            q = p.normalized[order]
            p = CategoricalPosition(p.tokens[order], q / q.sum())
        pos.append(p)
    return TokenSpec(pos, spec.metadata)


def tree_logits(ad: object, spec: TokenSpec) -> torch.Tensor:
    """All logits of the support in enumeration order (positions one after another, full product)."""
    enum = _TreeEnumerator(ad, spec, torch.device("cpu"))
    cache, n, T = None, 1, spec.length
    with torch.no_grad():
        for t in range(T):
            rows = enum.rows(t, torch.as_tensor(np.array(spec.positions[t].tokens))).unsqueeze(0)
            out = enum.step(cache, n, t, rows, final=t == T - 1)
            cache, n = out, n * rows.shape[1]
    return out


def main() -> int:
    torch.set_num_threads(1)
    base = TokenSpec.load(shipped_exact_dir() / "specs" / "colon.json")
    rows = []
    for model in SHIPPED_MODELS:
        ad = load_shipped(model)
        small = cut(base, 8)
        xs = torch.tensor(list(itertools.product(*[p.tokens for p in small.positions])))
        with torch.no_grad():
            nat = ad.native_logits(xs)
        diff = float((tree_logits(ad, small) - nat).abs().max())
        mid = cut(base, 24)
        t0 = time.perf_counter()
        a = exact_argmax(ad, mid)
        t_tree = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = exact_argmax(ad, mid, fast=False)
        t_plain = time.perf_counter() - t0
        rows.append({
            "model": model, "agreement_inputs": int(xs.shape[0]), "max_abs_logit_diff": diff,
            "max_abs_logit": float(nat.abs().max()), "speed_inputs": a.n_inputs,
            "tree_inputs_per_s": a.n_inputs / t_tree, "adapter_inputs_per_s": b.n_inputs / t_plain,
            "speedup": t_plain / t_tree, "max_abs_prob_diff_tree_vs_adapter": float(np.abs(a.probs - b.probs).max()),
            "tie_mass": a.tie_mass,
        })
        r = rows[-1]
        print(f"{model}: max|tree-native| {diff:.2e} (logits up to {r['max_abs_logit']:.1f}); "
              f"tree {r['tree_inputs_per_s']:.0f}/s vs adapter {r['adapter_inputs_per_s']:.0f}/s "
              f"(x{r['speedup']:.1f}); max|dp| {r['max_abs_prob_diff_tree_vs_adapter']:.1e}", flush=True)
    atomic_write_json(ROOT / "benchmarks" / "results" / "lm_exact_agreement.json", {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lm_exact_agreement.py",
        "machine": "2 shared CPU cores, loaded by parallel jobs; torch 1 thread", "rows": rows,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
