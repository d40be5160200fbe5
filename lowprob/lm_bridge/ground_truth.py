"""Ground truth for ``p_t = P_{x ~ D}[argmax_v logits(x)_v = t]`` by counting, in float32.

For ``N`` i.i.d. inputs ``x_1..x_N ~ D`` (a :class:`~lowprob.lm_bridge.distributions.TokenSpec`),
``n_t = #{j : argmax logits(x_j) = t}`` and ``p_hat_t = n_t / N`` with standard error
``sqrt(p_hat_t (1 - p_hat_t) / N)`` (Wu & Hilton 2024, arXiv 2410.13211, section 4: 2^32 samples).

Sampling is split into chunks of ``batch_size`` inputs; chunk ``k`` draws from a generator seeded
with ``SeedSequence([seed, k])``, so the counts depend only on ``(seed, batch_size, N)`` and a run
can be stopped and resumed (the state file holds the counts and the chunks done).

**Fast path (GPT-2 family).** Layer 0's ``LN_1`` and ``Q, K, V`` depend only on ``(position, token)``,
so they are tabulated once for the support of each position and gathered per sample; in the last
layer only the last position's query, attention output and MLP are computed (the event only reads
``logits[-1]``). For a 1-layer model a sample then costs ``T d`` (attention) ``+ 9 d^2`` (output
projection and MLP) ``+ d V`` (unembedding) multiply-adds. Other models use
:meth:`ModelAdapter.logits`. Both give the library's float32 logits up to summation order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowprob._io import atomic_write_json, atomic_write_text, check_writable, dumps_strict
from lowprob._validation import check_int, check_seed
from lowprob.errors import InputValueError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.adapters.gpt2_tabulated import (
    TabulatedGPT2,
    tabulated_macs_per_sample,
    tabulation_unsupported_reason,
)
from lowprob.lm_bridge.distributions import TokenSpec
from lowprob.sharding import ChunkPlan, Interrupted, RankInfo, remove_state, run_chunks, shard_dir

__all__ = [  # noqa: F822 -- ExactTruth/exact_argmax come from __getattr__
    "ExactTruth", "GroundTruth", "RunInterrupted", "argmax_fn", "count_argmax", "exact_argmax", "flops_per_sample",
    "save_targets", "select_targets", "throughput_note",
]


def __getattr__(name: str) -> Any:
    """``exact_argmax`` and ``ExactTruth`` live in :mod:`lowprob.lm_bridge.exact_truth` (imported lazily:
    that module builds on this one)."""
    if name in ("exact_argmax", "ExactTruth"):
        from lowprob.lm_bridge import exact_truth

        return getattr(exact_truth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

FORMAT = "lowprob.ground_truth/1"


@dataclass
class GroundTruth:
    """Argmax counts ``counts[t] = n_t`` over ``n_samples`` inputs, with provenance."""

    counts: np.ndarray
    n_samples: int
    seed: int
    batch_size: int
    model_hash: str | None
    spec_hash: str
    dtype: str = "float32"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray:
        """``p_hat_t = n_t / N`` (float64 ``(V,)``)."""
        return self.counts.astype(np.float64) / max(self.n_samples, 1)

    def std_err(self) -> np.ndarray:
        p = self.probs
        return np.sqrt(p * (1 - p) / max(self.n_samples, 1))

    @property
    def complete(self) -> bool:
        return self.metadata.get("n_target", self.n_samples) == self.n_samples

    def to_json(self) -> dict[str, Any]:
        nz = np.flatnonzero(self.counts)
        return {
            "format": FORMAT,
            "n_samples": int(self.n_samples),
            "seed": int(self.seed),
            "batch_size": int(self.batch_size),
            "model_hash": self.model_hash,
            "spec_hash": self.spec_hash,
            "dtype": self.dtype,
            "vocab_size": int(self.counts.size),
            "metadata": self.metadata,
            "counts": {str(int(i)): int(self.counts[i]) for i in nz},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> GroundTruth:
        if obj.get("format") != FORMAT:
            raise InputValueError(f"not a ground-truth file: format {obj.get('format')!r}, expected {FORMAT!r}.")
        counts = np.zeros(int(obj["vocab_size"]), dtype=np.int64)
        for k, v in obj["counts"].items():
            counts[int(k)] = int(v)
        return cls(
            counts=counts,
            n_samples=int(obj["n_samples"]),
            seed=int(obj["seed"]),
            batch_size=int(obj["batch_size"]),
            model_hash=obj.get("model_hash"),
            spec_hash=str(obj["spec_hash"]),
            dtype=str(obj.get("dtype", "float32")),
            metadata=dict(obj.get("metadata", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Atomic write (temporary file + rename) of the JSON form."""
        return atomic_write_text(path, dumps_strict(self.to_json(), indent=None, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        path = Path(path)
        if not path.is_file():
            raise InputValueError(f"ground-truth file {str(path)!r} does not exist.")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError,
                IndexError, OverflowError) as exc:
            if isinstance(exc, InputValueError):
                raise
            raise InputValueError(
                f"ground-truth file {str(path)!r} is corrupt ({type(exc).__name__}: {exc}); delete it or pass another --out."
            ) from None


# -- the fast GPT-2 path ------------------------------------------------------------------------
def _gpt2_supported(adapter: ModelAdapter) -> bool:
    """Whether the tabulated GPT-2 forward is exact for ``adapter`` (see ``tabulation_unsupported_reason``)."""
    return tabulation_unsupported_reason(adapter) is None


_GPT2Argmax = TabulatedGPT2  # moved to lowprob.lm_bridge.adapters.gpt2_tabulated; old name kept


def argmax_fn(adapter: ModelAdapter, spec: TokenSpec, device: torch.device, *, fast: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function ``tokens (B, T) -> argmax of the last-position logits (B,)`` in float32."""
    if fast and _gpt2_supported(adapter):
        kernel = _GPT2Argmax(adapter, spec, device)
        return lambda x: kernel.logits(x).argmax(-1)
    return lambda x: adapter.logits(x).argmax(-1)


def _chunk_generator(seed: int, k: int, device: torch.device) -> torch.Generator:
    s = int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)
    return torch.Generator(device=device).manual_seed(s)


#: Raised when SIGINT/SIGTERM stops a run after its checkpoint was saved (``signum`` says which).
RunInterrupted = Interrupted


def count_argmax(
    adapter: ModelAdapter,
    spec: TokenSpec,
    n_samples: int,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    state_path: str | Path | None = None,
    checkpoint_seconds: float = 60.0,
    fast: bool = True,
    show_progress: bool | None = None,
    metadata: dict[str, Any] | None = None,
    ranks: RankInfo | None = None,
) -> GroundTruth:
    """Count ``argmax logits[-1]`` over ``n_samples`` inputs from ``spec`` (fp32, batched).

    The work is the chunked sum ``counts = sum_k bincount(argmax(model(x_k)))`` over chunks
    ``x_k ~ spec`` of ``batch_size`` inputs drawn with ``SeedSequence([seed, k])``, run by
    :func:`lowprob.sharding.run_chunks`: under ``torchrun`` each rank takes a disjoint set of
    chunks and the int64 counts are reduced with ``all_reduce``, so any number of ranks gives the
    same counts as one process.

    Args:
        adapter: the model (its parameters are used as they are; load it in float32).
        spec: the input distribution; checked against the model's vocabulary and context.
        n_samples: ``N``.
        seed: chunk ``k`` uses ``SeedSequence([seed, k])``.
        batch_size: inputs per chunk (memory ~ ``batch_size * T * 4 d`` floats); default 256
            on CPU (keeps temporaries small), 32768 on CUDA. Part of the reproducibility key.
        state_path: the output file. Finished chunks are checkpointed per rank under
            ``<state_path>.shards/`` after the first chunk, every ``checkpoint_seconds`` and on
            SIGINT/SIGTERM (the run then stops at the next chunk boundary and raises
            :class:`RunInterrupted`); a rerun with any world size resumes them, and a finished
            file with the same model, spec, seed and batch size is extended when ``N`` grows.
            Rank 0 writes the file atomically at the end and removes the part files.
        checkpoint_seconds: finite, ``>= 0`` (0: after every chunk).
        fast: use the tabulated GPT-2 kernel where supported.
        ranks: from :func:`lowprob.sharding.init_ranks` (default: one process).

    Returns:
        The counts (complete on rank 0; other ranks get their metadata with zero counts).
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_seed("seed", seed)
    ranks = ranks or RankInfo()
    if isinstance(checkpoint_seconds, bool) or not isinstance(checkpoint_seconds, (int, float)) or not (
        math.isfinite(checkpoint_seconds) and checkpoint_seconds >= 0
    ):
        raise InputValueError(
            f"checkpoint_seconds must be a finite number >= 0, got {checkpoint_seconds!r} "
            "(nan or inf would silently disable checkpointing)."
        )
    if state_path is not None:
        if Path(state_path).is_dir():
            raise InputValueError(f"state_path {str(state_path)!r} is a directory; pass a file path such as DIR/gt.json.")
        check_writable(state_path, what="state_path")
    spec.validate_vocab(adapter.vocab_size)
    n_ctx = getattr(adapter, "n_ctx", None)
    if n_ctx is not None and spec.length > n_ctx:
        raise InputValueError(f"spec has {spec.length} positions but the model's context is {n_ctx}; shorten the spec.")
    device = adapter.device
    if batch_size is None:
        batch_size = 32768 if device.type == "cuda" else 256
    batch_size = check_int("batch_size", batch_size, minimum=1)
    V = adapter.vocab_size
    mhash = getattr(adapter, "model_hash", None)
    key = {"model_hash": mhash, "spec_hash": spec.spec_hash(), "seed": seed, "batch_size": batch_size}
    n_chunks = math.ceil(n_samples / batch_size)
    prior: tuple[set[int], np.ndarray] | None = None
    prior_seconds = 0.0
    if state_path is not None and Path(state_path).is_file():
        prev = GroundTruth.load(state_path)
        got = {"model_hash": prev.model_hash, "spec_hash": prev.spec_hash, "seed": prev.seed, "batch_size": prev.batch_size}
        if got != key:
            raise InputValueError(
                f"{str(state_path)!r} holds counts for {got!r}, not {key!r}; pass another --out or delete it."
            )
        if prev.n_samples > n_samples:
            raise InputValueError(f"{str(state_path)!r} already has {prev.n_samples} samples > n_samples={n_samples}.")
        if prev.n_samples % batch_size and prev.n_samples < n_samples:
            raise InputValueError(
                f"{str(state_path)!r} ends in a partial chunk ({prev.n_samples} samples, batch {batch_size}); "
                "it cannot be extended reproducibly. Start a new file."
            )
        if prev.n_samples == n_samples:
            return prev
        prior = (set(range(prev.n_samples // batch_size)), prev.counts.astype(np.int64))
        prior_seconds = float(prev.metadata.get("seconds", 0.0))
    meta = {
        **(metadata or {}),
        "model": getattr(adapter, "name", None),
        "family": spec.metadata.get("family"),
        "device": str(device),
        "torch": torch.__version__,
        "n_target": n_samples,
        "kernel": "gpt2-tabulated" if fast and _gpt2_supported(adapter) else "adapter",
        "world_size": ranks.world_size,
    }
    plan = ChunkPlan(n_chunks, V, "int64", {**key, "n_samples": n_samples})

    def chunk_size(k: int) -> int:
        return min(batch_size, n_samples - k * batch_size)

    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        f = argmax_fn(adapter, spec, device, fast=fast)

        def chunk(k: int) -> np.ndarray:
            with torch.no_grad():
                x = spec.sample(chunk_size(k), generator=_chunk_generator(seed, k, device), device=device)
                return torch.bincount(f(x), minlength=V).cpu().numpy()

        res = run_chunks(
            plan, chunk, state_dir=shard_dir(state_path) if state_path is not None else None, info=ranks,
            items_per_chunk=chunk_size, checkpoint_seconds=checkpoint_seconds, show_progress=show_progress,
            desc=f"ground truth {meta['family'] or ''}", prior=prior,
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
    seconds = prior_seconds + res.seconds_all_runs
    slowest = max(r["seconds"] for r in res.per_rank)  # the run lasts as long as its slowest rank
    total_rate = sum(r["items"] for r in res.per_rank) / slowest if slowest > 0 else None
    meta.update({
        "seconds": seconds,
        "samples_per_second": (n_samples / seconds if seconds > 0 else None),
        "this_run": {"seconds": res.seconds, "chunks": res.chunks_this_run, "samples_per_second": total_rate,
                     "per_rank": res.per_rank},
    })
    meta.update(throughput_note(adapter, spec, total_rate))
    counts = res.total if res.total is not None else np.zeros(V, np.int64)
    gt = GroundTruth(counts, n_samples, seed, batch_size, mhash, spec.spec_hash(), "float32", meta)
    if state_path is not None and ranks.is_main:
        gt.save(state_path)
        remove_state(shard_dir(state_path))
    return gt


def flops_per_sample(adapter: ModelAdapter, spec: TokenSpec) -> float | None:
    """Counted FLOPs (2 per multiply-add) of one argmax input on the tabulated GPT-2 path:
    ``2 x`` :func:`~lowprob.lm_bridge.adapters.gpt2_tabulated.tabulated_macs_per_sample` ``["forward"]``.
    ``None`` for models off the tabulated path."""
    if not _gpt2_supported(adapter):
        return None
    macs = tabulated_macs_per_sample(adapter.d_model, spec.length, adapter.vocab_size, adapter.n_layers,
                                     n_heads=int(adapter.config.n_head))
    return 2.0 * macs["forward"]


#: fp32 peak FLOP/s of known devices (dense, non-tensor-core), for the fraction-of-peak report.
PEAK_FP32 = {"H200": 67e12, "H100": 67e12, "A100": 19.5e12, "L40S": 91.6e12, "A10G": 31.2e12, "V100": 15.7e12}


def throughput_note(adapter: ModelAdapter, spec: TokenSpec, samples_per_second: float | None) -> dict[str, Any]:
    """FLOP/s achieved and, on a device whose fp32 peak is known, the fraction of peak."""
    fps = flops_per_sample(adapter, spec)
    out: dict[str, Any] = {"flops_per_sample": fps, "flops_per_second": None, "fraction_of_peak": None}
    if fps is None or not samples_per_second:
        return out
    out["flops_per_second"] = fps * samples_per_second
    device = adapter.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_FP32.items() if k in name), None)
        if peak:
            out["fraction_of_peak"] = out["flops_per_second"] / peak
            out["peak_flops"] = peak
    else:
        out["peak_note"] = "CPU peak FLOP/s is not known to lowprob; fraction_of_peak is reported on known GPUs only"
    return out


# -- targets ------------------------------------------------------------------------------------
def select_targets(
    gt: GroundTruth,
    *,
    n_targets: int = 64,
    p_min: float = 1e-9,
    p_max: float = 1e-5,
    min_count: int = 10,
    seed: int = 0,
) -> list[int]:
    """Choose up to ``n_targets`` tokens with ``p_min <= p_hat_t <= p_max`` and ``n_t >= min_count``.

    Uniformly at random without replacement (``numpy.random.default_rng(seed)``), returned sorted.
    With ``N`` samples the smallest resolvable probability is ``min_count / N``.
    """
    n_targets = check_int("n_targets", n_targets, minimum=1)
    if not (0 <= p_min <= p_max <= 1):
        raise InputValueError(f"need 0 <= p_min <= p_max <= 1, got p_min={p_min!r}, p_max={p_max!r}.")
    p = gt.probs
    ok = np.flatnonzero((gt.counts >= min_count) & (p >= p_min) & (p <= p_max))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ok, size=min(n_targets, ok.size), replace=False) if ok.size else ok
    return sorted(int(t) for t in chosen)


def save_targets(path: str | Path, gt: GroundTruth, targets: list[int], **selection: Any) -> Path:
    """Write a target list with each target's count, ``p_hat`` and standard error."""
    se = gt.std_err()
    obj = {
        "format": "lowprob.targets/1",
        "model_hash": gt.model_hash,
        "spec_hash": gt.spec_hash,
        "family": gt.metadata.get("family"),
        "n_samples": gt.n_samples,
        "selection": selection,
        "resolvable_min_p": selection.get("min_count", 10) / gt.n_samples,
        "targets": [
            {"token": t, "count": int(gt.counts[t]), "p": float(gt.probs[t]), "std_err": float(se[t])} for t in targets
        ],
    }
    return atomic_write_json(path, obj, indent=1)
