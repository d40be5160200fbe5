"""``lowprob lm ground-truth``: count argmax tokens of a local model under a token spec.

    lowprob lm ground-truth --model DIR --dist SPEC.json --samples N --device auto --seed S --out FILE

``FILE`` (JSON) holds the counts (sparse ``{token: count}``) and metadata (model hash, spec hash,
N, seed, batch size, dtype, seconds). An existing ``FILE`` with the same model, spec, seed and
batch size is resumed; a larger ``--samples`` extends it. ``--targets FILE2`` also writes a
seeded target list (tokens with ``p`` in ``[--p-min, --p-max]`` and at least ``--min-count`` counts).

Sharded over processes or machines with ``torchrun`` (see ``docs/distributed.md``)::

    torchrun --nproc-per-node N -m lowprob lm ground-truth --model DIR --dist SPEC.json --samples S --out FILE

Each rank counts a disjoint set of chunks (NCCL on GPUs, gloo on CPUs); rank 0 writes ``FILE``,
with the same counts as one process. A plain ``python -m lowprob`` is one process.
    lowprob lm ground-truth --exact --model DIR --dist SPEC.json --out FILE.json
                            [--max-inputs 2**28] [--tie-threshold 1e-4] [--chunk 2**18]

enumerates the whole support instead (:func:`lowprob.lm_bridge.exact_truth.exact_argmax`) and writes
``lowprob.exact_truth/1`` JSON: ``probs`` (length V, float64, ties as ``torch.argmax``), ``n_inputs``,
``probs_low``/``probs_high`` (near-tie interval), ``tie_threshold``, ``tie_mass``, ``model_hash``,
``spec_hash``, ``seconds`` and ``diagnostics``. Progress is kept in ``FILE.json.shards/`` (resumed by
rerunning the same command; removed once ``FILE.json`` is written). A bare family name as ``--dist``
means that family's short exact-suite spec (``lowprob/data/exact/specs/<family>.json``). ``--targets`` writes exact targets
(``p`` in ``[--p-min, --p-max]``, near-tie interval narrower than ``--max-rel-width * p``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run_ground_truth"]


def _int(s: str) -> int:
    """Accept ``1048576``, ``2**20`` or ``1e6`` (an ``argparse`` type)."""
    from lowprob._validation import parse_int_expr
    from lowprob.errors import InputValueError

    try:
        return parse_int_expr(s)
    except InputValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(lm_subparsers: argparse._SubParsersAction) -> None:
    p = lm_subparsers.add_parser("ground-truth", help="count argmax tokens of a model under a token spec")
    p.add_argument("--model", required=True, help="local HF causal-LM directory, or a shipped name (gelu-1l, gelu-2l)")
    p.add_argument("--dist", required=True, help="spec JSON ({'positions': [...]}), a shipped family name, or 'all' (every shipped family)")
    p.add_argument("--samples", default=None, type=_int, help="number of samples N (e.g. 2**24); not with --exact")
    p.add_argument("--exact", action="store_true", help="enumerate the whole support (exact p for every token)")
    p.add_argument("--max-inputs", type=_int, default=None, help="--exact: refuse larger supports (default 2**28)")
    p.add_argument("--tie-threshold", type=float, default=None,
                   help="--exact: top-two logit gap below which an input is a near-tie (default 1e-4)")
    p.add_argument("--chunk", type=_int, default=None, help="--exact: inputs per resumable chunk (default 2**18)")
    p.add_argument("--max-rel-width", type=float, default=0.01,
                   help="--exact --targets: keep targets whose near-tie interval is at most this fraction of p")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="default 256 on CPU, 32768 on CUDA")
    p.add_argument("--out", required=True, help="counts JSON (resumed if it exists); a directory with --dist all")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0,
                   help="seconds between checkpoints (finite, > 0; also saved after the first chunk and on Ctrl-C/SIGTERM)")
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
    from lowprob.errors import InputValueError, LowprobError
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
    from lowprob.sharding import close_ranks, init_ranks, output_lock

    if args.exact:
        return run_exact(args)
    if args.samples is None:
        print("lowprob: error: --samples N is required (or pass --exact to enumerate the support).", file=sys.stderr)
        return 2
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
    ranks = init_ranks(device.type)
    try:
        if device.type == "cuda" and ranks.distributed:
            import torch

            device = torch.device(f"cuda:{ranks.local_rank}")
        shipped = args.model in SHIPPED_MODELS and not Path(args.model).exists()
        model_dir = shipped_model_dir(args.model) if shipped else args.model
        adapter = load_shipped(args.model, device=device) if shipped else load_hf(model_dir, device=device)
        if args.dist == "all":
            return _run_all(args, adapter, model_dir, ranks)
        dist = args.dist
        if not Path(dist).exists() and dist in FAMILIES:
            dist = shipped_specs_dir() / f"{dist}.json"
        spec = TokenSpec.load(dist, vocab_size=adapter.vocab_size)
        with output_lock(args.out) if ranks.is_main else contextlib.nullcontext():
            gt = count_argmax(
                adapter, spec, args.samples, seed=args.seed, batch_size=args.batch_size, state_path=args.out,
                checkpoint_seconds=args.checkpoint_seconds, fast=not args.no_fast, show_progress=args.progress,
                metadata={"model_dir": str(model_dir), "spec_file": str(dist)}, ranks=ranks,
            )
    except LowprobError as exc:
        if ranks.distributed:  # say which rank failed; torchrun stops the others
            raise type(exc)(f"{exc} (rank {ranks.rank})") from None
        raise
    finally:
        close_ranks(ranks)
    if not ranks.is_main:
        return 0
    this_run = gt.metadata.get("this_run", {})
    summary = {
        "out": str(args.out),
        "n_samples": gt.n_samples,
        "distinct_argmax_tokens": int((gt.counts > 0).sum()),
        "seconds": gt.metadata.get("seconds"),
        "samples_per_second": gt.metadata.get("samples_per_second"),
        "resolvable_min_p": args.min_count / gt.n_samples,
        "world_size": ranks.world_size,
        "this_run_samples_per_second": this_run.get("samples_per_second"),
        "per_rank_samples_per_second": [r["items_per_second"] for r in this_run.get("per_rank", [])],
        "fraction_of_peak": gt.metadata.get("fraction_of_peak"),
    }
    if args.targets:
        sel = {"n_targets": args.n_targets, "p_min": args.p_min, "p_max": args.p_max,
               "min_count": args.min_count, "seed": args.seed}
        targets = select_targets(gt, **sel)
        save_targets(args.targets, gt, targets, **sel)
        summary["n_targets"] = len(targets)
    print(dumps_strict(summary))
    return 0


def run_exact(args: argparse.Namespace) -> int:
    """``--exact``: enumerate ``--dist`` under ``--model`` and write :class:`ExactTruth` JSON to ``--out``."""
    from lowprob._io import check_writable, dumps_strict
    from lowprob.errors import InputValueError, LowprobError
    from lowprob.lm_bridge import exact_truth as ex
    from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device
    from lowprob.lm_bridge.distributions import TokenSpec
    from lowprob.lm_bridge.families import FAMILIES
    from lowprob.lm_bridge.zoo import SHIPPED_MODELS, load_shipped, shipped_model_dir
    from lowprob.sharding import close_ranks, init_ranks, output_lock, remove_state

    try:
        if args.samples is not None:
            raise InputValueError(f"--samples {args.samples!r} is for sampled ground truth; --exact enumerates the "
                                     "whole support. Drop one of them.")
        if args.dist == "all":
            raise InputValueError("--exact takes one spec (--dist SPEC.json), not 'all'; loop over the specs, or "
                                     "use benchmarks/lm_exact_suites.py for the shipped exact suites.")
        out = check_writable(args.out)
        if out.is_dir():
            raise InputValueError(f"--out {str(out)!r} is a directory; --exact writes one JSON file.")
        if args.targets:
            check_writable(args.targets, what="--targets")
        device = resolve_device(args.device)
        shipped = args.model in SHIPPED_MODELS and not Path(args.model).exists()
        model_dir = shipped_model_dir(args.model) if shipped else args.model
        adapter = load_shipped(args.model, device=device) if shipped else load_hf(model_dir, device=device)
        dist = args.dist
        if not Path(dist).exists() and dist in FAMILIES:  # a family name: its short exact-suite variant
            dist = ex.shipped_exact_dir() / "specs" / f"{dist}.json"
        spec = TokenSpec.load(dist, vocab_size=adapter.vocab_size)
        state = ex.default_state_path(out)
        kw = {k: v for k, v in (("max_inputs", args.max_inputs), ("tie_threshold", args.tie_threshold),
                                ("chunk", args.chunk)) if v is not None}
        ranks = init_ranks(device.type)
        try:
            with output_lock(out) if ranks.is_main else contextlib.nullcontext():
                truth = ex.exact_argmax(
                    adapter, spec, **kw, state_path=state, checkpoint_seconds=args.checkpoint_seconds,
                    fast=not args.no_fast, show_progress=args.progress, ranks=ranks,
                    metadata={"model_dir": str(model_dir), "spec_file": str(dist)},
                )
                if ranks.is_main:
                    truth.save(out)
                    remove_state(state)
        finally:
            close_ranks(ranks)
        if not ranks.is_main:
            return 0
        summary = {
            "out": str(out), "n_inputs": truth.n_inputs, "seconds": truth.seconds,
            "inputs_per_second": truth.n_inputs / truth.seconds if truth.seconds > 0 else None,
            "distinct_argmax_tokens": int((truth.probs > 0).sum()), "tie_mass": truth.tie_mass,
            "kernel": truth.diagnostics.get("kernel"),
        }
        if args.targets:
            sel = {"n_targets": args.n_targets, "p_min": args.p_min, "p_max": args.p_max,
                   "max_rel_width": args.max_rel_width, "seed": args.seed}
            targets = ex.select_exact_targets(truth, **sel)
            ex.save_exact_targets(args.targets, truth, targets, **sel)
            summary["n_targets"] = len(targets)
    except LowprobError as exc:
        print(f"lowprob: error: {exc}", file=sys.stderr)
        return 2
    print(dumps_strict(summary))
    return 0


def _run_all(args: argparse.Namespace, adapter: object, model_dir: object, ranks: Any) -> int:
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
            metadata={"model_dir": str(model_dir), "spec_file": f"{fam}.json"}, ranks=ranks,
        )
        if not ranks.is_main:
            continue
        targets = select_targets(gt, **sel)
        save_targets(out / f"targets_{fam}.json", gt, targets, **sel)
        ps = [float(gt.probs[t]) for t in targets]
        row = {"family": fam, "n_samples": gt.n_samples, "seconds": gt.metadata.get("seconds"),
               "samples_per_second": gt.metadata.get("samples_per_second"), "device": gt.metadata.get("device"),
               "distinct_argmax_tokens": int((gt.counts > 0).sum()), "resolvable_min_p": args.min_count / gt.n_samples,
               "n_targets": len(targets), "target_p_range": [min(ps), max(ps)] if ps else None}
        summary["families"][fam] = row  # type: ignore[index]
        print(dumps_strict(row), flush=True)
    if ranks.is_main:
        atomic_write_json(out / "summary.json", summary, indent=1)
    return 0
