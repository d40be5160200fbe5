"""``lowprob sketch ...``: claim-kernel spectra and sketch errors from the command line.

* ``lowprob sketch eigenvalues --m 15 [--n 4 --L 30] [--json]``: Funk–Hecke eigenvalues of the
  halfspace-product kernel ``((pi - arccos t)/(2 pi))^m`` on ``S^{n-1}`` with multiplicities.
* ``lowprob sketch error --m 2 --K 30 [--kind kernel|sample|quadrature|gaussian] [--seed 0]
  [--cone-seed 0] [--degree 32] [--json]``: exact sketch error on a random 4-face cone.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from lowprob._io import dumps_strict
from lowprob.sketching.claims import RandomHalfspaceProduct
from lowprob.sketching.funk_hecke import harmonic_dimension
from lowprob.sketching.measures import SphericalCone
from lowprob.sketching.sketches import (
    GaussianMomentSketch,
    KernelSketch,
    QuadratureSketch,
    SampleSketch,
)

__all__ = ["register"]


def _eigenvalues(args: argparse.Namespace) -> int:
    C = RandomHalfspaceProduct(args.m, args.n)
    lam = C.zonal.eigenvalues(args.L)
    dims = [harmonic_dimension(l, args.n) for l in range(args.L + 1)]
    if args.json:
        print(dumps_strict({"m": args.m, "n": args.n, "eigenvalues": lam, "multiplicities": dims}))
    else:
        print(f"# Funk-Hecke eigenvalues, kappa_{args.m} on S^{args.n - 1}; trace kappa(1) = {C.zonal.trace():.6g}")
        print("degree  multiplicity  lambda_l")
        for l in range(args.L + 1):
            print(f"{l:6d}  {dims[l]:12d}  {lam[l]:.6e}")
    return 0


def _error(args: argparse.Namespace) -> int:
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
