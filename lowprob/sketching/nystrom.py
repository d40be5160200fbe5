"""Nyström eigen-decomposition of a general claim kernel over a base measure ``mu``.

With ``R`` reference points ``z_r`` and weights ``v_r`` representing ``mu`` (its deterministic
reference quadrature by default, so the number of reference points is ``R = len(mu.quadrature())``,
reported as ``n_reference``), diagonalise ``A = V^{1/2} K_zz V^{1/2} = U diag(lambda) U^T``
and extend (Williams & Seeger 2001; Rasmussen & Williams 2006, eq. 4.42)::

    phi_j(x) = (1 / lambda_j) sum_r k(x, z_r) v_r^{1/2} U_rj ,    phi_j(z_r) = U_rj / v_r^{1/2}.

``phi_j`` are orthonormal in ``L^2(mu_hat)`` (``mu_hat = sum_r v_r delta_{z_r}``) and the
``lambda_j`` converge to the operator's eigenvalues as the rule refines. The kernel matrix is
PSD-checked (:func:`lowprob.sketching.kernels.psd_eigh`), and only eigenpairs above
``zero_rtol * lambda_max`` are kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lowprob.errors import InputValueError
from lowprob.sketching.eigensystems import Eigensystem, group_clusters
from lowprob.sketching.kernels import psd_eigh
from lowprob.sketching.measures import Measure, WeightedPoints

__all__ = ["NystromEigensystem"]


class NystromEigensystem(Eigensystem):
    """Eigenpairs of ``k`` on ``L^2(mu)`` from ``R`` reference points (see module docstring).

    Args:
        kernel: ``k(x, y) -> (N, M)`` (e.g. ``claims.kernel``).
        base: the base measure ``mu`` (a :class:`Measure`; its ``quadrature()`` gives the
            reference points) or a :class:`WeightedPoints` directly.
        dim: point dimension (checked against ``base``).
        max_reference: refuse more than this many reference points (memory ``R^2`` floats).
    """

    def __init__(
        self,
        kernel: Callable[[np.ndarray, np.ndarray], np.ndarray],
        base: Measure,
        *,
        dim: int | None = None,
        max_reference: int = 6000,
        tie_rtol: float = 1e-9,
        zero_rtol: float = 1e-12,
    ) -> None:
        if not isinstance(base, Measure):
            raise InputValueError(f"base must be a Measure, got {base!r}.")
        if dim is not None and base.dim != dim:
            raise InputValueError(f"base measure has dimension {base.dim} but the kernel has {dim}.")
        ref: WeightedPoints = base.quadrature()
        if np.any(ref.weights < 0):
            raise InputValueError("the base measure's reference weights must be non-negative.")
        R = len(ref)
        if R > max_reference:
            raise InputValueError(
                f"base measure has {R} reference points > max_reference={max_reference}; "
                "use a coarser quadrature order or raise max_reference."
            )
        self.kernel = kernel
        self.base = base
        self.dim = base.dim
        self.reference = ref
        self.n_reference = R
        sv = np.sqrt(ref.weights)
        lam, U = psd_eigh(sv[:, None] * kernel(ref.points, ref.points) * sv[None, :], name="Nyström kernel matrix")
        self._trace = float(lam.sum())
        keep = lam > zero_rtol * lam[0]
        self.eigenvalues, self.U = lam[keep], U[:, keep]
        self._sv = sv
        blocks, self.cluster_values = group_clusters(
            self.eigenvalues, np.ones(self.eigenvalues.size, dtype=np.int64), tie_rtol=tie_rtol, zero_rtol=zero_rtol
        )
        self.clusters = blocks  # one column per block

    def functions(self, x: np.ndarray) -> np.ndarray:
        return self.kernel(x, self.reference.points) @ (self._sv[:, None] * self.U) / self.eigenvalues

    def coefficients(self, D: Measure) -> np.ndarray:
        if D is self.base:
            return self._sv @ self.U  # E_mu_hat phi_j = sum_r v_r U_rj / v_r^{1/2}
        Q = D.quadrature()
        if Q.dim != self.dim:
            raise InputValueError(f"target has dimension {Q.dim} but the base measure has {self.dim}.")
        out = np.zeros(self.eigenvalues.size)
        for s in range(0, len(Q), 2048):
            out += Q.weights[s : s + 2048] @ self.functions(Q.points[s : s + 2048])
        return out

    def reference_weights(self, columns: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
        """Signed weights on the reference points of ``sum_{j in columns} c_j phi_j mu_hat``."""
        return self._sv * (self.U[:, columns] @ coefficients)

    @property
    def trace(self) -> float:
        return self._trace

    def __repr__(self) -> str:
        return f"NystromEigensystem(n_reference={self.n_reference}, rank={self.eigenvalues.size})"
