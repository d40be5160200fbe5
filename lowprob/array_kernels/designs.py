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
* **Few rotations.** ``D`` designs use ``Q_a Q_b`` (``a < b``) from a pool of ``m ~ sqrt(2D)``
  Haar matrices (:func:`design_pairs`): each product is Haar and any two are independent, so
  the estimator's variance is that of independent designs, with ``m`` QRs and ``m n^2``
  Gaussian draws (WhestBench bills the draws' wall time as residual time).

A budget that does not cover whole designs ends with a partial design (its first ``k``
antithetic pairs, still unbiased). Standard library only (bundled into the WhestBench
export); ``rng`` is a numpy-like ``Generator`` of the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lowprob.array_kernels.activations import TRANSCENDENTAL_FLOPS, Activation, ArrayBackend

__all__ = ["DesignPlan", "chi_mean", "design_flops", "design_pairs", "haar_orthogonal",
           "james_stein_toward_fit", "plan_designs", "plan_flops", "pool_size",
           "rotated_cross_polytope_means"]


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
    # fix, transpose and cast (a few per element) + the first layer's Q^T W_1 (n (2n-1) n)
    return 16 * n * n + 2 * (2 * n**3 - (2 * n**3) // 3) + 6 * n * n + 4 * n + n * n * (2 * n - 1)


def pool_size(n_designs: int) -> int:
    """Haar matrices needed for ``n_designs`` designs: 1, else the least ``m`` with ``m(m-1)/2 >= D``."""
    if n_designs <= 1:
        return max(n_designs, 0)
    m = 2
    while m * (m - 1) // 2 < n_designs:
        m += 1
    return m


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
    return first + rest + phi + acc + radius + scale + concat + 8 * n * depth


def plan_flops(width: int, depth: int, act: Activation, n_designs: int, extra_pairs: int) -> int:
    """Planned FLOPs of ``n_designs`` full designs plus one of ``extra_pairs`` pairs."""
    n = width
    total = n_designs + (1 if extra_pairs else 0)
    gather = 8 * n * n * total  # selecting Q_b^T and Q_a^T W_1 for each design
    return (gather + n_designs * _pairs_flops(n, depth, n, act, act.homogeneous)
            + (_pairs_flops(n, depth, extra_pairs, act, act.homogeneous) if extra_pairs else 0)
            + pool_size(total) * _rotation_flops(n))


def design_flops(width: int, depth: int, act: Activation, pairs: int | None = None) -> int:
    """Planned FLOPs of one lone rotated cross-polytope (``pairs`` pairs; ``n`` = full)."""
    k = width if pairs is None else pairs
    return _rotation_flops(width) + _pairs_flops(width, depth, k, act, act.homogeneous)


def plan_designs(width: int, depth: int, budget: float, act: Activation) -> DesignPlan | None:
    """The most points that fit ``budget`` FLOPs, or ``None`` when not even one pair fits."""
    if budget <= 0:
        return None
    per = _pairs_flops(width, depth, width, act, act.homogeneous)
    D = int(budget // per)
    while D > 0 and plan_flops(width, depth, act, D, 0) > budget:
        D -= 1
    per_pair = _pairs_flops(width, depth, 1, act, act.homogeneous)
    k = int((budget - plan_flops(width, depth, act, D, 0)) // per_pair)
    k = max(0, min(k, width - 1))
    while k > 0 and plan_flops(width, depth, act, D, k) > budget:
        k -= 1
    if D == 0 and k == 0:
        return None
    return DesignPlan(D, k, int(plan_flops(width, depth, act, D, k)))


def haar_orthogonal(rng: Any, n: int, xp: Any, batch: int = 1, dtype: Any = None) -> Any:
    """``batch`` Haar ``(n, n)`` orthogonal matrices: QR of Gaussians, ``Q diag(sign R_ii)``.

    ``dtype`` (e.g. float32) is passed to the Gaussian draw; QR keeps it.
    """
    G = rng.standard_normal((batch, n, n)) if dtype is None else rng.standard_normal(
        (batch, n, n), dtype=dtype)
    Q, R = xp.linalg.qr(G)
    return Q * xp.sign(xp.diagonal(R, axis1=1, axis2=2))[:, None, :]


def _batch_sums(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, QbT: Any, M: Any,
    pairs: int, radius: float, dtype: Any, acc_dtype: Any, tail: tuple[int, float] | None,
) -> tuple[list[Any], Any, Any]:
    """``k`` designs in one batched pass: directions ``(Q_a Q_b) e_i``, ``i < pairs``.

    ``QbT`` is ``(k, pairs, n)`` (rows of ``Q_b^T``), ``M`` is ``(k, n, n)`` (``Q_a^T W_1``),
    so the first layer is ``r Q_b^T Q_a^T W_1``. Returns per-layer sums over all ``2 k pairs``
    points, the final-layer sums per design ``(k, n)`` and, with ``tail = (neuron,
    threshold)``, the hits ``h_L[neuron] > threshold`` per design (every point then has its
    own ``chi_n`` radius: exactly ``N(0, I)``). Rows are ordered ``(sign, design, pair)``.
    """
    xp = backend.xp
    k, _, n = QbT.shape
    H1 = xp.matmul(QbT, M).reshape(k * pairs, n)
    if act.homogeneous and tail is None:
        H1 = H1 * radius
        H = xp.concatenate([H1, -H1], axis=0)
    else:  # r ~ chi_n per point
        r = xp.sqrt(xp.sum(rng.standard_normal((2 * k * pairs, n), dtype=dtype) ** 2, axis=1))
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


def design_pairs(n_total: int) -> list[tuple[int, int]]:
    """``(a, b)`` pool indices of each design: ``[(0, 0)]`` for one design, else ``a < b``.

    ``Q_a Q_b`` is Haar for ``a != b`` (invariance of Haar measure), and two such products
    sharing at most one factor are independent, so designs are pairwise independent: the
    variance of their mean and the between-design variance estimate are those of
    independent designs, at the cost of ``m ~ sqrt(2 D)`` QRs instead of ``D``.
    """
    if n_total == 1:
        return [(0, 0)]
    m = pool_size(n_total)
    return [(a, b) for b in range(m) for a in range(b)][:n_total]


def rotated_cross_polytope_means(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, plan: DesignPlan,
    *, dtype: Any, acc_dtype: Any, tail: tuple[int, float] | None = None, max_rows: int = 16384,
) -> tuple[Any, Any]:
    """``(means (L, n), final-layer means of the full designs (D, n) or None)``.

    ``means`` averages all ``plan.points(n)`` points with equal weight (unbiased); the
    per-design final means give a between-design standard error. Designs come from a pool
    of Haar matrices (:func:`design_pairs`) and run ``max_rows // 2n`` at a time. With
    ``tail`` the second value is a list of ``(final means, hits, points)`` per batch.
    """
    xp = backend.xp
    n = weights[0].shape[0]
    radius = chi_mean(n)
    n_total = plan.n_designs + (1 if plan.extra_pairs else 0)
    pool = haar_orthogonal(rng, n, xp, pool_size(n_total), dtype)  # (m, n, n)
    PT = xp.swapaxes(pool, 1, 2)  # rows of Q^T: the directions of Q e_i
    M = xp.matmul(PT, weights[0])  # Q_a^T W_1, (m, n, n)
    ab = design_pairs(n_total)
    ia = [a for a, _ in ab]
    ib = [b for _, b in ab]
    if n_total == 1:  # a lone design uses Q_0 itself: directions Q_0 e_i, first layer Q_0^T W_1
        PT = xp.eye(n, dtype=dtype)[None]  # Q_b^T := I, so Q_b^T M_a = Q_0^T W_1
    total = [xp.zeros(n, dtype=acc_dtype) for _ in weights]
    per_design = []
    per_batch = max(1, max_rows // (2 * n))
    batches = [(j, min(per_batch, plan.n_designs - j), n) for j in range(0, plan.n_designs, per_batch)]
    if plan.extra_pairs:
        batches.append((plan.n_designs, 1, plan.extra_pairs))
    for j, k, pairs in batches:
        QbT = PT[ib[j:j + k]][:, :pairs, :] if n_total > 1 else PT[:, :pairs, :]
        Mk = M[ia[j:j + k]]
        sums, per, hits = _batch_sums(weights, act, backend, rng, QbT, Mk, pairs, radius, dtype,
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
