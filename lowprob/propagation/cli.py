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
            "feasibility, exact oracle truth for d <= 4, Monte Carlo truth otherwise) and write "
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
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    runner = {"halfspace": _run_halfspace}.get(args.problem, _run_product)
    return runner(args)


def _run_product(args: argparse.Namespace) -> int:
    from lowprob._validation import check_int
    from lowprob.propagation.product_curves import (
        CURVE_PROBLEMS,
        ProductCurveConfig,
        parse_problem_budgets,
        run_product_curves,
        write_product_results,
    )

    CURVE_PROBLEMS.get(args.problem)
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
    from lowprob._validation import check_int
    from lowprob.propagation.curves import CurveConfig, parse_budgets, run_curves, write_results

    cfg = CurveConfig(
        d=check_int("--d", args.d, minimum=2),
        m=check_int("--m", args.m, minimum=1),
        instances=check_int("--instances", args.instances, minimum=2),
        methods=tuple(args.methods or ("kernel", "hermite", "sampling")),
        budgets=parse_budgets(args.budgets),
        seed=check_int("--seed", args.seed, minimum=0),
        bootstrap=check_int("--bootstrap", args.bootstrap, minimum=10),
        truth_samples=check_int("--truth-samples", args.truth_samples, minimum=1),
    )
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
