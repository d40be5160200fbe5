"""Randomised spherical designs for the per-layer means of a bias-free MLP, on any backend.

We estimate ``mu_l = E_{x ~ N(0, I_n)}[x_l(x)]`` (post-activation means, every layer) by
averaging the net over **randomly rotated cross-polytopes**: draw a Haar orthogonal
``Q`` (QR of a Gaussian matrix with the signs of ``diag R`` fixed; Mezzadri 2007) and use
the ``2n`` points ``x = r (+- Q e_i)``.

* **Unbiased.** Each point ``Q e_i`` is marginally uniform on the sphere, so
  ``E[(1/2n) sum_i f(r Q e_i) + f(-r Q e_i)] = E_u f(r u)``. With ``r ~ chi_n`` drawn
  independently per point, each point is exactly ``N(0, I_n)``.
* **Radius integrated exactly** when ``phi`` is positively homogeneous (ReLU): a bias-free
  net then satisfies ``f(r u) = r f(u)``, so every point may use ``r = E[chi_n] =
  sqrt(2) Gamma((n+1)/2) / Gamma(n/2)``; the radial part of the variance disappears.
* **Exact on low degrees.** The cross-polytope ``{+-e_i}`` is a spherical 3-design: the
  average of any polynomial of degree <= 3 over the ``2n`` points equals its spherical mean
  (``sum_i q_i^T A q_i = tr A`` for any orthonormal basis; odd degrees cancel in the
  antithetic pairs). The estimator's variance is therefore that of the degree >= 4 part
  of ``f`` on the sphere; measured on 256-wide He-initialised ReLU nets it is about a
  third of plain Monte Carlo's per evaluation (``benchmarks/RESULTS-whest.md``).
* **Cheaper first layer.** ``(-x) W_1 = -(x W_1)``: the first matmul is done once per pair.

A budget that does not cover whole designs ends with a partial design (its first ``k``
antithetic pairs, still unbiased). Standard library only (bundled into the WhestBench
export); ``rng`` is a numpy-like ``Generator`` of the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lowprob.array_kernels.activations import TRANSCENDENTAL_FLOPS, Activation, ArrayBackend

__all__ = ["DesignPlan", "chi_mean", "design_flops", "haar_orthogonal", "james_stein_toward_fit",
           "plan_designs", "rotated_cross_polytope_means"]


def chi_mean(n: int) -> float:
    """``E|x|`` for ``x ~ N(0, I_n)``: ``sqrt(2) Gamma((n+1)/2) / Gamma(n/2)``."""
    return math.sqrt(2.0) * math.exp(math.lgamma((n + 1) / 2.0) - math.lgamma(n / 2.0))


@dataclass(frozen=True)
class DesignPlan:
    """How many rotated cross-polytopes fit a FLOP budget.

    Attributes:
        n_designs: full designs (``2n`` points each).
        extra_pairs: antithetic pairs of one final partial design (``0 <= k < n``).
        flops: the planned bill (an upper bound on flopscope's count, checked in tests).
    """

    n_designs: int
    extra_pairs: int
    flops: int

    def points(self, width: int) -> int:
        return 2 * width * self.n_designs + 2 * self.extra_pairs


def _rotation_flops(n: int) -> int:
    # float32 Gaussian draw (16/elem) + float32 QR (flopscope: 2 (2 n^3 - 2 n^3 / 3)) + sign
    # fix, transpose and cast (a few per element)
    return 16 * n * n + 2 * (2 * n**3 - (2 * n**3) // 3) + 6 * n * n + 4 * n


def _pairs_flops(n: int, depth: int, pairs: int, act: Activation, homogeneous: bool) -> int:
    """Forward of ``pairs`` antithetic pairs, float32 matmuls, float64 accumulation."""
    rows = 2 * pairs
    first = pairs * n * (2 * n - 1) + rows * n  # one matmul per pair, then negation
    rest = (depth - 1) * rows * n * (2 * n - 1)
    phi = depth * rows * n * max(act.flops_per_element, 1)
    acc = depth * (rows * n + 4 * n) + rows * n + 4 * n  # column sums, cast, add; per design
    radius = 0 if homogeneous else rows * (n * (TRANSCENDENTAL_FLOPS + 2) + TRANSCENDENTAL_FLOPS)
    scale = rows * n  # radius scaling
    concat = rows * n
    return first + rest + phi + acc + radius + scale + concat


def design_flops(width: int, depth: int, act: Activation, pairs: int | None = None) -> int:
    """Planned FLOPs of one rotated cross-polytope (``pairs`` antithetic pairs; ``n`` = full)."""
    n = width
    k = n if pairs is None else pairs
    return _rotation_flops(n) + _pairs_flops(n, depth, k, act, act.homogeneous) + 8 * n * depth


def plan_designs(width: int, depth: int, budget: float, act: Activation) -> DesignPlan | None:
    """The most points that fit ``budget`` FLOPs, or ``None`` when not even one pair fits."""
    if budget <= 0:
        return None
    full = design_flops(width, depth, act)
    D = int(budget // full)
    left = budget - D * full
    base = _rotation_flops(width) + 8 * width * depth
    per_pair = _pairs_flops(width, depth, 1, act, act.homogeneous)
    k = int((left - base) // per_pair) if left > base else 0
    k = max(0, min(k, width - 1))
    if D == 0 and k == 0:
        return None
    flops = D * full + (design_flops(width, depth, act, k) if k else 0)
    return DesignPlan(D, k, int(flops))


def haar_orthogonal(rng: Any, n: int, xp: Any, batch: int = 1, dtype: Any = None) -> Any:
    """``batch`` Haar ``(n, n)`` orthogonal matrices: QR of Gaussians, ``Q diag(sign R_ii)``.

    ``dtype`` (e.g. float32) is passed to the Gaussian draw; QR keeps it.
    """
    G = rng.standard_normal((batch, n, n)) if dtype is None else rng.standard_normal(
        (batch, n, n), dtype=dtype)
    Q, R = xp.linalg.qr(G)
    return Q * xp.sign(xp.diagonal(R, axis1=1, axis2=2))[:, None, :]


def _batch_sums(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, k: int, pairs: int,
    radius: float, dtype: Any, acc_dtype: Any, tail: tuple[int, float] | None = None,
) -> tuple[list[Any], Any, Any]:
    """``k`` rotated cross-polytopes of ``pairs`` antithetic pairs each, in one batched pass.

    Returns per-layer sums over all ``2 k pairs`` points, the final-layer sums of each
    design ``(k, n)`` and, with ``tail = (neuron, threshold)``, the hits
    ``h_L[neuron] > threshold`` per design (then every point has its own ``chi_n`` radius, so
    each point is exactly ``N(0, I)``). Rows are ordered ``(sign, design, pair)``.
    """
    xp = backend.xp
    n = weights[0].shape[0]
    Q = haar_orthogonal(rng, n, xp, k, dtype)  # columns of Q[j] are the directions of design j
    U = xp.asarray(xp.swapaxes(Q, 1, 2)[:, :pairs, :], dtype=dtype).reshape(k * pairs, n)
    if act.homogeneous and tail is None:
        H1 = (U * radius) @ weights[0]
        H = xp.concatenate([H1, -H1], axis=0)
    else:  # r ~ chi_n per point
        r = xp.sqrt(xp.sum(rng.standard_normal((2 * k * pairs, n), dtype=dtype) ** 2, axis=1))
        H1 = U @ weights[0]
        H = xp.concatenate([H1, -H1], axis=0) * xp.asarray(r, dtype=dtype)[:, None]
    X = act.forward(H, backend)
    sums = [xp.asarray(xp.sum(X, axis=0), dtype=acc_dtype)]
    for w in weights[1:]:
        H = X @ w
        X = act.forward(H, backend)
        sums.append(xp.asarray(xp.sum(X, axis=0), dtype=acc_dtype))
    per = xp.asarray(xp.sum(X.reshape(2, k, pairs, n), axis=(0, 2)), dtype=acc_dtype)
    hits = None
    if tail is not None:
        hits = xp.sum((H[:, tail[0]] > tail[1]).reshape(2, k, pairs), axis=(0, 2))
    return sums, per, hits


def rotated_cross_polytope_means(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, plan: DesignPlan,
    *, dtype: Any, acc_dtype: Any, tail: tuple[int, float] | None = None, max_rows: int = 4096,
) -> tuple[Any, list[Any]]:
    """``(means (L, n), final-layer means of the full designs (D, n) or None)``.

    ``means`` averages all ``plan.points(n)`` points with equal weight (unbiased); the
    per-design final means give a between-design standard error. Full designs are run
    ``max_rows // 2n`` at a time (fewer Python-level ops). With ``tail`` the second value is
    a list of ``(final means, hits, points)`` per batch, the partial design included.
    """
    xp = backend.xp
    n = weights[0].shape[0]
    radius = chi_mean(n)
    total = [xp.zeros(n, dtype=acc_dtype) for _ in weights]
    per_design = []
    per_batch = max(1, max_rows // (2 * n))
    todo = [(min(per_batch, plan.n_designs - i), n) for i in range(0, plan.n_designs, per_batch)]
    if plan.extra_pairs:
        todo.append((1, plan.extra_pairs))
    for k, pairs in todo:
        sums, per, hits = _batch_sums(weights, act, backend, rng, k, pairs, radius, dtype,
                                      acc_dtype, tail)
        total = [t + s for t, s in zip(total, sums, strict=True)]
        if tail is not None:
            per_design.append((per / (2.0 * pairs), hits, 2 * pairs))
        elif pairs == n:
            per_design.append(per)
    N = float(plan.points(n))
    means = xp.stack(total, axis=0) / N
    if tail is not None:
        return means, per_design
    full = xp.concatenate(per_design, axis=0) / (2.0 * n) if per_design else None
    return means, full


def james_stein_toward_fit(d: Any, per_design: Any, p: Any, points: int, xp: Any) -> tuple[Any, Any]:
    """Positive-part James-Stein of ``d`` (``(n,)``) toward its least-squares fit on ``[1, p]``.

    ``per_design`` (``D x n``, ``D >= 2``) are the final means of ``D`` full designs
    (``2n`` points each); ``d`` averages ``points`` points, so its per-neuron variance is
    ``sigma^2 = s_D^2 (2n / points)`` with ``s_D^2`` the pooled between-design variance.
    Returns ``(fit + (1 - c)(d - fit), c)``, ``c = min(1, (n - 4) sigma^2 / ||d - fit||^2)``
    (Efron & Morris 1973; ``n - 4`` = neurons minus the two fitted parameters minus 2).
    """
    D, n = per_design.shape
    dbar = xp.mean(per_design, axis=0)
    var_design = xp.sum((per_design - dbar[None, :]) ** 2) / ((D - 1) * n)
    sigma2 = var_design * (2.0 * n / points)
    pc = p - xp.mean(p)
    beta = xp.sum(pc * (d - xp.mean(d))) / xp.maximum(xp.sum(pc * pc), 1e-300)
    fit = xp.mean(d) + beta * pc
    resid = xp.sum((d - fit) ** 2)
    c = xp.minimum(1.0, (n - 4) * sigma2 / xp.maximum(resid, 1e-300))
    return fit + (1.0 - c) * (d - fit), c
