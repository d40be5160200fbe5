"""``lowprob lm ground-truth``: count argmax tokens of a local model under a token spec.

    lowprob lm ground-truth --model DIR --dist SPEC.json --samples N --device auto --seed S --out FILE

``FILE`` (JSON) holds the counts (sparse ``{token: count}``) and metadata (model hash, spec hash,
N, seed, batch size, dtype, seconds). An existing ``FILE`` with the same model, spec, seed and
batch size is resumed; a larger ``--samples`` extends it. ``--targets FILE2`` also writes a
seeded target list (tokens with ``p`` in ``[--p-min, --p-max]`` and at least ``--min-count`` counts).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

__all__ = ["register", "run_ground_truth"]


def _int(s: str) -> int:
    """Accept ``1048576``, ``2**20`` or ``1e6``."""
    s = s.strip()
    if "**" in s:
        a, b = s.split("**", 1)
        base, exp = int(a), int(b)
        if not (0 <= exp <= 64 and abs(base) <= 2**20):
            raise argparse.ArgumentTypeError(f"{s!r}: use a power A**B with B <= 64 (e.g. 2**24)")
        return base**exp
    if "e" in s.lower():
        v = float(s)
        if not v.is_integer():
            raise argparse.ArgumentTypeError(f"{s!r} is not an integer")
        return int(v)
    return int(s)


def register(lm_subparsers: argparse._SubParsersAction) -> None:
    p = lm_subparsers.add_parser("ground-truth", help="count argmax tokens of a model under a token spec")
    p.add_argument("--model", required=True, help="local HF causal-LM directory, or a shipped name (gelu-1l, gelu-2l)")
    p.add_argument("--dist", required=True, help="spec JSON ({'positions': [...]}), a shipped family name, or 'all' (every shipped family)")
    p.add_argument("--samples", required=True, type=_int, help="number of samples N (e.g. 2**24)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="default 256 on CPU, 32768 on CUDA")
    p.add_argument("--out", required=True, help="counts JSON (resumed if it exists); a directory with --dist all")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0,
                   help="seconds between checkpoints (finite, >= 0; also saved after the first chunk and on Ctrl-C/SIGTERM)")
    p.add_argument("--no-fast", action="store_true", help="use the plain adapter forward instead of the tabulated kernel")
    p.add_argument("--targets", default=None, help="also write a target list here")
    p.add_argument("--n-targets", type=int, default=64)
    p.add_argument("--p-min", type=float, default=1e-9)
    p.add_argument("--p-max", type=float, default=1e-5)
    p.add_argument("--min-count", type=int, default=10)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=run_ground_truth)


def run_ground_truth(args: argparse.Namespace) -> int:
    from lowprob._io import check_writable, dumps_strict
    from lowprob._validation import check_int, check_seed
    from lowprob.errors import InputValueError
    from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device
    from lowprob.lm_bridge.distributions import TokenSpec
    from lowprob.lm_bridge.families import FAMILIES
    from lowprob.lm_bridge.ground_truth import count_argmax, save_targets, select_targets
    from lowprob.lm_bridge.zoo import (
        SHIPPED_MODELS,
        load_shipped,
        shipped_model_dir,
        shipped_specs_dir,
    )

    # validate everything cheap before loading the model or counting
    if args.dist != "all" and Path(args.out).is_dir():
        raise InputValueError(f"--out {args.out!r} is a directory; pass a file such as {args.out}/counts.json "
                              "(a directory is for --dist all).")
    check_writable(args.out, what="--out")
    check_seed("--seed", args.seed)
    check_int("--samples", args.samples, minimum=1)
    if not (math.isfinite(args.checkpoint_seconds) and args.checkpoint_seconds >= 0):
        raise InputValueError(
            f"--checkpoint-seconds must be a finite number >= 0, got {args.checkpoint_seconds!r} "
            "(nan or inf would silently disable checkpointing)."
        )
    if args.targets:
        check_writable(args.targets, what="--targets")
    device = resolve_device(args.device)
    shipped = args.model in SHIPPED_MODELS and not Path(args.model).exists()
    model_dir = shipped_model_dir(args.model) if shipped else args.model
    adapter = load_shipped(args.model, device=device) if shipped else load_hf(model_dir, device=device)
    if args.dist == "all":
        return _run_all(args, adapter, model_dir)
    dist = args.dist
    if not Path(dist).exists() and dist in FAMILIES:
        dist = shipped_specs_dir() / f"{dist}.json"
    spec = TokenSpec.load(dist, vocab_size=adapter.vocab_size)
    gt = count_argmax(
        adapter, spec, args.samples, seed=args.seed, batch_size=args.batch_size, state_path=args.out,
        checkpoint_seconds=args.checkpoint_seconds, fast=not args.no_fast, show_progress=args.progress,
        metadata={"model_dir": str(model_dir), "spec_file": str(dist)},
    )
    summary = {
        "out": str(args.out),
        "n_samples": gt.n_samples,
        "distinct_argmax_tokens": int((gt.counts > 0).sum()),
        "seconds": gt.metadata.get("seconds"),
        "samples_per_second": gt.metadata.get("samples_per_second"),
        "resolvable_min_p": args.min_count / gt.n_samples,
    }
    if args.targets:
        sel = {"n_targets": args.n_targets, "p_min": args.p_min, "p_max": args.p_max,
               "min_count": args.min_count, "seed": args.seed}
        targets = select_targets(gt, **sel)
        save_targets(args.targets, gt, targets, **sel)
        summary["n_targets"] = len(targets)
    print(dumps_strict(summary))
    return 0


def _run_all(args: argparse.Namespace, adapter: object, model_dir: object) -> int:
    """``--dist all``: every shipped family spec; ``--out`` is a directory of ``<family>.json``
    counts and ``targets_<family>.json`` lists."""
    from lowprob._io import atomic_write_json, dumps_strict
    from lowprob.lm_bridge.families import DEV_FAMILIES, HELDOUT_FAMILIES
    from lowprob.lm_bridge.ground_truth import count_argmax, save_targets, select_targets
    from lowprob.lm_bridge.zoo import load_shipped_spec

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sel = {"n_targets": args.n_targets, "p_min": args.p_min, "p_max": args.p_max,
           "min_count": args.min_count, "seed": args.seed}
    summary: dict[str, object] = {
        "command": "lowprob " + " ".join(sys.argv[1:]) if sys.argv else None,
        "model_dir": str(model_dir), "model_hash": getattr(adapter, "model_hash", None),
        "selection": sel, "families": {},
    }
    for fam in DEV_FAMILIES + HELDOUT_FAMILIES:
        spec = load_shipped_spec(fam)
        gt = count_argmax(
            adapter, spec, args.samples, seed=args.seed, batch_size=args.batch_size, state_path=out / f"{fam}.json",
            checkpoint_seconds=args.checkpoint_seconds, fast=not args.no_fast, show_progress=args.progress,
            metadata={"model_dir": str(model_dir), "spec_file": f"{fam}.json"},
        )
        targets = select_targets(gt, **sel)
        save_targets(out / f"targets_{fam}.json", gt, targets, **sel)
        ps = [float(gt.probs[t]) for t in targets]
        row = {"family": fam, "n_samples": gt.n_samples, "seconds": gt.metadata.get("seconds"),
               "samples_per_second": gt.metadata.get("samples_per_second"), "device": gt.metadata.get("device"),
               "distinct_argmax_tokens": int((gt.counts > 0).sum()), "resolvable_min_p": args.min_count / gt.n_samples,
               "n_targets": len(targets), "target_p_range": [min(ps), max(ps)] if ps else None}
        summary["families"][fam] = row  # type: ignore[index]
        print(dumps_strict(row), flush=True)
    atomic_write_json(out / "summary.json", summary, indent=1)
    return 0
