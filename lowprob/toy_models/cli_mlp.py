"""``lowprob mlp truth``: Monte Carlo activation-mean truth of a random MLP (``torchrun``-shardable).

    lowprob mlp truth --width 256 --depth 8 --mlp-seed 0 --samples 2**21 --out truth.json
    torchrun --nproc-per-node N -m lowprob mlp truth ...   # same file, bit-identical means
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    mlp = subparsers.add_parser("mlp", help="random-MLP utilities")
    sub = mlp.add_subparsers(dest="mlp_command", metavar="MLP_COMMAND")
    p = sub.add_parser("truth", help="Monte Carlo per-layer activation means (resumable, torchrun-shardable)")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--mlp-seed", type=int, default=0, help="seed of the MLP's weights")
    p.add_argument("--law", choices=["whestbench", "he", "critical"], default="whestbench",
                   help="weight law: WhestBench's generator (ReLU, float32; default), or RandomMLP.sample's init")
    p.add_argument("--activation", default="relu", help="for --law he|critical")
    p.add_argument("--samples", required=True, help="number of input samples N (e.g. 2**21)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input samples")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--checkpoint-seconds", type=float, default=60.0)
    p.add_argument("--out", required=True, help="result JSON (per-rank checkpoints in OUT.shards/)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=_run_truth)


def _run_truth(args: argparse.Namespace) -> int:
    from lowprob._io import check_writable
    from lowprob._validation import parse_int_expr
    from lowprob.sharding import close_ranks, init_ranks, output_lock
    from lowprob.toy_models.mlp_truth import mlp_mean_truth
    from lowprob.toy_models.random_mlp import RandomMLP

    n = parse_int_expr(args.samples)
    if args.law == "whestbench":
        mlp = RandomMLP.whestbench(args.width, args.depth, seed=args.mlp_seed)
    else:
        mlp = RandomMLP.sample(args.width, args.depth, args.activation, init=args.law, seed=args.mlp_seed)
    ranks = init_ranks("cpu")
    try:
        if ranks.is_main:
            check_writable(args.out)
        lock = output_lock(args.out) if ranks.is_main else _null()
        with lock:
            truth = mlp_mean_truth(mlp, n, seed=args.seed, batch_size=args.batch_size, out=args.out, ranks=ranks,
                                   checkpoint_seconds=args.checkpoint_seconds, show_progress=args.progress)
    finally:
        close_ranks(ranks)
    if ranks.is_main:
        print(json.dumps({"out": args.out, "n_samples": truth.n_samples, "avg_variance": truth.avg_variance,
                          "truth_mse": truth.avg_variance / truth.n_samples, "world_size": ranks.world_size,
                          "seconds": truth.metadata["this_run"]["seconds"]}), file=sys.stdout)
    return 0


def _null():  # noqa: ANN202
    import contextlib

    return contextlib.nullcontext()
