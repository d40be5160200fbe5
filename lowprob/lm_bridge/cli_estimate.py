"""``lowprob lm estimate``: one method, one (model, spec, target); prints one JSON object.

Contract (keep stable)::

    lowprob lm estimate --model DIR --dist SPEC.json --target ID --method NAME \\
        --budget N --seed S --device auto --json

prints ``{"estimate", "log_estimate", "method", "cost": {"samples", "model_calls", "backward_calls", "flops", "seconds"},
...}``. ``--model`` is a local HF causal-LM directory or a shipped model name
(``gelu-1l``, ``gelu-2l``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowprob.errors import InputValueError

if TYPE_CHECKING:  # torch is imported only when a command runs
    from lowprob.lm_bridge.adapters.base import ModelAdapter

__all__ = ["load_model_arg", "load_spec_arg", "parse_params", "register"]


def load_model_arg(model: str, device: str) -> ModelAdapter:
    """A shipped model name (hash-verified) or a local HF directory, loaded on ``device``
    (``auto``/``cpu``/``cuda[:i]``/``mps``)."""
    from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device
    from lowprob.lm_bridge.zoo import SHIPPED_MODELS, load_shipped

    dev = resolve_device(device)
    if model in SHIPPED_MODELS and not Path(model).exists():
        return load_shipped(model, device=dev)
    return load_hf(model, device=dev)


def load_spec_arg(dist: str, adapter: ModelAdapter) -> Any:
    """Load ``--dist`` and check it against the model: token ids in the vocabulary, length within
    the context (``n_ctx``), so a bad spec is a one-line error, not a torch error mid-run."""
    from lowprob.lm_bridge.distributions import TokenSpec

    try:
        spec = TokenSpec.load(dist, vocab_size=adapter.vocab_size)
    except OverflowError as exc:  # an id beyond int64 (e.g. 10**30)
        raise InputValueError(
            f"--dist {dist!r} has a token id too large for int64 ({exc}); ids must be in [0, {adapter.vocab_size - 1}]."
        ) from None
    n_ctx = getattr(adapter, "n_ctx", None)
    if n_ctx is not None and spec.length > n_ctx:
        raise InputValueError(
            f"--dist {dist!r} has {spec.length} positions but the model's context is {n_ctx}; shorten the spec."
        )
    return spec


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["temperature=0.5", "batch_size=128"]`` -> ``{"temperature": 0.5, "batch_size": 128}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InputValueError(f"--param must look like KEY=VALUE, got {item!r}.")
        out[key.strip()] = _value(val.strip())
    return out


def register(lm_subparsers: argparse._SubParsersAction) -> None:
    p = lm_subparsers.add_parser(
        "estimate", help="estimate P[argmax = target] with one method",
        description="Estimate P_{x~SPEC}[argmax logits(x) = TARGET] with one registered method.",
    )
    p.add_argument("--model", required=True, help="HF model directory or shipped name (gelu-1l, gelu-2l)")
    p.add_argument("--dist", required=True, help="independent-token spec JSON")
    p.add_argument("--target", required=True, type=int, help="target token id")
    p.add_argument("--method", required=True, help="registered method name (see `lowprob lm bench --list`)")
    p.add_argument("--budget", type=int, default=2**16, help="forward passes (model calls); default 65536")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] | mps")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="method hyperparameter (repeatable)")
    p.add_argument("--plugin", action="append", default=[], help="import this module to register more methods")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    import torch

    from lowprob._io import dumps_strict
    from lowprob._validation import check_budget, check_seed
    from lowprob.lm_bridge.methods.registry import load_lm_plugins, make_lm_method
    from lowprob.lm_bridge.problem import LMProblem

    check_seed("--seed", args.seed)
    check_budget(args.budget, name="--budget")
    if not Path(args.dist).is_file():
        raise InputValueError(f"--dist {args.dist!r} does not exist; pass a spec JSON file.")
    torch.set_grad_enabled(True)
    load_lm_plugins(args.plugin)
    method = make_lm_method(args.method, **parse_params(args.param))
    adapter = load_model_arg(args.model, args.device)
    spec = load_spec_arg(args.dist, adapter)
    problem = LMProblem(adapter, spec, args.target)
    est = method.estimate(problem, args.budget, seed=args.seed)
    d = est.to_dict()  # the one Estimate/Cost schema (lowprob.estimate)
    d.update(target=problem.target, model=str(args.model), dist=str(args.dist), seed=args.seed,
             device=str(adapter.device), log10_estimate=est.log_value / math.log(10) if est.value > 0 else None)
    if args.json:
        print(dumps_strict(d), file=sys.stdout)
    else:
        print(
            f"{est.method}: p_hat = {est.value:.4g} (log {est.log_value:.4f}); "
            f"{est.cost.model_calls} forward, {est.cost.backward_calls} backward, {est.cost.seconds:.2f} s"
        )
    return 0
