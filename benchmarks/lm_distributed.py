"""Ground-truth throughput: one process vs ``torchrun`` gloo ranks, measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/lm_distributed.py [--model gelu-1l] [--family hex]
        [--samples 32768] [--ranks 2] [--out benchmarks/results/lm_distributed.json]

Runs ``lowprob lm ground-truth`` once as a plain process and once under
``python -m torch.distributed.run --nproc-per-node R`` on the same (model, spec, seed, batch size,
N), each rank single-threaded, and checks that the counts are identical. Throughput is the
command's own ``this_run_samples_per_second`` (samples counted / wall seconds of the counting
loop, start-up excluded). Prints a table, writes a JSON record and a bar plot.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gelu-1l")
    ap.add_argument("--family", default="hex")
    ap.add_argument("--samples", type=int, default=2**15)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/lm_distributed.json"))
    args = ap.parse_args()
    common = ["lm", "ground-truth", "--model", args.model, "--dist", args.family, "--samples", str(args.samples),
              "--batch-size", str(args.batch_size), "--seed", "0", "--device", "cpu", "--no-progress"]
    with tempfile.TemporaryDirectory() as tmp:
        one = _run([sys.executable, "-m", "lowprob", *common, "--out", f"{tmp}/one.json"])
        many = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.ranks),
                     "--master-port", str(_port()), "-m", "lowprob", *common, "--out", f"{tmp}/many.json"])
        a = json.loads(Path(f"{tmp}/one.json").read_text())
        b = json.loads(Path(f"{tmp}/many.json").read_text())
    identical = a["counts"] == b["counts"]
    ratio = many["this_run_samples_per_second"] / one["this_run_samples_per_second"]
    rec = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{os.cpu_count()} CPU cores (shared); load average {os.getloadavg()[0]:.1f} at the end",
        "model": args.model, "family": args.family, "samples": args.samples, "batch_size": args.batch_size,
        "single": {"samples_per_second": one["this_run_samples_per_second"]},
        "sharded": {"ranks": args.ranks, "samples_per_second": many["this_run_samples_per_second"],
                    "per_rank_samples_per_second": many["per_rank_samples_per_second"]},
        "speedup": ratio, "counts_identical": identical,
    }
    print(f"{'run':<12}{'samples/s':>12}")
    print(f"{'1 process':<12}{rec['single']['samples_per_second']:>12.0f}")
    print(f"{f'{args.ranks} ranks':<12}{rec['sharded']['samples_per_second']:>12.0f}  "
          f"(per rank {', '.join(f'{x:.0f}' for x in rec['sharded']['per_rank_samples_per_second'])})")
    print(f"speed-up {ratio:.2f}x; counts identical: {identical}")
    from lowprob._io import atomic_write_json

    atomic_write_json(args.out, rec)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["1 process", f"{args.ranks} gloo ranks"], [rec["single"]["samples_per_second"],
                                                        rec["sharded"]["samples_per_second"]])
    ax.set_ylabel("samples / s")
    ax.set_title(f"{args.model} {args.family}: {ratio:.2f}x")
    fig.tight_layout()
    fig.savefig(Path(args.out).with_suffix(".png"), dpi=120)
    if not identical:
        sys.exit("counts differ between the single-process and the sharded run")


if __name__ == "__main__":
    main()
