"""The ``lowprob`` command line.

Subcommands are contributed by subpackage modules: each module listed in
``_COMMAND_MODULES`` defines ``register(subparsers)`` which adds its parsers and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).

Start-up is kept short (``lowprob --help`` well under a second): only the module of the command
being run is imported; ``lowprob --help`` lists the commands from the one-line summaries below
without importing any of them, and each command module imports its heavy dependencies (torch,
SciPy, transformers) inside the command function.

Exit codes: 0 success; 2 bad input (one line ``lowprob: error: ...`` on stderr, from a
:class:`~lowprob.errors.LowprobError` or argparse); 130/143 interrupted by SIGINT/SIGTERM (after
saving any checkpoint). See ``docs/errors.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from lowprob.errors import LowprobError

__all__ = ["build_parser", "main"]

#: command -> (module defining ``register``, one-line summary shown by ``lowprob --help``)
_COMMANDS: dict[str, tuple[str, str]] = {
    "toy": ("lowprob.toy_models.cli", "the halfspace toy: exact oracle, estimators, statistics"),
    "sketch": ("lowprob.sketching.cli", "claim-kernel spectra and exact sketch errors"),
    "curves": ("lowprob.propagation.cli",
               "MSE/E[p(1-p)] vs budget, FLOPs and seconds for kernel/hermite/sampling on random halfspace toys"),
    "lm": ("lowprob.lm_bridge.cli", "low-probability estimation on transformer LMs"),
    "mlp": ("lowprob.toy_models.cli_mlp", "random MLPs: Monte Carlo activation-mean truth (torchrun-shardable)"),
    "whestbench": ("lowprob.integrations.cli", "WhestBench: export a self-contained submission of our estimator"),
}


# Kept for compatibility with code that lists the command modules.
_COMMAND_MODULES = tuple(dict.fromkeys(m for m, _ in _COMMANDS.values()))


class _Parser(argparse.ArgumentParser):
    """``argparse`` with usage errors as one line ``lowprob: error: ...`` (exit 2), like ours."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"lowprob: error: {self.prog}: {' '.join(message.split()).rstrip('.')} (see '{self.prog} --help').\n")


def _register(sub: argparse._SubParsersAction, module_name: str) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # that subpackage has no CLI (yet)
            return False
        raise
    module.register(sub)
    return True


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` only that command's module is imported (others are stubs)."""
    parser = _Parser(
        prog="lowprob",
        description="Estimate the probability of rare model outputs from the model's internals.",
        epilog="Errors: exit code 2 with one line 'lowprob: error: ...'. JSON outputs are strict "
               "(non-finite numbers as \"inf\", \"-inf\", \"nan\"). See docs/errors.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered: set[str] = set()
    if command is None:
        for module_name in _COMMAND_MODULES:
            if _register(sub, module_name):
                registered.update(c for c, (m, _) in _COMMANDS.items() if m == module_name)
    elif command in _COMMANDS:
        if _register(sub, _COMMANDS[command][0]):
            registered.update(c for c, (m, _) in _COMMANDS.items() if m == _COMMANDS[command][0])
    for name, (_, summary) in _COMMANDS.items():
        if name not in registered and name not in sub.choices:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` if it is a known one (the top level has only ``-h``)."""
    return argv[0] if argv and argv[0] in _COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    # `lowprob`, `lowprob --help`: the listing needs no command module; `lowprob CMD ...`: import CMD only.
    parser = build_parser(command if command is not None else "")
    args = parser.parse_args(argv)  # argparse exits 0 for --help, 2 (one usage line + error) otherwise
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except LowprobError as exc:
        print(f"lowprob: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: no traceback; checkpoints were saved
        msg = str(exc)
        print(f"lowprob: interrupted{': ' + msg if msg else ''}", file=sys.stderr)
        return 128 + int(getattr(exc, "signum", 2))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings as one line ``lowprob: warning: Category: message`` on stderr (no source echo)."""
    print(f"lowprob: warning: {category.__name__}: {_one_line(message)}", file=file or sys.stderr)


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
