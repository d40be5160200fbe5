#!/usr/bin/env bash
# One prepared script for the `device` tool (one GPU): LM-bridge throughput and method timings.
#
# Prints
#   1. ground-truth throughput (lowprob.lm_bridge.ground_truth.count_argmax, fp32, TF32 off) in
#      samples/s and as a fraction of the GPU's peak FP32 (non-tensor-core) FLOP/s, where the
#      FLOPs per sample are those of a dense full forward pass (see `dense_flops` below; the
#      tabulated kernel does less work, so this is the useful-work rate);
#   2. each registered LM method's seconds for one estimate at 2^16 model calls.
# Writes benchmarks/results/lm_gpu.json (and prints the table).
#
# Usage (repository root):  bash benchmarks/lm_gpu.sh
# Env: MODELS="gelu-1l gelu-2l" (shipped names or HF dirs), GT_SAMPLES=2^28, BUDGET=65536,
#      FAMILY=hex, SPEC=path.json (instead of the shipped FAMILY spec), DEVICE=auto,
#      LM_GPU_SMOKE=1 (tiny sizes: checks the script on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
export LOWPROB_LM_PLUGINS=${LOWPROB_LM_PLUGINS:-lowprob.lm_bridge.whitebox.methods}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "(no nvidia-smi)"
exec "$PY" - <<'PYEOF'
import json, math, os, time
from pathlib import Path

import torch

from lowprob.lm_bridge.adapters.loading import load_hf, resolve_device
from lowprob.lm_bridge.distributions import TokenSpec
from lowprob.lm_bridge.ground_truth import count_argmax
from lowprob.lm_bridge.methods.registry import available_lm_methods, make_lm_method
from lowprob.lm_bridge.problem import LMProblem
from lowprob.lm_bridge import zoo

smoke = os.environ.get("LM_GPU_SMOKE") == "1"
device = resolve_device(os.environ.get("DEVICE", "auto"))
models = os.environ.get("MODELS", "gelu-1l gelu-2l").split()
family = os.environ.get("FAMILY", "hex")
gt_samples = int(eval(os.environ.get("GT_SAMPLES", "2**14" if smoke else "2**28")))
budget = int(eval(os.environ.get("BUDGET", "2**10" if smoke else "2**16")))
if device.type == "cpu":
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))

# Peak dense FP32 (non-tensor-core) FLOP/s by GPU name (vendor datasheets).
PEAK_FP32 = {"H100 SXM": 66.9e12, "H100 PCIe": 51.2e12, "H100 NVL": 60.0e12, "H200": 66.9e12, "A100": 19.5e12}
name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
peak = next((v for k, v in PEAK_FP32.items() if k.replace(" ", "").lower() in name.replace(" ", "").lower()), None)
if peak is None and "H100" in name:
    peak = PEAK_FP32["H100 SXM"]

def dense_flops(adapter, T):
    """2 x multiply-adds of a full forward: per layer T(12 d^2) + 2 T^2 d, plus the last position's d V."""
    d, L, V = adapter.d_model, adapter.n_layers, adapter.vocab_size
    return 2 * (L * (T * 12 * d * d + 2 * T * T * d) + d * V)

def load(m):
    return zoo.load_shipped(m, device=device) if m in zoo.SHIPPED_MODELS else load_hf(m, device=device)

def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()

out = {"device": name, "torch": torch.__version__, "peak_fp32_flops": peak, "budget": budget, "models": {}}
for m in models:
    adapter = load(m)
    spec_path = os.environ.get("SPEC") or zoo.shipped_specs_dir() / f"{family}.json"
    spec = TokenSpec.load(spec_path, vocab_size=adapter.vocab_size)
    rec = out["models"][m] = {"family": family, "T": spec.length}
    # 1. ground truth throughput (warm-up chunk first)
    count_argmax(adapter, spec, min(gt_samples, 2**16), seed=1, show_progress=False)
    sync(); t0 = time.perf_counter()
    gt = count_argmax(adapter, spec, gt_samples, seed=0, show_progress=False)
    sync(); secs = time.perf_counter() - t0
    sps = gt_samples / secs
    fl = dense_flops(adapter, spec.length)
    rec["ground_truth"] = {"samples": gt_samples, "seconds": secs, "samples_per_s": sps,
                           "dense_flops_per_sample": fl, "flops_per_s": sps * fl,
                           "fraction_of_peak_fp32": (sps * fl / peak) if peak else None}
    print(f"[{m}] ground truth: {gt_samples} samples in {secs:.2f} s = {sps:.3e} samples/s; "
          f"{sps * fl:.3e} dense FLOP/s" + (f" = {100 * sps * fl / peak:.1f}% of FP32 peak" if peak else ""))
    # 2. methods at `budget` calls on one target (the first shipped target of this family, else
    #    the rarest token seen in the count above)
    tfile = None
    try:
        tfile = next(iter(sorted(zoo.shipped_ground_truth_dir(m).glob(f"{family}*targets*.json"))), None)
    except Exception:
        pass
    if tfile is not None:
        target = json.loads(tfile.read_text())["targets"][0]["token"]
    else:
        nz = [t for t in range(adapter.vocab_size) if gt.counts[t] > 0]
        target = min(nz, key=lambda t: gt.counts[t])
    problem = LMProblem(adapter, spec, int(target))
    rec["methods"] = {}
    for meth in available_lm_methods():
        est_fn = make_lm_method(meth)
        try:
            sync(); t0 = time.perf_counter()
            e = est_fn.estimate(problem, budget, seed=0)
            sync(); s = time.perf_counter() - t0
            rec["methods"][meth] = {"seconds": s, "forward": e.cost.model_calls, "backward": e.cost.backward_calls,
                                    "estimate": e.value}
            print(f"[{m}] {meth:14s} {s:8.2f} s  ({e.cost.model_calls} fwd, {e.cost.backward_calls} bwd, p_hat={e.value:.3g})")
        except Exception as exc:  # report and continue: one failing method must not hide the others
            rec["methods"][meth] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"[{m}] {meth:14s} ERROR {type(exc).__name__}: {exc}")
path = Path("benchmarks/results") / ("lm_gpu_smoke.json" if smoke else "lm_gpu.json")
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=1, default=str) + "\n")
print(f"wrote {path}")
PYEOF
