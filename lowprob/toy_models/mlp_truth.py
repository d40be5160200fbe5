"""Monte Carlo truth for random-MLP activation means, chunked and shardable (``torchrun``).

For ``x_0 ~ N(0, I_n)`` and the MLP's post-activations ``x_l`` (``l = 1..L``), the truth is
``mu_l = E[x_l]`` estimated by ``mu_hat_l = (1/N) sum_j x_l^{(j)}`` with per-coordinate variance
``sigma_l^2 = Var[x_l]`` estimated from the same samples (WhestBench stores the same pair: means
and their ``avg_variance``, so that the truth's own error ``avg_variance / N`` can be subtracted
from a score).

The ``N`` inputs are split into chunks of ``batch_size``; chunk ``k`` draws its inputs from
``numpy.random.default_rng([seed, k])`` and contributes the float64 row
``(sum_j x^{(j)}, sum_j x^{(j)2})`` over all layers. :func:`lowprob.sharding.run_chunks` adds the
rows in chunk order, so one process and any number of ``torchrun`` ranks give bit-identical
means. Memory: the float64 reduction holds ``n_chunks * 2 L n`` doubles (refused above
``max_bytes``; raise ``batch_size`` to shrink it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import atomic_write_json
from lowprob._validation import check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.sharding import ChunkPlan, RankInfo, remove_state, run_chunks, shard_dir
from lowprob.toy_models.random_mlp import RandomMLP

__all__ = ["MLPMeanTruth", "mlp_mean_truth"]

FORMAT = "lowprob.mlp_truth/1"


@dataclass
class MLPMeanTruth:
    """Per-layer means ``(L, n)`` and variances ``(L, n)`` from ``n_samples`` inputs."""

    means: np.ndarray
    variances: np.ndarray
    n_samples: int
    seed: int
    batch_size: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def avg_variance(self) -> float:
        """``mean_{l,i} Var[x_{l,i}]``: the truth's own MSE is ``avg_variance / n_samples``."""
        return float(self.variances.mean())

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "n_samples": self.n_samples, "seed": self.seed, "batch_size": self.batch_size,
                "avg_variance": self.avg_variance, "truth_mse": self.avg_variance / self.n_samples,
                "means": self.means, "variances": self.variances, "metadata": self.metadata}


def mlp_mean_truth(
    mlp: RandomMLP,
    n_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 4096,
    out: str | Path | None = None,
    ranks: RankInfo | None = None,
    checkpoint_seconds: float = 60.0,
    show_progress: bool | None = None,
    max_bytes: int = 2 << 30,
) -> MLPMeanTruth:
    """Monte Carlo means and variances of every layer's post-activations (see module docstring).

    Args:
        mlp: the network.
        n_samples: ``N``.
        seed: chunk ``k`` uses ``numpy.random.default_rng([seed, k])``.
        batch_size: inputs per chunk (memory ``~ batch_size * n`` doubles per layer).
        out: result JSON; per-rank checkpoints go to ``<out>.shards/`` and a rerun resumes them.
        ranks: from :func:`lowprob.sharding.init_ranks` (default one process).
    """
    _check_out(out)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    ranks = ranks or RankInfo()
    L, n = mlp.depth, mlp.width
    n_chunks = math.ceil(n_samples / batch_size)
    need = n_chunks * 2 * L * n * 8
    if need > max_bytes:
        raise BudgetError(
            f"n_samples={n_samples} in chunks of batch_size={batch_size} needs {need / 2**30:.1f} GiB for the "
            f"bit-identical float64 reduction (limit {max_bytes / 2**30:.1f} GiB); raise --batch-size to at least "
            f"{math.ceil(n_samples * 2 * L * n * 8 / max_bytes)}."
        )
    weights_digest = float(sum(float(np.asarray(w, np.float64).sum()) for w in mlp.weights))
    plan = ChunkPlan(n_chunks, 2 * L * n, "float64",
                     {"width": n, "depth": L, "activation": mlp.activation, "weights_sum": repr(weights_digest),
                      "seed": seed, "batch_size": batch_size, "n_samples": n_samples})

    def size(k: int) -> int:
        return min(batch_size, n_samples - k * batch_size)

    def chunk(k: int) -> np.ndarray:
        x = np.random.default_rng([seed, k]).standard_normal((size(k), n))
        acts = mlp.forward(x)
        return np.concatenate([np.concatenate([a.sum(0, dtype=np.float64), (np.asarray(a, np.float64) ** 2).sum(0)])
                               for a in acts])

    state = shard_dir(out) if out is not None else None
    res = run_chunks(plan, chunk, state_dir=state, info=ranks, items_per_chunk=size,
                     checkpoint_seconds=checkpoint_seconds, show_progress=show_progress, desc="MLP truth")
    if res.total is None:  # not rank 0
        return MLPMeanTruth(np.zeros((L, n)), np.zeros((L, n)), n_samples, seed, batch_size, {"rank": ranks.rank})
    rows = res.total.reshape(L, 2, n)
    means = rows[:, 0] / n_samples
    variances = np.maximum(rows[:, 1] / n_samples - means**2, 0.0) * n_samples / max(n_samples - 1, 1)
    meta = {"world_size": ranks.world_size, "seconds": res.seconds_all_runs,
            "this_run": {"seconds": res.seconds, "per_rank": res.per_rank}}
    truth = MLPMeanTruth(means, variances, n_samples, seed, batch_size, meta)
    if out is not None:
        atomic_write_json(out, truth.to_json(), indent=None)
        remove_state(state)
    return truth


def _check_out(out: object) -> None:
    if out is not None and Path(str(out)).is_dir():
        raise InputValueError(f"out {str(out)!r} is a directory; give a file path.")
