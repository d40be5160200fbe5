"""Dead-neuron pruning as a two-level (multilevel Monte Carlo) design estimator, on any backend.

For a bias-free ReLU net ``f`` (per-layer post-activations ``x_l``) and alive sets
``A_l`` (``A_0`` = all inputs), the **pruned net** ``f_A`` keeps only the alive neurons:
layer ``l`` multiplies by the sub-block ``W_l[A_{l-1}, A_l]`` (gathered once) and the dead
neurons are exactly ``0``. ``f_A`` is again a bias-free ReLU net, so positively homogeneous.
Whatever ``A`` is,

    E[x_l] = E[x_l^A] + E[x_l - x_l^A]                                        (telescoping)

and both terms are estimated without bias by randomly rotated cross-polytopes
(:mod:`lowprob.array_kernels.designs`, exact radius for ReLU): **level 0** runs the pruned
net alone on ``N_0`` points, **level 1** runs the full and the pruned net on the *same*
``N_1`` points (independent of level 0's) and averages the difference. This is the
multilevel Monte Carlo identity (Giles 2008, 2015) with two levels; the alive sets only
change the variance and the cost, never the mean.

The alive sets come from a **pilot A** independent of the main points: ``p_A`` antithetic
pairs ``+-r g/|g|`` (``g ~ N(0, I_n)``, cheaper than a Haar rotation) through the full
net; a neuron is dead when ``h_l <= 0`` at every pilot point (at least one neuron per
layer is kept). If pruning would save less than ``min_saving`` of the forward FLOPs the
estimator falls back to the plain design on what is left (the decision depends on pilot A
only, so the plain design stays unbiased). Otherwise a **pilot B** (``p_B`` fresh pairs,
full and pruned) measures the per-pair variances ``V_0 = tr Var(f_A^L)``, ``V_1 = tr
Var(f^L - f_A^L)`` and ``V = tr Var(f^L)`` of the final layer (the scored one), and the
remaining budget ``R`` is split by the MLMC rule ``N_l ∝ sqrt(V_l / C_l)`` (``C_l`` the
counted per-pair costs), giving variance ``(sqrt(V_0 C_0) + sqrt(V_1 C_1))^2 / R`` against
``V C / R`` for the plain design; the better one runs. Level 1 always gets at least
``min_pairs`` pairs, so an unlucky pilot (a rarely-active neuron never seen) costs variance,
not bias. The variances are per antithetic pair: the design's degree-3 exactness is not
credited to either level (a documented approximation of the split, not of the estimate).
Pilot points are never reused in the estimate.

FLOP planning (:func:`pruned_pairs_flops`, :func:`levels_flops`, :func:`pilot_flops`) uses
flopscope's prices (float32 matmul ``m (2k-1) p``, Gaussian draw 16, gathers 4 per element)
with margins; tests check planned ``>=`` counted and within 10 %.

Standard library only (bundled into the WhestBench export); ``backend.xp`` is numpy or
``flopscope.numpy``; ``rng`` a numpy-like ``Generator`` of the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lowprob.array_kernels.activations import RELU, TRANSCENDENTAL_FLOPS, Activation, ArrayBackend
from lowprob.array_kernels.designs import (
    _rotation_flops,
    chi_mean,
    design_pairs,
    haar_orthogonal,
    plan_designs,
    pool_size,
    rotated_cross_polytope_means,
)

__all__ = [
    "PrunedPlan",
    "levels_flops",
    "pilot_alive",
    "pilot_flops",
    "plan_pruned",
    "pruned_design_means",
    "pruned_pairs_flops",
    "split_levels",
]


@dataclass(frozen=True)
class PrunedPlan:
    """Budget of the pruned two-level estimator before the pilot has run.

    Attributes:
        pilot_a: pairs of pilot A (alive sets), ``0`` = no pruning (plain design only).
        pilot_b: pairs of pilot B (level variances).
        budget: the whole budget the plan must fit (pilots included).
        min_pairs: least level-1 pairs.
        min_saving: least relative forward saving for pruning to be tried.
    """

    pilot_a: int
    pilot_b: int
    budget: float
    min_pairs: int = 4
    min_saving: float = 0.03


def _widths(n: int, alive: tuple[tuple[int, ...], ...] | None, depth: int) -> list[int]:
    return [n] * depth if alive is None else [len(a) for a in alive]


def pruned_pairs_flops(n: int, widths: list[int], pairs: int, *, full: bool = False) -> int:
    """Planned forward FLOPs of ``pairs`` antithetic pairs through a (pruned) net.

    ``widths`` are the alive counts ``|A_1|, ..., |A_L|`` (``[n] * L``: the full net). With
    ``full`` the pairs go through the full net too and the pruned net starts from the
    gathered ``x_1[:, A_1]`` (level 1). ReLU, float32 forward, float64 sums.
    """
    rows = 2 * pairs

    def one(ws: list[int]) -> int:
        c = 0
        for l, w in enumerate(ws):
            if l:
                c += rows * (2 * ws[l - 1] - 1) * w  # matmul
            c += 3 * rows * w + 12 * w  # relu, column sum, cast and accumulate
        return c

    first = pairs * (2 * n - 1) * (n if full else widths[0]) + 3 * rows * (n if full else widths[0])
    if not full:
        return first + one(widths) + 16 * n
    return first + one([n] * len(widths)) + one(widths) + 5 * rows * widths[0] + 16 * n


def _sphere_pairs_flops(n: int, pairs: int) -> int:
    # Gaussian draw (16), squares and sum (2), sqrt and divide, radius scaling, concatenation
    return (
        pairs * n * 16
        + 2 * pairs * n
        + pairs * (TRANSCENDENTAL_FLOPS + 1)
        + 3 * pairs * n
        + 2 * pairs * n
    )


def pilot_flops(
    n: int, depth: int, pairs_a: int, pairs_b: int, widths: list[int] | None = None
) -> int:
    """Planned FLOPs of pilot A (``pairs_a`` full-net pairs) and pilot B (``pairs_b`` pairs
    through both nets, variances); ``widths`` defaults to the full net (an upper bound)."""
    ws = [n] * depth if widths is None else widths
    a = (
        _sphere_pairs_flops(n, pairs_a)
        + pruned_pairs_flops(n, [n] * depth, pairs_a)
        + depth * (2 * pairs_a * n + 2 * n)
    )  # column max and comparison
    gather = 4 * sum(n * w for w in ws) + 8 * n * depth
    if not pairs_b:
        return a
    b = (
        _sphere_pairs_flops(n, pairs_b)
        + pruned_pairs_flops(n, ws, pairs_b, full=True)
        + 12 * pairs_b * n
        + 40 * n
    )  # pair means, difference, three variances
    return a + gather + b


def levels_flops(n: int, widths: list[int], plan0: tuple[int, int], plan1: tuple[int, int]) -> int:
    """Planned FLOPs of level 0 (pruned) and level 1 (full and pruned), each ``(designs,
    extra pairs)`` of rotated cross-polytopes, plus the final scatter to ``(L, n)``."""
    total = 0
    for (D, k), full in ((plan0, False), (plan1, True)):
        m = D + (1 if k else 0)
        if m == 0:
            continue
        total += pool_size(m) * _rotation_flops(n) + 8 * n * n * m
        total += D * pruned_pairs_flops(n, widths, n, full=full)
        total += pruned_pairs_flops(n, widths, k, full=full) if k else 0
    return total + len(widths) * 24 * n


def plan_pruned(
    width: int, depth: int, budget: float, *, pilot_share: float = 0.02, min_pairs: int = 4
) -> PrunedPlan | None:
    """Pilot sizes for ``budget`` FLOPs: ``pilot_share`` of it for each pilot (at least
    ``min_pairs``, at most ``width`` pairs each). ``PrunedPlan(0, 0, budget)`` when the
    pilots and a minimal two-level run do not fit but a plain design does; ``None`` when not
    even that fits."""
    if plan_designs(width, depth, budget, RELU) is None:
        return None
    per = pruned_pairs_flops(width, [width] * depth, 1)
    p = max(min_pairs, min(width, int(pilot_share * budget // per)))
    need = pilot_flops(width, depth, p, p) + levels_flops(
        width, [width] * depth, (0, min_pairs), (0, min_pairs)
    )
    if need > budget:
        return PrunedPlan(0, 0, float(budget), min_pairs)
    return PrunedPlan(p, p, float(budget), min_pairs)


def _to_pairs(D: int, k: int, n: int) -> int:
    return D * n + k


def _from_pairs(P: int, n: int) -> tuple[int, int]:
    return P // n, P % n


def split_levels(
    n: int, widths: list[int], budget: float, v0: float, v1: float, v: float, min_pairs: int = 4
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """MLMC split of ``budget`` FLOPs: ``((D_0, k_0), (D_1, k_1))`` designs and extra pairs of
    level 0 and level 1, or ``None`` when the plain design's predicted variance ``v C`` is
    not above the two-level ``(sqrt(v_0 C_0) + sqrt(v_1 C_1))^2``.

    ``v0``, ``v1``, ``v`` are per-pair variances (pilot B); ``C_0``, ``C_1``, ``C`` the planned
    per-pair forward costs. ``N_l = R sqrt(v_l / C_l) / sum_k sqrt(v_k C_k)`` (Giles 2015,
    eq. 1.8); level 1 gets at least ``min_pairs`` pairs; then both are trimmed to fit.
    """
    c0 = pruned_pairs_flops(n, widths, n) / n
    c1 = pruned_pairs_flops(n, widths, n, full=True) / n
    c = pruned_pairs_flops(n, [n] * len(widths), n) / n
    s = math.sqrt(max(v0, 0.0) * c0) + math.sqrt(max(v1, 0.0) * c1)
    if v * c <= s * s:
        return None
    P1 = max(min_pairs, int(budget * math.sqrt(max(v1, 0.0) / c1) / s)) if s > 0 else min_pairs
    P0 = max(1, int((budget - P1 * c1) // c0))
    while P0 > 1 and levels_flops(n, widths, _from_pairs(P0, n), _from_pairs(P1, n)) > budget:
        P0 = max(1, int(P0 * 0.995) - 1)
    if levels_flops(n, widths, _from_pairs(P0, n), _from_pairs(P1, n)) > budget:
        return None
    return _from_pairs(P0, n), _from_pairs(P1, n)


def _sphere_first(rng: Any, w1: Any, pairs: int, xp: Any, dtype: Any) -> Any:
    """First-layer pre-activations ``(2 pairs, n)`` of the points ``+-r g/|g|`` (``g ~ N(0,
    I_n)``, ``r = E chi_n``): one matmul per pair, ``(-x) W_1 = -(x W_1)``."""
    n = w1.shape[0]
    g = rng.standard_normal((pairs, n), dtype=dtype)
    H = (g * (chi_mean(n) / xp.sqrt(xp.sum(g * g, axis=1)))[:, None]) @ w1
    return xp.concatenate([H, -H], axis=0)


def _sums(
    X: Any, weights: list[Any], act: Activation, backend: ArrayBackend, acc_dtype: Any
) -> tuple[list[Any], Any]:
    """Per-layer column sums of the post-activations from ``X = x_1`` on; returns the last ``x_L``."""
    xp = backend.xp
    sums = [xp.asarray(xp.sum(X, axis=0), dtype=acc_dtype)]
    for w in weights[1:]:
        X = act.forward(X @ w, backend)
        sums.append(xp.asarray(xp.sum(X, axis=0), dtype=acc_dtype))
    return sums, X


def pilot_alive(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, pairs: int, *, dtype: Any
) -> tuple[tuple[int, ...], ...]:
    """Alive sets ``A_l``: neurons with ``h_l > 0`` at some of ``2 pairs`` pilot points
    (``+-r g/|g|``); a layer with none keeps its neuron ``0``."""
    xp = backend.xp
    X = None
    alive = []
    for w in weights:
        X = act.forward(_sphere_first(rng, w, pairs, xp, dtype) if X is None else X @ w, backend)
        on = (xp.max(X, axis=0) > 0).tolist()
        idx = tuple(i for i, b in enumerate(on) if b)
        alive.append(idx if idx else (0,))
    return tuple(alive)


def _sub_blocks(weights: list[Any], alive: tuple[tuple[int, ...], ...], xp: Any) -> list[Any]:
    """``W_1[:, A_1]`` and ``W_l[A_{l-1}, A_l]``, gathered once."""
    out = [weights[0][:, xp.asarray(alive[0])]]
    for l in range(1, len(weights)):
        rows = xp.asarray(alive[l - 1])[:, None]
        out.append(weights[l][rows, xp.asarray(alive[l])[None, :]])
    return out


def _positions(alive: tuple[int, ...], n: int) -> list[int]:
    """``pos[i]`` = index of neuron ``i`` in ``alive``, ``len(alive)`` (a zero slot) if dead."""
    pos = [len(alive)] * n
    for j, i in enumerate(alive):
        pos[i] = j
    return pos


def _scatter(v: Any, alive: tuple[int, ...], n: int, xp: Any) -> Any:
    """``(..., |A|)`` -> ``(..., n)`` with zeros off ``A`` (concatenate a zero, then gather)."""
    z = xp.zeros((*v.shape[:-1], 1), dtype=v.dtype)
    return xp.concatenate([v, z], axis=-1)[..., xp.asarray(_positions(alive, n))]


def _pilot_variances(
    weights: list[Any],
    subs: list[Any],
    alive: tuple[tuple[int, ...], ...],
    act: Activation,
    backend: ArrayBackend,
    rng: Any,
    pairs: int,
    *,
    dtype: Any,
    acc_dtype: Any,
) -> tuple[float, float, float]:
    """Per-pair final-layer variances ``(tr Var f_A, tr Var (f - f_A), tr Var f)`` (pilot B)."""
    xp = backend.xp
    n = weights[0].shape[0]
    X1 = act.forward(_sphere_first(rng, weights[0], pairs, xp, dtype), backend)
    _, XL = _sums(X1, weights, act, backend, acc_dtype)
    _, XA = _sums(X1[:, xp.asarray(alive[0])], subs, act, backend, acc_dtype)
    f = xp.asarray(xp.sum(XL.reshape(2, pairs, n), axis=0), dtype=acc_dtype) * 0.5
    fa = xp.asarray(xp.sum(XA.reshape(2, pairs, len(alive[-1])), axis=0), dtype=acc_dtype) * 0.5
    fa_full = _scatter(fa, alive[-1], n, xp)
    ddof = 1 if pairs > 1 else 0
    v0 = float(xp.sum(xp.var(fa, axis=0, ddof=ddof)))
    v1 = float(xp.sum(xp.var(f - fa_full, axis=0, ddof=ddof)))
    v = float(xp.sum(xp.var(f, axis=0, ddof=ddof)))
    return v0, v1, v


def _level_sums(
    weights: list[Any],
    subs: list[Any],
    alive: tuple[tuple[int, ...], ...],
    act: Activation,
    backend: ArrayBackend,
    rng: Any,
    plan: tuple[int, int],
    full: bool,
    *,
    dtype: Any,
    acc_dtype: Any,
    max_rows: int,
) -> tuple[list[Any] | None, list[Any], int]:
    """Column sums over one level's rotated cross-polytopes ``(D, k)``: ``(full-net sums or
    None, pruned-net sums, points)``. Designs ``Q_a Q_b`` from a Haar pool
    (:func:`~lowprob.array_kernels.designs.design_pairs`); first layer ``r Q_b^T (Q_a^T W_1)``."""
    xp = backend.xp
    n = weights[0].shape[0]
    D, k = plan
    n_total = D + (1 if k else 0)
    pool = haar_orthogonal(rng, n, xp, pool_size(n_total), dtype)
    PT = xp.swapaxes(pool, 1, 2)
    M = xp.matmul(PT, weights[0] if full else subs[0])  # (m, n, n) or (m, n, |A_1|)
    ab = design_pairs(n_total)
    ia = [a for a, _ in ab]
    ib = [b for _, b in ab]
    if n_total == 1:
        PT = xp.eye(n, dtype=dtype)[None]
    tot_f = [xp.zeros(n, dtype=acc_dtype) for _ in weights] if full else None
    tot_a = [xp.zeros(len(a), dtype=acc_dtype) for a in alive]
    per_batch = max(1, max_rows // (2 * n))
    batches = [(j, min(per_batch, D - j), n) for j in range(0, D, per_batch)]
    if k:
        batches.append((D, 1, k))
    idx1 = xp.asarray(alive[0])
    radius = chi_mean(n)
    for j, kk, pairs in batches:
        QbT = PT[ib[j : j + kk]][:, :pairs, :] if n_total > 1 else PT[:, :pairs, :]
        H1 = xp.matmul(QbT, M[ia[j : j + kk]]).reshape(kk * pairs, M.shape[2]) * radius
        X1 = act.forward(xp.concatenate([H1, -H1], axis=0), backend)
        if full:
            sf, _ = _sums(X1, weights, act, backend, acc_dtype)
            tot_f = [t + s for t, s in zip(tot_f, sf, strict=True)]
            X1 = X1[:, idx1]
        sa, _ = _sums(X1, subs, act, backend, acc_dtype)
        tot_a = [t + s for t, s in zip(tot_a, sa, strict=True)]
    return tot_f, tot_a, 2 * (D * n + k)


def pruned_design_means(
    weights: list[Any],
    act: Activation,
    backend: ArrayBackend,
    rng: Any,
    plan: PrunedPlan,
    *,
    dtype: Any,
    acc_dtype: Any,
    max_rows: int = 16384,
) -> tuple[Any, dict[str, Any]]:
    """``(means (L, n), info)`` of the two-level pruned design estimator (module docstring).

    ``act`` must be ReLU (dead neurons are exactly zero; radius exact). ``info`` holds the
    alive counts per layer, the dead neurons per layer, the pilot variances ``(V_0, V_1, V)``, the level plans ``(designs, extra pairs)``
    and ``"mode"``: ``"two-level"`` or ``"plain"`` (fallback). The planned bill is
    ``info["flops"]`` (an upper bound on flopscope's count, checked in tests).
    """
    xp = backend.xp
    n = weights[0].shape[0]
    L = len(weights)
    info: dict[str, Any] = {
        "mode": "plain",
        "alive": None,
        "dead": None,
        "variances": None,
        "level0": None,
        "level1": None,
    }
    spent = 0
    if plan.pilot_a:
        alive = pilot_alive(weights, act, backend, rng, plan.pilot_a, dtype=dtype)
        widths = [len(a) for a in alive]
        info["alive"] = widths
        info["dead"] = tuple(tuple(sorted(set(range(n)) - set(a))) for a in alive)
        spent = pilot_flops(n, L, plan.pilot_a, 0)
        saving = 1.0 - pruned_pairs_flops(n, widths, 1) / pruned_pairs_flops(n, [n] * L, 1)
        if saving >= plan.min_saving:
            subs = _sub_blocks(weights, alive, xp)
            v0, v1, v = _pilot_variances(
                weights,
                subs,
                alive,
                act,
                backend,
                rng,
                plan.pilot_b,
                dtype=dtype,
                acc_dtype=acc_dtype,
            )
            info["variances"] = (v0, v1, v)
            spent = pilot_flops(n, L, plan.pilot_a, plan.pilot_b, widths)
            split = split_levels(n, widths, plan.budget - spent, v0, v1, v, plan.min_pairs)
            if split is not None:
                (p0, p1) = split
                _, sa0, N0 = _level_sums(
                    weights,
                    subs,
                    alive,
                    act,
                    backend,
                    rng,
                    p0,
                    False,
                    dtype=dtype,
                    acc_dtype=acc_dtype,
                    max_rows=max_rows,
                )
                sf1, sa1, N1 = _level_sums(
                    weights,
                    subs,
                    alive,
                    act,
                    backend,
                    rng,
                    p1,
                    True,
                    dtype=dtype,
                    acc_dtype=acc_dtype,
                    max_rows=max_rows,
                )
                rows = [
                    _scatter(a0 / float(N0) - a1 / float(N1), al, n, xp) + f1 / float(N1)
                    for a0, a1, f1, al in zip(sa0, sa1, sf1, alive, strict=True)
                ]
                info.update(
                    mode="two-level",
                    level0=p0,
                    level1=p1,
                    flops=spent + levels_flops(n, widths, p0, p1),
                )
                return xp.stack(rows, axis=0), info
    dplan = plan_designs(n, L, plan.budget - spent, act)
    if dplan is None:
        raise ValueError(
            "budget left after the pilot covers no design pair; plan_pruned guarantees it does"
        )
    means, _ = rotated_cross_polytope_means(
        weights, act, backend, rng, dplan, dtype=dtype, acc_dtype=acc_dtype, max_rows=max_rows
    )
    info.update(level0=(dplan.n_designs, dplan.extra_pairs), flops=spent + dplan.flops)
    return means, info
