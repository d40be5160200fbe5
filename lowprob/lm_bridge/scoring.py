"""Scoring LM probability estimates against ground truth (Wu & Hilton 2024, arXiv 2410.13211, section 4).

For a true probability ``p > 0`` and an estimate ``q`` (floored: ``q <- max(q, floor)``):

* **Itakura–Saito loss** ``IS(p, q) = p/q - ln(p/q) - 1 >= 0`` (0 iff ``q = p``). It punishes
  underestimates (``~ p/q``) far more than overestimates (``~ ln(q/p)``), which suits
  worst-case estimation. Computed as ``expm1(r) - r`` with ``r = ln p - ln q`` so tiny
  values stay exact.
* **Log-affine-fitted IS loss**: ``q' = exp(a ln q + b)`` with ``(a, b)`` minimising the mean
  IS loss on the **development** families (hex, camel, colon, if) only, per method and
  model, then applied everywhere; held-out families are reported separately. For fixed
  ``a`` the optimal ``b`` is closed-form, ``b(a) = ln mean(p / q^a)``, and the profiled loss
  ``b(a) - mean(ln p - a ln q)`` is convex in ``a`` (a log-sum-exp minus a linear term),
  minimised by Brent's method.
* **Squared log error** ``(ln p - ln q)^2``.

**Floor.** ``DEFAULT_FLOOR = 1e-10``, one decade below the smallest benchmark target
probability (1e-9): an estimate of 0 (naive with no hit) scores as ``q = 1e-10``. Every
function takes ``floor=`` and records it.

Intervals: percentile bootstrap over targets (resample targets with replacement). Differences
between two methods are **paired**: both methods are scored on the same targets (and the same
seeds, common random numbers), the per-target losses are averaged over seeds, and the bootstrap
resamples targets, keeping each target's two losses together (:func:`paired_difference`). The
bootstrap seed is fixed, so the intervals are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError

__all__ = [
    "DEFAULT_FLOOR",
    "DEV_FAMILIES",
    "HELDOUT_FAMILIES",
    "LogAffineFit",
    "bootstrap_mean_ci",
    "paired_difference",
    "record_losses",
    "score_bench",
    "fit_log_affine",
    "itakura_saito",
    "score_records",
    "squared_log_error",
]

DEFAULT_FLOOR = 1e-10
DEV_FAMILIES: tuple[str, ...] = ("hex", "camel", "colon", "if")
HELDOUT_FAMILIES: tuple[str, ...] = ("caps", "english", "spanish", "icl")


def _log_p(log_p: object) -> np.ndarray:
    lp = np.asarray(log_p, dtype=np.float64)
    if not np.all(np.isfinite(lp)):
        raise InputValueError(
            "true probabilities must be > 0 and finite (log p finite); "
            f"got {int(np.sum(~np.isfinite(lp)))} bad entries. Drop targets with zero ground-truth count."
        )
    return lp


def _log_q(log_q: object, floor: float) -> np.ndarray:
    if not (isinstance(floor, int | float) and 0 < floor < 1):
        raise InputValueError(f"floor must be in (0, 1), got {floor!r}.")
    lq = np.asarray(log_q, dtype=np.float64)
    if np.any(np.isnan(lq)):
        raise InputValueError(
            f"log estimates contain {int(np.isnan(lq).sum())} NaN entries (negative or failed estimates); "
            "remove them or map them to -inf (scored at the floor)."
        )
    return np.maximum(lq, math.log(floor))


def itakura_saito(log_p: object, log_q: object, *, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """``p/q - ln(p/q) - 1`` elementwise, from log-probabilities, with ``q`` floored at ``floor``."""
    r = _log_p(log_p) - _log_q(log_q, floor)
    return np.expm1(r) - r


def squared_log_error(log_p: object, log_q: object, *, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """``(ln p - ln max(q, floor))^2`` elementwise."""
    return (_log_p(log_p) - _log_q(log_q, floor)) ** 2


@dataclass(frozen=True)
class LogAffineFit:
    """``ln q' = a ln max(q, floor) + b``, fitted on ``n_fit`` development targets."""

    a: float
    b: float
    floor: float = DEFAULT_FLOOR
    n_fit: int = 0

    def apply(self, log_q: object) -> np.ndarray:
        return self.a * _log_q(log_q, self.floor) + self.b

    def to_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "floor": self.floor, "n_fit": self.n_fit}


def fit_log_affine(log_p: object, log_q: object, *, floor: float = DEFAULT_FLOOR) -> LogAffineFit:
    """Minimise the mean IS loss of ``exp(a ln q + b)`` over ``(a, b)`` (see the module docstring)."""
    lp, lq = _log_p(log_p), _log_q(log_q, floor)
    if lp.shape != lq.shape or lp.ndim != 1 or lp.size == 0:
        raise InputValueError(f"log_p and log_q must be equal-length non-empty 1-D, got {lp.shape} and {lq.shape}.")
    n = lp.size

    def b_of(a: float) -> float:
        return float(logsumexp(lp - a * lq) - math.log(n))

    def profiled(a: float) -> float:
        return b_of(a) - float(np.mean(lp - a * lq))

    if np.ptp(lq) == 0:  # constant estimates: only b matters
        a = 0.0
    else:
        res = minimize_scalar(profiled, bounds=(-20.0, 20.0), method="bounded", options={"xatol": 1e-10})
        a = float(res.x)
    return LogAffineFit(a=a, b=b_of(a), floor=floor, n_fit=n)


def bootstrap_mean_ci(
    values: object, *, n_boot: int = 2000, level: float = 0.95, seed: object = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling entries)."""
    v = np.asarray(values, dtype=np.float64)
    n_boot = check_int("n_boot", n_boot, minimum=1)
    if v.size == 0:
        return (math.nan, math.nan)
    rng = as_generator(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].mean(1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_difference(
    a: object, b: object, *, n_boot: int = 2000, level: float = 0.95, seed: object = 0
) -> dict[str, Any]:
    """Mean of ``a - b`` over paired units with a percentile bootstrap interval.

    ``a[i]`` and ``b[i]`` are two methods' losses on the same unit ``i`` (a target); the
    bootstrap resamples units, so each pair stays together and the between-target spread that
    both methods share cancels. Returns ``{"mean", "ci95": [lo, hi], "n", "excludes_zero"}``
    (``excludes_zero``: the interval lies strictly on one side of 0).
    """
    av = np.asarray(a, dtype=np.float64)
    bv = np.asarray(b, dtype=np.float64)
    if av.shape != bv.shape or av.ndim != 1:
        raise InputValueError(f"a and b must be paired 1-D arrays of equal length, got shapes {av.shape} and {bv.shape}.")
    if np.any(np.isnan(av)) or np.any(np.isnan(bv)):
        raise InputValueError("a and b must not contain NaN; score failed estimates at the floor first.")
    d = av - bv
    lo, hi = bootstrap_mean_ci(d, n_boot=n_boot, level=level, seed=seed)
    mean = float(d.mean()) if d.size else math.nan
    return {"mean": mean, "ci95": [lo, hi], "n": int(d.size), "excludes_zero": bool(lo > 0 or hi < 0)}


def _summary(v: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    lo, hi = bootstrap_mean_ci(v, n_boot=n_boot, seed=seed)
    return {"mean": float(v.mean()) if v.size else math.nan, "ci95": [lo, hi], "n": int(v.size)}


def record_losses(
    records: Sequence[Mapping[str, Any]],
    *,
    floor: float = DEFAULT_FLOOR,
    dev_families: Iterable[str] = DEV_FAMILIES,
) -> dict[str, dict[str, Any]]:
    """Per-record losses of every method: ``{method: {"fit", "family", "target", "seed", "is_dev",
    "failures", "is_raw", "sle", "is_fit"}}`` (arrays aligned with that method's records).

    The log-affine fit of a method uses its development-family records only (all seeds) and
    is applied to every record of that method. A record with ``log_estimate = None`` (the
    method failed) is scored at the floor. Mix one model and one budget per call.
    """
    dev = set(dev_families)
    out: dict[str, dict[str, Any]] = {}
    for m in sorted({str(r["method"]) for r in records}):
        rs = [r for r in records if r["method"] == m]
        fam = np.array([str(r["family"]) for r in rs])
        lp = np.log(np.array([float(r["p_true"]) for r in rs]))
        lq = np.array([-math.inf if r.get("log_estimate") is None else float(r["log_estimate"]) for r in rs])
        is_dev = np.isin(fam, list(dev))
        fit = fit_log_affine(lp[is_dev], lq[is_dev], floor=floor) if is_dev.any() else None
        out[m] = {
            "fit": fit,
            "family": fam,
            "target": np.array([int(r.get("target", -1)) for r in rs]),
            "seed": np.array([int(r.get("seed", 0)) for r in rs]),
            "is_dev": is_dev,
            "failures": int(sum(r.get("log_estimate") is None for r in rs)),
            "is_raw": itakura_saito(lp, lq, floor=floor),
            "sle": squared_log_error(lp, lq, floor=floor),
        }
        if fit is not None:
            out[m]["is_fit"] = itakura_saito(lp, fit.apply(lq), floor=floor)
    return out


LOSSES = ("is_raw", "is_fit", "sle")


def score_records(
    records: Sequence[Mapping[str, Any]],
    *,
    floor: float = DEFAULT_FLOOR,
    dev_families: Iterable[str] = DEV_FAMILIES,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score bench records ``{method, family, target, p_true, log_estimate, ...}`` (one budget).

    Returns ``{"floor", "dev_families", "fits": {method: LogAffineFit dict},
    "by_family": {method: {family: {is_raw, is_fit, sle}}}, "by_split": {method: {dev,
    heldout, all: ...}}}``; each loss summary is ``{mean, ci95, n}``. Records whose
    ``log_estimate`` is ``None`` (the method failed) are counted in ``failures`` and scored
    at the floor (a failure is never better than a zero estimate).
    """
    dev = set(dev_families)
    per = record_losses(records, floor=floor, dev_families=dev)
    out: dict[str, Any] = {"floor": floor, "dev_families": sorted(dev), "fits": {}, "by_family": {}, "by_split": {}}
    for m, L in per.items():
        fam, is_dev = L["family"], L["is_dev"]
        losses = {k: L[k] for k in LOSSES if k in L}
        out["fits"][m] = L["fit"].to_dict() if L["fit"] is not None else None
        out["by_family"][m] = {
            f: {k: _summary(v[fam == f], n_boot, seed) for k, v in losses.items()} for f in sorted(set(fam))
        }
        splits = {"dev": is_dev, "heldout": ~is_dev, "all": np.ones_like(is_dev)}
        out["by_split"][m] = {
            s: {k: _summary(v[mask], n_boot, seed) for k, v in losses.items()} for s, mask in splits.items()
        }
        out["by_split"][m]["failures"] = L["failures"]
    return out


def _per_target(L: Mapping[str, Any], loss: str, mask: np.ndarray) -> dict[tuple[str, int], float]:
    """Mean of ``loss`` over seeds for each ``(family, target)`` unit selected by ``mask``."""
    acc: dict[tuple[str, int], list[float]] = {}
    for f, t, v in zip(L["family"][mask], L["target"][mask], L[loss][mask], strict=True):
        acc.setdefault((str(f), int(t)), []).append(float(v))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def score_bench(
    records: Sequence[Mapping[str, Any]],
    *,
    floor: float = DEFAULT_FLOOR,
    dev_families: Iterable[str] = DEV_FAMILIES,
    n_boot: int = 2000,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Score records of one model at one or more budgets, with paired method differences.

    Records are grouped by ``record["budget"]`` (a missing budget is one group). Each group
    gets :func:`score_records` and ``"paired"``: for every ordered pair ``(A, B)`` in
    ``pairs`` (default: every pair of methods, each once, in name order), for each split
    (``dev``, ``heldout``, ``all``) and loss, :func:`paired_difference` of ``A - B`` over the
    ``(family, target)`` units both methods scored (each method's loss averaged over its
    seeds first). A negative mean means ``A`` has the lower loss.

    Returns ``{"floor", "dev_families", "budgets": {str(budget): {...score_records...,
    "paired": {"A - B": {split: {loss: {mean, ci95, n, excludes_zero}}}}}}}``.
    """
    dev = set(dev_families)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r.get("budget")), []).append(r)
    out: dict[str, Any] = {"floor": floor, "dev_families": sorted(dev), "budgets": {}}
    for b in sorted(groups, key=lambda k: (len(k), k)):
        recs = groups[b]
        sc = score_records(recs, floor=floor, dev_families=dev, n_boot=n_boot, seed=seed)
        per = record_losses(recs, floor=floor, dev_families=dev)
        ms = sorted(per)
        todo = list(pairs) if pairs is not None else [(a, c) for i, a in enumerate(ms) for c in ms[i + 1 :]]
        paired: dict[str, Any] = {}
        for a, c in todo:
            if a not in per or c not in per:
                continue
            key = f"{a} - {c}"
            paired[key] = {}
            for split in ("dev", "heldout", "all"):
                paired[key][split] = {}
                for loss in LOSSES:
                    if loss not in per[a] or loss not in per[c]:
                        continue
                    masks = []
                    for L in (per[a], per[c]):
                        m = L["is_dev"] if split == "dev" else (~L["is_dev"] if split == "heldout" else np.ones_like(L["is_dev"]))
                        masks.append(m)
                    ua, uc = _per_target(per[a], loss, masks[0]), _per_target(per[c], loss, masks[1])
                    keys = sorted(set(ua) & set(uc))
                    paired[key][split][loss] = paired_difference(
                        [ua[k] for k in keys], [uc[k] for k in keys], n_boot=n_boot, seed=seed
                    )
        sc["paired"] = paired
        out["budgets"][b] = sc
    return out
