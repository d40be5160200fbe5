"""``lowprob lm bench``: every method on every family's targets; table, JSON and log-log plot.

    lowprob lm bench --model gelu-1l --methods naive gld qld qld_official itgis mhis \\
        --budget 65536 --device auto

Targets come from ``--targets DIR`` (``lowprob.targets/1`` lists; default: the shipped ground
truth of a shipped model) and specs from ``--specs DIR`` (``<family>.json``; default: the
shipped specs). Methods are looked up in the LM method registry; ``--plugin MODULE`` (or
``LOWPROB_LM_PLUGINS``) registers more without editing this file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lowprob.errors import InputValueError
from lowprob.lm_bridge.cli_estimate import load_model_arg, parse_params

__all__ = ["register"]


def register(lm_subparsers: argparse._SubParsersAction) -> None:
    p = lm_subparsers.add_parser(
        "bench", help="benchmark LM methods against ground truth",
        description="Run registered LM methods on every target of every family and score them.",
    )
    p.add_argument("--model", help="HF model directory or shipped name (gelu-1l, gelu-2l)")
    p.add_argument("--methods", nargs="+", default=None,
                   help="method names, or labelled variants NAME:KEY=VALUE,... (default: all registered)")
    p.add_argument("--budget", type=int, default=2**16, help="forward passes per estimate (default 65536)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--targets", default=None, help="directory of target lists (default: shipped ground truth)")
    p.add_argument("--specs", default=None, help="directory of <family>.json specs (default: shipped specs)")
    p.add_argument("--families", nargs="+", default=None, help="restrict to these families")
    p.add_argument("--n-targets", type=int, default=None, help="random subset of targets per family")
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE", help="hyperparameter (repeatable)")
    p.add_argument("--plugin", action="append", default=[], help="import this module to register more methods")
    p.add_argument("--floor", type=float, default=None, help="IS-loss floor for estimates (default 1e-10)")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/lm_bench_<model>.json)")
    p.add_argument("--plot", default=None, help="PNG output (default: next to the JSON)")
    p.add_argument("--list", action="store_true", help="list registered methods and exit")
    p.set_defaults(func=run_bench_cli)


def run_bench_cli(args: argparse.Namespace) -> int:
    import torch

    from lowprob.lm_bridge.bench import (
        format_table,
        load_cases,
        plot_bench,
        run_bench,
        write_bench_json,
    )
    from lowprob.lm_bridge.methods.registry import available_lm_methods, load_lm_plugins
    from lowprob.lm_bridge.scoring import DEFAULT_FLOOR, score_records

    load_lm_plugins(args.plugin)
    names = available_lm_methods()
    if args.list:
        print("\n".join(names))
        return 0
    if not args.model:
        raise InputValueError("--model is required (a HF model directory or gelu-1l / gelu-2l).")
    methods = args.methods or names
    # a method token is NAME or NAME:KEY=VALUE,KEY=VALUE (a labelled variant, e.g. itgis:temperature=0.5)
    base = {m: m.partition(":")[0] for m in methods}
    params: dict[str, dict] = {m: parse_params(m.partition(":")[2].split(",") if ":" in m else []) for m in methods}
    for key, val in parse_params(args.param).items():
        m, sep, k = key.partition(".")
        hit = [t for t in methods if base[t] == m]
        if not sep or not hit:
            raise InputValueError(f"--param must be METHOD.KEY=VALUE with METHOD in {sorted(set(base.values()))!r}, got {key!r}.")
        for t in hit:
            params[t].setdefault(k, val)

    from lowprob._io import check_writable, dumps_strict
    from lowprob._validation import check_budget, check_seed

    check_budget(args.budget, name="--budget")
    check_seed("--seed", args.seed)
    model_name = Path(args.model).name
    # output paths are checked before the (long) benchmark, so its results are never lost
    out = check_writable(args.out or f"benchmarks/results/lm_bench_{model_name}.json", what="--out")
    plot = check_writable(args.plot or out.with_suffix(".png"), what="--plot")
    torch.set_grad_enabled(True)
    adapter = load_model_arg(args.model, args.device)
    targets_dir, specs_dir = args.targets, args.specs
    if targets_dir is None or specs_dir is None:
        from lowprob.lm_bridge.zoo import shipped_ground_truth_dir, shipped_specs_dir

        targets_dir = targets_dir or shipped_ground_truth_dir(model_name)
        specs_dir = specs_dir or shipped_specs_dir()
    cases = load_cases(targets_dir, specs_dir, families=args.families, n_targets=args.n_targets,
                       seed=args.seed, model_hash=getattr(adapter, "model_hash", None))
    t0 = time.perf_counter()
    records = run_bench(adapter, cases, [(m, base[m], params[m]) for m in methods], budget=args.budget, seed=args.seed)
    floor = DEFAULT_FLOOR if args.floor is None else args.floor
    scores = score_records(records, floor=floor, seed=args.seed)
    meta = {
        "command": " ".join(["lowprob", *sys.argv[1:]]) if sys.argv else None,
        "model": str(args.model), "model_hash": getattr(adapter, "model_hash", None),
        "device": str(adapter.device), "budget": args.budget, "seed": args.seed,
        "methods": {m: params[m] for m in methods}, "n_cases": len(cases),
        "targets_dir": str(targets_dir), "specs_dir": str(specs_dir),
        "wall_seconds": time.perf_counter() - t0, "torch": torch.__version__,
    }
    write_bench_json(out, meta=meta, records=records, scores=scores)
    plot_bench(records, scores, plot, title=f"{model_name}, budget {args.budget}")
    print(f"{len(cases)} targets x {len(methods)} methods, budget {args.budget}, device {adapter.device}")
    for loss in ("is_fit", "is_raw", "sle"):
        print(format_table(scores, loss=loss))
        print()
    secs = {m: sum(r["cost"]["seconds"] or 0 for r in records if r["method"] == m) for m in methods}
    print("seconds per estimate: " + dumps_strict({m: round(s / max(1, len(cases)), 3) for m, s in secs.items()}))
    print(f"wrote {out} and {plot}")
    return 0
