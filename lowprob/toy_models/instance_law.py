"""Tail-biased laws over random halfspace instances, sampled exactly, and their importance weights.

Setting (DESIGN.md section 3): ``W`` is ``m x d`` with i.i.d. N(0, 1) entries (law ``P``) and
``p(W) = P_x[W x > 0]`` for ``x ~ N(0, I_d)`` (equivalently ``x`` uniform on ``S^{d-1}``). Over
``P`` the law of ``p`` is extremely heavy-tailed for ``m >= 2 d``: ``E p^2`` is carried by rare
instances with a large ``p``, so a few hundred draws from ``P`` (even stratified on feasibility)
miss them and every measured ``E_W[(p_hat - p)^2]`` of a relative-error method is optimistic.

**The size-biased laws** ``Q_k(W) = p(W)^k P(W) / E_P[p^k]`` for ``k = 1, 2`` can be sampled
*exactly*, because ``p^k`` is itself a probability over ``k`` independent directions:

* ``Q_1``: ``p(W) = P_x[W x > 0]``, so the joint law ``P(W) sigma(x) 1[W x > 0] / E p`` has
  ``W``-marginal ``Q_1`` and ``x``-marginal ``sigma`` (``P[W x > 0 | x] = 2^-m`` for every ``x``).
  Draw ``x`` uniform, then every row ``w ~ N(0, I_d)`` conditioned on ``w . x > 0`` (a Gaussian
  row with its sign flipped when ``w . x < 0``). ``dQ_1/dP = p / E p = 2^m p``.
* ``Q_2``: ``p(W)^2 = P_{x, x'}[W x > 0, W x' > 0]`` for independent uniform ``x, x'``. In the joint
  law ``P(W) sigma(x) sigma(x') 1[W x > 0] 1[W x' > 0] / E p^2`` the pair ``(x, x')`` has the
  density ``sigma(x) sigma(x') ((pi - theta)/(2 pi))^m / E p^2`` (a random row separates neither
  direction w.p. ``(pi - theta)/(2 pi)``, ``theta`` their angle), so: draw ``x = u`` uniform; the
  angle ``theta`` on ``[0, pi]`` with density
  ``f(theta) = sin^(d-2)(theta) (1 - theta/pi)^m / Z_{d,m}`` (``Z_{d,m}`` is the integral that
  :func:`lowprob.toy_models.instance_stats._log_mean_p2` computes: ``E p^2 = 2^-m Z_{d,m} / B_d``
  with ``B_d = int_0^pi sin^(d-2)``); ``x' = cos(theta) u + sin(theta) v`` with ``v`` uniform on the
  unit sphere of ``u``'s orthogonal complement. Given ``(x, x')`` the rows are i.i.d. N(0, I_d)
  conditioned on ``w . u > 0`` and ``w . x' > 0``: in the orthonormal frame ``(u, v)`` the row's
  planar part is a 2-D standard Gaussian conditioned on a wedge, i.e. its angle ``phi`` is uniform
  on ``(theta - pi/2, pi/2)`` (width ``pi - theta``) and its radius is Rayleigh
  (``sqrt(2 E)``, ``E ~ Exp(1)``), independent; the component orthogonal to ``(u, v)`` is
  ``N(0, I_{d-2})``, untouched. ``dQ_2/dP = p^2 / E p^2`` with the exact ``E p^2`` of
  :func:`~lowprob.toy_models.instance_stats.instance_statistics`. Every ``Q_2`` draw is feasible.

**The angle is drawn exactly** by rejection from a piecewise-exponential envelope (Gilks & Wild
1992, "Adaptive rejection sampling for Gibbs sampling", Appl. Statist. 41, non-adaptive form):
``log f = (d - 2) log sin(theta) + m log(1 - theta/pi) + const`` is concave on ``(0, pi)`` (a sum
of concave functions), so the tangent lines at ``K = 64`` points evenly spaced over the range where
``log f`` is within 40 nats of its maximum lie above it everywhere; the envelope is sampled by
inverting its per-piece exponential CDFs and a point is accepted with probability
``exp(log f - envelope) <= 1``. There is no discretisation error (the accepted draws follow ``f``
exactly, to float64 rounding); the acceptance rate (0.94 at ``(d, m) = (3, 1000)``, 0.995-0.9999
at ``(2, 5) .. (64, 256)``) affects only the cost.
``d = 2``: ``f`` is ``(1 - theta/pi)^m`` (mode at 0, handled). ``d = 1``: ``x, x' in {+1, -1}``
and ``x' = -x`` separates every row, so ``theta = 0`` and ``Q_2 = Q_1``.

**Multiple importance sampling over P and Q_2** (Veach & Guibas 1995, "Optimally combining
sampling techniques for Monte Carlo rendering", SIGGRAPH, the *balance heuristic*; Owen & Zhou
2000, "Safe and effective importance sampling", JASA 95, *defensive mixtures*). With ``n_f``
draws from ``P( . | feasible)``, ``n_0`` from ``P( . | infeasible)`` and ``n_t`` from ``Q_2``
(fixed counts), every draw ``W`` gets

    w(W) = 1 / (n_f 1[p > 0] / P_f + n_0 1[p = 0] / P_0 + n_t p(W)^2 / E p^2)

(``P_f`` Wendel's exact ``P[p > 0]``, ``P_0 = 1 - P_f``: each term is ``n_j dq_j/dP``). Then
``sum_i w(W_i) g(W_i)`` is unbiased for ``E_P[g]``. Proof (``q_j`` the three laws, counts fixed):

    E[sum_i w(W_i) g(W_i)] = sum_j n_j int w g dq_j = int w g (sum_j n_j dq_j/dP) dP = int g dP,

because ``w * sum_j n_j dq_j/dP = 1`` wherever ``P > 0`` (the two strata of ``P`` cover its
support: the defensive component keeps the denominator positive). The weight is at most the stratified weight
``P_f / n_f`` (or ``P_0 / n_0``), so an additive-error quantity loses nothing against the
stratified law, while for ``g <= c p^2`` (relative-error methods, the trivial predictor's error on
the tail) ``w g <= c E p^2 / n_t``: bounded terms, so the tail is seen. ``sum_i w_i`` is itself an
unbiased estimate of 1 (a diagnostic).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputValueError
from lowprob.toy_models.instance_stats import _log_mean_p2

__all__ = [
    "balance_heuristic_weights",
    "q1_density_ratio",
    "q2_density_ratio",
    "sample_q1",
    "sample_q2",
    "sample_theta",
    "theta_log_density",
]

#: tangent points of the envelope and the log-density drop that bounds their range
_N_TANGENTS = 64
_RANGE_NATS = 40.0


def _log_h(theta: np.ndarray, d: int, m: int) -> np.ndarray:
    """Unnormalised ``log f``: ``(d-2) log sin(theta) + m log(1 - theta/pi)`` (``-inf`` where 0)."""
    theta = np.asarray(theta, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = m * np.log1p(-theta / math.pi)
        if d > 2:
            out = out + (d - 2) * np.log(np.sin(theta))
    return out


def _dlog_h(theta: np.ndarray, d: int, m: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    out = -m / (math.pi - theta)
    if d > 2:
        out = out + (d - 2) / np.tan(theta)
    return out


def theta_log_density(theta: np.ndarray | float, d: int, m: int) -> np.ndarray:
    """Normalised ``log f(theta)`` of the angle between the two directions of ``Q_2`` (``d >= 2``).

    ``f(theta) = sin^(d-2)(theta) (1 - theta/pi)^m / Z_{d,m}`` on ``[0, pi]``, with ``Z_{d,m}``
    recovered from :func:`lowprob.toy_models.instance_stats._log_mean_p2`
    (``log E p^2 = -m log 2 + log Z - log B_d``, ``B_d = sqrt(pi) Gamma((d-1)/2) / Gamma(d/2)``).
    """
    d = check_int("d", d, minimum=2)
    m = check_int("m", m, minimum=1)
    log_bd = 0.5 * math.log(math.pi) + gammaln((d - 1) / 2) - gammaln(d / 2)
    log_z = _log_mean_p2(d, m) + m * math.log(2.0) + log_bd
    th = np.asarray(theta, dtype=np.float64)
    inside = (th >= 0) & (th <= math.pi)
    return np.where(inside, _log_h(np.clip(th, 0.0, math.pi), d, m) - log_z, -np.inf)


def _envelope(d: int, m: int) -> tuple[np.ndarray, ...]:
    """Tangent points ``x``, values ``h``, slopes ``s``, piece bounds ``z`` and log masses."""
    tiny = 1e-300
    top = float(np.nextafter(math.pi, 0.0))
    if d == 2:
        mode = 0.0
    else:
        mode = brentq(lambda t: float(_dlog_h(t, d, m)), tiny, top, xtol=1e-15, maxiter=500)
    hmax = float(_log_h(mode, d, m))
    target = hmax - _RANGE_NATS

    def drop(t: float) -> float:
        return float(_log_h(t, d, m)) - target

    lo = mode if d == 2 or drop(tiny) > 0 else brentq(drop, tiny, mode, xtol=1e-15, maxiter=500)
    hi = top if drop(top) > 0 else brentq(drop, mode, top, xtol=1e-15, maxiter=500)
    x = np.linspace(lo, hi, _N_TANGENTS)
    if d > 2:
        x = x[(x > 0) & (x < math.pi)]
    h = _log_h(x, d, m)
    s = _dlog_h(x, d, m)
    # intersections of consecutive tangents (slopes strictly decrease: log f is strictly concave)
    ds = s[:-1] - s[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (h[1:] - h[:-1] - x[1:] * s[1:] + x[:-1] * s[:-1]) / ds
    z = np.where(np.isfinite(z) & (ds > 0), z, 0.5 * (x[:-1] + x[1:]))
    z = np.clip(z, x[:-1], x[1:])
    a = np.concatenate([[0.0], z])
    b = np.concatenate([z, [math.pi]])
    L = b - a
    ua = h + s * (a - x)
    ub = h + s * (b - x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logm = np.where(
            np.abs(s * L) < 1e-12, ua + np.log(L),
            np.where(s < 0, ua + np.log(-np.expm1(s * L)) - np.log(np.abs(s)),
                     ub + np.log(-np.expm1(-s * L)) - np.log(np.abs(s))),
        )
    logm = np.where(L > 0, logm, -np.inf)
    return x, h, s, a, b, logm


def sample_theta(d: int, m: int, size: int, seed: object = None) -> np.ndarray:
    """``size`` exact draws of the ``Q_2`` angle, density ``∝ sin^(d-2)(t) (1 - t/pi)^m`` on ``[0, pi]``.

    Rejection from the tangent-line envelope of the (concave) log density; see the module
    docstring. ``d = 1`` returns zeros (the only angle with positive mass under ``Q_2``).
    """
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    size = check_int("size", size, minimum=0)
    rng = as_generator(seed)
    if d == 1 or size == 0:
        return np.zeros(size)
    x, h, s, a, b, logm = _envelope(d, m)
    prob = np.exp(logm - logm.max())
    prob /= prob.sum()
    out = np.empty(size)
    filled = 0
    while filled < size:
        k = size - filled
        batch = int(1.05 * k) + 16
        j = rng.choice(prob.size, size=batch, p=prob)
        U = rng.random(batch)
        sj, aj, bj, Lj = s[j], a[j], b[j], (b - a)[j]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t_neg = aj + np.log1p(U * np.expm1(sj * Lj)) / sj
            t_pos = bj + np.log1p(U * np.expm1(-sj * Lj)) / sj
        t = np.where(np.abs(sj * Lj) < 1e-12, aj + U * Lj, np.where(sj < 0, t_neg, t_pos))
        t = np.clip(t, aj, bj)
        env = h[j] + sj * (t - x[j])
        ok = rng.standard_exponential(batch) > env - _log_h(t, d, m)
        acc = t[ok][:k]
        out[filled : filled + acc.size] = acc
        filled += acc.size
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def sample_q2(
    d: int, m: int, size: int, seed: object = None, *, return_directions: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size`` exact draws ``W (size, m, d)`` from ``Q_2(W) ∝ p(W)^2 P(W)`` (module docstring).

    With ``return_directions`` also the pair ``x, x'`` (each ``(size, d)``, unit) that every row
    of the draw satisfies: ``W x > 0`` and ``W x' > 0`` (so ``p(W) > 0``).
    """
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    size = check_int("size", size, minimum=0)
    rng = as_generator(seed)
    theta = sample_theta(d, m, size, rng)
    if d == 1:
        u = np.where(rng.random((size, 1)) < 0.5, -1.0, 1.0)
        W = np.abs(rng.standard_normal((size, m, 1))) * u[:, None, :]
        return (W, u, u.copy()) if return_directions else W
    u = _unit(rng.standard_normal((size, d)))
    g = rng.standard_normal((size, d))
    v = _unit(g - np.sum(g * u, axis=1, keepdims=True) * u)
    z = rng.standard_normal((size, m, d))
    # planar part: angle uniform on (theta - pi/2, pi/2), Rayleigh radius
    phi = 0.5 * math.pi - rng.random((size, m)) * (math.pi - theta[:, None])
    r = np.sqrt(2.0 * rng.standard_exponential((size, m)))
    zu = np.einsum("nmd,nd->nm", z, u)
    zv = np.einsum("nmd,nd->nm", z, v)
    cu = r * np.cos(phi) - zu
    cv = r * np.sin(phi) - zv
    W = z + cu[..., None] * u[:, None, :] + cv[..., None] * v[:, None, :]
    if not return_directions:
        return W
    x2 = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v
    return W, u, x2


def sample_q1(
    d: int, m: int, size: int, seed: object = None, *, return_direction: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``size`` exact draws from ``Q_1(W) ∝ p(W) P(W)``: ``x`` uniform, Gaussian rows flipped onto
    ``w . x > 0`` (module docstring). ``dQ_1/dP = 2^m p``."""
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    size = check_int("size", size, minimum=0)
    rng = as_generator(seed)
    u = _unit(rng.standard_normal((size, d)))
    z = rng.standard_normal((size, m, d))
    sgn = np.where(np.einsum("nmd,nd->nm", z, u) < 0, -1.0, 1.0)
    W = z * sgn[..., None]
    return (W, u) if return_direction else W


def _log_p(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(p, dtype=np.float64))


def q2_density_ratio(p: np.ndarray, mean_p2: float) -> np.ndarray:
    """``dQ_2/dP (W) = p(W)^2 / E p^2`` (computed in log space; 0 where ``p = 0``)."""
    return np.exp(2.0 * _log_p(p) - math.log(mean_p2))


def q1_density_ratio(p: np.ndarray, m: int) -> np.ndarray:
    """``dQ_1/dP (W) = p(W) / E p = 2^m p(W)``."""
    return np.exp(_log_p(p) + m * math.log(2.0))


def balance_heuristic_weights(
    p: np.ndarray, feasible: np.ndarray, *, n_feasible: int, n_infeasible: int, n_tail: int,
    feasible_probability: float, mean_p2: float,
) -> np.ndarray:
    """Balance-heuristic weights ``1 / sum_j n_j dq_j/dP`` over the three sources (module docstring).

    ``p``: the instances' probabilities ``(N,)``; ``feasible``: ``p > 0`` as decided for the draw
    (a feasible draw whose computed ``p`` underflowed to 0, e.g. a Monte Carlo truth on a very thin
    cone, gets the ``Q_2`` term ``0``, the limit of ``p^2 / E p^2``).
    The sources are ``P( . | feasible)`` (``n_feasible`` draws), ``P( . | infeasible)``
    (``n_infeasible``) and ``Q_2`` (``n_tail``); ``sum_i w_i g(W_i)`` is unbiased for ``E_P g``.
    """
    p = np.asarray(p, dtype=np.float64)
    feasible = np.asarray(feasible, dtype=bool)
    pf = float(feasible_probability)
    if not 0.0 < pf <= 1.0:
        raise InputValueError(f"feasible_probability must be in (0, 1], got {pf!r}.")
    if not np.all(np.isfinite(p) & (p >= 0)):
        raise InputValueError(f"p must be finite and >= 0 for every draw, got {p[~(np.isfinite(p) & (p >= 0))][:3]!r}.")
    if np.any(~feasible) and (n_infeasible < 1 or pf >= 1.0):
        raise InputValueError(
            f"infeasible draws need n_infeasible >= 1 and feasible_probability < 1, got "
            f"n_infeasible={n_infeasible!r}, feasible_probability={pf!r}."
        )
    dens = n_tail * q2_density_ratio(np.where(feasible, p, 0.0), mean_p2)
    dens = dens + np.where(feasible, n_feasible / pf, 0.0)
    if pf < 1.0:
        dens = dens + np.where(feasible, 0.0, n_infeasible / (1.0 - pf))
    if np.any(dens <= 0):
        raise InputValueError("some draw has zero density under every source (no source covers it).")
    return 1.0 / dens
