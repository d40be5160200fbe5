"""The race on exact truth: white-box / hybrid LM methods against ITGIS and MHIS, both shipped models.

For each model, runs ``lowprob lm bench --truth exact`` (resumable: rerun the same command to
continue) and then scores all models together:

* held-out mean **fitted** IS loss per method and model (log-affine fit per method, model and
  budget on the development families hex/camel/colon/if only), with 95% bootstrap intervals;
* paired differences ``A - itgis`` and ``A - mhis`` (held-out, fitted IS) for every white-box or
  hybrid method ``A`` (``wb-*``), paired bootstrap over targets with a fixed seed;
* the **moonshot verdict**: some ``wb-*`` method has a lower held-out mean fitted IS loss than
  both ITGIS and MHIS on *every* model, at the race budget (2^16 by default), each paired 95%
  interval excluding 0. Reported whichever way it falls, and marked incomplete if a model or
  held-out family is missing.

Writes ``<out-dir>/lm_race_<model>.json`` (the bench output, one per model), ``lm_race.json``
(summary) and ``lm_race.png`` (held-out fitted IS per method and model). Prints a table.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/lm_race.py --models gelu-1l gelu-2l --n-targets 2 \\
        --budgets 65536 --replicates 1 --max-minutes 40

Run it from the repository root with ``PYTHONPATH=.``: a script's own folder, not the current
directory, heads ``sys.path``, so without it ``lowprob`` is whatever the environment installed
(``meta.targets_dir`` in each bench file shows which tree ran). The models can run in parallel (one process each, ``--models gelu-1l`` and ``--models gelu-2l``),
then ``--score-only --models gelu-1l gelu-2l`` writes the joint summary.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import atomic_write_json, check_writable
from lowprob.cli import main as lowprob_main
from lowprob.lm_bridge.scoring import DEFAULT_FLOOR, HELDOUT_FAMILIES, score_bench

DEFAULT_METHODS = ["naive", "gld", "qld", "qld_official", "itgis", "mhis", "wb-gauss", "wb-mixture", "wb-adf", "wb-itgis"]
REFERENCES = ("itgis", "mhis")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["gelu-1l", "gelu-2l"])
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    p.add_argument("--budgets", type=int, nargs="+", default=[2**12, 2**14, 2**16])
    p.add_argument("--race-budget", type=int, default=None, help="budget of the verdict (default: the largest)")
    p.add_argument("--n-targets", type=int, default=None, help="targets per family (default: all)")
    p.add_argument("--replicates", type=int, default=1, help="seeds per (target, budget)")
    p.add_argument("--families", nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--exact-root", default=None, help="exact suites root (default lowprob/data/exact)")
    p.add_argument("--max-minutes", type=float, default=None, help="time box per model (resume to continue)")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--out-dir", default="benchmarks/results/race")
    p.add_argument("--fresh", action="store_true", help="ignore earlier state files (default: resume)")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE")
    p.add_argument("--score-only", action="store_true",
                   help="run nothing: summarize the per-model bench files already in --out-dir (e.g. after "
                        "running the models in parallel, one process each)")
    return p.parse_args(argv)


def bench_model(args: argparse.Namespace, model: str, out: Path) -> None:
    cmd = ["lm", "bench", "--model", model, "--truth", "exact", "--device", args.device,
           "--methods", *args.methods, "--budgets", *map(str, args.budgets), "--replicates", str(args.replicates),
           "--seed", str(args.seed), "--n-boot", str(args.n_boot), "--out", str(out)]
    if args.exact_root is not None:
        name = Path(model).name
        cmd += ["--targets", str(Path(args.exact_root) / name), "--specs", str(Path(args.exact_root) / "specs")]
    if args.n_targets is not None:
        cmd += ["--n-targets", str(args.n_targets)]
    if args.families:
        cmd += ["--families", *args.families]
    if args.max_minutes is not None:
        cmd += ["--max-minutes", str(args.max_minutes)]
    if not args.fresh:
        cmd.append("--resume")
    for p in args.param:
        cmd += ["--param", p]
    print("$ lowprob " + " ".join(cmd), flush=True)
    rc = lowprob_main(cmd)
    if rc != 0:
        raise SystemExit(f"lowprob lm bench failed for {model!r} (exit {rc})")


def summarize(per_model: dict[str, list[dict[str, Any]]], *, race_budget: int, n_boot: int, seed: int) -> dict[str, Any]:
    """Held-out fitted IS per method/model at every budget, paired wb-* vs references, the verdict."""
    out: dict[str, Any] = {"race_budget": race_budget, "models": {}, "verdict": {}}
    wb_all: set[str] = set()
    for model, recs in per_model.items():
        methods = sorted({r["method"] for r in recs})
        wb = [m for m in methods if m.startswith("wb-")]
        wb_all.update(wb)
        pairs = [(a, ref) for a in wb for ref in REFERENCES if ref in methods]
        sc = score_bench(recs, floor=DEFAULT_FLOOR, n_boot=n_boot, seed=seed, pairs=pairs)
        fams = sorted({r["family"] for r in recs})
        out["models"][model] = {
            "families": fams,
            "missing_heldout": [f for f in HELDOUT_FAMILIES if f not in fams],
            "budgets": {
                b: {
                    "heldout_is_fit": {m: s["by_split"][m]["heldout"].get("is_fit") for m in s["by_split"]},
                    "dev_is_fit": {m: s["by_split"][m]["dev"].get("is_fit") for m in s["by_split"]},
                    "heldout_sle": {m: s["by_split"][m]["heldout"].get("sle") for m in s["by_split"]},
                    "failures": {m: s["by_split"][m]["failures"] for m in s["by_split"]},
                    "paired_heldout_is_fit": {k: v["heldout"].get("is_fit") for k, v in s["paired"].items()},
                }
                for b, s in sc["budgets"].items()
            },
        }
    rb = str(race_budget)
    for a in sorted(wb_all):
        per: dict[str, Any] = {}
        ok = True
        for model, M in out["models"].items():
            P = M["budgets"].get(rb, {}).get("paired_heldout_is_fit", {})
            res = {ref: P.get(f"{a} - {ref}") for ref in REFERENCES}
            wins = all(r is not None and r["n"] > 0 and r["ci95"][1] < 0 for r in res.values())
            per[model] = {"vs": res, "wins_both": wins}
            ok = ok and wins
        out["verdict"][a] = {"achieved": bool(ok and per), "per_model": per}
    complete = all(not M["missing_heldout"] and rb in M["budgets"] for M in out["models"].values())
    out["moonshot"] = {
        "achieved": any(v["achieved"] for v in out["verdict"].values()),
        "complete_data": complete,
        "by_method": {a: v["achieved"] for a, v in out["verdict"].items()},
    }
    return out


def _fmt(s: dict[str, Any] | None) -> str:
    if not s or s.get("mean") is None or not math.isfinite(float(s["mean"])):
        return "n/a"
    lo, hi = s["ci95"]
    return f"{s['mean']:.3g} [{lo:.3g}, {hi:.3g}]"


def print_tables(summary: dict[str, Any]) -> None:
    for model, M in summary["models"].items():
        for b, B in sorted(M["budgets"].items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
            print(f"\n{model}, budget {b}: held-out mean fitted IS loss [95% CI] (missing held-out: {M['missing_heldout']})")
            for m, s in B["heldout_is_fit"].items():
                print(f"  {m:14s} {_fmt(s):>34s}   dev {_fmt(B['dev_is_fit'].get(m)):>30s}   failures {B['failures'][m]}")
            for k, v in B["paired_heldout_is_fit"].items():
                print(f"  paired {k:24s} {_fmt(v):>34s}  n={v['n'] if v else 0}")
    mo = summary["moonshot"]
    print(f"\nmoonshot at budget {summary['race_budget']}: {'ACHIEVED' if mo['achieved'] else 'not achieved'}"
          f" (data complete: {mo['complete_data']}); by method: {mo['by_method']}")


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    rb = str(summary["race_budget"])
    models = [m for m in summary["models"] if rb in summary["models"][m]["budgets"]]
    if not models:
        return
    methods = sorted({m for mm in models for m in summary["models"][mm]["budgets"][rb]["heldout_is_fit"]})
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(methods), 4))
    width = 0.8 / len(models)
    for j, model in enumerate(models):
        H = summary["models"][model]["budgets"][rb]["heldout_is_fit"]
        mean = np.array([H.get(m, {}).get("mean", np.nan) if H.get(m) else np.nan for m in methods], dtype=float)
        lo = np.array([H[m]["ci95"][0] if H.get(m) else np.nan for m in methods], dtype=float)
        hi = np.array([H[m]["ci95"][1] if H.get(m) else np.nan for m in methods], dtype=float)
        x = np.arange(len(methods)) + (j - (len(models) - 1) / 2) * width
        ax.bar(x, mean, width, label=model, yerr=[mean - lo, hi - mean], capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(methods)))
    ax.set_xticklabels(methods, rotation=45, ha="right")
    ax.set_ylabel("held-out mean fitted IS loss")
    ax.set_title(f"race on exact truth, budget {rb} (95% bootstrap CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = check_writable(Path(args.out_dir) / "lm_race.json").parent
    out_dir.mkdir(parents=True, exist_ok=True)
    race_budget = args.race_budget or max(args.budgets)
    if race_budget not in args.budgets:
        raise SystemExit(f"--race-budget {race_budget} is not among --budgets {args.budgets}")
    t0 = time.perf_counter()
    per_model: dict[str, list[dict[str, Any]]] = {}
    for model in args.models:
        out = out_dir / f"lm_race_{Path(model).name}.json"
        if not args.score_only:
            bench_model(args, model, out)
        elif not out.is_file():
            raise SystemExit(f"--score-only: {out} does not exist; run the bench for {model!r} first")
        per_model[Path(model).name] = json.loads(out.read_text())["records"]
    summary = summarize(per_model, race_budget=race_budget, n_boot=args.n_boot, seed=args.seed)
    summary["meta"] = {
        "command": " ".join(["python", "benchmarks/lm_race.py", *(argv if argv is not None else sys.argv[1:])]),
        "models": args.models, "methods": args.methods, "budgets": args.budgets, "n_targets": args.n_targets,
        "replicates": args.replicates, "seed": args.seed, "max_minutes": args.max_minutes,
        "wall_seconds_this_call": time.perf_counter() - t0,
        "machine": "2 shared CPU cores, loaded by parallel jobs",
        "n_records": {m: len(r) for m, r in per_model.items()},
    }
    atomic_write_json(out_dir / "lm_race.json", summary, indent=1)
    plot(summary, out_dir / "lm_race.png")
    print_tables(summary)
    print(f"\nwrote {out_dir / 'lm_race.json'} and {out_dir / 'lm_race.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
