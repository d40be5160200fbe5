"""The LM low-probability benchmark: every registered method on every (family, target) case.

A :class:`BenchCase` is ``(family, spec, target, p_true)``; :func:`load_cases` builds them from a
directory of target lists (``lowprob.targets/1`` JSON written by
:func:`lowprob.lm_bridge.ground_truth.save_targets`) and a directory of family specs
(``<family>.json``), checking that each list's ``spec_hash`` matches its spec.
:func:`run_bench` runs each method (looked up in
:data:`~lowprob.lm_bridge.methods.registry.LM_METHODS`, so plug-ins need no edit here) with
the same budget and, per case, the same seed for every method (common random numbers).
:func:`format_table`, :func:`plot_bench` and :func:`write_bench_json` report the results,
scored by :func:`lowprob.lm_bridge.scoring.score_records`.
"""

from __future__ import annotations

import json
import math
import numbers
import platform
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._io import atomic_write_json, atomic_write_text, dumps_strict
from lowprob._progress import progress
from lowprob._validation import check_budget, check_int
from lowprob.errors import InputValueError, LowprobError
from lowprob.lm_bridge.adapters.base import ModelAdapter
from lowprob.lm_bridge.distributions import TokenSpec
from lowprob.lm_bridge.methods.registry import make_lm_method
from lowprob.lm_bridge.problem import LMProblem
from lowprob.lm_bridge.scoring import DEV_FAMILIES

__all__ = [
    "BenchCase",
    "BenchState",
    "case_seed",
    "exact_suite_dirs",
    "format_table",
    "interleave_families",
    "load_cases",
    "plot_bench",
    "record_key",
    "run_bench",
    "write_bench_json",
]

FAMILY_ORDER = ("hex", "camel", "colon", "if", "caps", "english", "spanish", "icl")


@dataclass(frozen=True)
class BenchCase:
    """One benchmark instance: estimate ``P[argmax = target]`` under ``spec`` (true value ``p_true``)."""

    family: str
    spec: TokenSpec
    target: int
    p_true: float
    p_std_err: float | None = None
    p_low: float | None = None
    p_high: float | None = None


def _family_key(f: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f)


def load_cases(
    targets_dir: str | Path,
    specs_dir: str | Path,
    *,
    families: Sequence[str] | None = None,
    n_targets: int | None = None,
    seed: int = 0,
    model_hash: str | None = None,
) -> list[BenchCase]:
    """Cases from ``targets_dir/*.json`` target lists and ``specs_dir/<family>.json`` specs.

    ``n_targets`` keeps a seeded random subset of each family's targets (all if ``None``).
    With ``model_hash``, a target list made for another model is an error.
    """
    tdir, sdir = Path(targets_dir), Path(specs_dir)
    if not tdir.is_dir():
        raise InputValueError(f"targets directory {str(tdir)!r} does not exist; run `lowprob lm ground-truth` first.")
    cases: list[BenchCase] = []
    found = []
    for path in sorted(tdir.glob("*.json")):
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputValueError(f"target list {str(path)!r} is not valid JSON: {exc}") from exc
        if not isinstance(obj, dict) or obj.get("format") != "lowprob.targets/1":
            continue
        fam = str(obj.get("family") or path.stem.split(".")[0])
        if families is not None and fam not in families:
            continue
        if model_hash and obj.get("model_hash") and obj["model_hash"] != model_hash:
            raise InputValueError(
                f"target list {str(path)!r} was made for model hash {obj['model_hash']!r}, "
                f"not this model ({model_hash!r}); pass the matching --targets directory."
            )
        spec_path = sdir / f"{fam}.json"
        spec = TokenSpec.load(spec_path)
        if obj.get("spec_hash") and obj["spec_hash"] != spec.spec_hash():
            raise InputValueError(
                f"target list {str(path)!r} has spec_hash {obj['spec_hash']!r} but {str(spec_path)!r} "
                f"hashes to {spec.spec_hash()!r}; the spec changed since the ground truth was counted."
            )
        entries = list(obj.get("targets", []))
        if n_targets is not None and len(entries) > n_targets:
            rng = np.random.default_rng([seed, len(found)])
            keep = sorted(rng.choice(len(entries), size=n_targets, replace=False))
            entries = [entries[i] for i in keep]
        found.append(fam)
        for e in entries:
            lo, hi = e.get("p_low"), e.get("p_high")
            cases.append(BenchCase(fam, spec, int(e["token"]), float(e["p"]), e.get("std_err"),
                                   None if lo is None else float(lo), None if hi is None else float(hi)))
    if not cases:
        raise InputValueError(
            f"no targets found in {str(tdir)!r}" + (f" for families {list(families)!r}" if families else "") + "."
        )
    return sorted(cases, key=lambda c: (_family_key(c.family), c.target))


def interleave_families(cases: Sequence[BenchCase]) -> list[BenchCase]:
    """Round-robin over families (first target of each family, then the second, ...).

    Run in this order, an interrupted (or time-boxed, then resumed) bench has covered every
    family, development and held-out alike, as early as possible.
    """
    by: dict[str, list[BenchCase]] = {}
    for c in cases:
        by.setdefault(c.family, []).append(c)
    fams = sorted(by, key=_family_key)
    out: list[BenchCase] = []
    for i in range(max((len(v) for v in by.values()), default=0)):
        out += [by[f][i] for f in fams if i < len(by[f])]
    return out


def case_seed(seed: int, family: str, target: int, replicate: int = 0) -> int:
    """The seed of one ``(family, target, replicate)``, shared by every method and budget.

    Derived from the names, not from list positions, so a subset of cases or a resumed run
    draws the same numbers (common random numbers across methods).
    """
    fam = zlib.crc32(family.encode())
    return int(np.random.SeedSequence([seed, fam, target, replicate]).generate_state(1, dtype=np.uint64)[0] % (2**62))


def record_key(rec: Mapping[str, Any]) -> tuple[str, str, int, int, int]:
    """``(method, family, target, budget, replicate)``: what makes a record unique in a bench."""
    return (str(rec["method"]), str(rec["family"]), int(rec["target"]), int(rec["budget"]), int(rec.get("replicate", 0)))


def _as_budgets(budget: int | Sequence[int]) -> list[int]:
    bs = [budget] if isinstance(budget, numbers.Integral) or isinstance(budget, float) else list(budget)
    if not bs:
        raise InputValueError("budgets must be a non-empty list of positive integers, got [].")
    out = [check_budget(b, name="budget") for b in bs]
    if len(set(out)) != len(out):
        raise InputValueError(f"budgets must be distinct, got {out!r}.")
    return out


def run_bench(
    adapter: ModelAdapter,
    cases: Sequence[BenchCase],
    methods: Sequence[tuple[str, Mapping[str, Any]] | tuple[str, str, Mapping[str, Any]]],
    *,
    budget: int | Sequence[int] = 2**16,
    seed: int = 0,
    replicates: int = 1,
    show_progress: bool | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    done: Iterable[tuple[str, str, int, int, int]] = (),
    time_limit: float | None = None,
) -> list[dict[str, Any]]:
    """Run every ``(name, params)`` (or ``(label, name, params)``) method on every case.

    For each case, budget (``budget``: one or several) and replicate ``r < replicates``, every
    method gets the same seed :func:`case_seed` ``(seed, family, target, r)`` (common random
    numbers; the pairing the paired bootstrap of :func:`~lowprob.lm_bridge.scoring.score_bench`
    relies on). Returns one record dict per run; ``record["method"]`` is the label (default: the
    name), so several variants of one method can be compared in one run. Runs whose
    :func:`record_key` is in ``done`` are skipped (resuming; see :class:`BenchState`). With
    ``time_limit`` (seconds), no new run starts after that much wall time: the records so far
    are returned (resume later to finish).

    A method that raises a :class:`~lowprob.errors.LowprobError` on a case (e.g.
    ``qld_official`` where the published code crashes, or a budget below a method's minimum)
    yields a record with ``log_estimate = None`` and the error message; other exceptions propagate.
    """
    budgets = _as_budgets(budget)
    seed = check_int("seed", seed, minimum=0)
    replicates = check_int("replicates", replicates, minimum=1)
    specs3 = [m if len(m) == 3 else (m[0], m[0], m[1]) for m in methods]
    labels = [m[0] for m in specs3]
    if len(set(labels)) != len(labels):
        raise InputValueError(f"method labels must be distinct, got {labels!r}.")
    built = [(label, dict(params), make_lm_method(name, **params)) for label, name, params in specs3]
    skip = set(done)
    records: list[dict[str, Any]] = []
    jobs = [
        (c, b, r, m)
        for c in cases
        for b in budgets
        for r in range(replicates)
        for m in built
        if (m[0], c.family, c.target, b, r) not in skip
    ]
    start = time.perf_counter()
    for case, b, r, (name, params, method) in progress(jobs, total=len(jobs), desc="lm bench", enabled=show_progress):
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        problem = LMProblem(adapter, case.spec, case.target)
        rec: dict[str, Any] = {
            "method": name, "params": params, "family": case.family, "target": case.target,
            "p_true": case.p_true, "p_std_err": case.p_std_err, "p_low": case.p_low, "p_high": case.p_high,
            "budget": b, "replicate": r, "seed": case_seed(seed, case.family, case.target, r),
        }
        t0 = time.perf_counter()
        try:
            est = method.estimate(problem, b, seed=rec["seed"])
        except LowprobError as exc:
            rec.update(estimate=None, log_estimate=None, error=f"{type(exc).__name__}: {exc}",
                       cost={"model_calls": None, "backward_calls": None, "seconds": time.perf_counter() - t0})  # spent unknown
        else:
            rec.update(
                estimate=est.value,
                log_estimate=est.log_value if math.isfinite(est.log_value) else -math.inf,
                std_error=est.std_error,
                diagnostics={k: v for k, v in est.diagnostics.items() if k != "params"},
                cost=est.cost.to_dict(),
            )
        records.append(rec)
        if on_result is not None:
            on_result(rec)
    return records


class BenchState:
    """Append-only record of finished runs, so an interrupted bench resumes where it stopped.

    The file is JSON lines: a header ``{"format": "lowprob.lm_bench_state/1", "fingerprint":
    {...}}`` then one record per line. On :meth:`open`, a file whose fingerprint (model hash,
    truth, methods and their parameters, seed) differs, or that has an unreadable line other than
    a final line cut short by a crash, is refused with a clear message and left untouched.
    """

    FORMAT = "lowprob.lm_bench_state/1"

    def __init__(self, path: Path, fingerprint: Mapping[str, Any], records: list[dict[str, Any]]) -> None:
        self.path = path
        self.fingerprint = dict(fingerprint)
        self.records = records

    @classmethod
    def open(cls, path: str | Path, fingerprint: Mapping[str, Any], *, resume: bool = True) -> BenchState:
        """Load ``path`` (if ``resume`` and it exists) or start it afresh with a header."""
        path = Path(path)
        fp = json.loads(dumps_strict(fingerprint))
        if resume and path.is_file():
            text = path.read_text()
            lines = text.split("\n")
            complete, tail = lines[:-1], lines[-1]  # tail: "" if the file ends with a newline
            try:
                head = json.loads(complete[0]) if complete else None
            except json.JSONDecodeError:
                head = None
            if not isinstance(head, dict) or head.get("format") != cls.FORMAT:
                raise InputValueError(
                    f"state file {str(path)!r} is not a lowprob bench state (bad header); it was left untouched. "
                    "Delete it or pass another --state to start afresh."
                )
            if head.get("fingerprint") != fp:
                raise InputValueError(
                    f"state file {str(path)!r} was written by a different bench (fingerprint "
                    f"{head.get('fingerprint')!r}, now {fp!r}); it was left untouched. Rerun with the same "
                    "model, truth, methods, parameters and seed, or delete it / pass another --state."
                )
            recs = []
            for i, line in enumerate(complete[1:], start=2):
                try:
                    rec = json.loads(line)
                    record_key(rec)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise InputValueError(
                        f"state file {str(path)!r} line {i} is corrupted ({exc}); it was left untouched. "
                        "Delete it or pass another --state to start afresh."
                    ) from exc
                recs.append(rec)
            state = cls(path, fp, recs)
            if tail:  # a record cut short by a crash: drop it, rewrite the file without it
                state._rewrite()
            return state
        state = cls(path, fp, [])
        state._rewrite()
        return state

    def _rewrite(self) -> None:
        head = dumps_strict({"format": self.FORMAT, "fingerprint": self.fingerprint})
        atomic_write_text(self.path, "".join(x + "\n" for x in [head, *(dumps_strict(r) for r in self.records)]))

    @property
    def done(self) -> set[tuple[str, str, int, int, int]]:
        return {record_key(r) for r in self.records}

    def append(self, rec: Mapping[str, Any]) -> None:
        """Add one finished record (one line, flushed)."""
        self.records.append(dict(rec))
        with self.path.open("a") as fh:
            fh.write(dumps_strict(rec) + "\n")
            fh.flush()


def exact_suite_dirs(model: str, root: str | Path | None = None) -> tuple[Path, Path]:
    """``(targets_dir, specs_dir)`` of the exact-truth suite of a shipped model.

    Layout (``lowprob/data/exact/`` by default, :func:`~lowprob.lm_bridge.exact_truth.shipped_exact_dir`):
    ``specs/<family>.json`` and
    ``<model>/targets_<family>.json`` (``lowprob.targets/1`` lists with exact ``p``).
    """
    if root is None:
        from lowprob.lm_bridge.exact_truth import shipped_exact_dir

        base = shipped_exact_dir()
    else:
        base = Path(root)
    tdir, sdir = base / model, base / "specs"
    if not tdir.is_dir() or not sdir.is_dir():
        raise InputValueError(
            f"no exact-truth suite for model {model!r} under {str(base)!r} (need {str(tdir)!r} and {str(sdir)!r}); "
            "build it with `lowprob lm ground-truth --exact`, or pass --targets and --specs."
        )
    return tdir, sdir


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "inf" if x == math.inf else "nan"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def format_table(scores: Mapping[str, Any], *, loss: str = "is_fit") -> str:
    """A text table: rows = methods, columns = families + dev / held-out / all means of ``loss``."""
    methods = list(scores["by_family"])
    fams = sorted({f for m in methods for f in scores["by_family"][m]}, key=_family_key)
    cols = fams + ["dev", "heldout", "all"]
    width = max(10, *(len(m) for m in methods)) + 1
    lines = [f"{loss} (mean over targets; floor {scores['floor']:g}; fit on {','.join(scores['dev_families'])})"]
    lines.append("method".ljust(width) + "".join(c.rjust(10) for c in cols))
    for m in methods:
        row = [scores["by_family"][m].get(f, {}).get(loss, {}).get("mean", math.nan) for f in fams]
        row += [scores["by_split"][m][s].get(loss, {}).get("mean", math.nan) for s in ("dev", "heldout", "all")]
        lines.append(m.ljust(width) + "".join(_fmt(v).rjust(10) for v in row))
    return "\n".join(lines)


def plot_bench(
    records: Sequence[Mapping[str, Any]], scores: Mapping[str, Any], path: str | Path, *, title: str = ""
) -> Path:
    """Estimates (after the log-affine fit, and raw as faint markers) vs truth, log-log, one panel per family."""
    import matplotlib.pyplot as plt  # lazily; the backend is the caller's (headless: Agg by default)

    floor = scores["floor"]
    fams = sorted({str(r["family"]) for r in records}, key=_family_key)
    methods = sorted({str(r["method"]) for r in records})
    ncol = min(4, len(fams))
    nrow = math.ceil(len(fams) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.6 * nrow), squeeze=False)
    colors = plt.get_cmap("tab10")
    for k, fam in enumerate(fams):
        ax = axes[k // ncol][k % ncol]
        ps = [float(r["p_true"]) for r in records if r["family"] == fam]
        lo, hi = min(ps) / 30, max(ps) * 30
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        for j, m in enumerate(methods):
            rs = [r for r in records if r["family"] == fam and r["method"] == m]
            p = np.array([float(r["p_true"]) for r in rs])
            lq = np.array([-math.inf if r["log_estimate"] is None else float(r["log_estimate"]) for r in rs])
            raw = np.exp(np.maximum(lq, math.log(floor)))
            fit = scores["fits"].get(m)
            shown = np.exp(fit["a"] * np.log(raw) + fit["b"]) if fit else raw
            ax.scatter(p, shown, s=12, color=colors(j % 10), label=m)
            ax.scatter(p, raw, s=6, color=colors(j % 10), alpha=0.25, marker="x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(fam + (" (dev)" if fam in DEV_FAMILIES else " (held out)"))
        ax.set_xlabel("true p")
        ax.set_ylabel("estimate (fitted •, raw ×)")
    for k in range(len(fams), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_bench_json(
    path: str | Path, *, meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]], scores: Mapping[str, Any]
) -> Path:
    """Write ``{"meta", "scores", "records"}`` as strict JSON, atomically (:mod:`lowprob._io`)."""
    obj = {"format": "lowprob.lm_bench/1", "meta": {**meta, "python": platform.python_version()},
           "scores": scores, "records": list(records)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, obj, indent=1)
