"""Sharded chunk sums (``lowprob.sharding``) and ``torchrun`` ground truth: gloo ranks on CPU.

Every multi-rank test spawns real processes (``torch.multiprocessing`` with a gloo group, or
``python -m torch.distributed.run`` for the CLI) and compares with one process bit for bit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lowprob.errors import InputValueError
from lowprob.sharding import ChunkPlan, Interrupted, RankInfo, output_lock, run_chunks, shard_dir

REPO = Path(__file__).resolve().parents[1]
WIDTH = 37
N_CHUNKS = 23


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _int_chunk(k: int) -> np.ndarray:
    rng = np.random.default_rng([11, k])
    return np.bincount(rng.integers(0, WIDTH, size=100 + k), minlength=WIDTH)


def _float_chunk(k: int) -> np.ndarray:
    # values of very different magnitudes, so that summation order changes the bits
    rng = np.random.default_rng([12, k])
    return rng.standard_normal(WIDTH) * 10.0 ** rng.integers(-12, 12, size=WIDTH)


def _plan(dtype: str) -> ChunkPlan:
    return ChunkPlan(N_CHUNKS, WIDTH, dtype, {"job": "test"})


def _worker(rank: int, world: int, port: int, dtype: str, state: str | None, out: str, die_rank: int, die_after: int) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    from lowprob.sharding import close_ranks, init_ranks

    info = init_ranks("cpu")
    fn = _int_chunk if dtype == "int64" else _float_chunk
    calls = [0]

    def chunk(k: int) -> np.ndarray:
        if rank == die_rank and calls[0] == die_after:
            os._exit(3)  # a crash: no cleanup, no final checkpoint
        calls[0] += 1
        return fn(k)

    res = run_chunks(_plan(dtype), chunk, state_dir=state, info=info, checkpoint_seconds=1e9)
    if info.is_main:
        np.save(out, res.total)
    close_ranks(info)


def _spawn(world: int, dtype: str, state: Path | None, out: Path, *, die_rank: int = -1, die_after: int = -1) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, _free_port(), dtype, str(state) if state else None, str(out), die_rank, die_after),
             nprocs=world, join=True)


def _cli(args: list[str], out: Path, *, ranks: int = 1) -> subprocess.CompletedProcess:
    """``python -m lowprob ARGS --out OUT``, under ``torch.distributed.run`` when ``ranks > 1``."""
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port", str(_free_port())]
    cmd = [sys.executable, *(launcher if ranks > 1 else []), "-m", "lowprob", *args, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _single(dtype: str) -> np.ndarray:
    fn = _int_chunk if dtype == "int64" else _float_chunk
    return run_chunks(_plan(dtype), fn, state_dir=None).total


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_two_gloo_ranks_equal_one_process_bitwise(tmp_path, dtype):
    _spawn(2, dtype, None, tmp_path / "t.npy")
    got = np.load(tmp_path / "t.npy")
    want = _single(dtype)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # bit-identical, also for float64
    if dtype == "float64":  # the check has teeth: another summation order changes the bits
        rows = np.stack([_float_chunk(k) for k in range(N_CHUNKS)])
        assert not np.array_equal(rows[::-1].sum(0), want) or not np.array_equal(rows.sum(0), want)


@pytest.mark.parametrize("dtype", ["int64", pytest.param("float64", marks=pytest.mark.slow)])
def test_rank_killed_midrun_then_resumed_with_one_process(tmp_path, dtype):
    state = tmp_path / "state"
    import torch.multiprocessing as mp

    with pytest.raises(mp.ProcessExitedException):
        _spawn(2, dtype, state, tmp_path / "t.npy", die_rank=1, die_after=3)
    parts = sorted(state.glob("part-*.npz"))
    assert parts, "the surviving checkpoints (first chunk of each rank) must be on disk"
    before = {p.name: p.read_bytes() for p in parts}
    # resume with a world size of 1: only the missing chunks are computed
    seen: list[int] = []
    fn = _int_chunk if dtype == "int64" else _float_chunk

    def chunk(k: int) -> np.ndarray:
        seen.append(k)
        return fn(k)

    res = run_chunks(_plan(dtype), chunk, state_dir=state)
    np.testing.assert_array_equal(res.total, _single(dtype))
    assert len(seen) < N_CHUNKS and res.chunks_done == N_CHUNKS
    for name, data in before.items():  # earlier parts are never rewritten
        assert (state / name).read_bytes() == data


def test_interrupt_saves_checkpoint_and_resume_is_exact(tmp_path):
    state = tmp_path / "state"

    def chunk(k: int) -> np.ndarray:
        if k == 9:
            raise KeyboardInterrupt
        return _int_chunk(k)

    with pytest.raises(Interrupted, match="checkpoint saved"):
        run_chunks(_plan("int64"), chunk, state_dir=state, checkpoint_seconds=1e9)
    res = run_chunks(_plan("int64"), _int_chunk, state_dir=state)
    np.testing.assert_array_equal(res.total, _single("int64"))
    assert res.chunks_this_run == N_CHUNKS - 9


def test_mismatched_or_corrupted_state_is_refused_and_left_untouched(tmp_path):
    state = tmp_path / "state"
    with pytest.raises(Interrupted):
        run_chunks(_plan("int64"), lambda k: _int_chunk(k) if k < 4 else (_ for _ in ()).throw(KeyboardInterrupt()),
                   state_dir=state)
    other = ChunkPlan(N_CHUNKS, WIDTH, "int64", {"job": "another"})
    with pytest.raises(InputValueError, match="belongs to another run"):
        run_chunks(other, _int_chunk, state_dir=state)
    part = next(state.glob("part-*.npz"))
    part.write_bytes(b"not an npz")
    with pytest.raises(InputValueError, match="unreadable.*untouched"):
        run_chunks(_plan("int64"), _int_chunk, state_dir=state)
    assert part.read_bytes() == b"not an npz"


def test_round_robin_assignment_is_disjoint_and_complete():
    plan = _plan("int64")
    done = {0, 5, 6}
    got = [list(plan.assigned(RankInfo(r, 3, r, "gloo"), done)) for r in range(3)]
    flat = sorted(k for g in got for k in g)
    assert flat == [k for k in range(N_CHUNKS) if k not in done]
    assert [len(g) for g in got] == [plan.n_assigned(RankInfo(r, 3, r, "gloo"), done) for r in range(3)]
    # lazy: a plan of 2**40 chunks deals its first chunks at once
    huge = ChunkPlan(2**40, 1, "int64")
    it = huge.assigned(RankInfo(1, 2, 1, "gloo"), set())
    assert [next(it) for _ in range(3)] == [1, 3, 5]


def test_output_lock_refuses_a_second_writer(tmp_path):
    out = tmp_path / "gt.json"
    with output_lock(out):
        with pytest.raises(InputValueError, match="being written by another run"):
            with output_lock(out):
                pass
    # a stale lock of a dead process on this host is taken over
    lock = out.with_name(out.name + ".lock")
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    with output_lock(out):
        pass
    assert not lock.exists()


def test_bad_plans():
    with pytest.raises(InputValueError):
        ChunkPlan(0, 3, "int64")
    with pytest.raises(InputValueError):
        ChunkPlan(3, 3, "float32")
    with pytest.raises(InputValueError, match="checkpoint_seconds"):
        run_chunks(_plan("int64"), _int_chunk, state_dir=None, checkpoint_seconds=float("nan"))


@pytest.mark.lm
@pytest.mark.slow
def test_torchrun_ground_truth_equals_single_process(tmp_path):
    pytest.importorskip("transformers")
    from lm_fixtures import save_tiny, tiny_gpt2

    model_dir = save_tiny(tiny_gpt2(n_layer=1, vocab=16, d=16, n_ctx=8), tmp_path / "m")
    probs = (np.arange(1, 16) / np.arange(1, 16).sum()).tolist()
    spec = {"positions": [{"token": 0}] + [{"tokens": list(range(1, 16)), "probs": probs}] * 5}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    common = ["lm", "ground-truth", "--model", str(model_dir), "--dist", str(tmp_path / "spec.json"),
              "--samples", "3000", "--batch-size", "128", "--seed", "4", "--device", "cpu", "--no-progress"]
    two = _cli(common, tmp_path / "two.json", ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _cli(common, tmp_path / "one.json")
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = json.loads((tmp_path / "two.json").read_text()), json.loads((tmp_path / "one.json").read_text())
    assert a["counts"] == b["counts"] and a["n_samples"] == b["n_samples"] == 3000
    assert a["metadata"]["world_size"] == 2 and b["metadata"]["world_size"] == 1
    summary = json.loads(two.stdout.strip().splitlines()[-1])
    assert len(summary["per_rank_samples_per_second"]) == 2
    assert not shard_dir(tmp_path / "two.json").exists()  # finished: no stray state
    assert not (tmp_path / "two.json.lock").exists()
    # a rank that fails makes the whole run exit non-zero with the rank's error
    (tmp_path / "bad.json").write_text(json.dumps({"positions": [{"token": 0}, {"tokens": [1, 99], "probs": [0.5, 0.5]}]}))
    bad = _cli([*common[:5], str(tmp_path / "bad.json"), *common[6:]], tmp_path / "bad_out.json", ranks=2)
    assert bad.returncode != 0 and "lowprob: error:" in bad.stderr and "(rank " in bad.stderr
    assert not (tmp_path / "bad_out.json").exists()


def test_mlp_truth_means_resume_and_match_direct_average(tmp_path):
    from lowprob.toy_models.mlp_truth import mlp_mean_truth
    from lowprob.toy_models.random_mlp import RandomMLP

    mlp = RandomMLP.whestbench(8, 3, seed=1)
    out = tmp_path / "t.json"
    full = mlp_mean_truth(mlp, 1000, seed=2, batch_size=128)
    xs = np.concatenate([np.random.default_rng([2, k]).standard_normal((min(128, 1000 - 128 * k), 8)) for k in range(8)])
    direct = np.stack([a.mean(0) for a in mlp.forward(xs)])
    np.testing.assert_allclose(full.means, direct, rtol=1e-12, atol=1e-12)
    assert full.variances.shape == (3, 8) and np.all(full.variances >= 0)
    # interrupted after 3 chunks (checkpointed), then resumed: bit-identical to the uninterrupted run
    import lowprob.toy_models.mlp_truth as mt

    orig = mt.RandomMLP.forward
    calls = [0]

    def flaky(self, x, **kw):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return orig(self, x, **kw)

    mt.RandomMLP.forward = flaky
    try:
        with pytest.raises(Interrupted):
            mlp_mean_truth(mlp, 1000, seed=2, batch_size=128, out=out, checkpoint_seconds=1e9)
    finally:
        mt.RandomMLP.forward = orig
    assert not out.exists() and shard_dir(out).is_dir()
    resumed = mlp_mean_truth(mlp, 1000, seed=2, batch_size=128, out=out)
    np.testing.assert_array_equal(resumed.means, full.means)
    saved = json.loads(out.read_text())
    assert saved["n_samples"] == 1000 and not shard_dir(out).exists()


def test_mlp_truth_refuses_memory_beyond_limit():
    from lowprob.errors import BudgetError
    from lowprob.toy_models.mlp_truth import mlp_mean_truth
    from lowprob.toy_models.random_mlp import RandomMLP

    with pytest.raises(BudgetError, match="raise --batch-size"):
        mlp_mean_truth(RandomMLP.whestbench(64, 4, seed=0), 2**40, batch_size=1, max_bytes=1 << 20)


@pytest.mark.slow
def test_torchrun_mlp_truth_equals_single_process(tmp_path):
    common = ["mlp", "truth", "--width", "16", "--depth", "3", "--samples", "5000", "--batch-size", "256", "--no-progress"]
    two = _cli(common, tmp_path / "two.json", ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _cli(common, tmp_path / "one.json")
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = json.loads((tmp_path / "two.json").read_text()), json.loads((tmp_path / "one.json").read_text())
    assert a["means"] == b["means"] and a["metadata"]["world_size"] == 2


@pytest.mark.lm
@pytest.mark.slow
def test_torchrun_exact_enumeration_equals_single_process(tmp_path):
    """``--exact`` under torchrun: float64 per-chunk rows, reduced in chunk order, bit for bit."""
    pytest.importorskip("transformers")
    from lm_fixtures import save_tiny, tiny_gpt2

    model_dir = save_tiny(tiny_gpt2(n_layer=2, vocab=16, d=16, n_ctx=8), tmp_path / "m")
    probs = (np.arange(1, 16) / np.arange(1, 16).sum()).tolist()
    spec = {"positions": [{"token": 0}] + [{"tokens": list(range(1, 16)), "probs": probs}] * 4}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    common = ["lm", "ground-truth", "--exact", "--model", str(model_dir), "--dist", str(tmp_path / "spec.json"),
              "--chunk", "2**10", "--device", "cpu", "--no-progress"]
    two = _cli(common, tmp_path / "two.json", ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _cli(common, tmp_path / "one.json")
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = json.loads((tmp_path / "two.json").read_text()), json.loads((tmp_path / "one.json").read_text())
    for k in ("probs", "probs_low", "probs_high", "tie_mass"):
        assert a[k] == b[k], k
    assert a["n_inputs"] == 15**4 and not shard_dir(tmp_path / "two.json").exists()
