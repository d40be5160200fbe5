"""White-box final-layer LM methods, registered in the LM method registry.

All of them spend their whole budget of ``n = budget`` forward passes on i.i.d. samples of the
final activation ``x`` (after the final norm) under the input law ``D``, fit an activation
model ``M`` (:mod:`.activation_models`) and return ``P_M[argmax logits = t]``
(:mod:`.polytope`). Everything after the forwards is free of model calls: the proposal draws
and exact competitor checks in activation space are counted as FLOPs
(``Estimate.cost.flops``: ``2 n_is d V`` per exact check; fitting is not counted).

Pure white-box methods (the internals alone):

* ``wb-gauss``: Gaussian ``M``, top-K Botev tilting + unbiased IS correction over all
  competitors (``K`` by conditional danger, plus competitors found in a pilot).
* ``wb-mixture``: the same per component of an EM-fit Gaussian mixture.
* ``wb-adf``: Gaussian ``M``, deterministic deduction--projection over competitors in
  conditional-danger order (assumed-density filtering).

Hybrid (reported separately; white-box model + importance sampling on the inputs):

* ``wb-itgis``: spends ``fit_fraction`` of the budget on activation samples, fits a Gaussian
  ``N(m, L L^T)``, finds the *dominating point* of the target's cell, ``x* = m + L z*`` with
  ``z* = argmin ||z||^2 s.t. P z + c' >= 0`` (the exact QP of corrected QLD, reused from
  :mod:`lowprob.lm_bridge.methods.qld`), and runs ITGIS with the remaining budget, but with
  the gradient of the *white-box score* ``s(x) = z* . L^{-1} x`` in place of the gradient of
  ``logit_t``. Under the Gaussian model, ``exp(s)`` is exactly the exponential tilt that moves
  the mean to ``x*`` (the large-deviations optimal proposal), so it accounts for the
  competitors and the covariance, and temperature 1 is its natural scale. ITGIS's importance
  weights and exact hit checks are unchanged, so the estimator stays **unbiased**.

The pure methods are *biased* as estimators of ``p`` (the model ``M`` is not the law of ``x``); like GLD and
QLD they are meant to be calibrated by the bench's log-affine fit on the development
distributions. ``std_error`` reports only the Monte Carlo error of ``P_M``, not that bias.

To make them visible to ``lowprob lm bench``, import this module (it is a plug-in):
``LOWPROB_LM_PLUGINS=lowprob.lm_bridge.whitebox.methods`` or ``--plugin``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lowprob._validation import check_int
from lowprob.errors import BudgetError, InputValueError
from lowprob.gaussian_polytope import PolytopeResult
from lowprob.lm_bridge.budget import CountedModel, OnehotGradient
from lowprob.lm_bridge.methods.base import LMMethodBase, MethodResult
from lowprob.lm_bridge.methods.itgis import ITGIS
from lowprob.lm_bridge.methods.qld import shortest_accepting_vector
from lowprob.lm_bridge.methods.registry import register_lm_method
from lowprob.lm_bridge.problem import LMProblem
from lowprob.lm_bridge.whitebox.activation_models import (
    GaussianMixture,
    GaussianModel,
    _check_regularization,
)
from lowprob.lm_bridge.whitebox.final_layer import FinalLayer
from lowprob.lm_bridge.whitebox.polytope import (
    adf_probability,
    corrected_gaussian_probability,
    polytope_probability,
)

__all__ = ["ScoreGradientModel", "WhiteboxADF", "WhiteboxGaussian", "WhiteboxITGIS", "WhiteboxMixture", "dominating_direction"]


class _WhiteboxBase(LMMethodBase):
    """Sample ``budget`` final activations, fit a model, compute its polytope probability."""

    def __init__(self, *, batch_size: int = 1024, regularization: float = 1e-6) -> None:
        super().__init__(batch_size=batch_size)
        self.regularization = _check_regularization(regularization)

    def _activations(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> np.ndarray:
        return self._sample_activations(problem, model, rng, budget).cpu().numpy()

    def _result(self, est: PolytopeResult, n: int) -> MethodResult:
        p = est.probability
        se = p * est.relative_error if math.isfinite(est.relative_error) else None
        diag = {"model_log_p": est.log_probability, "model_relative_error": est.relative_error,
                "polytope_method": est.method, "activation_flops": est.flops, **est.diagnostics}
        return MethodResult(log_value=est.log_probability, std_error=se, diagnostics=diag, samples=n)


@register_lm_method("wb-gauss")
class WhiteboxGaussian(_WhiteboxBase):
    """Gaussian activation model; top-``K`` tilting + exact IS correction (``n_is`` draws)."""

    def __init__(
        self, *, batch_size: int = 1024, regularization: float = 1e-6, K: int = 16, n_is: int = 2**13, extra: int = 16
    ) -> None:
        super().__init__(batch_size=batch_size, regularization=regularization)
        self.K = check_int("K", K, minimum=1)
        self.n_is = check_int("n_is", n_is, minimum=2)
        self.extra = check_int("extra", extra, minimum=0)

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        x = self._activations(problem, model, rng, budget)
        layer = FinalLayer.from_problem(problem)
        gm = GaussianModel.fit(x, regularization=self.regularization)
        K = min(self.K, layer.V - 1)
        est = corrected_gaussian_probability(
            gm, layer, K=K, n_samples=self.n_is, extra=self.extra, seed=rng, device=problem.device
        )
        return self._result(est, x.shape[0])


@register_lm_method("wb-mixture")
class WhiteboxMixture(_WhiteboxBase):
    """Gaussian-mixture activation model (EM on at most ``max_fit`` samples), per-component IS."""

    def __init__(
        self,
        *,
        batch_size: int = 1024,
        regularization: float = 1e-4,
        n_components: int = 4,
        K: int = 16,
        n_is: int = 2**13,
        max_fit: int = 2**14,
        n_iter: int = 30,
    ) -> None:
        super().__init__(batch_size=batch_size, regularization=regularization)
        if self.regularization == 0:
            raise InputValueError("regularization must be > 0 for a Gaussian mixture; e.g. 1e-4.")
        self.n_components = check_int("n_components", n_components, minimum=1)
        self.K = check_int("K", K, minimum=1)
        self.n_is = check_int("n_is", n_is, minimum=2)
        self.max_fit = check_int("max_fit", max_fit, minimum=2)
        self.n_iter = check_int("n_iter", n_iter, minimum=1)

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        x = self._activations(problem, model, rng, budget)
        layer = FinalLayer.from_problem(problem)
        fit_x = x if x.shape[0] <= self.max_fit else x[rng.choice(x.shape[0], self.max_fit, replace=False)]
        gmm = GaussianMixture.fit(
            fit_x, min(self.n_components, fit_x.shape[0]), regularization=self.regularization,
            n_iter=self.n_iter, seed=rng,
        )
        est = polytope_probability(
            gmm, layer, K=min(self.K, layer.V - 1), n_samples=self.n_is, seed=rng, device=problem.device
        )
        res = self._result(est, x.shape[0])
        res.diagnostics["mixture_weights"] = gmm.weights.tolist()
        res.diagnostics["mixture_log_likelihood"] = gmm.log_likelihood
        return res


@register_lm_method("wb-adf")
class WhiteboxADF(_WhiteboxBase):
    """Gaussian activation model; deduction--projection over competitors (deterministic)."""

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        x = self._activations(problem, model, rng, budget)
        layer = FinalLayer.from_problem(problem)
        gm = GaussianModel.fit(x, regularization=self.regularization)
        est = adf_probability(gm, layer)
        res = self._result(est, x.shape[0])
        res.std_error = None
        return res


# --------------------------------------------------------------------------------------
# hybrid: the white-box dominating point as ITGIS's score
# --------------------------------------------------------------------------------------
def dominating_direction(model: GaussianModel, layer: FinalLayer) -> tuple[np.ndarray | None, float, str]:
    """``(u, |z*|, status)``: ``u = L^{-T} z*`` so that ``u . x = z* . L^{-1} x`` (see module doc).

    ``u`` is ``None`` when the cell is empty (the target can never win); ``u = 0`` when the
    target already wins at the mean (``status == "mean_wins"``).
    """
    A, c = layer.halfspaces()
    P = A @ model.chol  # constraints in whitened coordinates z = L^{-1}(x - m)
    cz = A @ model.mean + c
    z, status = shortest_accepting_vector(torch.as_tensor(P), torch.as_tensor(cz))
    if z is None:
        return None, math.inf, status
    u = np.linalg.solve(model.chol.T, z)
    return u, float(np.linalg.norm(z)), status


class ScoreGradientModel(CountedModel):
    """A :class:`CountedModel` whose ``logits_and_grad`` returns the true logits but the one-hot
    gradient of the score ``u . x`` (``x`` the final activation) instead of ``logit_target``.

    Charges exactly what the base class charges (``B`` forwards and ``B`` backwards).
    """

    def __init__(self, base: CountedModel, u: np.ndarray) -> None:
        super().__init__(base.adapter, base.budget, forward=base.kernel if base.kernel is not None else "adapter")
        self.forward_note = base.forward_note  # same forward (tabulated or adapter) as ``base``
        self.u = torch.as_tensor(u, dtype=base.adapter.dtype, device=base.adapter.device)

    def logits_and_grad(self, tokens: torch.Tensor, target: int) -> tuple[torch.Tensor, OnehotGradient]:
        return self.score_and_grad(tokens, self.u)


@register_lm_method("wb-itgis")
class WhiteboxITGIS(LMMethodBase):
    """Hybrid: Gaussian dominating-point score (white-box) as ITGIS's proposal gradient."""

    def __init__(
        self,
        *,
        fit_fraction: float = 0.125,
        temperature: float = 1.0,
        batch_size: int = 256,
        decay: float = 0.9,
        regularization: float = 1e-6,
    ) -> None:
        super().__init__(batch_size=batch_size)
        if isinstance(fit_fraction, bool) or not isinstance(fit_fraction, (int, float)) or not 0 < fit_fraction < 1:
            raise InputValueError(f"fit_fraction must lie in (0, 1), got {fit_fraction!r}.")
        self.fit_fraction = float(fit_fraction)
        self.regularization = _check_regularization(regularization)
        self._itgis = ITGIS(temperature=temperature, batch_size=batch_size, decay=decay)
        self.temperature = self._itgis.temperature
        self.decay = self._itgis.decay

    def _run(self, problem: LMProblem, model: CountedModel, rng: np.random.Generator, budget: int) -> MethodResult:
        n_fit = max(2, int(self.fit_fraction * budget))
        n_is = budget - n_fit
        if n_is < self.batch_size:
            raise BudgetError(
                f"budget={budget!r} leaves {n_is} calls after fitting ({n_fit}); wb-itgis needs at least "
                f"one ITGIS batch of {self.batch_size}. Pass a larger budget or a smaller batch_size."
            )
        x = self._sample_activations(problem, model, rng, n_fit).cpu().numpy()
        layer = FinalLayer.from_problem(problem)
        gm = GaussianModel.fit(x, regularization=self.regularization)
        u, dist, status = dominating_direction(gm, layer)
        diag: dict[str, Any] = {"fit_calls": n_fit, "dominating_distance": dist, "direction_status": status}
        if u is None:  # the target can never be the argmax: p = 0 exactly
            return MethodResult(log_value=-math.inf, std_error=0.0, diagnostics=diag)
        res = self._itgis._run(problem, ScoreGradientModel(model, u), rng, n_is)
        res.diagnostics.update(diag)
        return res
