"""Tabulated GPT-2 forward vs the adapter's full forward: naive and ITGIS, in one run, one thread.

    OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/lm_fast_path.py \
        [--runs gelu-1l:hex gelu-2l:hex gelu-1l:english] [--budget 65536]

For each (model, family) run: a target (the 4th most frequent argmax of 2048 samples, so both
paths see hits), then naive and ITGIS at ``--budget`` model calls, each with
``forward="tabulated"`` and ``forward="adapter"`` (same seed), after one small warm-up call of
each so lazy initialisation is not timed. Reports wall-clock seconds and process CPU seconds
(``time.process_time``; this is what a shared machine distorts least) and the ratios
adapter / tabulated, plus the two estimates (they agree: same seed, same numbers up to
float32). ``torch.set_num_threads(1)``. Writes ``benchmarks/results/lm_fast_path.{json,png}``
after every run (a partial record survives an interrupted run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from lowprob._io import atomic_write_json, check_writable  # noqa: E402
from lowprob.lm_bridge.adapters.gpt2_tabulated import TabulatedGPT2  # noqa: E402
from lowprob.lm_bridge.methods import make_lm_method  # noqa: E402
from lowprob.lm_bridge.problem import LMProblem  # noqa: E402
from lowprob.lm_bridge.zoo import load_shipped, load_shipped_spec  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("naive", "itgis")
PATHS = ("tabulated", "adapter")


def _target(kernel: TabulatedGPT2, spec: Any) -> int:
    am = kernel.logits(spec.sample(2048, torch.Generator().manual_seed(0))).argmax(-1)
    counts = torch.bincount(am, minlength=kernel.vocab_size)
    return int(torch.argsort(counts, descending=True)[3])


def run_one(model: str, family: str, budget: int, seed: int) -> dict[str, Any]:
    ad = load_shipped(model)
    spec = load_shipped_spec(family)
    kernel = TabulatedGPT2(ad, spec)
    target = _target(kernel, spec)
    problem = LMProblem(ad, spec, target)
    out: dict[str, Any] = {
        "model": model, "family": family, "target": target, "budget": budget, "seed": seed,
        "T": spec.length, "table_rows": kernel.n_rows, "score_table": kernel.scores is not None,
        "macs_per_sample": kernel.macs_per_sample(), "methods": {},
    }
    for name in METHODS:
        rec: dict[str, Any] = {}
        for path in PATHS:  # warm-up (not timed)
            make_lm_method(name).estimate(problem, 1024, seed=seed + 1, forward=path)
        for path in PATHS:
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            est = make_lm_method(name).estimate(problem, budget, seed=seed, forward=path)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rec[path] = {
                "wall_s": wall, "cpu_s": cpu, "calls_per_cpu_s": budget / cpu, "load_avg_1min": load,
                "log_estimate": est.log_value, "model_calls": est.cost.model_calls,
                "backward_calls": est.cost.backward_calls, "forward": est.diagnostics["forward"],
                "hits": est.diagnostics.get("hits"),
            }
            print(f"  {model} {family} {name:6s} {path:9s} wall {wall:8.2f}s  cpu {cpu:8.2f}s  "
                  f"log p {est.log_value:.4f}", flush=True)
        rec["ratio_wall"] = rec["adapter"]["wall_s"] / rec["tabulated"]["wall_s"]
        rec["ratio_cpu"] = rec["adapter"]["cpu_s"] / rec["tabulated"]["cpu_s"]
        out["methods"][name] = rec
    return out


def plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    labels, fast, slow = [], [], []
    for r in records:
        for name in METHODS:
            m = r["methods"][name]
            labels.append(f"{r['model']}\n{r['family']}\n{name}")
            fast.append(m["tabulated"]["calls_per_cpu_s"])
            slow.append(m["adapter"]["calls_per_cpu_s"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], slow, 0.4, label="adapter (full forward)")
    ax.bar([i + 0.2 for i in x], fast, 0.4, label="tabulated GPT-2")
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        ax.annotate(f"{f / s:.1f}x", (i + 0.2, f), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("model calls per CPU second (1 thread)")
    ax.set_title(f"LM methods at {records[0]['budget']} calls: tabulated forward vs adapter")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", default=["gelu-1l:hex", "gelu-2l:hex", "gelu-1l:english"])
    ap.add_argument("--budget", type=int, default=2**16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "lm_fast_path.json")
    args = ap.parse_args(argv)
    out = check_writable(args.out)
    torch.set_num_threads(1)
    header = {
        "command": "benchmarks/lm_fast_path.py " + " ".join(argv if argv is not None else os.sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared by parallel jobs",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "note": "ratio = adapter / tabulated time for the same method, budget and seed",
    }
    records: list[dict[str, Any]] = []
    for run in args.runs:
        model, family = run.split(":")
        print(f"{model} {family}: budget {args.budget}", flush=True)
        records.append(run_one(model, family, args.budget, args.seed))
        atomic_write_json(out, {**header, "runs": records})
        plot(records, out.with_suffix(".png"))
    print(f"\n{'model':8s} {'family':8s} {'method':6s} {'adapter cpu s':>13s} {'tabulated cpu s':>15s} "
          f"{'ratio cpu':>9s} {'ratio wall':>10s}  log p (tab / adapter)")
    for r in records:
        for name in METHODS:
            m = r["methods"][name]
            print(f"{r['model']:8s} {r['family']:8s} {name:6s} {m['adapter']['cpu_s']:13.2f} "
                  f"{m['tabulated']['cpu_s']:15.2f} {m['ratio_cpu']:9.1f} {m['ratio_wall']:10.1f}  "
                  f"{m['tabulated']['log_estimate']:.4f} / {m['adapter']['log_estimate']:.4f}")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
