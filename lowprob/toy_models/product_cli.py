"""``lowprob toy exact --problem sat|permanent``: exact truth for the random products.

* ``--problem sat --clauses FILE.json``: ``{"n": N, "clauses": [[i, j, k], ...]}`` with signed
  1-based literals; prints ``{"probability": count / 2^n, "count": count, ...}``
  (exhaustive bit-parallel enumeration, ``n <= 30``).
* ``--problem permanent --matrix FILE.npy``: a square {0,1} matrix; prints
  ``{"probability": perm / n!, "permanent": perm, ...}`` with ``perm`` an exact integer
  (Ryser's formula in exact arithmetic, ``n <= 22``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction

from lowprob._io import dumps_strict
from lowprob.errors import InputValueError
from lowprob.estimate import stopwatch
from lowprob.registry import Registry

__all__ = ["EXACT_COMMANDS"]

EXACT_COMMANDS: Registry[Callable[[argparse.Namespace], int]] = Registry("exact problem")


def _log(frac: Fraction) -> float:
    if frac <= 0:
        return -math.inf
    return math.log(frac.numerator) - math.log(frac.denominator)


def _print(args: argparse.Namespace, record: dict, rows: list[tuple[str, object]]) -> None:
    if args.json:
        print(dumps_strict(record))
    else:
        w = max(len(k) for k, _ in rows)
        print("\n".join(f"{k:<{w}}  {v}" for k, v in rows))


@EXACT_COMMANDS.register("sat")
def _exact_sat(args: argparse.Namespace) -> int:
    from lowprob.toy_models.sat import SAT_EXACT_LIMIT, count_satisfying, load_sat_json

    if args.clauses is None:
        raise InputValueError('--problem sat needs --clauses FILE.json ({"n": N, "clauses": [[1, -2, 3], ...]}).')
    prob = load_sat_json(args.clauses)
    with stopwatch() as t:
        count = count_satisfying(prob)
    frac = Fraction(count, 2**prob.n)
    record = {"problem": "sat", "n": prob.n, "k": prob.k, "clauses_file": args.clauses,
              "probability": float(frac), "log_probability": _log(frac), "count": count,
              "method": f"exhaustive bit-parallel enumeration of 2^n assignments (n <= {SAT_EXACT_LIMIT})",
              "seconds": t[0]}
    _print(args, record, [("instance", f"n={prob.n} k={prob.k} ({args.clauses})"), ("count", count),
                          ("p", f"{float(frac):.6g}"), ("time", f"{t[0] * 1e3:.1f} ms")])
    return 0


@EXACT_COMMANDS.register("permanent")
def _exact_permanent(args: argparse.Namespace) -> int:
    from lowprob.toy_models.permanent import PERMANENT_EXACT_LIMIT, load_matrix_npy, ryser_permanent

    if args.matrix is None:
        raise InputValueError("--problem permanent needs --matrix FILE.npy (a square {0,1} matrix saved with numpy.save).")
    prob = load_matrix_npy(args.matrix)
    with stopwatch() as t:
        perm = ryser_permanent(prob.matrix)
    frac = Fraction(perm, math.factorial(prob.n))
    record = {"problem": "permanent", "n": prob.n, "matrix_file": args.matrix,
              "probability": float(frac), "log_probability": _log(frac), "permanent": perm,
              "method": f"Ryser's formula in exact integer arithmetic (n <= {PERMANENT_EXACT_LIMIT})",
              "seconds": t[0]}
    _print(args, record, [("instance", f"n={prob.n} ({args.matrix})"), ("permanent", perm),
                          ("p = perm/n!", f"{float(frac):.6g}"), ("time", f"{t[0] * 1e3:.1f} ms")])
    return 0
