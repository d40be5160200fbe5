"""The ``lowprob`` command line.

Subcommands are contributed by subpackage modules: each module listed in
``_COMMAND_MODULES`` defines ``register(subparsers)`` which adds its parsers and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lowprob.errors import LowprobError

__all__ = ["build_parser", "main"]

_COMMAND_MODULES = (
    "lowprob.toy_models.cli",
    "lowprob.sketching.cli",
    "lowprob.propagation.cli",
    "lowprob.lm_bridge.cli",
    "lowprob.integrations.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowprob",
        description="Estimate the probability of rare model outputs from the model's internals.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that subpackage has no CLI (yet)
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LowprobError as exc:
        print(f"lowprob: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
