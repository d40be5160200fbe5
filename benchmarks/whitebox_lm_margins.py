"""Paired margins between LM methods from ``lowprob lm bench`` JSON records, with bootstrap CIs.

For each method the log-affine fit ``ln q' = a ln max(q, floor) + b`` is made on the
development families only (``lowprob.lm_bridge.scoring.fit_log_affine``), then the fitted
Itakura–Saito loss is computed per target. The margin of method ``A`` over ``B`` on a split is
``mean_t [IS_B(t) - IS_A(t)]`` (positive: ``A`` is better), with a 95% percentile bootstrap
interval over targets (paired: the same resampled targets for both methods, 4000 resamples,
seed 0). Also prints the raw IS and squared-log-error margins.

Usage::

    python benchmarks/whitebox_lm_margins.py BENCH.json [BENCH2.json ...] \
        --methods wb-gauss wb-mixture wb-adf wb-itgis --versus gld qld itgis mhis

All inputs are merged into one set of records (e.g. one bench file per family); writes
``<first BENCH>.margins.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from lowprob.lm_bridge.scoring import (
    DEFAULT_FLOOR,
    DEV_FAMILIES,
    fit_log_affine,
    itakura_saito,
    score_records,
    squared_log_error,
)


def _logq(r: dict) -> float:
    v = r.get("log_estimate")
    if v is None:
        return -math.inf
    return float(v)  # "-inf" strings parse too


def per_target_losses(records: list[dict], method: str, floor: float) -> dict[tuple[str, int], dict[str, float]]:
    rs = [r for r in records if r["method"] == method]
    fam = np.array([r["family"] for r in rs])
    lp = np.log(np.array([float(r["p_true"]) for r in rs]))
    lq = np.array([_logq(r) for r in rs])
    dev = np.isin(fam, list(DEV_FAMILIES))
    fit = fit_log_affine(lp[dev], lq[dev], floor=floor)
    is_fit = itakura_saito(lp, fit.apply(lq), floor=floor)  # as lowprob.lm_bridge.scoring does
    is_raw = itakura_saito(lp, lq, floor=floor)
    sle = squared_log_error(lp, lq, floor=floor)
    return {
        (r["family"], int(r["target"])): {"is_fit": float(a), "is_raw": float(b), "sle": float(c), "dev": bool(d)}
        for r, a, b, c, d in zip(rs, is_fit, is_raw, sle, dev, strict=True)
    }


def paired_margin(a: dict, b: dict, key: str, split: str, n_boot: int = 4000, seed: int = 0) -> dict:
    keys = sorted(k for k in a if k in b and (split == "all" or a[k]["dev"] == (split == "dev")))
    if not keys:
        return {"n": 0}
    diff = np.array([b[k][key] - a[k][key] for k in keys])
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"n": int(diff.size), "mean": float(diff.mean()), "ci95": [float(lo), float(hi)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bench", nargs="+")
    ap.add_argument("--methods", nargs="+", default=["wb-gauss", "wb-mixture", "wb-adf", "wb-itgis"])
    ap.add_argument("--versus", nargs="+", default=["gld", "qld", "itgis", "mhis"])
    ap.add_argument("--floor", type=float, default=DEFAULT_FLOOR)
    args = ap.parse_args()
    objs = [json.loads(Path(p).read_text()) for p in args.bench]
    keep = [i for i, o in enumerate(objs) if "records" in o]  # skip earlier .margins.json outputs
    args.bench, objs = [args.bench[i] for i in keep], [objs[i] for i in keep]
    merged = {"meta": objs[0].get("meta", {}), "records": [r for o in objs for r in o["records"]]}
    for path, obj in [(args.bench[0], merged)]:  # all inputs are merged (e.g. one file per family)
        records = obj["records"]
        present = {r["method"] for r in records}
        losses = {m: per_target_losses(records, m, args.floor) for m in sorted(present)}
        scores = score_records(records, floor=args.floor)
        print(f"{'method':11s} " + " ".join(f"{s + ' ' + k:>30s}" for s in ("dev", "heldout") for k in ("is_fit", "sle")))
        for m in sorted(present):
            cells = []
            for split in ("dev", "heldout"):
                for k in ("is_fit", "sle"):
                    v = scores["by_split"][m][split].get(k, {})
                    ci = v.get("ci95") or [math.nan, math.nan]
                    cells.append(f"{v.get('mean', math.nan):9.3f} [{ci[0]:8.3f},{ci[1]:8.3f}]")
            print(f"{m:11s} " + " ".join(f"{c:>30s}" for c in cells))
        out: dict = {"scores_by_split": scores["by_split"], "fits": scores["fits"]}
        print(f"== {path} (model {obj.get('meta', {}).get('model')}, budget {obj.get('meta', {}).get('budget')})")
        print(f"{'A':>11s} vs {'B':<8s} {'split':8s} {'n':>3s}  {'fitted-IS margin [95% CI]':>34s}  {'SLE margin [95% CI]':>30s}")
        for a in args.methods:
            for b in args.versus:
                if a not in losses or b not in losses:
                    continue
                for split in ("dev", "heldout"):
                    mi = paired_margin(losses[a], losses[b], "is_fit", split)
                    ms = paired_margin(losses[a], losses[b], "sle", split)
                    out[f"{a}|{b}|{split}"] = {"is_fit": mi, "sle": ms}
                    if mi.get("n", 0):
                        print(
                            f"{a:>11s} vs {b:<8s} {split:8s} {mi['n']:3d}  "
                            f"{mi['mean']:+9.3f} [{mi['ci95'][0]:+8.3f}, {mi['ci95'][1]:+8.3f}]  "
                            f"{ms['mean']:+8.3f} [{ms['ci95'][0]:+8.3f}, {ms['ci95'][1]:+8.3f}]"
                        )
        Path(path).with_suffix(".margins.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
