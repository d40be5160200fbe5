"""Exact ``p_t = P_{x ~ D}[argmax_v logits(x)_v = t]`` for every token ``t`` by enumerating the support.

For an independent-token spec ``D = D_1 x ... x D_T`` (:class:`~lowprob.lm_bridge.distributions.TokenSpec`)
with supports ``S_1..S_T`` and laws ``q_i``,

    p_t = sum_{x in S_1 x ... x S_T} (prod_i q_i(x_i)) [argmax_v logits(x)_v = t],

a finite sum over ``N = prod_i |S_i|`` inputs. Each input's weight is accumulated in float64 (the
product ``prod_i q_i(x_i)`` is formed left to right); its logits are the model's float32 logits.

**Ties and the near-tie interval.** The float32 forward is deterministic, so "the argmax the model
computes" is a well-defined function of the input and ``probs`` counts it, ties resolved as
``torch.argmax`` does (lowest index), like :func:`~lowprob.lm_bridge.ground_truth.count_argmax`.
Another summation order (another kernel, BLAS, device) may move each logit by a few float32 ulps
and flip the argmax only on inputs whose top-two gap is that small. Inputs with
``top1 - top2 < tie_threshold`` are therefore counted separately: ``probs_low[t]`` leaves them out,
``probs_high[t]`` adds every such input to each token whose logit is within ``tie_threshold`` of the
maximum. If every logit of every implementation is within ``tie_threshold / 2`` of the exact real
value, the real-arithmetic answer (and every implementation's answer) lies in
``[probs_low, probs_high]``. ``tie_mass`` is the total weight of the near-tie inputs.

**Cost (GPT-2 family).** Layer 0's ``LN_1, Q, K, V`` depend only on ``(position, token)`` and are
tabulated (:class:`~lowprob.lm_bridge.ground_truth._GPT2Argmax`). The support is enumerated as a
tree of prefixes, last position fastest: a prefix's residual and its per-layer keys/values are
computed once and shared by all its continuations, and the children of a node are a product
``(parents) x (tokens of the next position)``, so queries and keys broadcast instead of being
gathered per input. Per input the cost is the last position only: ``L`` attention reads over ``T``
cached keys/values, ``L`` MLPs and output projections (``~9 d^2`` each), ``L - 1`` ``Q, K, V``
projections (``3 d^2``) and the unembedding (``d V``): about ``2 (d V + 12 L d^2 + 2 L T d)`` FLOPs
(0.9 MFLOP for the shipped ``d = 128``, ``V = 4096``, 1 layer). Shorter prefixes are amortised over
``|S_T|`` or more continuations. Other models are enumerated with :meth:`ModelAdapter.logits`
(``diagnostics["note"]`` says so).

**Chunks and resume.** Positions ``0..m-1`` ("outer") are enumerated in lexicographic order and
grouped into chunks of ``outer_per_chunk`` prefixes; each chunk enumerates all continuations
(positions ``m..T-1``). The plan depends only on the spec and ``chunk``; the state file holds the
float64 partial sums after whole chunks, so a resumed run adds the same numbers in the same order
and is bitwise identical to an uninterrupted one.

Reference: Wu & Hilton 2024 (arXiv 2410.13211), section 4 (ground truth by counting); DESIGN.md
section 8 (enumeration on CPU).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowprob._io import atomic_write_json
from lowprob._validation import check_int
from lowprob.errors import InputTypeError, InputValueError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.distributions import CategoricalPosition, TokenSpec
from lowprob.lm_bridge.ground_truth import _gpt2_supported, _GPT2Argmax
from lowprob.sharding import ChunkPlan, RankInfo, run_chunks, shard_dir

__all__ = [
    "DEFAULT_MAX_INPUTS",
    "DEFAULT_TIE_THRESHOLD",
    "EXACT_FORMAT",
    "ExactTruth",
    "estimate_seconds",
    "exact_argmax",
    "flops_per_input",
    "save_exact_targets",
    "select_exact_targets",
    "shipped_exact_dir",
]

EXACT_FORMAT = "lowprob.exact_truth/1"
STATE_FORMAT = "lowprob.exact_state/1"
DEFAULT_MAX_INPUTS = 2**28
#: Default near-tie threshold on the top-two logit gap. The enumerator's float32 logits differ from
#: the HF forward's by at most ~2e-5 on the shipped models (docs/lm_exact.md), well below ``threshold / 2``.
DEFAULT_TIE_THRESHOLD = 1e-4
#: Effective CPU throughput used for time estimates (FLOP/s): the tree enumerator ran at 1-6 GFLOP/s
#: (1.1-6.8 k inputs/s on gelu-1l, 0.7-2.9 k on gelu-2l) with one thread on 2 loaded shared cores
#: (benchmarks/RESULTS-exact.md).
CPU_FLOPS_PER_SECOND = 4.0e9
DEFAULT_CHUNK = 2**18


@dataclass
class ExactTruth:
    """Exact argmax probabilities over a whole support.

    ``probs[t]`` = sum of input weights whose float32 argmax is ``t`` (float64, shape ``(V,)``);
    ``probs_low``/``probs_high`` the near-tie interval (module docstring); ``n_inputs`` the support
    size ``N``; ``chunks_done``/``n_chunks`` how far the enumeration got (``complete`` when equal).
    """

    probs: np.ndarray
    probs_low: np.ndarray
    probs_high: np.ndarray
    n_inputs: int
    tie_threshold: float
    tie_mass: float
    n_tied_inputs: int
    model_hash: str | None
    spec_hash: str
    seconds: float
    chunks_done: int
    n_chunks: int
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.chunks_done == self.n_chunks

    @property
    def vocab_size(self) -> int:
        return int(self.probs.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXACT_FORMAT,
            "n_inputs": int(self.n_inputs),
            "model_hash": self.model_hash,
            "spec_hash": self.spec_hash,
            "vocab_size": self.vocab_size,
            "tie_threshold": float(self.tie_threshold),
            "tie_mass": float(self.tie_mass),
            "n_tied_inputs": int(self.n_tied_inputs),
            "seconds": float(self.seconds),
            "inputs_per_second": (self.n_inputs / self.seconds) if self.seconds > 0 and self.complete else None,
            "complete": self.complete,
            "diagnostics": self.diagnostics,
            "probs": [float(v) for v in self.probs],
            "probs_low": [float(v) for v in self.probs_low],
            "probs_high": [float(v) for v in self.probs_high],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ExactTruth:
        if not isinstance(obj, dict) or obj.get("format") != EXACT_FORMAT:
            got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
            raise InputValueError(f"not an exact-truth file: format {got!r}, expected {EXACT_FORMAT!r}.")
        arr = {k: np.asarray(obj[k], dtype=np.float64) for k in ("probs", "probs_low", "probs_high")}
        return cls(
            probs=arr["probs"], probs_low=arr["probs_low"], probs_high=arr["probs_high"],
            n_inputs=int(obj["n_inputs"]), tie_threshold=float(obj["tie_threshold"]),
            tie_mass=float(obj["tie_mass"]), n_tied_inputs=int(obj.get("n_tied_inputs", 0)),
            model_hash=obj.get("model_hash"), spec_hash=str(obj["spec_hash"]), seconds=float(obj["seconds"]),
            chunks_done=1 if obj.get("complete", True) else 0, n_chunks=1, diagnostics=dict(obj.get("diagnostics", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Atomic strict-JSON write (compact)."""
        return atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | Path) -> ExactTruth:
        path = Path(path)
        if not path.is_file():
            raise InputValueError(f"exact-truth file {str(path)!r} does not exist.")
        return cls.from_json(json.loads(path.read_text()))


# -- cost model ---------------------------------------------------------------------------------
def flops_per_input(d: int, V: int, n_layers: int, T: int) -> float:
    """``2 (d V + 12 L d^2 + 2 L T d)``: last-position cost of the tree enumerator (module docstring)."""
    return 2.0 * (d * V + 12 * n_layers * d * d + 2 * n_layers * T * d)


def estimate_seconds(n_inputs: int, d: int, V: int, n_layers: int, T: int, *, fast: bool = True) -> float:
    """Rough CPU time: ``n_inputs * flops_per_input / CPU_FLOPS_PER_SECOND`` (x ``T`` for the adapter path)."""
    f = flops_per_input(d, V, n_layers, T) * (1 if fast else T)
    return n_inputs * f / CPU_FLOPS_PER_SECOND


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


# -- validation -----------------------------------------------------------------------------------
def _validate_spec(spec: TokenSpec, adapter: ModelAdapter, max_inputs: int, fast: bool) -> int:
    if not isinstance(spec, TokenSpec):
        raise InputTypeError(f"spec must be a TokenSpec, got {type(spec).__name__}.")
    spec.validate_vocab(adapter.vocab_size)
    n_ctx = getattr(adapter, "n_ctx", None)
    if n_ctx is not None and spec.length > n_ctx:
        raise InputValueError(f"spec has {spec.length} positions but the model's context is {n_ctx}; shorten the spec.")
    for i, p in enumerate(spec.positions):
        if isinstance(p, CategoricalPosition):
            zero = p.tokens[p.probs == 0]
            if zero.size:
                raise InputValueError(
                    f"positions[{i}] has zero-probability tokens {zero[:5].tolist()!r} ({zero.size} in all); an exact "
                    "enumeration would spend work on inputs of weight 0. Drop them from 'tokens' and 'probs'."
                )
            # TokenSpec already refuses duplicated tokens and sums off 1 by more than 1e-6; re-check so that a
            # hand-built position cannot slip through.
            if np.unique(p.tokens).size != p.tokens.size:
                raise InputValueError(f"positions[{i}] has duplicated tokens; merge their probabilities.")
            if abs(float(p.probs.sum()) - 1.0) > 1e-6:
                raise InputValueError(f"positions[{i}].probs sums to {float(p.probs.sum())!r}, not 1; normalise it.")
    n = spec.support_size()
    if n > max_inputs:
        d, V, L = adapter.d_model, adapter.vocab_size, adapter.n_layers
        est = estimate_seconds(n, d, V, L, spec.length, fast=fast)
        sizes = "x".join(str(p.tokens.size) for p in spec.positions)
        raise InputValueError(
            f"the spec's support has {n:,} inputs ({sizes}) > max_inputs={max_inputs:,} (~2^{math.log2(n):.1f}); "
            f"enumerating it would take about {_fmt_seconds(est)} on CPU "
            f"(~{flops_per_input(d, V, L, spec.length):.2g} FLOPs per input at ~{CPU_FLOPS_PER_SECOND:.0e} FLOP/s). "
            "Shrink the supports or the number of free positions, or raise --max-inputs."
        )
    return n


# -- the tree enumerator (GPT-2 family) -----------------------------------------------------------
class _TreeEnumerator:
    """Prefix-tree forward of a GPT-2 model at the last position, layer 0 tabulated.

    A node set of ``n`` prefixes of length ``t`` carries, per layer ``l``, keys and values
    ``K_l, V_l`` of shape ``(n, t, H, d_h)``. :meth:`step` appends position ``t``'s tokens, given as
    table rows ``(P, s)`` with ``P = 1`` (every parent gets the same ``s`` children: a product) or
    ``P = n`` (one child row per parent).
    """

    def __init__(self, adapter: Any, spec: TokenSpec, device: torch.device) -> None:
        self.tab = _GPT2Argmax(adapter, spec, device)
        self.blocks = self.tab.blocks
        self.L = len(self.blocks)
        self.H = self.tab.H
        self.d = self.tab.d
        self.dh = self.d // self.H
        self.ln_f = self.tab.ln_f
        self.W_U = self.tab.W_U
        self.b_U = self.tab.b_U
        self.index = self.tab.index

    def rows(self, t: int, tokens: torch.Tensor) -> torch.Tensor:
        return self.index[t, tokens]

    def step(
        self, cache: list[tuple[torch.Tensor, torch.Tensor]] | None, n: int, t: int, rows: torch.Tensor, final: bool
    ) -> Any:
        """Extend ``n`` prefixes of length ``t`` by the tokens ``rows (P, s)``.

        Returns the children's caches (``n*s`` prefixes of length ``t+1``), or for ``final`` the
        logits ``(n*s, V)`` at position ``t``.
        """
        P, s = rows.shape
        d, H, dh = self.d, self.H, self.dh
        resid = self.tab.resid0[rows]  # (P, s, d)
        new: list[tuple[torch.Tensor, torch.Tensor]] = []
        for li, blk in enumerate(self.blocks):
            qkv = self.tab.qkv0[rows] if li == 0 else blk.attn.c_attn(blk.ln_1(resid))
            Pq = qkv.shape[0]
            q, k, v = (z.reshape(Pq, s, H, dh) for z in qkv.split(d, dim=-1))
            new.append((k, v))
            if not final and li == self.L - 1:
                break
            self_score = (q * k).sum(-1, keepdim=True) * dh**-0.5  # (Pq, s, H, 1)
            if t == 0:
                a = v.expand(n, s, H, dh)
            else:
                K, Vc = cache[li]  # (n, t, H, dh)
                if Pq == 1 and n > 1:
                    old = torch.einsum("she,pthe->psht", q[0], K)
                else:
                    old = torch.einsum("pshe,pthe->psht", q, K)
                old = old * dh**-0.5  # (n, s, H, t)
                sc = torch.cat([old, self_score.expand(n, s, H, 1)], dim=-1)
                w = torch.softmax(sc, dim=-1)
                a = torch.einsum("psht,pthe->pshe", w[..., :t], Vc) + w[..., t:] * v
            resid = resid + blk.attn.c_proj(a.reshape(-1, s, d))
            resid = resid + blk.mlp(blk.ln_2(resid))
        if final:
            return torch.addmm(self.b_U, self.ln_f(resid).reshape(n * s, d), self.W_U)
        out = []
        for li, (k, v) in enumerate(new):
            kk, vv = k.expand(n, s, H, dh), v.expand(n, s, H, dh)
            if t == 0:
                out.append((kk.reshape(n * s, 1, H, dh), vv.reshape(n * s, 1, H, dh)))
            else:
                K, Vc = cache[li]
                K2 = torch.cat([K.unsqueeze(1).expand(n, s, t, H, dh), kk.unsqueeze(2)], dim=2)
                V2 = torch.cat([Vc.unsqueeze(1).expand(n, s, t, H, dh), vv.unsqueeze(2)], dim=2)
                out.append((K2.reshape(n * s, t + 1, H, dh), V2.reshape(n * s, t + 1, H, dh)))
        return out


def _select(cache: list[tuple[torch.Tensor, torch.Tensor]] | None, a: int, b: int) -> Any:
    return None if cache is None else [(k[a:b], v[a:b]) for k, v in cache]


class _Accumulator:
    """Float64 sums of input weights per argmax token, with the near-tie split."""

    def __init__(self, V: int, thr: float) -> None:
        self.V, self.thr = V, thr
        self.probs = np.zeros(V)
        self.low = np.zeros(V)
        self.high_add = np.zeros(V)
        self.tie_mass = 0.0
        self.n_tied = 0

    def add(self, logits: torch.Tensor, w: torch.Tensor) -> None:
        """``logits (n, V)`` float32 (overwritten and restored in place), ``w (n,)`` float64 weights.

        The top-two gap is found with two max passes (the maximum is masked to ``-inf`` in between),
        which is cheaper than ``topk`` or a full comparison against ``max - threshold``.
        """
        top, idx = logits.max(dim=-1)
        col = idx.unsqueeze(-1)
        logits.scatter_(1, col, float("-inf"))
        second = logits.max(dim=-1).values
        logits.scatter_(1, col, top.unsqueeze(-1))
        tied = (top - second) < self.thr
        V = self.V
        self.probs += torch.bincount(idx, weights=w, minlength=V).cpu().numpy()
        if bool(tied.any()):
            keep = ~tied
            self.low += torch.bincount(idx[keep], weights=w[keep], minlength=V).cpu().numpy()
            wt = w[tied]
            close = logits[tied] >= (top[tied] - self.thr).unsqueeze(-1)
            self.high_add += (close.to(torch.float64) * wt.unsqueeze(-1)).sum(0).cpu().numpy()
            self.tie_mass += float(wt.sum())
            self.n_tied += int(tied.sum())
        else:
            self.low += torch.bincount(idx, weights=w, minlength=V).cpu().numpy()

    def vector(self) -> np.ndarray:
        """``(probs, low, high_add, tie_mass, n_tied)`` as one float64 row of length ``3 V + 2``."""
        return np.concatenate([self.probs, self.low, self.high_add, [self.tie_mass, float(self.n_tied)]])

    @classmethod
    def from_vector(cls, v: np.ndarray, thr: float) -> _Accumulator:
        V = (v.size - 2) // 3
        acc = cls(V, thr)
        acc.probs, acc.low, acc.high_add = v[:V].copy(), v[V : 2 * V].copy(), v[2 * V : 3 * V].copy()
        acc.tie_mass, acc.n_tied = float(v[-2]), int(round(v[-1]))
        return acc


# -- the plan --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Outer positions ``0..split-1`` in chunks of ``outer_per_chunk`` prefixes; inner positions exhausted."""

    sizes: tuple[int, ...]
    split: int
    outer_per_chunk: int
    n_chunks: int
    kernel: str

    @classmethod
    def make(cls, sizes: tuple[int, ...], chunk: int, kernel: str) -> _Plan:
        T = len(sizes)
        split = T - 1
        while split > 0 and math.prod(sizes[split - 1 :]) <= chunk:
            split -= 1
        inner = math.prod(sizes[split:])
        outer = math.prod(sizes[:split])
        per = max(1, chunk // inner)
        return cls(sizes, split, per, math.ceil(outer / per), kernel)

    def to_json(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "split": self.split, "outer_per_chunk": self.outer_per_chunk,
                "n_chunks": self.n_chunks, "kernel": self.kernel}


def _digits(idx: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Mixed-radix digits (last position fastest): ``idx (n,) -> (n, len(sizes))``."""
    out = torch.empty(idx.numel(), len(sizes), dtype=torch.long)
    rem = idx.clone()
    for j in range(len(sizes) - 1, -1, -1):
        out[:, j] = rem % sizes[j]
        rem = rem // sizes[j]
    return out


# -- state file ------------------------------------------------------------------------------------
def default_state_path(out: str | Path) -> Path:
    """``FILE.json`` -> ``FILE.json.shards`` (the per-rank checkpoint directory next to the output)."""
    return shard_dir(out)


# -- the entry point -------------------------------------------------------------------------------
def exact_argmax(
    adapter: ModelAdapter,
    spec: TokenSpec,
    *,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    tie_threshold: float = DEFAULT_TIE_THRESHOLD,
    chunk: int = DEFAULT_CHUNK,
    batch: int = 2048,
    state_path: str | Path | None = None,
    checkpoint_seconds: float = 30.0,
    max_chunks: int | None = None,
    fast: bool = True,
    show_progress: bool | None = None,
    metadata: dict[str, Any] | None = None,
    ranks: RankInfo | None = None,
) -> ExactTruth:
    """Exact argmax probabilities of every token by enumerating ``spec``'s support (module docstring).

    Args:
        adapter: the model, float32.
        spec: an independent-token spec with no zero-probability tokens; support size ``<= max_inputs``.
        max_inputs: refuse larger supports (the error states the size and an estimated time).
        tie_threshold: inputs with top-two logit gap ``< tie_threshold`` form the near-tie interval.
        chunk: inputs per enumeration chunk (the unit of checkpointing and resume; part of the plan).
        batch: inputs per final-position forward (memory ~ ``batch * V`` floats for the logits).
        state_path: checkpoint directory (:func:`default_state_path`): one part file per rank with the
            rows of its finished chunks (refused if corrupted or for another run, and then left
            untouched); a rerun with any world size resumes it.
        checkpoint_seconds: minimum time between state writes (the last chunk is always written).
        max_chunks: stop after this many chunks in this call (returns an incomplete result).
        fast: use the GPT-2 tree enumerator where supported (else :meth:`ModelAdapter.logits`).
        ranks: ``torchrun`` ranks from :func:`lowprob.sharding.init_ranks` (default: one process);
            each rank enumerates a disjoint set of chunks, rank 0 gets the result (bit-identical to
            one process: per-chunk float64 rows added in chunk order).

    Returns:
        :class:`ExactTruth` with ``probs`` ``(V,)`` float64 summing to 1 when complete.
    """
    max_inputs = check_int("max_inputs", max_inputs, minimum=1)
    chunk = check_int("chunk", chunk, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    if not (isinstance(tie_threshold, int | float) and math.isfinite(tie_threshold) and tie_threshold >= 0):
        raise InputValueError(f"tie_threshold must be a finite number >= 0, got {tie_threshold!r}.")
    if max_chunks is not None:
        max_chunks = check_int("max_chunks", max_chunks, minimum=1)
    ranks = ranks or RankInfo()
    tree = fast and _gpt2_supported(adapter)
    n = _validate_spec(spec, adapter, max_inputs, tree)
    device = adapter.device
    V = adapter.vocab_size
    sizes = tuple(int(p.tokens.size) for p in spec.positions)
    plan = _Plan.make(sizes, chunk, "gpt2-tree" if tree else "adapter")
    mhash = getattr(adapter, "model_hash", None)
    key = {"model_hash": mhash, "spec_hash": spec.spec_hash(), "tie_threshold": float(tie_threshold),
           "plan": plan.to_json(), "batch": batch}
    diagnostics: dict[str, Any] = {
        **(metadata or {}),
        "model": getattr(adapter, "name", None),
        "family": spec.metadata.get("family"),
        "device": str(device),
        "torch": torch.__version__,
        "kernel": plan.kernel,
        "plan": plan.to_json(),
        "flops_per_input_estimate": flops_per_input(adapter.d_model, V, adapter.n_layers, spec.length),
        "world_size": ranks.world_size,
    }
    if not tree:
        diagnostics["note"] = (
            "model is not a supported GPT-2 (or fast=False): enumerated with ModelAdapter.logits on full "
            "sequences, without layer-0 tables or prefix sharing"
        )
    toks = [torch.as_tensor(np.array(p.tokens), dtype=torch.long, device=device) for p in spec.positions]
    qs = [torch.as_tensor(np.array(p.normalized), dtype=torch.float64, device=device) for p in spec.positions]
    enum = _TreeEnumerator(adapter, spec, device) if tree else None

    def chunk_row(c: int) -> np.ndarray:
        acc = _Accumulator(V, float(tie_threshold))
        with torch.no_grad():
            if enum is not None:
                _tree_chunk(enum, plan, c, toks, qs, acc, batch)
            else:
                _flat_chunk(adapter, plan, c, toks, qs, acc, batch)
        return acc.vector()

    # one float64 row per chunk, added in chunk order: any number of torchrun ranks, and any history
    # of interruptions, gives the same bits (lowprob.sharding)
    cplan = ChunkPlan(plan.n_chunks, 3 * V + 2, "float64", key)
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        res = run_chunks(cplan, chunk_row, state_dir=state_path, info=ranks, checkpoint_seconds=checkpoint_seconds,
                         show_progress=show_progress, desc=f"exact {diagnostics['family'] or ''}", max_chunks=max_chunks)
        if device.type == "cuda":
            torch.cuda.synchronize()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
    total = res.total if res.total is not None else np.zeros(3 * V + 2)  # other ranks: placeholder
    acc = _Accumulator.from_vector(total, float(tie_threshold))
    done, seconds = res.chunks_done, res.seconds_all_runs
    diagnostics["this_run"] = {"seconds": res.seconds, "chunks": res.chunks_this_run, "per_rank": res.per_rank}
    return ExactTruth(
        probs=acc.probs.copy(), probs_low=acc.low.copy(), probs_high=acc.low + acc.high_add, n_inputs=n,
        tie_threshold=float(tie_threshold), tie_mass=acc.tie_mass, n_tied_inputs=acc.n_tied, model_hash=mhash,
        spec_hash=spec.spec_hash(), seconds=seconds, chunks_done=done, n_chunks=plan.n_chunks, diagnostics=diagnostics,
    )


def _outer_prefixes(plan: _Plan, c: int, device: torch.device) -> tuple[torch.Tensor, int]:
    outer = math.prod(plan.sizes[: plan.split])
    a = c * plan.outer_per_chunk
    b = min(outer, a + plan.outer_per_chunk)
    return _digits(torch.arange(a, b), plan.sizes[: plan.split]).to(device), b - a


def _tree_chunk(enum: _TreeEnumerator, plan: _Plan, c: int, toks: list[torch.Tensor], qs: list[torch.Tensor],
                acc: _Accumulator, batch: int) -> None:
    device = toks[0].device
    digits, n = _outer_prefixes(plan, c, device)
    w = torch.ones(n, dtype=torch.float64, device=device)
    cache = None
    T = len(toks)
    for t in range(plan.split):  # outer positions: one child per prefix
        col = digits[:, t]
        w = w * qs[t][col]
        cache = enum.step(cache, n, t, enum.rows(t, toks[t][col]).unsqueeze(1), final=False)
    _descend(enum, cache, w, plan.split, T, toks, qs, acc, batch)


def _descend(enum: _TreeEnumerator, cache: Any, w: torch.Tensor, t: int, T: int, toks: list[torch.Tensor],
             qs: list[torch.Tensor], acc: _Accumulator, batch: int) -> None:
    """Depth-first over positions ``t..T-1``; at most ``~batch`` children per forward."""
    n = w.numel()
    s = toks[t].numel()
    rows = enum.rows(t, toks[t]).unsqueeze(0)  # (1, s)
    final = t == T - 1
    group = max(1, batch // s) if final else max(1, (4 * batch) // s)
    for a in range(0, n, group):
        b = min(n, a + group)
        wc = (w[a:b].unsqueeze(1) * qs[t].unsqueeze(0)).reshape(-1)
        out = enum.step(_select(cache, a, b), b - a, t, rows, final)
        if final:
            acc.add(out, wc)
        else:
            _descend(enum, out, wc, t + 1, T, toks, qs, acc, batch)


def _flat_chunk(adapter: ModelAdapter, plan: _Plan, c: int, toks: list[torch.Tensor], qs: list[torch.Tensor],
                acc: _Accumulator, batch: int) -> None:
    device = toks[0].device
    digits, n = _outer_prefixes(plan, c, device)
    inner_sizes = plan.sizes[plan.split:]
    inner = math.prod(inner_sizes)
    idx = torch.arange(n * inner)
    for a in range(0, idx.numel(), batch):
        j = idx[a: a + batch]
        dig = torch.cat([digits[j // inner], _digits(j % inner, inner_sizes).to(device)], dim=1)
        x = torch.stack([toks[t][dig[:, t]] for t in range(len(toks))], dim=1)
        w = torch.ones(x.shape[0], dtype=torch.float64, device=device)
        for t in range(len(toks)):
            w = w * qs[t][dig[:, t]]
        acc.add(adapter.logits(x).float(), w)


def shipped_exact_dir(model: str | None = None) -> Path:
    """``lowprob/data/exact`` (with ``model``: its ``<model>/`` folder of ``<family>.json`` truths and
    ``targets_<family>.json`` lists); the short specs are in ``shipped_exact_dir() / "specs"``."""
    from lowprob.lm_bridge.zoo import DATA_DIR, SHIPPED_MODELS

    root = DATA_DIR / "exact"
    if model is None:
        return root
    if model not in SHIPPED_MODELS:
        raise InputValueError(f"model must be one of {SHIPPED_MODELS!r}, got {model!r}.")
    return root / model


# -- targets -----------------------------------------------------------------------------------------
def select_exact_targets(
    truth: ExactTruth, *, n_targets: int = 64, p_min: float = 1e-9, p_max: float = 1e-5,
    max_rel_width: float = 0.01, seed: int = 0,
) -> list[int]:
    """Up to ``n_targets`` tokens with ``p_min <= p_t <= p_max`` and a narrow near-tie interval
    (``probs_high - probs_low <= max_rel_width * p_t``), uniformly at random with
    ``numpy.random.default_rng(seed)``, returned sorted."""
    n_targets = check_int("n_targets", n_targets, minimum=1)
    if not (0 <= p_min <= p_max <= 1):
        raise InputValueError(f"need 0 <= p_min <= p_max <= 1, got p_min={p_min!r}, p_max={p_max!r}.")
    p = truth.probs
    width = truth.probs_high - truth.probs_low
    ok = np.flatnonzero((p >= p_min) & (p <= p_max) & (p > 0) & (width <= max_rel_width * p))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ok, size=min(n_targets, ok.size), replace=False) if ok.size else ok
    return sorted(int(t) for t in chosen)


def save_exact_targets(path: str | Path, truth: ExactTruth, targets: list[int], *, family: str | None = None,
                       **selection: Any) -> Path:
    """Write a ``lowprob.targets/1`` list (the format of :func:`~lowprob.lm_bridge.ground_truth.save_targets`)
    with each target's exact ``p`` (``std_err`` 0) and its near-tie interval ``p_low``/``p_high``."""
    obj = {
        "format": "lowprob.targets/1",
        "truth": "exact",
        "model_hash": truth.model_hash,
        "spec_hash": truth.spec_hash,
        "family": family or truth.diagnostics.get("family"),
        "n_samples": truth.n_inputs,
        "n_inputs": truth.n_inputs,
        "tie_threshold": truth.tie_threshold,
        "selection": selection,
        "resolvable_min_p": 0.0,
        "targets": [
            {"token": t, "count": None, "p": float(truth.probs[t]), "std_err": 0.0,
             "p_low": float(truth.probs_low[t]), "p_high": float(truth.probs_high[t])}
            for t in targets
        ],
    }
    return atomic_write_json(path, obj, indent=1)
