"""The docs' code examples run as written: each block tagged ``<!-- docs-example: NAME -->`` in
``docs/kterm.md`` is extracted from the markdown file itself and executed.

Tier: fast. Closed form: two half-spaces in R^3 have p = 1/4 + arcsin(u_1 . u_2) / (2 pi).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import lowprob.propagation  # noqa: F401  (deduction rules and sketch views)
from lowprob.propagation.loop import PropagationTrace
from lowprob.sketching import PointSketch, SketchError, UniformSphere, as_sketch

DOC = Path(__file__).resolve().parents[1] / "docs" / "kterm.md"


def _block(name: str) -> str:
    text = DOC.read_text()
    m = re.search(rf"<!-- docs-example: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"no block tagged {name!r} in {DOC}"
    return m.group(1)


def test_new_scheme_example_is_under_50_lines_and_runs():
    code = _block("new-scheme")
    assert len(code.strip().splitlines()) < 50
    ns: dict = {"__name__": "docs_example"}
    exec(compile(code, f"{DOC}:new-scheme", "exec"), ns)
    trace = ns["trace"]
    assert isinstance(trace, PropagationTrace) and len(trace.records) == 2 and trace.flops > 0
    u = ns["W"] / np.linalg.norm(ns["W"], axis=1, keepdims=True)
    exact = 0.25 + np.arcsin(u[0] @ u[1]) / (2 * np.pi)
    assert abs(trace.value - exact) < 0.02  # a crude cubature of a discontinuous integrand
    assert isinstance(as_sketch(trace.final, UniformSphere(3)), PointSketch)  # its one-line view works


def test_measurement_example_runs_and_reports_valid_bounds():
    ns: dict = {"__name__": "docs_example"}
    exec(compile(_block("measure"), f"{DOC}:measure", "exec"), ns)
    err = ns["err"]
    assert isinstance(err, SketchError) and 0 <= err.lower <= err.value <= err.upper
