"""``lowprob whestbench export --out DIR``: write a self-contained WhestBench submission."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "whestbench",
        help="WhestBench tools: export a submission generated from lowprob's own code",
        description="WhestBench (ARC's Whitebox Estimation Challenge) tools.",
    )
    sub = p.add_subparsers(dest="whestbench_command", metavar="SUBCOMMAND")
    e = sub.add_parser(
        "export",
        help="write DIR/estimator.py importing only flopscope, whestbench and the stdlib",
        description=(
            "Bundle lowprob's loop, array kernels and WhestBench estimators into "
            "DIR/estimator.py (checked by parsing: only flopscope, whestbench and the "
            "standard library are imported). Then: whest validate --estimator DIR/estimator.py"
        ),
    )
    e.add_argument("--out", required=True, help="output directory (created if missing)")
    e.add_argument("--class", dest="class_name", default="AutoEstimator",
                   choices=["AutoEstimator", "DesignEstimator", "KpropEstimator"],
                   help="the one estimator class in the file (default AutoEstimator, best under "
                        "the current gated rules; DesignEstimator for the priced v1 rounds)")
    e.add_argument("--force", action="store_true", help="overwrite an existing estimator.py")
    e.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _export(args: argparse.Namespace) -> int:
    from lowprob.integrations.whestbench_export import export_estimator

    path = export_estimator(args.out, class_name=args.class_name, overwrite=args.force)
    print(f"wrote {path}")
    return 0
