"""Dead-neuron pruning as a two-level (multilevel Monte Carlo) design estimator, on any backend.

For a bias-free ReLU net ``f`` (per-layer post-activations ``x_l``) and alive sets
``A_l`` (``A_0`` = all inputs, ``D_l`` the rest), the **pruned net** ``f_A`` keeps only the
alive neurons: layer ``l`` multiplies by the sub-block ``W_l[A_{l-1}, A_l]`` (gathered once)
and the dead neurons are exactly ``0``. ``f_A`` is again a bias-free ReLU net, so positively
homogeneous. Whatever ``A`` is,

    E[x_l] = E[x_l^A] + E[x_l - x_l^A]                                        (telescoping)

and both terms are estimated without bias by randomly rotated cross-polytopes
(exact radius for ReLU): **level 0** runs the pruned net alone on ``N_0`` points of randomly
rotated cross-polytopes (:mod:`lowprob.array_kernels.designs`), **level 1** runs the full
net on ``N_1`` antithetic pairs ``+-r g/|g|`` of its own (``g ~ N(0, I_n)``: no Haar
rotation to pay for, the correction is a rare-event term the design would not help) and
averages the difference ``x_l - x_l^A``. This is the multilevel Monte Carlo identity (Giles
2008, 2015) with two levels; the alive sets only change the variance and the cost, never
the mean.

**Level 1 costs about one full forward.** By induction on ``l``: while no dead neuron has
fired (``h_k[D_k] <= 0`` for ``k <= l``), the full net is zero on the dead neurons, so
``x_l = x_l^A`` on ``A_l`` and the difference is ``0``. A point *diverges* at the first layer
``l`` where some dead neuron fires; from there its pruned trajectory starts from
``x_l^A = x_l[A_l]`` (same inputs up to ``l - 1``) and runs through the sub-blocks. So level 1
runs the full net on all points, checks the dead columns, and runs the pruned net only on
the diverged points from their divergence layer on; its bill is counted from the observed
divergences.

The alive sets come from a **pilot A** independent of the main points: ``p_A`` antithetic
pairs ``+-r g/|g|`` (``g ~ N(0, I_n)``, cheaper than a Haar rotation) through the full
net; a neuron is dead when ``h_l <= 0`` at every pilot point (at least one neuron per
layer is kept). If pruning would save less than ``min_saving`` of the forward FLOPs the
estimator falls back to the plain design on what is left (the decision depends on pilot A
only, so the plain design stays unbiased). Otherwise a **pilot B** (``p_B`` fresh pairs,
level-1 style) measures the per-pair variances ``V_0 = tr Var(f_A^L)``, ``V_1 = tr
Var(f^L - f_A^L)``, ``V = tr Var(f^L)`` of the final layer (the scored one) and level 1's
per-pair cost ``C_1``; the remaining budget ``R`` is split by the MLMC rule ``N_l ∝
sqrt(V_l / C_l)``. The design's variance gain on smooth integrands (``g = design_gain``,
measured 0.35-0.56 on these nets) is credited to level 0 and to the plain design, not to the
rare-event correction: two-level variance ``(sqrt(g V_0 C_0) + sqrt(V_1 C_1))^2 / R``
against ``g V C / R`` for the plain design; the better one runs (fresh points either way).
Level 1 runs first with at least ``min_pairs`` pairs (so an unlucky pilot costs variance,
not bias) and level 0 gets what its observed bill leaves; level 0's points are independent
of level 1's, so the data-dependent ``N_0`` keeps it unbiased. Pilot points are never
reused in the estimate.

FLOP planning (:func:`pruned_pairs_flops`, :func:`divergence_flops`, ...) uses flopscope's
prices (float32 matmul ``m (2k-1) p``, Gaussian draw 16, gathers 4 per element) with
margins; tests check planned ``>=`` counted and within 10 %.

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
    "divergence_flops",
    "pilot_alive",
    "plan_pruned",
    "pruned_design_means",
    "pruned_pairs_flops",
]

Alive = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class PrunedPlan:
    """Budget of the pruned two-level estimator before the pilots have run.

    Attributes:
        pilot_a: pairs of pilot A (alive sets), ``0`` = no pruning (plain design only).
        pilot_b: pairs of pilot B (level variances and level-1 cost).
        budget: the whole budget the run must fit (pilots included).
        min_pairs: least level-1 pairs.
        min_saving: least relative forward saving for pruning to be tried (0.12: at
            256x8 the pilot finds ~7 % to save and the two-level run lost to the plain design;
            256x32 and 1024x16 save 20-30 %; ``benchmarks/RESULTS-prune.md``).
        design_gain: the design's variance factor on smooth integrands (module docstring).
    """

    pilot_a: int
    pilot_b: int
    budget: float
    min_pairs: int = 4
    min_saving: float = 0.12
    design_gain: float = 0.5


def pruned_pairs_flops(n: int, widths: list[int], pairs: int, *, sums: bool = True) -> int:
    """Planned FLOPs of ``pairs`` antithetic pairs of design points through a net of alive
    widths ``|A_1|, ..., |A_L|`` (``[n] * L``: the full net) from ``Q_b^T (Q_a^T W_1[:, A_1])``.

    ``sums``: per-layer column sums in float64 (level 0); without, the bare forward (level 1).
    """
    rows = 2 * pairs
    c = pairs * (2 * n - 1) * widths[0] + 3 * rows * widths[0] + 16 * n  # matmul, scale, concat
    for l, w in enumerate(widths):
        if l:
            c += rows * (2 * widths[l - 1] - 1) * w
        c += rows * w + ((2 * rows * w + 12 * w) if sums else 0)
    return c


def divergence_flops(n: int, widths: list[int], rows: int, counts: list[int]) -> int:
    """Planned FLOPs of level 1's dead-neuron checks and pruned trajectories for one batch of
    ``rows`` points, ``counts[l]`` of them diverged by layer ``l`` (observed)."""
    c = 0
    prev = 0
    for l, w in enumerate(widths):
        dead = n - w
        if dead:
            c += 5 * rows * dead + rows + 8
        if l and prev:
            c += prev * (2 * widths[l - 1] - 1) * w + 2 * prev * w
        new = counts[l] - prev
        if new:
            c += 4 * new * (n + w) + counts[l] * w + 8
        if counts[l]:
            c += 5 * counts[l] * n + 2 * counts[l] * w + 40 * n
        prev = counts[l]
    return c


def _sphere_flops(n: int, pairs: int) -> int:
    # Gaussian draw (16), squares and sum, sqrt and divide, radius scaling, first matmul, concat
    return (
        pairs * n * 23
        + pairs * (TRANSCENDENTAL_FLOPS + 1)
        + pairs * (2 * n - 1) * n
        + 2 * pairs * n
    )


def _pilot_a_flops(n: int, depth: int, pairs: int) -> int:
    rows = 2 * pairs
    return (
        _sphere_flops(n, pairs)
        + depth * (rows * n + 2 * rows * n + 8)
        + (depth - 1) * rows * (2 * n - 1) * n
    )


def _pilot_b_flops(n: int, widths: list[int], pairs: int, counts: list[int]) -> int:
    rows = 2 * pairs
    fwd = (
        _sphere_flops(n, pairs)
        + rows * n * len(widths)
        + (len(widths) - 1) * rows * (2 * n - 1) * n
    )
    gather = 4 * sum(n * w for w in widths) + 8 * n * len(widths)  # the sub-blocks
    last = (
        4 * counts[-1] * (n + widths[-1]) + 12 * rows * n + 40 * n
    )  # diff rows, pair means, variances
    return fwd + gather + divergence_flops(n, widths, rows, counts) + last


def _rotations_flops(n: int, plan: tuple[int, int]) -> int:
    m = plan[0] + (1 if plan[1] else 0)
    return pool_size(m) * _rotation_flops(n) + 8 * n * n * m if m else 0


def _level0_flops(n: int, widths: list[int], plan: tuple[int, int]) -> int:
    D, k = plan
    return (
        _rotations_flops(n, plan)
        + D * pruned_pairs_flops(n, widths, n)
        + (pruned_pairs_flops(n, widths, k) if k else 0)
        + len(widths) * 24 * n
    )


def _sphere_forward_flops(n: int, depth: int, pairs: int) -> int:
    """Bare full forward (no sums) of ``pairs`` antithetic pairs ``+-r g/|g|``."""
    rows = 2 * pairs
    return _sphere_flops(n, pairs) + depth * rows * n + (depth - 1) * rows * (2 * n - 1) * n


def _level1_fixed_flops(n: int, depth: int, pairs: int, max_rows: int) -> int:
    per = max(1, max_rows // 2)
    return depth * 8 * n + sum(
        _sphere_forward_flops(n, depth, min(per, pairs - j)) for j in range(0, pairs, per)
    )


def plan_pruned(
    width: int, depth: int, budget: float, *, pilot_share: float = 0.02, min_pairs: int = 4
) -> PrunedPlan | None:
    """Pilot sizes for ``budget`` FLOPs: ``pilot_share`` of it for each pilot (at least
    ``min_pairs``, at most ``width`` pairs each). ``PrunedPlan(0, 0, budget)`` (plain design)
    when the pilots and a minimal two-level run might not fit; ``None`` when not even a
    plain design pair fits."""
    if plan_designs(width, depth, budget, RELU) is None:
        return None
    full = [width] * depth
    p = max(min_pairs, min(width, int(pilot_share * budget // pruned_pairs_flops(width, full, 1))))
    worst = [2 * p] * depth  # every pilot-B point diverging at layer 1
    need = (
        _pilot_a_flops(width, depth, p)
        + _pilot_b_flops(width, full, p, worst)
        + _level1_fixed_flops(width, depth, min_pairs, 2 * min_pairs)
        + divergence_flops(width, full, 2 * min_pairs, [2 * min_pairs] * depth)
        + _level0_flops(width, full, (0, 1))
    )
    if (
        need > budget
        or plan_designs(width, depth, budget - _pilot_a_flops(width, depth, p), RELU) is None
    ):
        return PrunedPlan(0, 0, float(budget), min_pairs)
    return PrunedPlan(p, p, float(budget), min_pairs)


def _from_pairs(P: int, n: int) -> tuple[int, int]:
    return P // n, P % n


def _sphere_first(rng: Any, w1: Any, pairs: int, xp: Any, dtype: Any) -> Any:
    """First-layer pre-activations ``(2 pairs, n)`` of the points ``+-r g/|g|`` (``g ~ N(0,
    I_n)``, ``r = E chi_n``): one matmul per pair, ``(-x) W_1 = -(x W_1)``."""
    n = w1.shape[0]
    g = rng.standard_normal((pairs, n), dtype=dtype)
    H = (g * (chi_mean(n) / xp.sqrt(xp.sum(g * g, axis=1)))[:, None]) @ w1
    return xp.concatenate([H, -H], axis=0)


def pilot_alive(
    weights: list[Any], act: Activation, backend: ArrayBackend, rng: Any, pairs: int, *, dtype: Any
) -> Alive:
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


def _sub_blocks(weights: list[Any], alive: Alive, xp: Any) -> list[Any]:
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


def _difference(
    X1: Any,
    weights: list[Any],
    subs: list[Any],
    alive: Alive,
    act: Activation,
    backend: ArrayBackend,
    acc_dtype: Any,
) -> tuple[list[Any | None], list[int], Any, Any]:
    """Level 1 on the points whose first-layer post-activations are ``X1`` (rows).

    Runs the full net, and the pruned net only on the points that diverged (module
    docstring). Returns per-layer column sums of ``x_l - x_l^A`` (``None`` while no point has
    diverged), the diverged counts per layer, the final full ``x_L`` and the final
    difference rows of the diverged points with their row indices ``(rows_div, n)`` (or
    ``None``).
    """
    xp = backend.xp
    n = X1.shape[1]
    rows = X1.shape[0]
    seen = [False] * rows
    div: list[int] = []
    X, XA = X1, None
    sums: list[Any | None] = []
    counts: list[int] = []
    for l, al in enumerate(alive):
        if l:
            X = act.forward(X @ weights[l], backend)
            if XA is not None:
                XA = act.forward(XA @ subs[l], backend)
        if len(al) < n:
            sal = set(al)
            dead = [i for i in range(n) if i not in sal]
            fire = (xp.max(X[:, xp.asarray(dead)], axis=1) > 0).tolist()
            new = [i for i, b in enumerate(fire) if b and not seen[i]]
            if new:
                for i in new:
                    seen[i] = True
                XN = X[xp.asarray(new)][:, xp.asarray(al)]
                XA = XN if XA is None else xp.concatenate([XA, XN], axis=0)
                div += new
        counts.append(len(div))
        if div:
            s_full = xp.asarray(xp.sum(X[xp.asarray(div)], axis=0), dtype=acc_dtype)
            s_pruned = xp.asarray(xp.sum(XA, axis=0), dtype=acc_dtype)
            sums.append(s_full - _scatter(s_pruned, al, n, xp))
        else:
            sums.append(None)
    last = (X[xp.asarray(div)] - _scatter(XA, alive[-1], n, xp), div) if div else None
    return sums, counts, X, last


def _pilot_variances(
    weights: list[Any],
    subs: list[Any],
    alive: Alive,
    act: Activation,
    backend: ArrayBackend,
    rng: Any,
    pairs: int,
    *,
    dtype: Any,
    acc_dtype: Any,
) -> tuple[float, float, float, list[int]]:
    """Per-pair final-layer variances ``(tr Var f_A, tr Var (f - f_A), tr Var f)`` and the
    diverged counts per layer of pilot B."""
    xp = backend.xp
    n = weights[0].shape[0]
    X1 = act.forward(_sphere_first(rng, weights[0], pairs, xp, dtype), backend)
    _, counts, XL, last = _difference(X1, weights, subs, alive, act, backend, acc_dtype)
    if last is None:
        d = xp.zeros((2 * pairs, n), dtype=XL.dtype)
    else:
        pos = [len(last[1])] * (2 * pairs)
        for j, i in enumerate(last[1]):
            pos[i] = j
        d = xp.concatenate([last[0], xp.zeros((1, n), dtype=XL.dtype)], axis=0)[xp.asarray(pos)]
    f = xp.asarray(xp.sum(XL.reshape(2, pairs, n), axis=0), dtype=acc_dtype) * 0.5
    dp = xp.asarray(xp.sum(d.reshape(2, pairs, n), axis=0), dtype=acc_dtype) * 0.5
    ddof = 1 if pairs > 1 else 0
    v0 = float(xp.sum(xp.var(f - dp, axis=0, ddof=ddof)))
    v1 = float(xp.sum(xp.var(dp, axis=0, ddof=ddof)))
    v = float(xp.sum(xp.var(f, axis=0, ddof=ddof)))
    return v0, v1, v, counts


def _design_batches(
    w1: Any,
    act: Activation,
    backend: ArrayBackend,
    rng: Any,
    plan: tuple[int, int],
    *,
    dtype: Any,
    max_rows: int,
) -> Any:
    """Yield the first-layer post-activations ``relu(r Q_b^T (Q_a^T w1))`` (rows ordered
    ``(sign, design, pair)``) of ``plan = (designs, extra pairs)`` rotated cross-polytopes,
    ``max_rows // 2n`` designs at a time (pool and batching of
    :func:`~lowprob.array_kernels.designs.rotated_cross_polytope_means`)."""
    xp = backend.xp
    n = w1.shape[0]
    D, k = plan
    n_total = D + (1 if k else 0)
    pool = haar_orthogonal(rng, n, xp, pool_size(n_total), dtype)
    PT = xp.swapaxes(pool, 1, 2)
    M = xp.matmul(PT, w1)
    ab = design_pairs(n_total)
    ia = [a for a, _ in ab]
    ib = [b for _, b in ab]
    if n_total == 1:
        PT = xp.eye(n, dtype=dtype)[None]
    per_batch = max(1, max_rows // (2 * n))
    batches = [(j, min(per_batch, D - j), n) for j in range(0, D, per_batch)]
    if k:
        batches.append((D, 1, k))
    radius = chi_mean(n)
    for j, kk, pairs in batches:
        QbT = PT[ib[j : j + kk]][:, :pairs, :] if n_total > 1 else PT[:, :pairs, :]
        H1 = xp.matmul(QbT, M[ia[j : j + kk]]).reshape(kk * pairs, M.shape[2]) * radius
        yield act.forward(xp.concatenate([H1, -H1], axis=0), backend)


def _add(tot: list[Any], new: list[Any | None]) -> list[Any]:
    return [t if s is None else t + s for t, s in zip(tot, new, strict=True)]


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

    ``act`` must be ReLU (dead neurons are exactly zero; radius exact). ``info``: ``"mode"``
    (``"two-level"`` or ``"plain"``, the fallback), ``"alive"`` (counts per layer),
    ``"dead"`` (indices per layer), ``"variances"`` (pilot B's ``(V_0, V_1, V)``),
    ``"level0"`` (``(designs, extra pairs)``), ``"level1"`` (antithetic pairs), ``"diverged"`` (level-1 points
    that diverged) and ``"flops"``, the planned bill (an upper bound on flopscope's count,
    checked in tests).
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
        "diverged": None,
    }
    spent = 0
    if plan.pilot_a:
        alive = pilot_alive(weights, act, backend, rng, plan.pilot_a, dtype=dtype)
        widths = [len(a) for a in alive]
        info["alive"] = widths
        info["dead"] = tuple(tuple(sorted(set(range(n)) - set(a))) for a in alive)
        spent = _pilot_a_flops(n, L, plan.pilot_a)
        full = [n] * L
        c = pruned_pairs_flops(n, full, n) / n
        c0 = pruned_pairs_flops(n, widths, n) / n
        if 1.0 - c0 / c >= plan.min_saving:
            subs = _sub_blocks(weights, alive, xp)
            v0, v1, v, counts = _pilot_variances(
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
            spent += _pilot_b_flops(n, widths, plan.pilot_b, counts)
            R = plan.budget - spent
            # per-pair costs: level 1 = bare full forward + observed divergence work
            c1 = (
                _sphere_forward_flops(n, L, n) / n
                + divergence_flops(n, widths, 2 * plan.pilot_b, counts) / plan.pilot_b
            )
            c1_worst = (
                _sphere_forward_flops(n, L, n) + divergence_flops(n, widths, 2 * n, [2 * n] * L)
            ) / n
            g = plan.design_gain
            s = math.sqrt(g * max(v0, 0.0) * c0) + math.sqrt(max(v1, 0.0) * c1)
            if g * v * c > s * s:
                P1 = max(plan.min_pairs, int(R * math.sqrt(max(v1, 0.0) / c1) / s))
                room = R - _level0_flops(n, widths, (0, 1)) - L * 8 * n
                P1 = max(plan.min_pairs, min(P1, int(0.9 * room // c1_worst)))
                tot1 = [xp.zeros(n, dtype=acc_dtype) for _ in weights]
                cost1 = _level1_fixed_flops(n, L, P1, max_rows)
                diverged = 0
                per = max(1, max_rows // 2)
                for j in range(0, P1, per):
                    H1 = _sphere_first(rng, weights[0], min(per, P1 - j), xp, dtype)
                    X1 = act.forward(H1, backend)
                    sums, cnt, _, _ = _difference(X1, weights, subs, alive, act, backend, acc_dtype)
                    tot1 = _add(tot1, sums)
                    cost1 += divergence_flops(n, widths, X1.shape[0], cnt)
                    diverged += cnt[-1]
                R0 = R - cost1
                P0 = max(1, int(R0 // c0))
                while P0 > 1 and _level0_flops(n, widths, _from_pairs(P0, n)) > R0:
                    P0 = max(1, int(P0 * 0.995) - 1)
                p0 = _from_pairs(P0, n)
                tot0 = [xp.zeros(len(a), dtype=acc_dtype) for a in alive]
                for X1 in _design_batches(
                    subs[0], act, backend, rng, p0, dtype=dtype, max_rows=max_rows
                ):
                    X = X1
                    for l in range(L):
                        if l:
                            X = act.forward(X @ subs[l], backend)
                        tot0[l] = tot0[l] + xp.asarray(xp.sum(X, axis=0), dtype=acc_dtype)
                N0, N1 = float(2 * P0), float(2 * P1)
                rows = [
                    _scatter(a0 / N0, al, n, xp) + d1 / N1
                    for a0, d1, al in zip(tot0, tot1, alive, strict=True)
                ]
                info.update(
                    mode="two-level",
                    level0=p0,
                    level1=P1,
                    diverged=diverged,
                    flops=spent + cost1 + _level0_flops(n, widths, p0),
                )
                return xp.stack(rows, axis=0), info
    dplan = plan_designs(n, L, plan.budget - spent, act)
    if dplan is None:  # pragma: no cover - plan_pruned leaves room for a plain design
        raise ValueError("budget left after the pilots covers no design pair")
    means, _ = rotated_cross_polytope_means(
        weights, act, backend, rng, dplan, dtype=dtype, acc_dtype=acc_dtype, max_rows=max_rows
    )
    info.update(level0=(dplan.n_designs, dplan.extra_pairs), flops=spent + dplan.flops)
    return means, info
