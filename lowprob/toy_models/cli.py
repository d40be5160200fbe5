"""``lowprob toy ...``: the halfspace toy from the command line.

* ``lowprob toy exact [--d 4 --m 16 --seed 0 | --weights W.npy] [--instances K] [--json]``
* ``lowprob toy estimate --method NAME --budget N --seed S [--instance-seed I] [--repeats R] [--json]``
* ``lowprob toy stats [--d 4 --m 16] [--json]``

``--method`` is looked up in :data:`~lowprob.toy_models.registry.TOY_ESTIMATORS`, so estimators
registered by other packages (``kernel``, ``hermite``, ``sampling``) appear automatically.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import dumps_strict
from lowprob._progress import progress
from lowprob._validation import MAX_SEED
from lowprob.errors import InputValueError, NumericalWarning, UnavailableError
from lowprob.estimate import stopwatch
from lowprob.toy_models.halfspace import HalfspaceToy

__all__ = ["load_weights", "register"]


def _nonneg_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a non-negative integer, got {text!r}."
            ) from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be >= 0, got {text!r}.")
        if value > MAX_SEED:
            raise argparse.ArgumentTypeError(f"{name} must be <= 2**63 - 1, got {text!r}.")
        return value

    return parse


def _int(name: str):
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}.") from None

    return parse


def load_weights(path: str | Path) -> HalfspaceToy:
    """Load an ``(m, d)`` float array saved with ``numpy.save`` (never unpickles)."""
    from lowprob._io import load_npy

    return HalfspaceToy(load_npy(path, what="--weights", expect="the weights as a float array of shape (m, d)"))


#: Largest random instance the CLI builds (d * m entries); larger ones come from --weights.
_MAX_ENTRIES = 10**7


def _resolve_instance_args(args: argparse.Namespace) -> None:
    """``--weights`` and ``--d/--m`` are exclusive; fill the defaults (4, 16) otherwise."""
    if args.weights is not None:
        given = [f"--{k} {getattr(args, k)}" for k in ("d", "m") if getattr(args, k) is not None]
        if given:
            raise InputValueError(
                f"--weights {args.weights!r} fixes the instance's shape; drop {' and '.join(given)} "
                "(they would be ignored)."
            )
        return
    args.d = 4 if args.d is None else args.d
    args.m = 16 if args.m is None else args.m
    if args.d < 1 or args.m < 1:
        raise InputValueError(f"--d and --m must be >= 1, got --d {args.d!r} --m {args.m!r}.")
    if args.d * args.m > _MAX_ENTRIES:
        raise InputValueError(
            f"--d {args.d} x --m {args.m} = {args.d * args.m} weights is more than the CLI's {_MAX_ENTRIES}; "
            "use smaller sizes or pass --weights."
        )


def _instance(args: argparse.Namespace, seed: int) -> HalfspaceToy:
    if args.weights is not None:
        return load_weights(args.weights)
    return HalfspaceToy.random(args.d, args.m, seed=seed)


def _add_instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--d", type=_int("--d"), default=None, help="input dimension (default 4; not with --weights)")
    p.add_argument("--m", type=_int("--m"), default=None,
                   help="number of half-spaces (default 16; not with --weights)")
    p.add_argument("--weights", metavar="FILE.npy", default=None,
                   help="use this (m, d) weight matrix instead of a random instance")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(subparsers: argparse._SubParsersAction) -> None:
    toy = subparsers.add_parser("toy", help="the halfspace toy: exact oracle, estimators, statistics")
    sub = toy.add_subparsers(dest="toy_command", metavar="TOY_COMMAND")
    toy.set_defaults(func=lambda a: (toy.print_help(), 2)[1])

    ex = sub.add_parser("exact", help="exact p = P[W x > 0] with its error bound (d <= 4)")
    _add_instance_args(ex)
    ex.add_argument("--seed", type=_nonneg_int("--seed"), default=0, help="instance seed (default 0)")
    ex.add_argument("--instances", type=_int("--instances"), default=1,
                    help="K > 1: the K instances with seeds seed..seed+K-1, with a summary")
    ex.add_argument("--problem", default="halfspace",
                    help="halfspace (default), sat (with --clauses FILE.json) or permanent (with --matrix FILE.npy)")
    ex.add_argument("--clauses", metavar="FILE.json", default=None,
                    help='sat: {"n": N, "clauses": [[1, -2, 3], ...]} (signed 1-based literals, DIMACS)')
    ex.add_argument("--matrix", metavar="FILE.npy", default=None, help="permanent: a square {0,1} matrix")
    ex.set_defaults(func=_cmd_exact)

    es = sub.add_parser("estimate", help="estimate p with a registered toy estimator")
    _add_instance_args(es)
    es.add_argument("--method", required=True, metavar="NAME",
                    help="registered estimator, e.g. naive, smc, kernel, hermite, sampling "
                         "(an unknown name lists them all)")
    es.add_argument("--budget", type=_int("--budget"), required=True,
                    help="budget in the estimator's unit (samples / terms / model calls)")
    es.add_argument("--seed", type=_nonneg_int("--seed"), default=0, help="estimator seed (default 0)")
    es.add_argument("--instance-seed", type=_nonneg_int("--instance-seed"), default=None,
                    help="seed of the random instance (default: --seed)")
    es.add_argument("--repeats", type=_int("--repeats"), default=1,
                    help="R > 1: repeat with estimator seeds seed..seed+R-1 and summarise")
    es.add_argument("--no-exact", action="store_true", help="skip the exact comparison")
    es.set_defaults(func=_cmd_estimate)

    st = sub.add_parser("stats", help="exact moments of p over random instances (E p, E p^2, ...)")
    st.add_argument("--d", type=_int("--d"), default=4)
    st.add_argument("--m", type=_int("--m"), default=16)
    st.set_defaults(weights=None)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_cmd_stats)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def _table(rows: list[tuple[str, Any]]) -> str:
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def _emit(args: argparse.Namespace, record: dict[str, Any], rows: list[tuple[str, Any]]) -> None:
    if args.json:
        print(dumps_strict(record))
    else:
        print(_table(rows))


def _cmd_exact(args: argparse.Namespace) -> int:
    from lowprob.toy_models.product_cli import EXACT_COMMANDS

    if args.problem != "halfspace" or args.clauses is not None or args.matrix is not None:
        return EXACT_COMMANDS.get(args.problem)(args)
    return _cmd_exact_halfspace(args)


def _cmd_exact_halfspace(args: argparse.Namespace) -> int:
    from lowprob.toy_models.oracle import exact_probability

    _resolve_instance_args(args)
    if args.instances < 1:
        raise InputValueError(f"--instances must be >= 1, got {args.instances!r}.")
    if args.weights is not None and args.instances != 1:
        raise InputValueError("--instances needs random instances; drop it when using --weights.")
    if args.instances > 10**7 or args.seed + args.instances - 1 > MAX_SEED:
        raise InputValueError(
            f"--instances must be <= 10**7 with seeds up to 2**63 - 1, got {args.instances!r} from seed {args.seed!r}."
        )
    results = []
    seeds = range(args.seed, args.seed + args.instances)
    for s in progress(seeds, total=args.instances, desc="exact", enabled=None if args.instances > 1 else False):
        toy = _instance(args, s)
        with stopwatch() as t:
            r = exact_probability(toy)
        results.append((s, toy, r, t[0]))
    if args.instances == 1:
        s, toy, r, dt = results[0]
        record = {"d": toy.d, "m": toy.m, "seed": None if args.weights else s,
                  "weights": args.weights, **r.to_dict(), "seconds": dt}
        rows = [("instance", f"d={toy.d} m={toy.m} " + (f"weights={args.weights}" if args.weights else f"seed={s}")),
                ("p", _fmt(r.probability)), ("log p", _fmt(r.log_probability)),
                ("error bound", _fmt(r.error_bound)), ("feasible", r.feasible),
                ("cones / rays", f"{r.n_cones} / {r.n_rays}"), ("method", r.method),
                ("time", f"{dt * 1e3:.2f} ms")]
        _emit(args, record, rows)
        return 0
    ps = np.array([r.probability for _, _, r, _ in results])
    times = np.array([dt for *_, dt in results])
    record = {
        "d": args.d, "m": args.m, "seeds": [args.seed, args.seed + args.instances - 1],
        "probabilities": ps.tolist(), "error_bounds": [r.error_bound for _, _, r, _ in results],
        "feasible_fraction": float(np.mean(ps > 0)), "mean_p": float(ps.mean()),
        "mean_seconds": float(times.mean()),
    }
    rows = [("instances", f"{args.instances} (d={args.d}, m={args.m}, seeds {args.seed}..)"),
            ("feasible", f"{np.mean(ps > 0):.4f}"), ("mean p", _fmt(float(ps.mean()))),
            ("max error bound", _fmt(max(r.error_bound for _, _, r, _ in results))),
            ("mean time", f"{times.mean() * 1e3:.2f} ms")]
    _emit(args, record, rows)
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from lowprob.toy_models.registry import get_toy_estimator

    _resolve_instance_args(args)
    if args.repeats < 1:
        raise InputValueError(f"--repeats must be >= 1, got {args.repeats!r}.")
    if args.repeats > 10**6 or args.seed + args.repeats - 1 > MAX_SEED:
        raise InputValueError(
            f"--repeats must be <= 10**6 with seeds up to 2**63 - 1, got {args.repeats!r} from seed {args.seed!r}."
        )
    iseed = args.seed if args.instance_seed is None else args.instance_seed
    toy = _instance(args, iseed)
    estimator = get_toy_estimator(args.method)
    if args.budget >= 1:  # smaller budgets get the estimator's own message
        from lowprob.toy_models.cost_models import check_toy_budget

        check_toy_budget(args.method, toy.d, toy.m, args.budget, instances=args.repeats)
    exact = None
    if not args.no_exact:
        from lowprob.toy_models.oracle import exact_probability

        try:
            exact = exact_probability(toy)
        except UnavailableError:
            exact = None
    ests = []
    for s in progress(range(args.seed, args.seed + args.repeats), total=args.repeats,
                      desc=args.method, enabled=None if args.repeats > 1 else False):
        ests.append(estimator.estimate(toy, args.budget, seed=s))
    inst = {"d": toy.d, "m": toy.m, "instance_seed": None if args.weights else iseed,
            "weights": args.weights}
    truth = exact.probability if exact is not None else None
    if args.repeats == 1:
        e = ests[0]
        record = {**inst, **e.to_dict(), "exact": exact.to_dict() if exact else None}
        note = _negative_note([e])
        if note:
            record["note"] = note
        rows = [("instance", f"d={toy.d} m={toy.m} " + (f"weights={args.weights}" if args.weights else f"seed={iseed}")),
                ("method", f"{e.method} (budget {e.budget} {e.budget_unit}, seed {args.seed})"),
                ("estimate", _fmt(e.value)), ("std error", _fmt(e.std_error)),
                ("exact p", _fmt(truth)),
                ("error / se", _fmt((e.value - truth) / e.std_error) if truth is not None and e.std_error else "n/a"),
                ("cost", f"samples={e.cost.samples} model_calls={e.cost.model_calls} "
                         f"flops={e.cost.flops:.3g} seconds={e.cost.seconds:.3g}")]
        if note:
            rows.append(("note", note))
        _emit(args, record, rows)
        return 0
    vals = np.array([e.value for e in ests])
    record = {**inst, "method": args.method, "budget": args.budget, "repeats": args.repeats,
              "estimates": vals.tolist(), "std_errors": [e.std_error for e in ests],
              "exact": truth, "mean": float(vals.mean()),
              "mse": float(np.mean((vals - truth) ** 2)) if truth is not None else None,
              "seconds": [e.cost.seconds for e in ests]}
    note = _negative_note(ests)
    if note:
        record["note"] = note
    rows = [("method", f"{args.method} x {args.repeats} (budget {args.budget})"),
            ("mean estimate", _fmt(float(vals.mean()))), ("exact p", _fmt(truth)),
            ("rmse / p", _fmt(math.sqrt(record["mse"]) / truth) if truth else "n/a")]
    _emit(args, record, rows)
    return 0


def _negative_note(ests: list[Any]) -> str | None:
    """A signed pseudo-distribution (``kernel``, ``hermite``) can return ``p_hat < 0``; its log is
    undefined. Say so (NumericalWarning + a ``note`` in the record) instead of a silent NaN log."""
    neg = [e.value for e in ests if e.value < 0]
    if not neg:
        return None
    note = (
        f"{len(neg)} of {len(ests)} estimate(s) are negative (min {min(neg):.3g}): {ests[0].method!r} "
        "propagates a signed pseudo-distribution, so a probability below its truncation error can come "
        "out negative and log_estimate is nan. Read it as p ~ 0 at this budget (clip at 0) or raise --budget."
    )
    warnings.warn(note, NumericalWarning, stacklevel=2)
    return note


def _cmd_stats(args: argparse.Namespace) -> int:
    from lowprob.toy_models.instance_stats import instance_statistics

    s = instance_statistics(args.d, args.m)
    rows = [("d, m", f"{s.d}, {s.m}"), ("E p", _fmt(s.mean_p)), ("E p^2", _fmt(s.mean_p2)),
            ("E p(1-p)", _fmt(s.mean_p_one_minus_p)), ("Var p (trivial MSE)", _fmt(s.var_p)),
            ("trivial MSE / E p(1-p)", _fmt(s.trivial_mse_ratio)),
            ("trivial worth (samples)", _fmt(s.trivial_equivalent_samples)),
            ("P[feasible] (Wendel)", _fmt(s.feasible_probability)),
            ("E[p | feasible]", _fmt(s.mean_p_given_feasible))]
    _emit(args, s.to_dict(), rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from lowprob.cli import main

    sys.exit(main(["toy", *sys.argv[1:]]))
