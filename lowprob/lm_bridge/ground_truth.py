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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowprob._progress import progress
from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.adapters.gpt2_tabulated import TabulatedGPT2
from lowprob.lm_bridge.distributions import TokenSpec

__all__ = ["ExactTruth", "GroundTruth", "argmax_fn", "count_argmax", "exact_argmax", "select_targets", "save_targets"]  # noqa: F822


def __getattr__(name: str) -> Any:
    """``exact_argmax`` and ``ExactTruth`` live in :mod:`lowprob.lm_bridge.exact_truth` (imported lazily:
    that module builds on this one's tabulated kernel)."""
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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=None, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        path = Path(path)
        if not path.is_file():
            raise InputValueError(f"ground-truth file {str(path)!r} does not exist.")
        return cls.from_json(json.loads(path.read_text()))


# -- the fast GPT-2 path ------------------------------------------------------------------------
def _gpt2_supported(adapter: ModelAdapter) -> bool:
    cfg = getattr(adapter, "config", None)
    return (
        getattr(adapter, "model_type", None) == "gpt2"
        and bool(getattr(cfg, "scale_attn_weights", False))
        and not getattr(cfg, "scale_attn_by_inverse_layer_idx", True)
        and getattr(cfg, "add_cross_attention", False) is False
    )


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
) -> GroundTruth:
    """Count ``argmax logits[-1]`` over ``n_samples`` inputs from ``spec`` (fp32, batched).

    Args:
        adapter: the model (its parameters are used as they are; load it in float32).
        spec: the input distribution; checked against the model's vocabulary and context.
        n_samples: ``N``.
        seed: chunk ``k`` uses ``SeedSequence([seed, k])``.
        batch_size: inputs per chunk (memory ~ ``batch_size * T * 4 d`` floats); default 256
            on CPU (keeps temporaries small), 32768 on CUDA. Part of the reproducibility key.
        state_path: if given, the counts are checkpointed there every ``checkpoint_seconds``
            and a run finding a matching state (model, spec, seed, batch size) resumes it.
        fast: use the tabulated GPT-2 kernel where supported.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
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
    counts = np.zeros(V, dtype=np.int64)
    done = 0
    seconds = 0.0
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
        counts, done = prev.counts.copy(), prev.n_samples
        seconds = float(prev.metadata.get("seconds", 0.0))
    meta = {
        **(metadata or {}),
        "model": getattr(adapter, "name", None),
        "family": spec.metadata.get("family"),
        "device": str(device),
        "torch": torch.__version__,
        "n_target": n_samples,
        "kernel": "gpt2-tabulated" if fast and _gpt2_supported(adapter) else "adapter",
    }

    def snapshot(n: int, secs: float) -> GroundTruth:
        return GroundTruth(counts.copy(), n, seed, batch_size, mhash, spec.spec_hash(), "float32",
                           {**meta, "seconds": secs, "samples_per_second": (n / secs if secs > 0 else None)})

    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        f = argmax_fn(adapter, spec, device, fast=fast)
        n_chunks = math.ceil(n_samples / batch_size)
        first = done // batch_size
        t_last = time.perf_counter()
        t_start = t_last
        with torch.no_grad():
            for k in progress(range(first, n_chunks), total=n_chunks - first, desc=f"ground truth {meta['family'] or ''}",
                              enabled=show_progress):
                m = min(batch_size, n_samples - k * batch_size)
                x = spec.sample(m, generator=_chunk_generator(seed, k, device), device=device)
                am = f(x)
                counts += torch.bincount(am, minlength=V).cpu().numpy()
                done = k * batch_size + m
                now = time.perf_counter()
                if state_path is not None and now - t_last > checkpoint_seconds:
                    snapshot(done, seconds + now - t_start).save(state_path)
                    t_last = now
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t_start
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
    gt = snapshot(done, seconds)
    if state_path is not None:
        gt.save(state_path)
    return gt


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
    return path
