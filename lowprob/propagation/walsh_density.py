"""Walsh-coefficient activation models on the cube for #3-SAT (the ``sat-walsh`` schemes).

Representation (:class:`WalshDensity`). The unnormalised density of the surviving mass on
``{-1, 1}^n`` (uniform base measure) is ``g = sum_{S in masks} g_S chi_S`` with Walsh
characters ``chi_S`` (:mod:`lowprob.sketching.walsh`); ``E[g] = g_{{}}``.

Deduction (exact). A clause with literals ``(v_j, s_j)``, ``j < w``, is the ``2^w``-term
Walsh polynomial ``c = 1 - 2^-w prod_j (1 - s_j x_{v_j}) = sum_{T subset [w]} a_T chi_{V_T}``
(``a_{{}} = 1 - 2^-w``, ``a_T = -2^-w (-1)^{|T|} prod_{j in T} s_j``, ``V_T`` the XOR of the
variables in ``T``), so ``(g c)_S = sum_T a_T g_{S xor V_T}``. The product is kept lazy
(:class:`WalshProduct`) until the projector says which ``S`` it needs.

Projectors (both minimise the claim-weighted error ``sum_S lambda_{|S|} (g_S - g~_S)^2``,
the squared MMD of DESIGN.md section 1, because the random-clause claim kernel
``kappa(d)^m`` is diagonal in the Walsh basis with per-function eigenvalue ``lambda_{|S|}(m)``):

* :func:`walsh_level_projector`: whole levels ``{S : |S| = l}`` in decreasing order of
  ``lambda_l(m)`` while ``sum C(n, l) <= K`` (the fixed-basis kernel sketch; batched).
* :func:`walsh_topk_projector`: the ``K`` sets with the largest ``lambda_{|S|}(m) g_S^2``
  among all ``S`` in the exact product's support (the optimal ``K``-sparse sketch for this
  kernel; adaptive per instance, one instance at a time).

FLOPs (analytic, per instance). A clause with distinct variables ``V`` acts coset by
coset of ``<V>`` (:meth:`WalshProduct.on`): one add per held input coefficient (the signed
coset sums; signs are flips, not counted), one multiply per coset and one add per output
coefficient whose coset is hit; otherwise one multiply-add per (output, clause term) pair
whose input is held. The top-``K`` projector adds 3 per candidate for the score
``lambda g^2`` and 1 compare per candidate for the selection. Integer mask arithmetic, look-ups and sorting are index
operations and are not counted (:mod:`lowprob.propagation.flops` convention).

Reference: O'Donnell, *Analysis of Boolean Functions* (2014), ch. 1; DESIGN.md section 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from lowprob._validation import check_int
from lowprob.errors import InputValueError
from lowprob.propagation.flops import FlopCounter
from lowprob.propagation.loop import UnprojectedProduct, register_deduction
from lowprob.propagation.product_steps import ClauseStep
from lowprob.sketching.product_claims import RandomClauseProduct
from lowprob.sketching.walsh import level_masks, popcount

__all__ = [
    "WalshDensity",
    "WalshProduct",
    "clause_walsh_terms",
    "exact_level_eigenvalues",
    "select_levels",
    "walsh_level_projector",
    "walsh_topk_projector",
]

_TABLE_MAX_N = 24


@dataclass(frozen=True)
class WalshDensity:
    """``g = sum_k coefficients[:, k] chi_{masks[k]}``; ``masks (K,)`` sorted int64, ``coefficients (B, K)``.

    ``levels`` names the kept levels when the mask set is a union of whole levels (``None``
    for an adaptive set).
    """

    n: int
    masks: np.ndarray
    coefficients: np.ndarray
    levels: tuple[int, ...] | None = None

    @classmethod
    def uniform(cls, n: int, batch: int = 1) -> WalshDensity:
        """The uniform distribution: ``g == 1``."""
        n = check_int("n", n, minimum=1)
        return cls(n, np.zeros(1, dtype=np.int64), np.ones((check_int("batch", batch, minimum=1), 1)), (0,))

    @property
    def n_terms(self) -> int:
        return int(self.masks.shape[0])

    def total_mass(self) -> np.ndarray:
        pos = int(np.searchsorted(self.masks, 0))
        if pos < self.masks.size and self.masks[pos] == 0:
            return self.coefficients[:, pos].copy()
        return np.zeros(self.coefficients.shape[0])

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """``g`` at points ``(N, n)`` of +-1: ``(B, N)`` (for checks; ``O(N K)``)."""
        from lowprob.sketching.walsh import walsh_characters

        return self.coefficients @ walsh_characters(x, self.masks).T


def clause_walsh_terms(literals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(masks (..., 2^w), coeffs (..., 2^w))`` of ``c = sum_T a_T chi_{V_T}`` for literals ``(..., w)``."""
    lit = np.asarray(literals, dtype=np.int64)
    w = lit.shape[-1]
    var, sign = np.abs(lit) - 1, np.sign(lit).astype(np.float64)
    T = np.arange(2**w)
    inT = ((T[:, None] >> np.arange(w)) & 1).astype(bool)  # (2^w, w)
    bit = np.left_shift(np.int64(1), var)  # (..., w)
    masks = np.zeros(lit.shape[:-1] + (2**w,), dtype=np.int64)
    coef = np.ones(lit.shape[:-1] + (2**w,))
    for j in range(w):
        masks = np.where(inT[:, j], masks ^ bit[..., j : j + 1], masks)
        coef = np.where(inT[:, j], coef * (-sign[..., j : j + 1]), coef)
    coef = -(2.0**-w) * coef
    coef[..., 0] += 1.0
    return masks, coef


@lru_cache(maxsize=6)
def _lookup_table(n: int, levels: tuple[int, ...]) -> np.ndarray:
    masks = level_masks(n, levels)
    table = np.full(2**n + 1, masks.size, dtype=np.int32)  # index masks.size = "absent"
    table[masks] = np.arange(masks.size)
    return table


def _positions(rep: WalshDensity, query: np.ndarray) -> np.ndarray:
    """Index of each query mask in ``rep.masks`` (``rep.n_terms`` where absent)."""
    if rep.levels is not None and rep.n <= _TABLE_MAX_N:
        return _lookup_table(rep.n, rep.levels)[query]
    pos = np.searchsorted(rep.masks, query)
    pos = np.minimum(pos, rep.masks.size - 1)
    return np.where(rep.masks[pos] == query, pos, rep.masks.size)


@dataclass(frozen=True)
class WalshProduct(UnprojectedProduct):
    """The exact, unevaluated product ``g . c`` (deduction output)."""

    density: WalshDensity
    step: ClauseStep

    @property
    def n_terms(self) -> int:
        return np.iinfo(np.int64).max


    def _distinct(self) -> bool:
        v = np.sort(self.step.variables.reshape(-1, self.step.literals.shape[-1]), axis=1)
        return bool(np.all(np.diff(v, axis=1) != 0))

    def _coset_parts(self, masks: np.ndarray, B: int) -> tuple[np.ndarray, np.ndarray]:
        """Coset keys ``b 2^n + (S \\ V_b)`` and signs ``sigma_b(S) = prod_{v_j in S} (-s_j)``: ``(B, M)``."""
        lit = np.broadcast_to(self.step.literals, (B, self.step.literals.shape[-1]))
        bits = np.left_shift(np.int64(1), np.abs(lit) - 1)  # (B, w)
        vmask = np.bitwise_or.reduce(bits, axis=1)  # (B,)
        key = (masks[None, :] & ~vmask[:, None]) + (np.arange(B, dtype=np.int64)[:, None] << self.density.n)
        sig = np.ones((B, masks.size))
        for j in range(lit.shape[1]):
            sig = np.where((masks[None, :] & bits[:, j : j + 1]) != 0, sig * -np.sign(lit[:, j : j + 1]), sig)
        return key, sig

    def on(self, out_masks: np.ndarray, flops: FlopCounter) -> np.ndarray:
        """``(g c)_S`` for ``S`` in ``out_masks (K',)``: ``(B, K')`` (exact).

        With distinct clause variables ``V`` (always, for random clauses) the unsatisfied
        indicator ``U = prod_j (1 - s_j x_{v_j}) / 2`` acts coset by coset of ``<V>``:
        ``(g U)_S = 2^-w sigma(S) sum_{S' in S + <V>} sigma(S') g_{S'}`` with
        ``sigma(S) = prod_{v_j in S} (-s_j)`` (a sign), so ``(g c)_S = g_S - (g U)_S`` costs one
        add per held input (the coset sums), one multiply per coset and one add per output.
        Otherwise the ``2^w`` clause terms are applied directly (one multiply-add per pair).
        """
        if not self._distinct():
            return self._on_terms(out_masks, flops)
        g = self.density
        B = g.coefficients.shape[0]
        w = self.step.literals.shape[-1]
        kin, sin = self._coset_parts(g.masks, B)
        uniq, inv = np.unique(kin.reshape(-1), return_inverse=True)
        wsum = np.bincount(inv, weights=(sin * g.coefficients).reshape(-1), minlength=uniq.size)
        kout, sout = self._coset_parts(out_masks, B)
        pos = np.minimum(np.searchsorted(uniq, kout), uniq.size - 1)
        hit = uniq[pos] == kout
        wout = np.where(hit, wsum[pos], 0.0) * 2.0**-w
        padded = np.concatenate([g.coefficients, np.zeros((B, 1))], axis=1)
        own = padded[np.arange(B)[:, None], _positions(g, np.broadcast_to(out_masks, (B, out_masks.size)))]
        out = own - sout * wout
        # coset sums: (held inputs - cosets) adds; one multiply per coset; one add per output hit
        fl = (g.n_terms * B - uniq.size) + uniq.size + int(np.count_nonzero(hit))
        flops.add(float(fl) / B, "walsh_product")
        return out

    def _on_terms(self, out_masks: np.ndarray, flops: FlopCounter) -> np.ndarray:
        g = self.density
        B = g.coefficients.shape[0]
        tm, tc = clause_walsh_terms(np.broadcast_to(self.step.literals, (B, self.step.literals.shape[-1])))
        padded = np.concatenate([g.coefficients, np.zeros((B, 1))], axis=1)
        out = np.zeros((B, out_masks.size))
        rows = np.arange(B)[:, None]
        present = 0
        for t in range(tm.shape[1]):
            pos = _positions(g, out_masks[None, :] ^ tm[:, t : t + 1])  # (B, K')
            out += tc[:, t : t + 1] * padded[rows, pos]
            present += int(np.count_nonzero(pos < g.n_terms))
        # one multiply-add per (output, term) pair whose input coefficient is held (absent
        # inputs are zero and a sparse implementation skips them); mean over the batch
        flops.add(2.0 * present / B, "walsh_product")
        return out

    def support(self, flops: FlopCounter) -> tuple[np.ndarray, np.ndarray]:
        """All ``(S, (g c)_S)`` of the exact product (one instance): sorted masks and values.

        Distinct clause variables: the support is the union of the cosets ``S + <V>`` of the
        held ``S``, with the coset sums of :meth:`on` (FLOPs: one add per held input for the
        sums, one multiply per coset, one add per held output; sign flips are free).
        """
        g = self.density
        if g.coefficients.shape[0] != 1:
            raise InputValueError("the exact product support is computed one instance at a time (batch 1).")
        if not self._distinct():
            tm, tc = clause_walsh_terms(self.step.literals.reshape(-1))
            cand = (g.masks[None, :] ^ tm[:, None]).reshape(-1)
            vals = (tc[:, None] * g.coefficients[0][None, :]).reshape(-1)
            uniq, inv = np.unique(cand, return_inverse=True)
            out = np.bincount(inv, weights=vals, minlength=uniq.size)
            flops.add(2.0 * tm.size * g.n_terms, "walsh_product")
            return uniq, out
        w = self.step.literals.shape[-1]
        kin, sin = self._coset_parts(g.masks, 1)
        cos, inv = np.unique(kin[0], return_inverse=True)
        wsum = np.bincount(inv, weights=sin[0] * g.coefficients[0], minlength=cos.size) * 2.0**-w
        tm, _ = clause_walsh_terms(self.step.literals.reshape(-1))  # masks V_T of the coset
        cand = (cos[:, None] ^ tm[None, :]).reshape(-1)  # cosets are disjoint: no duplicates
        _, scand = self._coset_parts(cand, 1)
        vals = -scand[0] * np.repeat(wsum, tm.size)
        order = np.argsort(cand, kind="stable")
        cand, vals = cand[order], vals[order]
        held = np.searchsorted(cand, g.masks)
        vals[held] += g.coefficients[0]
        flops.add(float(g.n_terms - cos.size) + cos.size + g.n_terms, "walsh_product")
        return cand, vals


@register_deduction(ClauseStep, WalshDensity)
def _clause_times_walsh(rep: WalshDensity, step: ClauseStep, flops: FlopCounter) -> WalshProduct:
    if step.n != rep.n:
        raise InputValueError(f"step has n={step.n!r} but the density lives on n={rep.n!r}.")
    return WalshProduct(rep, step)


@lru_cache(maxsize=512)
def exact_level_eigenvalues(n: int, m: int, width: int = 3) -> tuple[float, ...]:
    """``lambda_l(m)``, ``l = 0..n``, of ``kappa(d)^m`` in exact rational arithmetic (then float).

    ``lambda_l = 2^-n sum_d C(n, d) kappa(d)^m K_l(d) / C(n, l)``; exact arithmetic avoids the
    cancellation of the alternating Krawtchouk sums for large ``l``.
    """
    from lowprob.sketching.walsh import krawtchouk_table

    cnw = math.comb(n, width)
    kap = [1 - Fraction(2, 2**width) + Fraction(math.comb(n - d, width), 2**width * cnw) for d in range(n + 1)]
    hb = [math.comb(n, d) * kap[d] ** m for d in range(n + 1)]
    K = krawtchouk_table(n, exact=True)
    return tuple(
        float(sum(K[l, d] * hb[d] for d in range(n + 1)) / (2**n * math.comb(n, l))) for l in range(n + 1)
    )


def select_levels(eigenvalues: object, sizes: object, budget: int, *, rtol: float = 1e-12) -> tuple[int, ...]:
    """Whole levels in decreasing order of ``eigenvalues[l]`` while ``sum sizes[l] <= budget``.

    Levels with ``lambda_l <= rtol * max lambda`` are invisible to the claims and never kept;
    the ranking stops at the first level that does not fit; level 0 is always kept.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    size = np.asarray(sizes, dtype=np.int64)
    keep, used = [], 0
    for l in np.argsort(-lam, kind="stable"):
        l = int(l)
        if l != 0 and lam[l] <= rtol * lam.max():
            break
        if used + int(size[l]) > budget:
            break
        keep.append(l)
        used += int(size[l])
    if 0 not in keep:
        keep.append(0)
    return tuple(sorted(keep))


@lru_cache(maxsize=4096)
def _levels_for(n: int, m: int, budget: int, width: int) -> tuple[int, ...]:
    if m == 0:
        return (0,)
    sizes = [math.comb(n, l) for l in range(n + 1)]
    return select_levels(exact_level_eigenvalues(n, m, width), sizes, budget)


def _claims_m(claims: Any) -> RandomClauseProduct:
    if not isinstance(claims, RandomClauseProduct):
        raise InputValueError(f"the Walsh projectors rank by RandomClauseProduct claims, got {claims!r}.")
    return claims


def walsh_level_projector(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> WalshDensity:
    """Keep whole Walsh levels ranked by the claims' eigenvalues ``lambda_l(m)`` within ``budget``."""
    c = _claims_m(claims)
    n = rep.density.n if isinstance(rep, WalshProduct) else rep.n
    levels = _levels_for(n, c.m, int(budget), c.width)
    masks = level_masks(n, levels)
    if isinstance(rep, WalshProduct):
        return WalshDensity(n, masks, rep.on(masks, flops), levels)
    padded = np.concatenate([rep.coefficients, np.zeros((rep.coefficients.shape[0], 1))], axis=1)
    return WalshDensity(n, masks, padded[:, _positions(rep, masks)], levels)


def walsh_topk_projector(rep: Any, claims: Any, budget: int, flops: FlopCounter) -> WalshDensity:
    """Keep the ``budget`` sets ``S`` with the largest ``lambda_{|S|}(m) g_S^2`` (one instance)."""
    c = _claims_m(claims)
    if isinstance(rep, WalshProduct):
        masks, vals = rep.support(flops)
        n = rep.density.n
    else:
        masks, vals, n = rep.masks, rep.coefficients[0], rep.n
    lam = np.asarray(exact_level_eigenvalues(n, c.m, c.width)) if c.m > 0 else np.eye(1, n + 1)[0]
    lam_s = lam[popcount(masks)]
    score = lam_s * vals * vals
    flops.add(3.0 * masks.size, "walsh_score")
    visible = (lam_s > 1e-12 * lam.max()) & (vals != 0)
    idx = np.flatnonzero(visible)
    if idx.size > budget:
        flops.add(float(idx.size), "walsh_select")
        part = np.argpartition(-score[idx], budget - 1)[:budget]
        idx = np.sort(idx[part])
    return WalshDensity(n, masks[idx], vals[idx][None, :], None)
