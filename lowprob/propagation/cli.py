"""``lowprob curves``: the kernel-vs-sampling curves on the halfspace toy (the main job)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "curves",
        help="MSE/E[p(1-p)] vs budget, FLOPs and seconds for kernel/hermite/sampling on random halfspace toys",
        description=(
            "Run the propagation estimators on random d x m halfspace toys (stratified on "
            "feasibility, or a tail-biased mixture with --instance-law mixture; exact oracle truth "
            "for d <= 4, Monte Carlo truth otherwise) and write "
            "<out>/curves.json and <out>/curves.png."
        ),
    )
    p.add_argument("--d", type=int, default=4, help="input dimension (default 4)")
    p.add_argument("--m", type=int, default=16, help="number of half-spaces (default 16)")
    p.add_argument("--instances", type=int, default=2000, help="random instances (default 2000)")
    p.add_argument("--problem", default="halfspace",
                   help="halfspace (default), sat (random 3-SAT) or permanent (random {0,1} matrices); "
                   "see lowprob.propagation.product_curves")
    p.add_argument("--n", type=int, default=16, help="sat/permanent: variables / matrix size (default 16)")
    p.add_argument("--k", type=int, default=None, help="sat: clauses (default round(4.26 n))")
    p.add_argument("--methods", nargs="+", default=None,
                   help="toy estimators to run (default: kernel hermite sampling for halfspace, "
                   "the problem's own methods otherwise)")
    p.add_argument("--budgets", nargs="*", default=[], metavar="METHOD=K1,K2,...",
                   help="override budgets, e.g. kernel=1,5,14,30 sampling=10,100,1000")
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--truth-samples", type=int, default=2**17,
                   help="Monte Carlo truth samples per instance when d > 4 (default 131072)")
    p.add_argument("--stem", default="curves", help="output file stem (default curves)")
    p.add_argument("--instance-law", choices=("stratified", "mixture"), default=None,
                   help="halfspace: how instances are drawn: 'stratified' (feasibility strata of P; the "
                   "default of a single run) or 'mixture' (strata plus the exact tail law Q2 ∝ p^2 P, "
                   "balance-heuristic weights; the default of --grid); see docs/propagation.md")
    p.add_argument("--tail-share", type=float, default=0.5,
                   help="mixture: fraction of instances drawn from Q2, in [0, 1) (default 0.5)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = p.add_argument_group("win map (--grid)")
    g.add_argument("--grid", action="store_true",
                   help="run the win map over n x m cells and write <out>/winmap.json and <out>/winmap.png "
                   "(resumable: finished cells in <out>/winmap_cells/ are reused)")
    g.add_argument("--grid-ns", default="4,8,16,32,64", help="dimensions n (default 4,8,16,32,64)")
    g.add_argument("--grid-ratios", default="1,2,4", help="m/n ratios (default 1,2,4)")
    g.add_argument("--grid-instances", type=int, default=40, help="instances per cell (default 40)")
    p.set_defaults(func=_run)


def _check_methods(methods: list[str], budgets: dict[str, tuple[int, ...]], d: int, m: int, instances: int) -> None:
    """Every method must run in batches (``estimate_batch``); every --budgets key must be a method;
    every budget must fit the stated memory/time estimate (:mod:`lowprob.toy_models.cost_models`)."""
    from lowprob.errors import InputValueError
    from lowprob.propagation.curves import CurveConfig
    from lowprob.toy_models.cost_models import check_toy_budget
    from lowprob.toy_models.registry import get_toy_estimator

    if not methods:
        raise InputValueError("--methods needs at least one method, e.g. --methods kernel hermite sampling.")
    batched = [m_ for m_ in methods if not hasattr(get_toy_estimator(m_), "estimate_batch")]
    if batched:
        raise InputValueError(
            f"--methods {batched!r} cannot run in `lowprob curves` (no batched estimate over instances); "
            "use propagation estimators such as kernel, hermite, sampling, or `lowprob toy estimate` for these."
        )
    extra = sorted(set(budgets) - set(methods))
    if extra:
        raise InputValueError(
            f"--budgets given for {extra!r}, which is not in --methods {methods!r}; add it to --methods or drop it."
        )
    for meth in methods:
        for k in CurveConfig(d=d, m=m, methods=(meth,), budgets=budgets).budgets_for(meth):
            check_toy_budget(meth, d, m, k, instances=instances)


def _run(args: argparse.Namespace) -> int:
    from lowprob.errors import InputValueError
    from lowprob.propagation.curves import CURVE_PROBLEMS
    from lowprob.propagation.product_curves import PRODUCT_CURVE_PROBLEMS

    if args.problem in CURVE_PROBLEMS:
        return _run_halfspace(args)
    if args.problem in PRODUCT_CURVE_PROBLEMS:
        if args.instance_law not in (None, "stratified"):
            raise InputValueError(
                f"--instance-law {args.instance_law!r} is only available for --problem halfspace, got "
                f"--problem {args.problem!r}; drop --instance-law."
            )
        return _run_product(args)
    known = sorted(map(str, [*CURVE_PROBLEMS.keys(), *PRODUCT_CURVE_PROBLEMS.keys()]))
    raise InputValueError(f"unknown curve problem {args.problem!r}; known: {', '.join(map(repr, known))}.")


def _run_product(args: argparse.Namespace) -> int:
    from lowprob._validation import check_int
    from lowprob.propagation.product_curves import (
        PRODUCT_CURVE_PROBLEMS,
        ProductCurveConfig,
        parse_problem_budgets,
        run_product_curves,
        write_product_results,
    )

    PRODUCT_CURVE_PROBLEMS.get(args.problem)
    cfg = ProductCurveConfig(
        problem=args.problem,
        n=check_int("--n", args.n, minimum=3),
        k=None if args.k is None else check_int("--k", args.k, minimum=1),
        instances=check_int("--instances", args.instances, minimum=2),
        methods=tuple(args.methods or ()),
        budgets=parse_problem_budgets(args.budgets),
        seed=check_int("--seed", args.seed, minimum=0),
        bootstrap=check_int("--bootstrap", args.bootstrap, minimum=10),
    )
    result = run_product_curves(cfg)
    stem = args.stem if args.stem != "curves" else f"curves_{args.problem}"
    jp, pp = write_product_results(result, args.out, stem)
    print(f"trivial estimator nMSE = {result['trivial_nmse']:.3e}")
    for meth, rows in result["flop_comparison_by_method"].items():
        for row in rows:
            print(f"  {meth} K={row['budget']:>6d}: {row['flops']:.3e} FLOPs, nMSE {row['nmse']:.3e} vs sampling "
                  f"{row['sampling_nmse_at_equal_flops']:.3e} at equal FLOPs (ratio {row['ratio_over_sampling']:.2f})")
    print(f"wrote {jp} and {pp} in {result['seconds_total']:.0f} s", file=sys.stderr)
    return 0


def _run_halfspace(args: argparse.Namespace) -> int:
    from lowprob._io import check_writable
    from lowprob._validation import check_int, check_seed
    from lowprob.errors import InputValueError
    from lowprob.propagation.curves import (
        CurveConfig,
        check_problem_law,
        parse_budgets,
        run_curves,
        write_results,
    )

    if not args.stem or any(c in args.stem for c in "/\\") or args.stem in (".", ".."):
        raise InputValueError(f"--stem must be a plain file name without '/', got {args.stem!r}.")
    if args.grid:
        return _run_grid(args)

    cfg = CurveConfig(
        d=check_int("--d", args.d, minimum=2),
        m=check_int("--m", args.m, minimum=1),
        instances=check_int("--instances", args.instances, minimum=2),
        methods=tuple(args.methods or ("kernel", "hermite", "sampling")),
        budgets=parse_budgets(args.budgets),
        seed=check_seed("--seed", args.seed),
        bootstrap=check_int("--bootstrap", args.bootstrap, minimum=10),
        truth_samples=check_int("--truth-samples", args.truth_samples, minimum=1),
        problem=args.problem,
        **_law_args(args),
    )
    check_problem_law(cfg.problem, cfg.instance_law)
    if cfg.d * cfg.m * cfg.instances > 10**9:
        raise InputValueError(
            f"--d {cfg.d} x --m {cfg.m} x --instances {cfg.instances} weights is more than 10**9; use fewer instances."
        )
    _check_methods(list(cfg.methods), cfg.budgets, cfg.d, cfg.m, cfg.instances)
    check_writable(args.out, what="--out")  # before the computation, not after it
    result = run_curves(cfg, show_progress=not args.no_progress)
    jp, pp = write_results(result, args.out, args.stem)
    print(f"trivial estimator nMSE = {result['trivial_nmse']:.3e}; truth: {result['truth']}")
    for row in result["flop_comparison"]:
        print(
            f"  kernel K={row['budget']:>5d}: {row['flops']:.3e} FLOPs, nMSE {row['kernel_nmse']:.3e} "
            f"vs sampling {row['sampling_nmse_at_equal_flops']:.3e} at equal FLOPs "
            f"(ratio {row['ratio_kernel_over_sampling']:.2f})"
        )
    print(f"wrote {jp} and {pp} in {result['seconds_total']:.0f} s", file=sys.stderr)
    return 0


def _law_args(args: argparse.Namespace) -> dict[str, object]:
    """``instance_law`` / ``tail_share`` keyword arguments (validated; the config's default law
    when ``--instance-law`` is not given)."""
    from lowprob.propagation.curves import check_instance_law

    if args.instance_law is None:
        check_instance_law("stratified", args.tail_share)  # --tail-share is checked either way
        return {"tail_share": float(args.tail_share)}
    law, share = check_instance_law(args.instance_law, args.tail_share)
    return {"instance_law": law, "tail_share": share}


def _run_grid(args: argparse.Namespace) -> int:
    from lowprob._validation import check_int
    from lowprob.propagation.curves import parse_budgets
    from lowprob.propagation.winmap import GridConfig, parse_grid_ints, run_grid

    ns = parse_grid_ints("--grid-ns", args.grid_ns)
    user = parse_budgets(args.budgets)
    cfg = GridConfig(
        ns=ns,
        ratios=parse_grid_ints("--grid-ratios", args.grid_ratios),
        instances=check_int("--grid-instances", args.grid_instances, minimum=2),
        methods=tuple(args.methods),
        problem=args.problem,
        seed=check_int("--seed", args.seed, minimum=0),
        bootstrap=check_int("--bootstrap", args.bootstrap, minimum=10),
        truth_samples=check_int("--truth-samples", args.truth_samples, minimum=1),
        budgets={meth: {n: ks for n in ns} for meth, ks in user.items()},
        **_law_args(args),
    )
    rec = run_grid(cfg, args.out, show_progress=not args.no_progress)
    t = rec["targets"]
    print(f"competing at every budget (n >= 16) met in: {t['competing_met_in_cells'] or 'no cell'}")
    print(f"kernel 4x16 within 5x of sampling at >= 1e6 FLOPs: {t['kernel_4x16_within_5x']}")
    print(f"wrote {args.out}/winmap.json and {args.out}/winmap.png (complete: {rec['complete']})", file=sys.stderr)
    return 0
