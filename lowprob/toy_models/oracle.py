"""The exact oracle for the halfspace toy: ``p(W) = P_{x ~ N(0, I_d)}[W x > 0]``, ``d <= 4``.

Algorithm (DESIGN.md section 3), for ``W`` of shape ``(m, d)``:

1. **Clean the rows.** Normalise rows to unit length (``p`` depends only on row directions);
   merge exactly parallel rows; an exactly anti-parallel pair ``w, -w`` or a zero row gives
   an empty interior, i.e. ``p = 0`` (a zero row is rejected, as in
   :class:`~lowprob.toy_models.HalfspaceToy`). If ``rank W = r < d`` the cone contains the
   line space ``ker W`` and ``p(W) = p(W Q)`` with ``Q`` an orthonormal basis of the row
   space (``Q^T x ~ N(0, I_r)``), so we work in ``r`` dimensions.
2. **Feasibility and extreme rays.** The closed cone ``C = {x : W x >= 0}`` is pointed
   (rank ``d``). Each extreme ray is the null vector of ``d - 1`` linearly independent
   tight rows: we form all ``C(m, d-1)`` null vectors by cofactors (generalised cross
   product), keep ``+-v`` with ``W v >= -tol`` and merge rays with equal tight sets. The
   open cone ``{W x > 0}`` is non-empty iff rays exist and their sum ``s`` has ``W s > 0``
   (the sum of all extreme rays of a full-dimensional pointed cone is interior); this is
   an exact certificate that replaces the LP. For large ``C(m, d-1)`` we switch to an LP
   (HiGHS) for an interior point and Qhull's halfspace intersection of the cross-section
   ``{x in C : c . x = 1}``, ``c = sum_j w_j / |w_j|`` (``c . r > 0`` on every ray).
3. **Triangulation.** A pulling triangulation on the face lattice given by the tight sets:
   a face with more rays than its dimension is split into cones from its first ray over each
   facet not containing it (Lee & Santos, "Subdivisions and triangulations of polytopes",
   Handbook of Discrete and Computational Geometry, ch. 16, section 16.3).
4. **Orthant masses.** Each simplicial cone's Gaussian mass comes from
   :func:`~lowprob.toy_models.orthant.simplicial_cone_masses`: closed forms for
   ``d <= 3`` and the smooth simplex formula with Gauss–Legendre on the Duffy cube for
   ``d = 4`` (error bound stated there). ``error_bound`` is the sum of the cones' bounds.

For ``d > 4`` (or a bias) the exact method raises :class:`~lowprob.errors.UnavailableError`;
``method="tilting"`` gives Botev's minimax-tilting estimate (:mod:`lowprob.gaussian_polytope`)
with 4 standard errors as ``error_bound``; Monte Carlo and ``smc`` are the other options.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lowprob._progress import progress
from lowprob._resources import check_memory
from lowprob._validation import check_finite_array
from lowprob.errors import InputValueError, UnavailableError
from lowprob.toy_models.halfspace import HalfspaceToy
from lowprob.toy_models.orthant import _masses_unchecked

__all__ = ["MAX_ORACLE_DIM", "OracleResult", "exact_probabilities", "exact_probability"]

#: Largest (effective) dimension the exact oracle handles.
MAX_ORACLE_DIM = 4

_TOL = 1e-11  # tightness tolerance for unit rows and unit rays
_PARALLEL_TOL = 1e-14  # |w_i - w_j| below this: the same half-space (unit rows)
_MAX_COMBOS = 200_000  # above this many (d-1)-subsets, use LP + Qhull


@dataclass(frozen=True)
class OracleResult:
    """The oracle's answer for one instance.

    Attributes:
        probability: ``p(W)`` in float64 (exactly 0.0 when the open cone is empty).
        log_probability: ``log p`` (``-inf`` when infeasible).
        error_bound: absolute bound on ``|probability - p(W)|``.
        feasible: whether ``{x : W x > 0}`` is non-empty.
        n_cones: number of simplicial cones in the triangulation.
        method: how the masses were computed (``"closed-form"``, ``"simplex-quadrature"``,
            ``"infeasible"``).
        n_rays: number of extreme rays of the cone.
        dim: the effective dimension ``rank W``.
    """

    probability: float
    log_probability: float
    error_bound: float
    feasible: bool
    n_cones: int
    method: str
    n_rays: int = 0
    dim: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "probability": self.probability,
            "log_probability": self.log_probability if math.isfinite(self.log_probability) else "-inf",
            "error_bound": self.error_bound,
            "feasible": self.feasible,
            "n_cones": self.n_cones,
            "method": self.method,
            "n_rays": self.n_rays,
            "dim": self.dim,
        }


def _infeasible(dim: int) -> OracleResult:
    return OracleResult(0.0, -math.inf, 0.0, False, 0, "infeasible", 0, dim)


def _checked(W: object, b: object | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Validated ``(U (m, d), b (m,) or None, W (m, d))`` with ``U`` the unit rows of ``W``.

    The event ``{W x + b > 0}`` is invariant under scaling row ``i`` (and ``b_i``) by any
    ``s_i > 0``, so we divide by ``s_i = max_j |W_ij|`` first and by the Euclidean norm of the
    rescaled row (in ``[1, sqrt(d)]``) second: ``|W_i|`` itself overflows to ``inf`` for entries
    above ``~1e154`` and underflows to 0 below ``~1e-162``, which would turn a feasible instance
    into ``p = 0`` or a spurious "zero row". The returned bias is scaled the same way.
    A toy's bias is used if ``b`` is None.
    """
    if isinstance(W, HalfspaceToy):
        if b is None and W.has_bias:
            b = W.b
        W = W.W
    W = check_finite_array("W", W, ndim=2)
    m, d = W.shape
    if m < 1 or d < 1:
        raise InputValueError(f"W must have shape (m, d) with m, d >= 1, got {W.shape!r}.")
    if b is not None:
        b = check_finite_array("b", b, shape=(m,))
    scale = np.max(np.abs(W), axis=1)
    if np.any(scale == 0):
        rows = np.flatnonzero(scale == 0).tolist()
        raise InputValueError(
            f"W has zero rows {rows!r}; a zero row makes the event 0 > 0 empty. Remove them."
        )
    V = W / scale[:, None]
    norms = np.linalg.norm(V, axis=1)
    U = V / norms[:, None]
    if b is not None:
        with np.errstate(over="ignore"):
            b = b / scale / norms
        if not np.all(np.isfinite(b)):
            raise InputValueError(
                "b / |W_i| overflows for some rows (a bias of order 1e308 times the row scale); "
                "rescale W and b together so that the rows of W are of order 1."
            )
    return U, b, W


def _as_weights(W: object, b: object | None) -> np.ndarray:
    U, b, _ = _checked(W, b)
    if b is not None and np.any(b != 0):
        raise UnavailableError(
            "exact_probability handles cones (b = 0) only; for a bias use Monte Carlo "
            "(get_toy_estimator('naive')) or the sequential sampler get_toy_estimator('smc')."
        )
    return U


def _clean_rows(U: np.ndarray) -> tuple[np.ndarray, bool]:
    """Merge parallel unit rows; report whether an anti-parallel pair exists."""
    m = U.shape[0]
    iu = np.triu_indices(m, 1)
    # Direct differences: sqrt(2 - 2 u_i.u_j) would round angles below ~1e-8 to 0.
    dist_same = np.linalg.norm(U[iu[0]] - U[iu[1]], axis=1)
    dist_opp = np.linalg.norm(U[iu[0]] + U[iu[1]], axis=1)
    if np.any(dist_opp <= _PARALLEL_TOL):
        return U, True
    dup = dist_same <= _PARALLEL_TOL
    if np.any(dup):
        drop = set(iu[1][dup].tolist())
        U = U[[i for i in range(m) if i not in drop]]
    return U, False


def _reduce_rank(U: np.ndarray) -> np.ndarray:
    """Express the rows in an orthonormal basis of the row space (drops the lineality space)."""
    _, s, Vt = np.linalg.svd(U, full_matrices=False)
    r = int(np.sum(s > 1e-12 * s[0]))
    if r == U.shape[1]:
        return U
    V = Vt[:r].T
    Ur = U @ V
    return Ur / np.linalg.norm(Ur, axis=1, keepdims=True)


@lru_cache(maxsize=64)
def _combos(m: int, k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(m), k)), dtype=np.intp).reshape(-1, k)


def _null_vectors(A: np.ndarray) -> np.ndarray:
    """Generalised cross products of stacks ``A`` (n, d-1, d): ``v_k = (-1)^k det(A without col k)``."""
    n, k, d = A.shape
    if d == 2:
        return np.stack([-A[:, 0, 1], A[:, 0, 0]], axis=1)
    if d == 3:
        return np.cross(A[:, 0], A[:, 1])
    cols = [np.delete(np.arange(d), j) for j in range(d)]
    return np.stack([(-1) ** j * np.linalg.det(A[:, :, cols[j]]) for j in range(d)], axis=1)


def _rays_bruteforce(U: np.ndarray) -> np.ndarray:
    m, d = U.shape
    idx = _combos(m, d - 1)
    V = _null_vectors(U[idx])
    norms = np.linalg.norm(V, axis=1)
    good = norms > 1e-12
    V = V[good] / norms[good, None]
    S = V @ U.T
    pos = np.all(S >= -_TOL, axis=1)
    neg = np.all(S <= _TOL, axis=1)
    return np.concatenate([V[pos], -V[neg]])


def _rays_lp_qhull(U: np.ndarray) -> np.ndarray:
    from scipy.optimize import linprog
    from scipy.spatial import HalfspaceIntersection

    m, d = U.shape
    # max t  s.t.  U x >= t, -1 <= x <= 1, t <= 1.
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A = np.hstack([-U, np.ones((m, 1))])
    res = linprog(c, A_ub=A, b_ub=np.zeros(m), bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
    if res.status != 0 or -res.fun <= 1e-9:
        return np.zeros((0, d))
    x0 = res.x[:d]
    cdir = U.sum(axis=0)
    p0 = x0 / (cdir @ x0)
    # Orthonormal basis B of the complement of cdir: x = p0 + B y on {cdir . x = 1}.
    q, _ = np.linalg.qr(np.column_stack([cdir, np.eye(d)]))
    B = q[:, 1:d]
    hs = np.hstack([-(U @ B), -(U @ p0)[:, None]])
    verts = HalfspaceIntersection(hs, np.zeros(d - 1)).intersections
    X = p0[None, :] + verts @ B.T
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _unique_rays(R: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge rays with the same tight set; return (rays (n, d), tight (n, m) bool)."""
    tight = np.abs(R @ U.T) <= _TOL
    if R.shape[0] == 0:
        return R, tight
    _, first = np.unique(np.packbits(tight, axis=1), axis=0, return_index=True)
    first = np.sort(first)
    R, tight = R[first], tight[first]
    # Guard against one geometric ray listed twice with differing (borderline) tight sets.
    keep: list[int] = []
    for i in range(R.shape[0]):
        if all(np.linalg.norm(R[i] - R[j]) > 1e-13 for j in keep):
            keep.append(i)
    return R[keep], tight[keep]


def _triangulate(rays: np.ndarray, tight: np.ndarray) -> list[tuple[int, ...]]:
    """Pulling triangulation of the cone generated by ``rays`` into simplicial cones."""
    m = tight.shape[1]

    def rec(ids: tuple[int, ...], dim: int) -> list[tuple[int, ...]]:
        if len(ids) == dim:
            return [ids]
        apex, out, seen = ids[0], [], set()
        for j in range(m):
            if tight[apex, j]:
                continue
            face = tuple(r for r in ids if tight[r, j])
            if len(face) < dim - 1 or face in seen:
                continue
            seen.add(face)
            if dim - 1 >= 2 and np.linalg.matrix_rank(rays[list(face)], tol=1e-9) != dim - 1:
                continue
            if dim - 1 == 1 and len(face) != 1:
                continue
            out.extend((apex, *s) for s in rec(face, dim - 1))
        return out

    return rec(tuple(range(rays.shape[0])), rays.shape[1])


def _oracle_unit_rows(U: np.ndarray) -> OracleResult:
    U, opposite = _clean_rows(U)
    U = _reduce_rank(U)
    m, d = U.shape
    if opposite:
        return _infeasible(d)
    if d > MAX_ORACLE_DIM:
        raise UnavailableError(
            f"the exact oracle handles rank(W) <= {MAX_ORACLE_DIM}, got rank {d!r}. Use Botev's "
            "minimax tilting (exact_probability(W, method='tilting')), Monte Carlo "
            "(get_toy_estimator('naive')) or the sequential sampler get_toy_estimator('smc')."
        )
    if d == 1:
        # Every row is +-1: feasible iff all signs agree; then the cone is a half-line.
        if np.all(U[:, 0] > 0) or np.all(U[:, 0] < 0):
            return OracleResult(0.5, math.log(0.5), 0.0, True, 1, "closed-form", 1, 1)
        return _infeasible(1)
    n_combos = math.comb(m, d - 1)
    R = _rays_bruteforce(U) if n_combos <= _MAX_COMBOS else _rays_lp_qhull(U)
    rays, tight = _unique_rays(R, U)
    if rays.shape[0] < d:
        return _infeasible(d)
    s = rays.sum(axis=0)
    if np.min(U @ s) <= _TOL * np.linalg.norm(s):
        return _infeasible(d)
    simplices = _triangulate(rays, tight)
    cones = np.stack([rays[list(s)].T for s in simplices])
    mass, err = _masses_unchecked(cones)
    p = float(mass.sum())
    method = "closed-form" if d <= 3 else "simplex-quadrature"
    err_total = float(err.sum())
    log_p = math.log(p) if p > 0 else -math.inf
    return OracleResult(p, log_p, err_total, True, len(simplices), method, rays.shape[0], d)


def exact_probability(
    W: object,
    b: object | None = None,
    *,
    method: str = "exact",
    n_samples: int = 2**14,
    seed: object = 0,
) -> OracleResult:
    """``P_{x ~ N(0, I_d)}[W x + b > 0]``: exact for cones of rank <= 4, or by minimax tilting.

    Args:
        W: ``(m, d)`` finite weights with non-zero rows, or a
            :class:`~lowprob.toy_models.HalfspaceToy` (its bias is used when ``b`` is None).
        b: optional ``(m,)`` bias; the exact method needs ``b = 0`` (a cone).
        method: ``"exact"`` (default; ``rank W <= 4``, no bias) or ``"tilting"``: Botev's
            minimax-tilting estimator (:mod:`lowprob.gaussian_polytope`), any ``d``, with bias;
            its ``error_bound`` is **4 standard errors** (a statistical, not a certified, bound)
            and, for cones, ``feasible`` is certified exactly by the ray test of step 2.
        n_samples, seed: samples and seed for ``method="tilting"``.

    Returns:
        An :class:`OracleResult`; ``probability`` is exactly 0.0 when ``{W x > 0}`` is empty.

    Raises:
        InputValueError: NaN/inf entries, wrong shape, zero rows, unknown ``method``.
        UnavailableError: ``rank W > 4`` or a bias with ``method="exact"`` (use
            ``method="tilting"``, Monte Carlo or ``smc``).

    Example:
        >>> import numpy as np
        >>> round(exact_probability(np.eye(3)).probability, 12)
        0.125
    """
    if method == "tilting":
        return _tilting_result(W, b, n_samples=n_samples, seed=seed)
    if method != "exact":
        raise InputValueError(f"method must be 'exact' or 'tilting', got {method!r}.")
    U = _as_weights(W, b)
    m, d = U.shape
    # merging parallel rows compares all m (m - 1) / 2 pairs of d-vectors (a few copies)
    check_memory(f"exact_probability with m={m} rows", 4 * 8.0 * m * (m - 1) / 2 * (d + 1),
                 fix="Remove duplicate rows or use method='tilting'.")
    return _oracle_unit_rows(U)


def _cone_feasible(U: np.ndarray) -> bool:
    """Exact test that ``{U x > 0}`` is non-empty (unit rows, any dimension)."""
    U, opposite = _clean_rows(U)
    if opposite:
        return False
    U = _reduce_rank(U)
    m, d = U.shape
    if d == 1:
        return bool(np.all(U[:, 0] > 0) or np.all(U[:, 0] < 0))
    R = _rays_bruteforce(U) if math.comb(m, d - 1) <= _MAX_COMBOS else _rays_lp_qhull(U)
    rays, _ = _unique_rays(R, U)
    if rays.shape[0] < d:
        return False
    s = rays.sum(axis=0)
    return bool(np.min(U @ s) > _TOL * np.linalg.norm(s))


def _tilting_result(W: object, b: object | None, *, n_samples: int, seed: object) -> OracleResult:
    from lowprob.gaussian_polytope import gaussian_polytope_probability

    A, b, _ = _checked(W, b)  # unit rows and the bias scaled alike (the event is unchanged)
    m, d = A.shape
    bias = np.zeros(m) if b is None else b
    if not np.any(bias != 0) and not _cone_feasible(A):
        return _infeasible(d)
    r = gaussian_polytope_probability(A, -bias, np.inf, n_samples=n_samples, seed=seed)
    return OracleResult(
        r.probability, r.log_probability, 4.0 * r.std_error, r.probability > 0, 0,
        r.method, 0, r.rank,
    )


def exact_probabilities(
    Ws: Iterable[object] | np.ndarray, *, show_progress: bool | None = None
) -> np.ndarray:
    """Vectorised :func:`exact_probability` over many instances.

    Args:
        Ws: an ``(n, m, d)`` array or an iterable of ``(m_i, d_i)`` matrices / toys.
        show_progress: progress bar (default: only on an interactive terminal).

    Returns:
        ``(n,)`` float64 probabilities (0.0 for infeasible instances).
    """
    items = list(Ws) if not isinstance(Ws, np.ndarray) else [Ws[i] for i in range(Ws.shape[0])]
    out = np.empty(len(items))
    for i, W in enumerate(progress(items, total=len(items), desc="exact oracle", enabled=show_progress)):
        out[i] = exact_probability(W).probability
    return out
