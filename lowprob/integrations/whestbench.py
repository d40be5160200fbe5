"""WhestBench adapter: lowprob's estimators under WhestBench's contract (see
:mod:`lowprob.integrations.whestbench_estimators`).

Install with ``pip install 'lowprob[whestbench]'``. Command line, from the repo root::

    whest run --estimator lowprob/integrations/whestbench.py --class DesignEstimator

Importing this module loads flopscope, whestbench and lowprob's stdlib-only kernels only
(no scipy, no torch), so WhestBench's setup stays well under a second. For a submission
(the grader has only flopscope, whestbench and the standard library) write a single file
with ``python -m lowprob whestbench export --out DIR``.
"""

from __future__ import annotations

try:
    import flopscope.numpy  # noqa: F401
    import whestbench  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "lowprob.integrations.whestbench needs the optional extra: "
        "pip install 'lowprob[whestbench]'"
    ) from exc

from lowprob.integrations.whestbench_estimators import (
    VARIANTS,
    AutoEstimator,
    DesignEstimator,
    KpropEstimator,
    flopscope_layer_cost,
)

__all__ = ["VARIANTS", "AutoEstimator", "DesignEstimator", "KpropEstimator", "flopscope_layer_cost"]
