"""Exact statistics of ``p(W)`` over random instances ``W`` with i.i.d. N(0,1) entries.

For ``W`` of shape ``(m, d)`` and ``p(W) = P_x[W x > 0]`` (DESIGN.md section 3, *derived*):

* ``E_W p = 2^-m`` (each row is independently on the right side of a fixed ``x`` w.p. 1/2).
* ``E_W p^2 = E_theta[((pi - theta) / (2 pi))^m]``: ``p^2 = P[W x > 0, W y > 0]`` for independent
  ``x, y``; a random row separates neither with probability ``(pi - theta)/(2 pi)`` where
  ``theta`` is the angle between ``x`` and ``y``, whose density on ``[0, pi]`` is
  ``sin^(d-2)(theta) / B_d`` with ``B_d = sqrt(pi) Gamma((d-1)/2) / Gamma(d/2)``
  (for ``d = 1``, ``theta`` is 0 or ``pi`` with probability 1/2 each).
* ``E p(1-p) = E p - E p^2``; the trivial estimator ``q = E p`` has
  ``MSE = Var p = E p^2 - (E p)^2``; sampling with ``N`` samples has mean MSE ``E p(1-p) / N``,
  so the trivial estimator is "worth" ``N* = E p(1-p) / Var p`` samples.
* Wendel's theorem (Wendel 1962, Math. Scand. 10, "A problem in geometric probability"):
  ``P[{W x > 0} != {}] = 2^-(m-1) sum_{i<d} C(m-1, i)``.

The ``theta`` integral is done by adaptive Gauss–Kronrod (``scipy.integrate.quad``) on the
integrand divided by ``2^-m`` and with breakpoints on the ``pi/m`` scale of its peak, so
``log E p^2`` stays accurate for large ``m``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from scipy import integrate
from scipy.special import gammaln

from lowprob._validation import check_int
from lowprob.errors import InputValueError

__all__ = ["InstanceStats", "RandomProductStats", "instance_statistics", "wendel_feasibility_probability"]


@dataclass(frozen=True)
class InstanceStats:
    """Moments of ``p(W)`` over random ``(m, d)`` instances (float64).

    Attributes:
        d, m: sizes.
        mean_p: ``E p = 2^-m``.
        mean_p2: ``E p^2``; ``log_mean_p2`` its logarithm.
        mean_p_one_minus_p: ``E p(1-p)`` (the per-sample MSE of sampling).
        var_p: ``Var p = E p^2 - (E p)^2``, the MSE of the trivial estimator ``q = E p``.
        trivial_mse_ratio: ``Var p / E p(1-p)`` (trivial MSE in the "competing with sampling"
            units of DESIGN.md section 1).
        trivial_equivalent_samples: ``1 / trivial_mse_ratio``.
        feasible_probability: Wendel's ``P[p > 0]``.
        mean_p_given_feasible: ``E[p | p > 0]``.
    """

    d: int
    m: int
    mean_p: float
    mean_p2: float
    log_mean_p2: float
    mean_p_one_minus_p: float
    var_p: float
    trivial_mse_ratio: float
    trivial_equivalent_samples: float
    feasible_probability: float
    mean_p_given_feasible: float

    @property
    def trivial_mse(self) -> float:
        return self.var_p

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def wendel_feasibility_probability(d: int, m: int) -> float:
    """``P[W x > 0 has a solution] = 2^-(m-1) sum_{i=0}^{d-1} C(m-1, i)`` (Wendel 1962)."""
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    if m <= d:
        return 1.0
    # Exact integer arithmetic, then one division (no overflow for large m).
    num = sum(math.comb(m - 1, i) for i in range(d))
    return float(num / 2 ** (m - 1)) if m < 1000 else math.exp(math.log(num) - (m - 1) * math.log(2))


_MAX_D = 10_000


def _log_mean_p2(d: int, m: int) -> float:
    """``log E p^2`` by quadrature of the scaled integrand ``((pi - t)/pi)^m sin^(d-2) t``."""
    if d == 1:
        return -(m + 1) * math.log(2.0)  # theta = 0 w.p. 1/2 gives 2^-m; theta = pi gives 0
    log_norm = 0.5 * math.log(math.pi) + gammaln((d - 1) / 2) - gammaln(d / 2)

    def f(t: float) -> float:
        if t >= math.pi:
            return 0.0
        log_f = m * math.log1p(-t / math.pi)
        if d > 2:
            s = math.sin(t)
            if s <= 0:
                return 0.0
            log_f += (d - 2) * math.log(s)
        return math.exp(log_f)

    scale = math.pi / m
    pts = sorted({min(math.pi * 0.999, k * scale) for k in (1, 3, 10, 30, 100)})
    val, _ = integrate.quad(f, 0.0, math.pi, points=pts, limit=500, epsabs=0.0, epsrel=1e-13)
    if not (val > 0 and math.isfinite(val)):
        from lowprob.errors import NumericalError

        raise NumericalError(f"the E p^2 quadrature underflowed for d={d!r}, m={m!r} (integral {val!r}).")
    return float(-m * math.log(2.0) + math.log(val) - log_norm)


def instance_statistics(d: int = 4, m: int = 16) -> InstanceStats:
    """Exact moments of ``p(W)`` for random ``(m, d)`` instances (see the module docstring).

    Example (the DESIGN.md numbers for (4, 16)):
        >>> s = instance_statistics(4, 16)
        >>> f"{s.mean_p2:.3g} {s.mean_p_one_minus_p:.4g} {s.trivial_mse_ratio:.2g}"
        '9.46e-08 1.516e-05 0.0062'
    """
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    if d > _MAX_D:
        raise InputValueError(
            f"d must be <= {_MAX_D} for the E p^2 quadrature (sin^(d-2) t concentrates within "
            f"~1/sqrt(d) of pi/2 and the adaptive rule misses it), got {d!r}."
        )
    mean_p = 2.0**-m
    log_p2 = _log_mean_p2(d, m)
    mean_p2 = math.exp(log_p2)
    epq = mean_p - mean_p2
    var = mean_p2 - mean_p**2
    # Var p = E p^2 - (E p)^2 loses digits when p is almost constant (e.g. m <= d small);
    # clip tiny negative rounding to 0.
    var = max(var, 0.0)
    ratio = var / epq if epq > 0 else float("nan")
    feas = wendel_feasibility_probability(d, m)
    return InstanceStats(
        d=d,
        m=m,
        mean_p=mean_p,
        mean_p2=mean_p2,
        log_mean_p2=log_p2,
        mean_p_one_minus_p=epq,
        var_p=var,
        trivial_mse_ratio=ratio,
        trivial_equivalent_samples=1.0 / ratio if ratio > 0 else float("inf"),
        feasible_probability=feas,
        mean_p_given_feasible=mean_p / feas if feas > 0 else float("nan"),
    )


@dataclass(frozen=True)
class RandomProductStats:
    """Exact moments of ``p`` over the random instances of a discrete product family (#3-SAT,
    {0,1}-permanents): the nMSE denominator ``E p(1-p)`` and the trivial level ``Var p / E p(1-p)``
    of DESIGN.md section 1. ``params`` names the family's sizes (``{"n": ..., "k": ...}``).
    """

    params: dict[str, Any]
    mean_p: float
    mean_p2: float
    mean_p_one_minus_p: float
    var_p: float
    trivial_mse_ratio: float
    trivial_equivalent_samples: float

    @classmethod
    def from_moments(cls, params: dict[str, Any], mean_p: Fraction, mean_p2: Fraction) -> RandomProductStats:
        """All fields from exact ``E p`` and ``E p^2`` (rationals; rounded to float64 once)."""
        epq = mean_p - mean_p2
        var = mean_p2 - mean_p * mean_p
        ratio = var / epq if epq > 0 else Fraction(0)
        return cls(dict(params), float(mean_p), float(mean_p2), float(epq), float(var), float(ratio),
                   float(1 / ratio) if ratio else math.inf)

    def __getattr__(self, name: str) -> Any:  # stats.n, stats.k: the family's sizes
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        return {**self.params, "mean_p": self.mean_p, "mean_p2": self.mean_p2,
                "mean_p_one_minus_p": self.mean_p_one_minus_p, "var_p": self.var_p,
                "trivial_mse_ratio": self.trivial_mse_ratio,
                "trivial_equivalent_samples": self.trivial_equivalent_samples}

