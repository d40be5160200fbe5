"""``lowprob lm bench``: every method on every family's targets; table, JSON and log-log plot.

    lowprob lm bench --model gelu-1l --methods naive gld qld qld_official itgis mhis \\
        --budget 65536 --device auto

    lowprob lm bench --model gelu-1l --truth exact --budgets 4096 16384 65536 --replicates 2 --resume

Targets come from ``--targets DIR`` (``lowprob.targets/1`` lists; default: the shipped ground
truth of a shipped model) and specs from ``--specs DIR`` (``<family>.json``; default: the
shipped specs; with ``--truth exact``, the exact-enumeration suite ``lowprob/data/exact/``).
Every (method, family, target, budget, replicate) run is appended to a state file as it
finishes; ``--resume`` skips the runs already there. Output paths are checked writable before
anything runs; the JSON is strict and written atomically. Methods are looked up in the LM method registry; ``--plugin MODULE`` (or
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
    p.add_argument("--truth", choices=("sampled", "exact"), default="sampled",
                   help="shipped ground truth to score against: sampled counts (default) or the exact-enumeration "
                        "suites under lowprob/data/exact/ (ignored for a side given by --targets/--specs)")
    p.add_argument("--budget", "--budgets", dest="budgets", type=int, nargs="+", default=None,
                   help="forward passes per estimate, one or more (default 65536; with --truth exact 4096 16384 65536)")
    p.add_argument("--seed", type=int, default=0, help="base seed; per-target seeds derive from it (default 0)")
    p.add_argument("--replicates", type=int, default=1,
                   help="seeds per (target, budget): the fixed list case_seed(seed, family, target, r), r < N")
    p.add_argument("--device", default="auto")
    p.add_argument("--targets", default=None, help="directory of target lists (default: shipped ground truth)")
    p.add_argument("--specs", default=None, help="directory of <family>.json specs (default: shipped specs)")
    p.add_argument("--families", nargs="+", default=None, help="restrict to these families")
    p.add_argument("--n-targets", type=int, default=None, help="random subset of targets per family")
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE", help="hyperparameter (repeatable)")
    p.add_argument("--plugin", action="append", default=[], help="import this module to register more methods")
    p.add_argument("--floor", type=float, default=None, help="IS-loss floor for estimates (default 1e-10)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for intervals (default 2000)")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/lm_bench_<model>.json)")
    p.add_argument("--plot", default=None, help="PNG output for the largest budget (default: next to the JSON)")
    p.add_argument("--state", default=None, help="resume file (default: <out>.state.jsonl)")
    p.add_argument("--resume", action="store_true",
                   help="skip (method, family, target, budget, replicate) runs already in the state file")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new run after this many minutes; score what finished (resume later)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a TTY")
    p.add_argument("--list", action="store_true", help="list registered methods and exit")
    p.set_defaults(func=run_bench_cli)


def run_bench_cli(args: argparse.Namespace) -> int:
    import torch

    from lowprob._io import check_writable, dumps_strict
    from lowprob._validation import check_budget, check_int, check_seed
    from lowprob.lm_bridge.bench import (
        BenchState,
        exact_suite_dirs,
        format_table,
        interleave_families,
        load_cases,
        plot_bench,
        run_bench,
        write_bench_json,
    )
    from lowprob.lm_bridge.methods.registry import available_lm_methods, load_lm_plugins
    from lowprob.lm_bridge.scoring import DEFAULT_FLOOR, score_bench

    load_lm_plugins(args.plugin)
    names = available_lm_methods()
    if args.list:
        print("\n".join(names))
        return 0
    if not args.model:
        raise InputValueError("--model is required (a HF model directory or gelu-1l / gelu-2l).")
    methods = args.methods or [n for n in names if not n.startswith("test-")]
    # a method token is NAME or NAME:KEY=VALUE,KEY=VALUE (a labelled variant, e.g. itgis:temperature=0.5)
    base = {m: m.partition(":")[0] for m in methods}
    unknown = sorted({b for b in base.values() if b not in names})
    if unknown:
        raise InputValueError(f"unknown method(s) {unknown!r}; registered: {names!r} (see --list, --plugin).")
    params: dict[str, dict] = {m: parse_params(m.partition(":")[2].split(",") if ":" in m else []) for m in methods}
    for key, val in parse_params(args.param).items():
        m, sep, k = key.partition(".")
        hit = [t for t in methods if base[t] == m]
        if not sep or not hit:
            raise InputValueError(f"--param must be METHOD.KEY=VALUE with METHOD in {sorted(set(base.values()))!r}, got {key!r}.")
        for t in hit:
            params[t].setdefault(k, val)
    budgets = args.budgets or ([2**12, 2**14, 2**16] if args.truth == "exact" else [2**16])
    budgets = [check_budget(b, name="--budget") for b in budgets]
    replicates = check_int("--replicates", args.replicates, minimum=1)
    check_int("--n-boot", args.n_boot, minimum=1)
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise InputValueError(f"--max-minutes must be > 0, got {args.max_minutes!r}.")
    model_name = Path(args.model).name
    suffix = "_exact" if args.truth == "exact" else ""
    out = check_writable(args.out or f"benchmarks/results/lm_bench_{model_name}{suffix}.json", what="--out")
    plot = check_writable(args.plot or out.with_suffix(".png"), what="--plot")
    state_path = check_writable(args.state or out.with_name(out.name + ".state.jsonl"), what="--state")

    targets_dir, specs_dir = args.targets, args.specs
    if targets_dir is None or specs_dir is None:
        if args.truth == "exact":
            t_dir, s_dir = exact_suite_dirs(model_name)
        else:
            from lowprob.lm_bridge.zoo import shipped_ground_truth_dir, shipped_specs_dir

            t_dir, s_dir = shipped_ground_truth_dir(model_name), shipped_specs_dir()
        targets_dir, specs_dir = targets_dir or t_dir, specs_dir or s_dir

    check_seed("--seed", args.seed)
    torch.set_grad_enabled(True)
    adapter = load_model_arg(args.model, args.device)
    model_hash = getattr(adapter, "model_hash", None)
    cases = load_cases(targets_dir, specs_dir, families=args.families, n_targets=args.n_targets,
                       seed=args.seed, model_hash=model_hash)
    fingerprint = {"model_hash": model_hash, "model": model_name, "truth": args.truth, "seed": args.seed,
                   "methods": {m: [base[m], params[m]] for m in methods}}
    state = BenchState.open(state_path, fingerprint, resume=args.resume)
    t0 = time.perf_counter()
    run_bench(adapter, interleave_families(cases), [(m, base[m], params[m]) for m in methods], budget=budgets, seed=args.seed,
              replicates=replicates, show_progress=True if args.progress else None,
              on_result=state.append, done=state.done,
              time_limit=None if args.max_minutes is None else 60.0 * args.max_minutes)
    keys = {(c.family, c.target) for c in cases}
    records = [r for r in state.records
               if (r["family"], r["target"]) in keys and r["method"] in base and r["budget"] in budgets
               and r.get("replicate", 0) < replicates]
    floor = DEFAULT_FLOOR if args.floor is None else args.floor
    scores = score_bench(records, floor=floor, n_boot=args.n_boot, seed=args.seed)
    meta = {
        "command": " ".join(["lowprob", *sys.argv[1:]]) if sys.argv else None,
        "model": str(args.model), "model_hash": model_hash, "truth": args.truth,
        "device": str(adapter.device), "budgets": budgets, "seed": args.seed, "replicates": replicates,
        "methods": {m: params[m] for m in methods}, "n_cases": len(cases),
        "targets_dir": str(targets_dir), "specs_dir": str(specs_dir), "state": str(state_path),
        "wall_seconds": time.perf_counter() - t0, "torch": torch.__version__,
    }
    write_bench_json(out, meta=meta, records=records, scores=scores)
    plots = []
    for b in budgets:
        recs_b = [r for r in records if r["budget"] == b]
        if not recs_b:
            continue
        path = plot if b == max(budgets) else plot.with_name(f"{plot.stem}.b{b}{plot.suffix}")
        plots.append(plot_bench(recs_b, scores["budgets"][str(b)], path,
                                title=f"{model_name}, {args.truth} truth, budget {b}"))
    print(f"{len(cases)} targets x {len(methods)} methods x budgets {budgets} x {replicates} seed(s), "
          f"device {adapter.device}")
    for b in budgets:
        if str(b) not in scores["budgets"]:
            print(f"[budget {b}] no finished runs yet (time box); rerun with --resume")
            continue
        for loss in ("is_fit", "is_raw", "sle"):
            print(f"[budget {b}] " + format_table(scores["budgets"][str(b)], loss=loss))
            print()
    secs = {m: [r["cost"]["seconds"] or 0 for r in records if r["method"] == m] for m in methods}
    print("seconds per estimate: " + dumps_strict({m: round(sum(s) / max(1, len(s)), 3) for m, s in secs.items()}))
    print(f"wrote {out} and {', '.join(str(p) for p in plots)}")
    return 0
