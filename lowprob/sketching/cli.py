"""``lowprob sketch ...``: claim-kernel spectra and sketch errors from the command line.

* ``lowprob sketch eigenvalues --m 15 [--n 4 --L 30] [--json]``: Funk–Hecke eigenvalues of the
  halfspace-product kernel ``((pi - arccos t)/(2 pi))^m`` on ``S^{n-1}`` with multiplicities.
* ``lowprob sketch error --m 2 --K 30 [--kind kernel|sample|quadrature|gaussian] [--seed 0]
  [--cone-seed 0] [--degree 32] [--json]``: exact sketch error on a random 4-face cone.
"""

from __future__ import annotations

import argparse
from typing import Any

from lowprob._io import dumps_strict

__all__ = ["register"]


def _n_harmonics(n: int, L: int) -> int:
    """``sum_{l <= L} dim H_l(S^{n-1})`` = ``C(L + n - 1, n - 1) + C(L + n - 2, n - 1)``."""
    from math import comb

    return comb(L + n - 1, n - 1) + (comb(L + n - 2, n - 1) if L >= 1 else 0)


def _check_eigenvalue_args(args: argparse.Namespace) -> None:
    from lowprob._resources import check_memory
    from lowprob._validation import check_int

    check_int("--m", args.m, minimum=1)
    check_int("--n", args.n, minimum=2)
    check_int("--L", args.L, minimum=0)
    # funk_hecke_eigenvalues tabulates (L + 1) Gegenbauer polynomials on 2L + 2n + 200 nodes
    nodes = 2 * args.L + 2 * args.n + 200
    check_memory(f"--L {args.L}", 3 * 8.0 * (args.L + 1) * nodes, fix="Pass a smaller --L.")


def _check_error_args(args: argparse.Namespace) -> None:
    from lowprob._resources import check_memory
    from lowprob._validation import check_int, check_seed

    check_int("--m", args.m, minimum=1)
    check_int("--K", args.K, minimum=1)
    check_int("--degree", args.degree, minimum=0)
    check_int("--order", args.order, minimum=1)
    check_seed("--seed", args.seed)
    check_seed("--cone-seed", args.cone_seed)
    if args.kind == "gaussian":
        return
    # the exact error evaluates the sketch's K points (kernel: the harmonics up to the degree
    # L_K holding K functions) against the harmonics up to --degree: a K x H matrix, twice
    L_K = 0
    while _n_harmonics(4, L_K) < args.K and L_K < 10**6:
        L_K += 1
    H = _n_harmonics(4, max(args.degree, L_K))
    nbytes = 2 * 8.0 * args.K * H + 8.0 * 4 * args.order**3
    check_memory(f"--kind {args.kind} --K {args.K} --degree {args.degree} --order {args.order}", nbytes,
                 fix="Pass a smaller --K (or --degree/--order).")


def _eigenvalues(args: argparse.Namespace) -> int:
    from lowprob.sketching.claims import RandomHalfspaceProduct
    from lowprob.sketching.funk_hecke import harmonic_dimension

    _check_eigenvalue_args(args)
    C = RandomHalfspaceProduct(args.m, args.n)
    lam = C.zonal.eigenvalues(args.L)
    dims = [harmonic_dimension(l, args.n) for l in range(args.L + 1)]
    if args.json:
        print(dumps_strict({"m": args.m, "n": args.n, "eigenvalues": lam.tolist(), "multiplicities": dims}))
    else:
        print(f"# Funk-Hecke eigenvalues, kappa_{args.m} on S^{args.n - 1}; trace kappa(1) = {C.zonal.trace():.6g}")
        print("degree  multiplicity  lambda_l")
        for l in range(args.L + 1):
            print(f"{l:6d}  {dims[l]:12d}  {lam[l]:.6e}")
    return 0


def _error(args: argparse.Namespace) -> int:
    import numpy as np

    from lowprob.sketching.claims import RandomHalfspaceProduct
    from lowprob.sketching.measures import SphericalCone
    from lowprob.sketching.sketches import (
        GaussianMomentSketch,
        KernelSketch,
        QuadratureSketch,
        SampleSketch,
    )

    _check_error_args(args)
    D = SphericalCone.random(4, seed=args.cone_seed, order=args.order)
    C = RandomHalfspaceProduct(args.m, 4)
    sk: Any
    if args.kind == "sample":
        sk = SampleSketch(D, args.K, seed=args.seed)
    elif args.kind == "kernel":
        sk = KernelSketch(D, C, args.K)
    elif args.kind == "quadrature":
        sk = QuadratureSketch(D, C, args.K, seed=args.seed, degree=args.degree)
    else:
        sk = GaussianMomentSketch(D)
    rep = sk.error_report(C, degree=args.degree)
    out = {
        "kind": args.kind,
        "K": sk.K,
        "error": rep.value,
        "lower": rep.lower,
        "upper": rep.upper,
        "method": rep.method,
        "cone_mass": D.mass,
        "cost": sk.cost.to_dict(),
    }
    if args.kind == "sample":
        out["expected_error"] = sk.expected_error(C, degree=args.degree)
    if args.json:
        print(dumps_strict(out))
    else:
        for k, v in out.items():
            print(f"{k:15s} {v:.6g}" if isinstance(v, (float, np.floating)) else f"{k:15s} {v}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sketch", help="claim-kernel spectra and exact sketch errors")
    sub = p.add_subparsers(dest="sketch_command", metavar="SUBCOMMAND")
    e = sub.add_parser("eigenvalues", help="Funk-Hecke eigenvalues of the halfspace-product kernel")
    e.add_argument("--m", type=int, required=True)
    e.add_argument("--n", type=int, default=4)
    e.add_argument("--L", type=int, default=30)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_eigenvalues)
    r = sub.add_parser("error", help="exact sketch error on a random 4-face cone")
    r.add_argument("--m", type=int, default=2)
    r.add_argument("--K", type=int, default=30)
    r.add_argument("--kind", choices=["sample", "kernel", "quadrature", "gaussian"], default="kernel")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--cone-seed", type=int, default=0)
    r.add_argument("--degree", type=int, default=32)
    r.add_argument("--order", type=int, default=32)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_error)
