"""``lowprob lm ...``: the LM-bridge command group.

Each subcommand lives in its own module defining ``register(lm_subparsers)``; modules not
present yet are skipped.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

_SUBCOMMAND_MODULES = (
    "lowprob.lm_bridge.cli_train",         # lowprob lm train
    "lowprob.lm_bridge.cli_ground_truth",  # lowprob lm ground-truth
    "lowprob.lm_bridge.cli_estimate",      # lowprob lm estimate
    "lowprob.lm_bridge.cli_bench",         # lowprob lm bench
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lm", help="low-probability estimation on transformer LMs")
    lm_sub = parser.add_subparsers(dest="lm_command", metavar="LM_COMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(lm_sub)
