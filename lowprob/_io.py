"""File output shared by every command: strict JSON and atomic writes.

* **Strict JSON.** ``json.dumps(..., allow_nan=False)`` after mapping non-finite floats to the
  agreed strings ``"inf"``, ``"-inf"`` and ``"nan"`` (numpy scalars and arrays become Python
  values). Every ``--json`` output and every results file goes through :func:`dumps_strict`, so no
  file ever holds the bare ``NaN``/``Infinity`` tokens that strict JSON parsers reject.
* **Atomic writes.** :func:`atomic_write_text` writes to a temporary file in the *same directory*
  and ``os.replace``-s it onto the target, so a reader (or a crash) never sees a half-written file
  and no stray temporary file survives an error.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lowprob.errors import InputValueError

__all__ = [
    "NONFINITE", "atomic_write_json", "atomic_write_text", "check_writable", "dumps_strict", "load_npy",
    "strict_jsonable",
]

#: How non-finite floats are spelled in every JSON output of the library.
NONFINITE = {"inf": "inf", "-inf": "-inf", "nan": "nan"}


def _float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return NONFINITE["nan"]
    return NONFINITE["inf"] if x > 0 else NONFINITE["-inf"]


def strict_jsonable(obj: Any) -> Any:
    """Recursively convert ``obj`` to plain JSON values, non-finite floats as strings."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, np.ndarray):
        return strict_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): strict_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_json"):
        return strict_jsonable(obj.to_json())
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`strict_jsonable` ``(obj)`` with ``allow_nan=False``."""
    return json.dumps(strict_jsonable(obj), allow_nan=False, **kwargs)


def check_writable(path: str | Path, *, what: str = "--out") -> Path:
    """Refuse, before any work, an output path whose directory cannot be created or written."""
    path = Path(path)
    parent = path.parent if path.suffix else path
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InputValueError(f"{what} {str(path)!r} is not writable ({str(probe)!r} cannot be written); choose another path.")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same directory + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file open()'s usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Strict JSON (see :func:`dumps_strict`) written atomically; returns the path."""
    return atomic_write_text(path, dumps_strict(obj, indent=indent) + "\n")


def load_npy(path: str | Path, *, what: str, expect: str) -> np.ndarray:
    """A numeric array from a ``numpy.save`` file, never unpickling; every failure is an
    :class:`~lowprob.errors.InputValueError` naming the option ``what`` and saying what to save
    (``expect``, e.g. ``"a float array of shape (m, d)"``)."""
    p = Path(path)
    hint = f"save {expect} with numpy.save(path, array) (pickles are not accepted)"
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise InputValueError(f"{what}: file {str(p)!r} does not exist.") from None
    except OSError as exc:
        raise InputValueError(f"{what}: cannot open {str(p)!r}: {exc}.") from None
    if magic != b"\x93NUMPY":
        raise InputValueError(f"{what}: {str(p)!r} is not a .npy file (wrong header {magic!r}); {hint}.")
    try:
        A = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputValueError(f"{what}: cannot read {str(p)!r} as a .npy array ({exc}); {hint}.") from None
    if not isinstance(A, np.ndarray) or A.dtype.kind not in "fiub":
        raise InputValueError(
            f"{what}: {str(p)!r} must hold a numeric array, got {type(A).__name__} of dtype "
            f"{getattr(A, 'dtype', None)!r}; {hint}."
        )
    return A
