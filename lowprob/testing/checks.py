"""Reusable checks that any halfspace-toy estimator can be run through.

Each ``check_*`` function runs the estimator, raises :class:`EstimatorCheckError` (an
``AssertionError``, so pytest reports it as a failure) with a message giving the numbers,
and returns what it measured. The tolerance rule is one object, :class:`Tolerance`:

``|estimate - truth| <= k_sigma * sigma + rtol * |truth| + atol + truth_error + estimate_error``

where ``sigma`` is the estimator's reported ``std_error`` (``variance="reported"``), or the
exact binomial standard deviation ``sqrt(p (1-p) / cost.samples)`` (``variance="binomial"``:
right for naive Monte Carlo, whose plug-in error is 0 when it sees no hits), or 0
(``variance="none"``: deterministic methods); ``estimate_error`` is
``diagnostics["error_bound"]`` when the estimator states one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lowprob.errors import LowprobError
from lowprob.estimate import Cost, Estimate, Estimator
from lowprob.toy_models.halfspace import HalfspaceToy

__all__ = [
    "EstimatorCheckError",
    "Tolerance",
    "check_agrees_with_oracle",
    "check_budget_respected",
    "check_deterministic",
    "check_estimate",
    "check_monotone_in_halfspaces",
    "check_nmse_across_instances",
    "check_permutation_invariance",
    "check_rejects_bad_input",
    "check_scaling_invariance",
    "oracle_probability",
]

Variance = Literal["reported", "binomial", "none"]


class EstimatorCheckError(AssertionError):
    """An estimator failed a property check."""


@dataclass(frozen=True)
class Tolerance:
    """How far an estimate may be from a reference (see the module docstring)."""

    k_sigma: float = 4.0
    rtol: float = 0.0
    atol: float = 0.0
    variance: Variance = "reported"

    def sigma(self, est: Estimate, truth: float) -> float:
        if self.variance == "none":
            return 0.0
        if self.variance == "binomial":
            n = max(est.cost.samples, 1)
            return math.sqrt(max(truth * (1.0 - truth), 0.0) / n)
        return float(est.std_error or 0.0)

    def allowed(self, est: Estimate, truth: float, truth_error: float = 0.0) -> float:
        own = float(est.diagnostics.get("error_bound", 0.0) or 0.0)
        return (
            self.k_sigma * self.sigma(est, truth)
            + self.rtol * abs(truth)
            + self.atol
            + truth_error
            + own
        )


def oracle_probability(problem: HalfspaceToy) -> tuple[float, float]:
    """``(p, error_bound)`` from the exact oracle (``d <= 4``, no bias)."""
    from lowprob.toy_models.oracle import exact_probability

    r = exact_probability(problem.W)
    return r.probability, r.error_bound


def _run(estimator: Estimator, problem: Any, budget: int, seed: Any) -> Estimate:
    est = estimator.estimate(problem, budget, seed=seed)
    check_estimate(est)
    return est


def check_estimate(est: object) -> Estimate:
    """The output is a well-formed :class:`Estimate` (float64 value, consistent log, costs >= 0)."""
    if not isinstance(est, Estimate):
        raise EstimatorCheckError(f"estimate() must return lowprob.Estimate, got {type(est).__name__}.")
    if not isinstance(est.value, float) or math.isnan(est.value):
        raise EstimatorCheckError(f"Estimate.value must be a float, got {est.value!r}.")
    if est.value > 0 and not math.isclose(math.exp(est.log_value), est.value, rel_tol=1e-9, abs_tol=0):
        if est.log_value > -700:
            raise EstimatorCheckError(
                f"log_value {est.log_value!r} does not match value {est.value!r}."
            )
    if est.value == 0 and est.log_value != -math.inf:
        raise EstimatorCheckError(f"value 0 needs log_value -inf, got {est.log_value!r}.")
    if est.std_error is not None and not (est.std_error >= 0):
        raise EstimatorCheckError(f"std_error must be None or >= 0, got {est.std_error!r}.")
    if not isinstance(est.cost, Cost):
        raise EstimatorCheckError(f"Estimate.cost must be a Cost, got {type(est.cost).__name__}.")
    for name, v in est.cost.to_dict().items():
        if not (v >= 0):
            raise EstimatorCheckError(f"cost.{name} must be >= 0, got {v!r}.")
    if not est.method:
        raise EstimatorCheckError("Estimate.method must name the method.")
    return est


def check_agrees_with_oracle(
    estimator: Estimator,
    problem: HalfspaceToy,
    budget: int,
    *,
    seed: Any = 0,
    tolerance: Tolerance = Tolerance(),
    oracle: Callable[[HalfspaceToy], tuple[float, float]] = oracle_probability,
) -> tuple[Estimate, float]:
    """``|estimate - p| <= tolerance.allowed(...)`` with ``p`` from the exact oracle."""
    truth, truth_err = oracle(problem)
    est = _run(estimator, problem, budget, seed)
    allowed = tolerance.allowed(est, truth, truth_err)
    if not abs(est.value - truth) <= allowed:
        raise EstimatorCheckError(
            f"{est.method}: estimate {est.value!r} (std_error {est.std_error!r}) differs from the "
            f"oracle {truth!r} by {abs(est.value - truth):.3g} > allowed {allowed:.3g} "
            f"({tolerance}); problem {problem!r}, budget {budget}, seed {seed!r}."
        )
    return est, truth


def check_nmse_across_instances(
    estimator: Estimator,
    problems: Sequence[HalfspaceToy],
    budget: int,
    *,
    seed: int = 0,
    nmse_tolerance: float,
    min_discrimination: float = 4.0,
    oracle: Callable[[HalfspaceToy], tuple[float, float]] = oracle_probability,
) -> float:
    """Relative MSE over several instances, ``sum_i (hat p_i - p_i)^2 / sum_i p_i^2 <= nmse_tolerance``.

    Agreement on one instance with an absolute tolerance is passed by a constant; this check
    is not. Over the instances, every constant ``c`` has relative MSE at least
    ``floor = 1 - (sum p_i)^2 / (n sum p_i^2)`` (reached at ``c* = sum p_i^2 / sum p_i``; the
    always-zero estimator has 1). The check first requires ``nmse_tolerance <= floor /
    min_discrimination`` (else the instances do not spread enough to tell an estimator from a
    constant, and the *configuration* is refused), so any estimator that passes it beats every
    constant by at least that factor. Instance ``i`` uses seed ``seed + i``. Returns the
    relative MSE.
    """
    if len(problems) < 2:
        raise EstimatorCheckError("check_nmse_across_instances needs at least 2 instances.")
    truths = np.array([oracle(pr)[0] for pr in problems], dtype=np.float64)
    denom = float(np.sum(truths**2))
    if denom <= 0:
        raise EstimatorCheckError("every instance has p = 0; use feasible instances.")
    floor = 1.0 - float(np.sum(truths)) ** 2 / (len(truths) * denom)
    if not nmse_tolerance * min_discrimination <= floor:
        raise EstimatorCheckError(
            f"the instances do not discriminate: the best constant estimator reaches relative MSE "
            f"{floor:.3g}, and nmse_tolerance={nmse_tolerance!r} x {min_discrimination} exceeds it; "
            "use instances whose probabilities spread more (more instances, other seeds) or a "
            "smaller nmse_tolerance."
        )
    values = np.array([_run(estimator, pr, budget, seed + i).value for i, pr in enumerate(problems)])
    nmse = float(np.sum((values - truths) ** 2) / denom)
    if not nmse <= nmse_tolerance:
        worst = int(np.argmax(np.abs(values - truths)))
        raise EstimatorCheckError(
            f"{type(estimator).__name__}: relative MSE {nmse:.3g} over {len(problems)} instances > "
            f"nmse_tolerance {nmse_tolerance!r} (a constant reaches {floor:.3g}); worst instance "
            f"{worst}: estimate {values[worst]!r} vs p = {truths[worst]!r}; budget {budget}."
        )
    return nmse


def check_budget_respected(
    estimator: Estimator, problem: Any, budget: int, *, seed: Any = 0
) -> Estimate:
    """The cost field named by ``Estimate.budget_unit`` (``samples`` when it is not a
    :class:`Cost` field, e.g. sketch ``terms``) is ``<= budget`` and the estimate records it."""
    est = _run(estimator, problem, budget, seed)
    costs = est.cost.to_dict()
    field = est.budget_unit if est.budget_unit in costs else "samples"
    spent = costs[field]
    if spent > budget:
        raise EstimatorCheckError(
            f"{est.method}: spent cost.{field} = {spent!r} > budget {budget!r}."
        )
    if spent <= 0 and costs["model_calls"] <= 0 and costs["flops"] <= 0:
        raise EstimatorCheckError(f"{est.method}: reports no cost at all ({est.cost!r}).")
    return est


def check_deterministic(estimator: Estimator, problem: Any, budget: int, *, seed: Any = 0) -> Estimate:
    """Two calls with the same integer seed give the same value and std_error."""
    a = _run(estimator, problem, budget, seed)
    b = _run(estimator, problem, budget, seed)
    if not (a.value == b.value and a.std_error == b.std_error):
        raise EstimatorCheckError(
            f"{a.method}: same seed {seed!r} gave {a.value!r} ± {a.std_error!r} and "
            f"{b.value!r} ± {b.std_error!r}."
        )
    return a


def _compare(
    a: Estimate, b: Estimate, tolerance: Tolerance, what: str, *, one_sided: bool = False
) -> None:
    """``b ≈ a`` (or ``b <= a + tol`` when ``one_sided``) within the tolerance of both."""
    ref = max(abs(a.value), abs(b.value))
    if tolerance.variance == "none":
        sig = 0.0
    elif tolerance.variance == "binomial":
        sig = math.hypot(tolerance.sigma(a, ref), tolerance.sigma(b, ref))
    else:
        sig = math.hypot(float(a.std_error or 0.0), float(b.std_error or 0.0))
    own = float(a.diagnostics.get("error_bound", 0.0) or 0.0)
    own += float(b.diagnostics.get("error_bound", 0.0) or 0.0)
    allowed = tolerance.k_sigma * sig + tolerance.rtol * ref + tolerance.atol + own
    diff = b.value - a.value if one_sided else abs(b.value - a.value)
    if not diff <= allowed:
        raise EstimatorCheckError(
            f"{a.method}: {what}: {a.value!r} ± {a.std_error!r} vs {b.value!r} ± {b.std_error!r}; "
            f"difference {diff:.3g} > allowed {allowed:.3g} ({tolerance})."
        )


def check_permutation_invariance(
    estimator: Estimator,
    problem: HalfspaceToy,
    budget: int,
    permutation: Sequence[int],
    *,
    seed: Any = 0,
    tolerance: Tolerance = Tolerance(),
) -> tuple[Estimate, Estimate]:
    """``p`` does not depend on the order of the rows: compare ``W`` with ``W[perm]``."""
    perm = np.asarray(permutation, dtype=np.intp)
    a = _run(estimator, problem, budget, seed)
    b = _run(estimator, problem.subproblem(perm), budget, seed)
    _compare(a, b, tolerance, f"row permutation {perm.tolist()}")
    return a, b


def check_scaling_invariance(
    estimator: Estimator,
    problem: HalfspaceToy,
    budget: int,
    scales: Sequence[float] | np.ndarray,
    *,
    seed: Any = 0,
    tolerance: Tolerance = Tolerance(),
) -> tuple[Estimate, Estimate]:
    """``p`` does not change when each row (and bias) is multiplied by a positive factor."""
    c = np.asarray(scales, dtype=np.float64)
    if c.shape != (problem.m,) or np.any(c <= 0):
        raise ValueError(f"scales must be {problem.m} positive numbers, got {scales!r}.")
    scaled = HalfspaceToy(problem.W * c[:, None], problem.b * c)
    a = _run(estimator, problem, budget, seed)
    b = _run(estimator, scaled, budget, seed)
    _compare(a, b, tolerance, "positive row scaling")
    return a, b


def check_monotone_in_halfspaces(
    estimator: Estimator,
    problem: HalfspaceToy,
    budget: int,
    extra_rows: np.ndarray,
    *,
    seed: Any = 0,
    tolerance: Tolerance = Tolerance(),
) -> tuple[Estimate, Estimate]:
    """Adding half-spaces never increases ``p``: ``est(W + rows) <= est(W) + allowed``."""
    extra = np.atleast_2d(np.asarray(extra_rows, dtype=np.float64))
    bigger = HalfspaceToy(
        np.vstack([problem.W, extra]), np.concatenate([problem.b, np.zeros(extra.shape[0])])
    )
    a = _run(estimator, problem, budget, seed)
    b = _run(estimator, bigger, budget, seed)
    _compare(a, b, tolerance, f"adding {extra.shape[0]} half-space(s)", one_sided=True)
    return a, b


def check_rejects_bad_input(estimator: Estimator, problem: Any, *, budget: int = 1000) -> None:
    """Budgets < 1 or non-integer, and non-integer seeds, raise a :class:`LowprobError`
    that is also a ``ValueError``/``TypeError`` and whose message shows the bad value."""
    cases: list[tuple[str, dict[str, Any], Any]] = [
        ("budget", {"budget": 0, "seed": 0}, 0),
        ("budget", {"budget": -5, "seed": 0}, -5),
        ("budget", {"budget": 2.5, "seed": 0}, 2.5),
        ("seed", {"budget": budget, "seed": 1.5}, 1.5),
        ("seed", {"budget": budget, "seed": "0"}, "0"),
    ]
    for arg, kwargs, bad in cases:
        try:
            estimator.estimate(problem, kwargs["budget"], seed=kwargs["seed"])
        except (ValueError, TypeError) as exc:
            if not isinstance(exc, LowprobError):
                raise EstimatorCheckError(
                    f"{arg}={bad!r} raised {type(exc).__name__}, not a lowprob.LowprobError subclass."
                ) from exc
            if repr(bad) not in str(exc):
                raise EstimatorCheckError(
                    f"{arg}={bad!r}: the message {str(exc)!r} does not show the value {bad!r}."
                ) from exc
        else:
            raise EstimatorCheckError(f"{arg}={bad!r} was accepted; it must raise.")
