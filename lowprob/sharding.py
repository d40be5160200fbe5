"""Chunked sums sharded over ``torch.distributed`` ranks, checkpointed per rank, bit-identical.

A ground-truth job is a sum of per-chunk vectors ``S = sum_{k=0}^{n-1} f(k)``: argmax counts of
the ``k``-th batch of samples (int64), or the probability-weighted argmax mass of the ``k``-th
enumeration chunk (float64), or the activation sums of the ``k``-th batch of MLP inputs. Each
``f(k)`` depends only on ``k`` and the job's key (model, spec, seed, batch size), so the chunks can
be computed anywhere, in any order, by any number of processes.

**Sharding.** Launched by ``torchrun`` (the environment holds ``RANK``/``WORLD_SIZE``/
``MASTER_ADDR``), :func:`init_ranks` joins the process group (NCCL on CUDA, gloo on CPU);
launched plainly it is one process. Rank ``r`` of ``W`` takes the chunks ``remaining[r::W]``,
where ``remaining`` is the sorted list of chunks no checkpoint has finished yet.

**Bit-identical results.** Integer sums are exact in any order, so int64 partial sums are
reduced with one ``all_reduce``. Float64 sums are not associative, so float jobs keep one row per
chunk: every rank contributes its rows to an ``(n, V)`` tensor of zeros and an ``all_reduce`` adds
them (``x + 0 = x`` exactly, and each row has exactly one contributor); rank 0 then adds the rows
in chunk order ``0..n-1``, which is what a single process does. Any world size and any history
of interruptions therefore give the same bits as one uninterrupted process.

**Checkpoints.** Each rank writes its finished chunks to its own part file
``<out>.shards/part-<run>-r<rank>.npz`` (atomically, ``allow_pickle=False`` on load) every
``checkpoint_seconds``, after its first chunk, on SIGTERM/SIGINT, and at the end. A restart, with
any world size, reads the union of all parts (refusing parts whose key differs from the job's)
and computes only the rest. Rank 0 holds ``<out>.lock`` for the whole run, so a second run on the
same ``--out`` is refused instead of corrupting it.

The state directory must be visible to every rank (a shared filesystem for multi-node runs).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowprob._progress import progress
from lowprob._validation import check_int
from lowprob.errors import InputValueError

__all__ = [
    "ChunkPlan",
    "Interrupted",
    "RankInfo",
    "ShardResult",
    "init_ranks",
    "close_ranks",
    "output_lock",
    "remove_state",
    "run_chunks",
    "shard_dir",
]

PART_FORMAT = "lowprob.shard/1"
#: Largest ``n_chunks * width`` float64 table a float job may reduce (bytes).
MAX_ROWS_BYTES = 4 << 30


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT/SIGTERM after saving its checkpoint (resume by rerunning).

    A ``KeyboardInterrupt`` (not an error): the CLI prints one line and exits ``128 + signum``.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


# -- ranks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankInfo:
    """This process's place in the job: ``rank`` of ``world_size`` (``backend=None``: no group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_ranks(device_type: str = "cpu") -> RankInfo:
    """Join the ``torchrun`` process group if launched by one, else return a single-process info.

    The backend is NCCL for CUDA devices and gloo otherwise. A ``WORLD_SIZE`` of 1 under torchrun
    also runs without a group.
    """
    if not _launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return RankInfo()
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return RankInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), backend)


def close_ranks(info: RankInfo) -> None:
    """Leave the process group joined by :func:`init_ranks` (no-op for a single process)."""
    if info.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _all_reduce_sum(info: RankInfo, array: np.ndarray) -> np.ndarray:
    if not info.distributed:
        return array
    import torch
    import torch.distributed as dist

    t = torch.from_numpy(np.ascontiguousarray(array))
    if info.backend == "nccl":
        t = t.to(f"cuda:{info.local_rank}")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy()


def _broadcast_text(info: RankInfo, text: str | None) -> str:
    """Rank 0's ``text`` on every rank (fixed-size tensor, no pickling)."""
    if not info.distributed:
        return text or ""
    raw = np.zeros(256, dtype=np.int64)
    if info.is_main:
        b = (text or "").encode()[:255]
        raw[: len(b)] = np.frombuffer(b, dtype=np.uint8)
    raw = _all_reduce_sum(info, raw if info.is_main else np.zeros_like(raw))
    return bytes(raw[raw > 0].astype(np.uint8)).decode()


# -- the plan and its state ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkPlan:
    """``n_chunks`` chunks of a job whose provenance is ``key`` (checked on every resume).

    ``dtype`` is ``"int64"`` (partial sums kept per part) or ``"float64"`` (one row per chunk,
    summed in chunk order for bit-identical results); ``width`` is the length of ``f(k)``.
    """

    n_chunks: int
    width: int
    dtype: str
    key: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int("n_chunks", self.n_chunks, minimum=1)
        check_int("width", self.width, minimum=1)
        if self.dtype not in ("int64", "float64"):
            raise InputValueError(f"dtype must be 'int64' or 'float64', got {self.dtype!r}.")

    def key_json(self) -> str:
        return json.dumps({"n_chunks": self.n_chunks, "width": self.width, "dtype": self.dtype, **self.key},
                          sort_keys=True, default=str)

    def assigned(self, info: RankInfo, done: set[int]) -> Iterator[int]:
        """Chunks this rank computes, lazily: the unfinished ones (``remaining``, in order), dealt
        round-robin by rank, ``remaining[rank::world_size]``."""
        i = 0
        for k in range(self.n_chunks):
            if k in done:
                continue
            if i % info.world_size == info.rank:
                yield k
            i += 1

    def n_assigned(self, info: RankInfo, done: set[int]) -> int:
        """``len(remaining[rank::world_size])`` without listing the chunks."""
        remaining = self.n_chunks - sum(1 for k in done if 0 <= k < self.n_chunks)
        return max(0, -(-(remaining - info.rank) // info.world_size))


def shard_dir(out: str | Path) -> Path:
    """The per-rank checkpoint directory of the job writing ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


@dataclass
class _Done:
    chunks: set[int]
    total: np.ndarray | None  # int64: sum over done chunks
    rows: dict[int, np.ndarray]  # float64: one row per done chunk
    seconds: float


def _load_parts(directory: Path, plan: ChunkPlan) -> _Done:
    done = _Done(set(), np.zeros(plan.width, np.int64) if plan.dtype == "int64" else None, {}, 0.0)
    if not directory.is_dir():
        return done
    want = plan.key_json()
    for path in sorted(directory.glob("part-*.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                chunks = z["chunks"].astype(np.int64)
                values = z["values"]
        except Exception as exc:  # noqa: BLE001 -- any unreadable file is refused the same way
            raise InputValueError(
                f"checkpoint part {str(path)!r} is corrupted or unreadable ({type(exc).__name__}: {exc}); it was "
                f"left untouched. Delete {str(directory)!r} to start over."
            ) from None
        if meta.get("format") != PART_FORMAT or meta.get("key") != want:
            raise InputValueError(
                f"checkpoint part {str(path)!r} belongs to another run (model, spec, seed, batch size or chunk "
                f"plan differ): {meta.get('key')!r} vs {want!r}; it was left untouched. Pass another --out or "
                f"delete {str(directory)!r}."
            )
        overlap = done.chunks.intersection(int(k) for k in chunks)
        if overlap:
            raise InputValueError(
                f"checkpoint parts in {str(directory)!r} both claim chunks {sorted(overlap)[:5]}; the state is "
                "inconsistent. Delete the directory to start over."
            )
        done.chunks.update(int(k) for k in chunks)
        done.seconds += float(meta.get("seconds", 0.0))
        if plan.dtype == "int64":
            done.total += values.astype(np.int64)
        else:
            for k, row in zip(chunks, values, strict=True):
                done.rows[int(k)] = row.astype(np.float64)
    return done


class _Part:
    """This rank's part file: the chunks it finished in this run and their values."""

    def __init__(self, directory: Path, plan: ChunkPlan, info: RankInfo, run_id: str) -> None:
        self.path = directory / f"part-{run_id}-r{info.rank}.npz"
        self.plan = plan
        self.chunks: list[int] = []
        self.total = np.zeros(plan.width, np.int64)
        self.rows: list[np.ndarray] = []
        self.seconds = 0.0
        self.saved = 0

    def add(self, k: int, value: np.ndarray) -> None:
        self.chunks.append(k)
        if self.plan.dtype == "int64":
            self.total += value.astype(np.int64)
        else:
            self.rows.append(np.asarray(value, dtype=np.float64))

    def save(self) -> None:
        if len(self.chunks) == self.saved:
            return
        values = self.total if self.plan.dtype == "int64" else np.stack(self.rows)
        meta = {"format": PART_FORMAT, "key": self.plan.key_json(), "seconds": self.seconds}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=np.array(json.dumps(meta)), chunks=np.asarray(self.chunks, np.int64), values=values)
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()
        self.saved = len(self.chunks)


# -- the lock ------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``<out>.lock`` (``O_EXCL``) while writing ``out``; refuse if a live run holds it.

    A lock left by a dead process on this host is taken over; one from another host is refused
    (its owner cannot be checked from here: delete the lock file if that run is gone).
    """
    out = Path(out)
    lock = out.with_name(out.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text() or "{}")
            except (OSError, ValueError):
                owner = {}
            stale = owner.get("host") == me["host"] and not _pid_alive(int(owner.get("pid", -1)))
            if stale:
                lock.unlink(missing_ok=True)
                continue
            raise InputValueError(
                f"--out {str(out)!r} is being written by another run (lock {str(lock)!r} held by {owner!r}); "
                "wait for it, or delete the lock file if that run is gone."
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


# -- the runner ----------------------------------------------------------------------------------
@dataclass
class ShardResult:
    """The reduced sum (on rank 0; ``None`` elsewhere) and how the work was spread.

    ``seconds`` is the wall time of this run on this rank; ``per_rank`` lists, for every rank,
    the chunks and items it computed in this run and its items per second.
    """

    total: np.ndarray | None
    chunks_done: int
    chunks_this_run: int
    seconds: float
    seconds_all_runs: float
    per_rank: list[dict[str, float]]


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """Turn the first SIGINT/SIGTERM into a flag (``state["signum"]``) that the chunk loop polls, so
    the run saves its checkpoint at the next chunk boundary; a second signal interrupts at once.
    Handlers are installed only in the main thread and restored on exit."""
    state: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if "signum" in state:
            raise KeyboardInterrupt
        state["signum"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_chunks(
    plan: ChunkPlan,
    fn: Callable[[int], np.ndarray],
    *,
    state_dir: str | Path | None,
    info: RankInfo | None = None,
    items_per_chunk: Callable[[int], int] = lambda k: 1,
    checkpoint_seconds: float = 60.0,
    show_progress: bool | None = None,
    desc: str = "",
    prior: tuple[set[int], np.ndarray] | None = None,
    max_chunks: int | None = None,
) -> ShardResult:
    """Compute ``sum_k fn(k)`` over ``plan``'s chunks on every rank, resuming from ``state_dir``.

    Args:
        plan: the chunks and the job key.
        fn: ``k -> (width,)`` values of chunk ``k``; called only for chunks nobody finished.
        state_dir: per-rank part files (``None``: no checkpoints).
        info: ranks from :func:`init_ranks` (default: a single process).
        items_per_chunk: samples (or inputs) in chunk ``k``, for throughput reporting.
        checkpoint_seconds: save this rank's part at least this often (and after its first chunk).
        prior: int64 jobs only: chunks already summed elsewhere (e.g. a finished output file being
            extended) and their sum.
        max_chunks: stop after this many chunks per rank in this call (the result then covers the
            finished chunks only; ``chunks_done < n_chunks``).

    Raises:
        Interrupted: on SIGINT/SIGTERM, after saving this rank's part.
    """
    info = info or RankInfo()
    if not (checkpoint_seconds >= 0 and np.isfinite(checkpoint_seconds)):
        raise InputValueError(f"checkpoint_seconds must be a finite number >= 0, got {checkpoint_seconds!r}.")
    directory = Path(state_dir) if state_dir is not None else None
    if directory is not None and directory.exists() and not directory.is_dir():
        raise InputValueError(
            f"checkpoint directory {str(directory)!r} is a file (corrupted, or another program's state); it was left "
            "untouched. Delete it or pass another --out."
        )
    done = _load_parts(directory, plan) if directory is not None else _Done(
        set(), np.zeros(plan.width, np.int64) if plan.dtype == "int64" else None, {}, 0.0)
    if prior is not None:
        if plan.dtype != "int64":
            raise InputValueError("prior sums are only supported for int64 jobs.")
        p_chunks, p_sum = prior
        overlap = done.chunks & p_chunks
        if overlap:
            raise InputValueError(f"checkpoint parts repeat chunks already in the output file: {sorted(overlap)[:5]}.")
        done.chunks |= p_chunks
        done.total = done.total + np.asarray(p_sum, np.int64)
    run_id = _broadcast_text(info, uuid.uuid4().hex[:12] if info.is_main else None)
    part = _Part(directory, plan, info, run_id) if directory is not None else None
    mine = plan.assigned(info, done.chunks)
    n_mine = plan.n_assigned(info, done.chunks)
    if max_chunks is not None:
        n_mine = min(n_mine, check_int("max_chunks", max_chunks, minimum=1))
        mine = itertools.islice(mine, n_mine)
    if plan.dtype == "float64" and plan.n_chunks * plan.width * 8 > MAX_ROWS_BYTES:
        raise InputValueError(
            f"a float64 job keeps one row per chunk for its bit-identical reduction: {plan.n_chunks} chunks x "
            f"{plan.width} values = {plan.n_chunks * plan.width * 8 / 2**30:.1f} GiB > "
            f"{MAX_ROWS_BYTES / 2**30:.0f} GiB; use larger chunks."
        )
    local_total = np.zeros(plan.width, np.int64) if plan.dtype == "int64" else None
    local_rows: dict[int, np.ndarray] = {}
    items = 0
    t0 = time.perf_counter()
    t_last = t0
    signalled: dict[str, int] = {}
    try:
        with _stop_on_signals() as signalled:
            it = progress(mine, total=n_mine, desc=desc, enabled=show_progress if info.is_main else False)
            for i, k in enumerate(it):
                value = np.asarray(fn(k))
                if value.shape != (plan.width,):
                    raise InputValueError(f"chunk {k} returned shape {value.shape}, expected ({plan.width},).")
                if plan.dtype == "int64":
                    local_total += value.astype(np.int64)
                else:
                    local_rows[k] = value.astype(np.float64)
                items += items_per_chunk(k)
                if part is not None:
                    part.add(k, value)
                    now = time.perf_counter()
                    if i == 0 or now - t_last > checkpoint_seconds or signalled:
                        part.seconds = now - t0
                        part.save()
                        t_last = now
                if signalled:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if part is not None:
            part.seconds = time.perf_counter() - t0
            part.save()
        signum = signalled.get("signum", signal.SIGINT)
        where = f"; checkpoint saved in {str(directory)!r}, rerun the same command to resume" if part else ""
        raise Interrupted(f"{signal.Signals(signum).name} received after {len(part.chunks) if part else 0} chunks"
                          f"{where}.", signum) from None
    seconds = time.perf_counter() - t0
    if part is not None:
        part.seconds = seconds
        part.save()
    # reduce
    stats = np.zeros((info.world_size, 3), dtype=np.float64)
    stats[info.rank] = (n_mine, items, seconds)
    stats = _all_reduce_sum(info, stats)
    if plan.dtype == "int64":
        new = _all_reduce_sum(info, local_total)
        total = done.total + new if info.is_main else None
    else:
        rows = np.zeros((plan.n_chunks, plan.width), np.float64)
        for k, r in done.rows.items():
            if info.is_main:
                rows[k] = r
        for k, r in local_rows.items():
            rows[k] = r
        rows = _all_reduce_sum(info, rows)
        total = None
        if info.is_main:
            total = np.zeros(plan.width, np.float64)
            for k in range(plan.n_chunks):
                total += rows[k]
    per_rank = [
        {"rank": r, "chunks": int(c), "items": int(n), "seconds": float(s), "items_per_second": (n / s if s > 0 else None)}
        for r, (c, n, s) in enumerate(stats)
    ]
    n_done = len(done.chunks) + int(stats[:, 0].sum())
    return ShardResult(total, n_done, int(stats[:, 0].sum()), seconds, done.seconds + float(stats[:, 2].max()), per_rank)


def remove_state(state_dir: str | Path) -> None:
    """Delete a finished job's part files and their directory (rank 0, after the output is written)."""
    directory = Path(state_dir)
    if directory.is_dir():
        for p in directory.glob("part-*.npz"):
            p.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()
