"""Build the exact-truth suites: a short-context variant of each of the 8 families, exact ``p_t``
for every token under both shipped models, and a seeded target list per (model, family).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lm_exact_suites.py [--models gelu-1l gelu-2l] [--families ...]

Writes (stable layout, read by ``lowprob lm bench --truth exact``)::

    lowprob/data/exact/specs/<family>.json            short-context spec (metadata: how it was cut)
    lowprob/data/exact/<model>/<family>.json          ExactTruth (lowprob.exact_truth/1)
    lowprob/data/exact/<model>/targets_<family>.json  lowprob.targets/1, exact p, p_low/p_high
    benchmarks/results/lm_exact_suites.json           per-suite time, sizes, tie mass, target counts

Resumable: a finished suite (truth file with the current spec hash and model hash) is skipped; an
interrupted one resumes from its ``.state`` file. Several builder processes can run at once: each
takes a suite only if it can create its lock file (``.<family>.lock``, holding the pid; a dead
process's lock is taken over). The summary is rebuilt from the files on disk after every suite
(``--summary-only`` just rebuilds it).

Short variants: the family's layout with 3 free positions (english: start word + 2; icl: 3 slots
"A", "R", "C" + the query), each free position cut to its ``top`` most frequent tokens under the
family's own corpus weights and renormalised, so the tokens still satisfy the family predicate
(hex stays hex) and the law stays non-uniform (corpus frequencies), which is what puts exact
probabilities in 1e-9..1e-5 with ~2^20 inputs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lowprob._io import atomic_write_json  # noqa: E402
from lowprob.errors import InputValueError  # noqa: E402
from lowprob.lm_bridge.distributions import CategoricalPosition, Position, TokenSpec  # noqa: E402
from lowprob.lm_bridge.exact_truth import (  # noqa: E402
    DEFAULT_CHUNK,
    DEFAULT_TIE_THRESHOLD,
    ExactTruth,
    default_state_path,
    exact_argmax,
    save_exact_targets,
    select_exact_targets,
)
from lowprob.lm_bridge.families import DEV_FAMILIES, HELDOUT_FAMILIES  # noqa: E402
from lowprob.lm_bridge.zoo import DATA_DIR, SHIPPED_MODELS, load_shipped, load_shipped_spec  # noqa: E402
from lowprob.sharding import output_lock, remove_state  # noqa: E402

EXACT_DIR = DATA_DIR / "exact"
RESULTS = ROOT / "benchmarks" / "results" / "lm_exact_suites.json"
FAMILIES = DEV_FAMILIES + HELDOUT_FAMILIES
SELECTION = {"n_targets": 64, "p_min": 1e-9, "p_max": 1e-5, "max_rel_width": 0.01, "seed": 0}

#: How each family is cut: (kept positions of the full spec, top-k per kept free position).
#: Indices refer to the shipped full spec (lowprob/data/specs/lowprob-bpe4k/<family>.json).
LAYOUTS: dict[str, list[tuple[int, int | None]]] = {
    "hex": [(0, None), (1, 102), (2, 102), (3, 102)],
    "camel": [(0, None), (1, 102), (2, 102), (3, 102)],
    "colon": [(0, None), (1, 102), (2, 102), (3, 102), (33, None)],
    "if": [(0, None), (1, None), (2, 102), (3, 102), (4, 102)],
    "caps": [(i, None) for i in range(7)] + [(7, 81), (8, 81), (9, 81)],
    "english": [(0, None), (1, 64), (2, 128), (3, 128)],
    "spanish": [(0, None), (1, 102), (2, 102), (3, 102)],
    # BOS, 3 slots (letter, " for", word) for "A", "R", "C", then the query letter (all 26) and " for".
    "icl": [(i, 36 if i % 3 == 0 else None) for i in range(10)] + [(28, None), (29, None)],
}


def _cut(p: Position, top: int | None) -> Position:
    if top is None or not isinstance(p, CategoricalPosition) or p.tokens.size <= top:
        return p
    order = np.lexsort((p.tokens, -p.normalized))[:top]
    order = np.sort(order)
    q = p.normalized[order]
    return CategoricalPosition(p.tokens[order], q / q.sum())


def short_spec(family: str) -> TokenSpec:
    """The short-context variant of ``family`` (see the module docstring and :data:`LAYOUTS`)."""
    full = load_shipped_spec(family)
    layout = LAYOUTS[family]
    positions = [_cut(full.positions[i], top) for i, top in layout]
    meta = {
        "family": family,
        "variant": "exact-short",
        "short_variant_of": full.spec_hash(),
        "layout": [[i, top] for i, top in layout],
        "how": "kept positions of the full family spec (index into it); free positions cut to their top-k tokens "
               "by corpus weight and renormalised (benchmarks/lm_exact_suites.py)",
        "split": full.metadata.get("split"),
        "tokenizer": full.metadata.get("tokenizer"),
    }
    spec = TokenSpec(positions, meta)
    return spec.validate_vocab(4096)


def _spec_path(family: str) -> Path:
    return EXACT_DIR / "specs" / f"{family}.json"


def ensure_spec(family: str) -> TokenSpec:
    spec = short_spec(family)
    path = _spec_path(family)
    if path.is_file():
        old = TokenSpec.load(path)
        if old.spec_hash() == spec.spec_hash():
            return old
        print(f"[{family}] spec changed ({old.spec_hash()} -> {spec.spec_hash()}); rewriting", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec.save(path)
    return spec


def _done(model: str, family: str, spec: TokenSpec, mhash: str | None) -> bool:
    out = EXACT_DIR / model / f"{family}.json"
    tpath = EXACT_DIR / model / f"targets_{family}.json"
    if out.is_file() and tpath.is_file():
        old = ExactTruth.load(out)
        return old.spec_hash == spec.spec_hash() and old.model_hash == mhash
    return False


def run_suite(model: str, family: str, adapter: object, *, chunk: int, progress: bool | None) -> dict:
    """Compute one suite unless it is finished or another builder process holds its lock."""
    spec = ensure_spec(family)
    mhash = getattr(adapter, "model_hash", None)
    if _done(model, family, spec, mhash):
        print(f"[{model}/{family}] done already; skipped", flush=True)
        return {"skipped": True}
    try:
        with output_lock(EXACT_DIR / model / f"{family}.json"):  # one builder per suite
            if _done(model, family, spec, mhash):
                return {"skipped": True}
            return _compute(model, family, spec, adapter, chunk=chunk, progress=progress)
    except InputValueError as exc:  # another builder process holds the lock
        print(f"[{model}/{family}] being built by another process; skipped ({exc})", flush=True)
        return {"skipped": True}


def _compute(model: str, family: str, spec: TokenSpec, adapter: object, *, chunk: int, progress: bool | None) -> dict:
    out = EXACT_DIR / model / f"{family}.json"
    tpath = EXACT_DIR / model / f"targets_{family}.json"
    print(f"[{model}/{family}] {spec.support_size():,} inputs (~2^{math.log2(spec.support_size()):.2f})", flush=True)
    state = default_state_path(out)
    truth = exact_argmax(adapter, spec, chunk=chunk, tie_threshold=DEFAULT_TIE_THRESHOLD, state_path=state,
                         show_progress=progress, metadata={"model_dir": f"lowprob/data/models/{model}",
                                                           "spec_file": f"lowprob/data/exact/specs/{family}.json"})
    truth.diagnostics["machine"] = f"{platform.machine()}, 2 shared CPU cores loaded by parallel jobs, 1 thread"
    truth.save(out)
    targets = select_exact_targets(truth, **SELECTION)
    save_exact_targets(tpath, truth, targets, family=family, **SELECTION)
    remove_state(state)
    print(f"[{model}/{family}] {truth.seconds:.0f} s, tie mass {truth.tie_mass:.2e}, {len(targets)} targets", flush=True)
    return {"skipped": False}


def summarize() -> dict:
    rows = []
    for model in SHIPPED_MODELS:
        for fam in FAMILIES:
            out = EXACT_DIR / model / f"{fam}.json"
            tpath = EXACT_DIR / model / f"targets_{fam}.json"
            if not (out.is_file() and tpath.is_file()):
                continue
            tr = ExactTruth.load(out)
            tg = json.loads(tpath.read_text())
            p = tr.probs
            ps = [t["p"] for t in tg["targets"]]
            rows.append({
                "model": model, "family": fam, "n_inputs": tr.n_inputs, "log2_n_inputs": math.log2(tr.n_inputs),
                "seconds": tr.seconds, "inputs_per_second": tr.n_inputs / tr.seconds if tr.seconds else None,
                "tie_threshold": tr.tie_threshold, "tie_mass": tr.tie_mass, "n_tied_inputs": tr.n_tied_inputs,
                "distinct_argmax_tokens": int((p > 0).sum()),
                "tokens_in_1e-9_1e-5": int(((p >= 1e-9) & (p <= 1e-5)).sum()),
                "smallest_nonzero_p": float(p[p > 0].min()),
                "n_targets": len(ps), "target_p_range": [min(ps), max(ps)] if ps else None,
                "spec_hash": tr.spec_hash, "model_hash": tr.model_hash,
            })
    obj = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lm_exact_suites.py",
        "machine": "2 shared CPU cores, loaded by parallel jobs (8 helpers); torch 1 thread per process",
        "selection": SELECTION,
        "suites": rows,
    }
    atomic_write_json(RESULTS, obj)
    return obj


def plot(path: Path | None = None) -> Path | None:
    """Strip plot: every token's exact p (nonzero) per (model, family), targets highlighted."""
    path = path or RESULTS.with_suffix(".png")
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5))
    x = 0
    labels = []
    for fam in FAMILIES:
        for model in SHIPPED_MODELS:
            out = EXACT_DIR / model / f"{fam}.json"
            tpath = EXACT_DIR / model / f"targets_{fam}.json"
            if not (out.is_file() and tpath.is_file()):
                continue
            p = ExactTruth.load(out).probs
            tg = [t["token"] for t in json.loads(tpath.read_text())["targets"]]
            nz = np.flatnonzero(p > 0)
            jit = np.random.default_rng(0).uniform(-0.3, 0.3, nz.size)
            ax.scatter(x + jit, p[nz], s=4, color="0.6")
            ax.scatter(x + np.random.default_rng(1).uniform(-0.3, 0.3, len(tg)), p[tg], s=6,
                       color="C0" if model == "gelu-1l" else "C1")
            labels.append(f"{fam}\n{model[5:]}")
            x += 1
    ax.axhspan(1e-9, 1e-5, color="C2", alpha=0.1, label="target band 1e-9..1e-5")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("exact p_t (every token with p > 0)")
    ax.set_title("Exact-truth suites: grey = all tokens, blue/orange = targets (gelu-1l / gelu-2l)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(obj: dict) -> str:
    lines = [f"{'model':8} {'family':8} {'log2N':>6} {'sec':>6} {'in/s':>6} {'tie mass':>9} {'#1e-9..1e-5':>11} {'targets':>7} {'min p':>9}"]
    for r in obj["suites"]:
        lines.append(f"{r['model']:8} {r['family']:8} {r['log2_n_inputs']:6.2f} {r['seconds']:6.0f} {r['inputs_per_second']:6.0f} "
                     f"{r['tie_mass']:9.1e} {r['tokens_in_1e-9_1e-5']:11d} {r['n_targets']:7d} {r['smallest_nonzero_p']:9.1e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(SHIPPED_MODELS), choices=list(SHIPPED_MODELS))
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--reverse", action="store_true", help="take the suites in reverse order (for a second process)")
    ap.add_argument("--specs-only", action="store_true", help="write the short specs and stop")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = ap.parse_args(argv)
    if args.specs_only:
        for fam in args.families:
            s = ensure_spec(fam)
            print(fam, s.support_size(), f"2^{math.log2(s.support_size()):.2f}", s.spec_hash())
        return 0
    if not args.summary_only:
        t0 = time.perf_counter()
        adapters = {m: load_shipped(m) for m in args.models}
        jobs = [(m, f) for f in args.families for m in args.models]
        if args.reverse:
            jobs = jobs[::-1]
        for model, fam in jobs:  # several builder processes share the list through per-suite lock files
            if not run_suite(model, fam, adapters[model], chunk=args.chunk, progress=args.progress)["skipped"]:
                summarize()
        print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    print(_table(summarize()))
    print("plot:", plot())
    return 0


if __name__ == "__main__":
    sys.exit(main())
