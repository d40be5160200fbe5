"""Start-up cost of the CLI: ``lowprob --help`` and ``lowprob toy exact`` (issue 16).

    python benchmarks/startup.py [--root DIR] [--label NAME] [--repeats 5] [--out benchmarks/results/startup.json]

For each command: wall time of ``python -m lowprob ...`` as a subprocess (median and min of
``--repeats`` runs) and the number of modules imported, with which heavy libraries were loaded.
``--root`` points at the source tree to measure (e.g. an older checkout for a before/after).
Prints a table and appends one JSON record (per ``--label``) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"help": ["--help"], "toy_exact": ["toy", "exact"]}
HEAVY = ("numpy", "scipy", "scipy.stats", "torch", "transformers", "tqdm")


def measure(root: Path, repeats: int) -> dict[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out: dict[str, dict[str, object]] = {}
    for name, argv in COMMANDS.items():
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lowprob", *argv], cwd=root, env=env, capture_output=True, check=True)
            ts.append(time.perf_counter() - t)
        code = (
            "import sys, io, contextlib\nfrom lowprob.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main({argv!r})\n"
            "    except SystemExit:\n        pass\n"
            f"print(len(sys.modules)); print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
        )
        res = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
        n_mod, heavy = (res.stdout.strip().splitlines() + [""])[:2]
        out[name] = {"median_s": statistics.median(ts), "min_s": min(ts), "all_s": ts,
                     "modules": int(n_mod), "heavy": [h for h in heavy.split(",") if h]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--label", default="current")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/startup.json")
    args = ap.parse_args()
    rec = {"label": args.label, "root": args.root, "python": sys.version.split()[0],
           "machine": "2 shared CPU cores, loaded by parallel jobs", **measure(Path(args.root), args.repeats)}
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.is_file() else []
    old = [r for r in old if r.get("label") != args.label] + [rec]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(old, indent=1) + "\n")
    print(f"{'label':10s} {'command':10s} {'median s':>9s} {'min s':>7s} {'modules':>8s}  heavy")
    for r in old:
        for name in COMMANDS:
            m = r[name]
            print(f"{r['label']:10s} {name:10s} {m['median_s']:9.2f} {m['min_s']:7.2f} {m['modules']:8d}  {','.join(m['heavy'])}")


if __name__ == "__main__":
    main()
