"""``P_M[argmax logits = t]`` under an activation model ``M``: the final-layer polytope.

For a :class:`~.activation_models.GaussianModel` ``N(m, S)`` (and per component of a mixture)
the target's cell is the polytope ``{x : A x + c > 0}`` with ``V - 1`` faces, far more faces
than dimensions. We split it by danger (:mod:`.final_layer`):

1. **Top-K polytope.** ``P_K = P[A_K x + c_K > 0]`` for the ``K`` most dangerous competitors,
   exactly for ``K = 1`` (``Phi``) and by Botev's minimax tilting otherwise
   (:mod:`lowprob.gaussian_polytope`; Genz-style separation of variables is its ``mu = 0``
   special case, and the tilted version dominates it, so Genz is not offered separately).
2. **Importance-sampling correction for the rest** (unbiased): draw ``x_i`` from the tilted
   proposal ``q`` of the top-K polytope with weights ``w_i`` (``E_q[w f] = E_M[1_{P_K} f]``)
   and check *every* competitor exactly: ``p_hat = mean_i w_i 1[argmax logits(x_i) = t]``,
   so ``E[p_hat] = P_M[argmax = t]`` whatever ``K`` is; ``K`` only changes the variance.
   A pilot run (a fraction of the samples, discarded) finds the competitors that still win
   inside the top-K polytope and adds the most frequent ones before the final run.
3. **Deduction--projection over competitors** (:func:`adf_probability`, :mod:`.adf`): the
   Gaussian is multiplied by one competitor indicator at a time, in conditional-danger order
   (exact deduction: a truncated Gaussian), and projected back onto a Gaussian by matching
   mean and covariance (assumed-density filtering; Minka 2001, "Expectation propagation",
   eqs. 3.7-3.9). The product of the normalisers is the estimate. Deterministic, biased,
   cheap: ``O(K (V d + d^2))``. One pass of :func:`lowprob.propagation.loop.propagate` gives
   both the claim order (used by the top-K tilting below) and the estimate.

For :class:`~.activation_models.EmpiricalModel` the probability is the hit fraction; for
:class:`~.activation_models.ProductModel` it is QLD's corrected pair count.
Dispatch is by registration on the model type (:data:`POLYTOPE_ESTIMATORS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from lowprob._validation import as_generator, check_int
from lowprob.errors import InputTypeError
from lowprob.gaussian_polytope import PolytopeResult, TiltedPolytopeSampler
from lowprob.lm_bridge.whitebox.activation_models import (
    EmpiricalModel,
    GaussianMixture,
    GaussianModel,
    ProductModel,
    mixture_components,
)
from lowprob.lm_bridge.whitebox.adf import adf_over_competitors, sequential_danger_order
from lowprob.lm_bridge.whitebox.final_layer import FinalLayer, danger_order
from lowprob.registry import Registry

__all__ = [
    "POLYTOPE_ESTIMATORS",
    "adf_probability",
    "competitors_by_danger",
    "corrected_gaussian_probability",
    "polytope_probability",
    "sequential_danger_order",
    "topk_gaussian_probability",
]


def competitors_by_danger(model: Any, layer: FinalLayer) -> tuple[np.ndarray, np.ndarray]:
    """``(competitors, log_danger)`` sorted by *marginal* danger, most dangerous first (deterministic)."""
    ks = layer.competitors
    A, c = layer.halfspaces(ks)
    ld = model.log_danger(A, c)
    order = danger_order(ld)
    return ks[order], ld[order]


def _event_torch(layer: FinalLayer, x: np.ndarray, device: str | torch.device, batch: int = 4096) -> np.ndarray:
    """``argmax logits = t`` (strict) on ``device`` in float64, batched."""
    W = torch.as_tensor(np.array(layer.W_U), device=device)
    b = torch.as_tensor(np.array(layer.b_U), device=device)
    out = []
    for s in range(0, x.shape[0], batch):
        lg = torch.as_tensor(x[s : s + batch], device=device) @ W + b
        lt = lg[:, layer.target].clone()
        lg[:, layer.target] = -math.inf
        out.append((lt > lg.max(1).values).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _winners(layer: FinalLayer, x: np.ndarray, device: str | torch.device) -> np.ndarray:
    lg = torch.as_tensor(x, device=device) @ torch.as_tensor(np.array(layer.W_U), device=device)
    lg = lg + torch.as_tensor(np.array(layer.b_U), device=device)
    return lg.argmax(1).cpu().numpy()


# --------------------------------------------------------------------------------------
# Gaussian: top-K tilting and the unbiased IS correction
# --------------------------------------------------------------------------------------
def topk_gaussian_probability(
    model: GaussianModel, layer: FinalLayer, K: int, *, n_samples: int = 2**12, seed: object = None
) -> PolytopeResult:
    """``P[t beats the K most dangerous competitors]`` under ``model`` (an upper bound on ``p``)."""
    K = layer.check_k(K)
    ks, _, _ = sequential_danger_order(model, layer, max_competitors=K)
    if ks.size == 0:  # no competitor is a danger at all
        ks = competitors_by_danger(model, layer)[0][:1]
    A, c = layer.halfspaces(ks[:K])
    sampler = TiltedPolytopeSampler(A, -c, np.inf, model.mean, model.cov)
    res = sampler.probability(n_samples, seed=seed)
    return replace(res, method=f"topk-{res.method}", diagnostics={"K": K, "competitors": ks[:K].tolist()})


def corrected_gaussian_probability(
    model: GaussianModel,
    layer: FinalLayer,
    *,
    K: int = 16,
    n_samples: int = 2**13,
    pilot_fraction: float = 0.25,
    extra: int = 16,
    seed: object = None,
    device: str | torch.device = "cpu",
) -> PolytopeResult:
    """Unbiased ``P_M[argmax = t]`` for a Gaussian ``M``: top-K tilting + exact IS correction.

    Args:
        K: competitors in the tilted proposal (``1 <= K <= V - 1``); the rest are corrected.
        n_samples: proposal draws of the final run (the pilot uses ``pilot_fraction`` more).
        extra: at most this many competitors that still win in the pilot are added.
        device: where the ``(n, d) x (d, V)`` exact checks run.

    Returns:
        :class:`PolytopeResult`; ``relative_error`` is the sample standard error of the
        weighted mean divided by it. Counted FLOPs: ``2 n d V`` for the exact checks.
    """
    K = layer.check_k(K)
    n_samples = check_int("n_samples", n_samples, minimum=2)
    rng = as_generator(seed)
    ks, _, _ = sequential_danger_order(model, layer, max_competitors=K)
    if ks.size == 0:
        ks = competitors_by_danger(model, layer)[0][:1]
    chosen = [int(k) for k in ks[:K]]
    flops = 0.0
    n_pilot = int(pilot_fraction * n_samples)
    added: list[int] = []
    if n_pilot >= 2 and extra > 0 and K < layer.V - 1:
        A, c = layer.halfspaces(np.asarray(chosen))
        xs, lw = TiltedPolytopeSampler(A, -c, np.inf, model.mean, model.cov).sample(n_pilot, seed=rng)
        ok = np.isfinite(lw)
        win = _winners(layer, xs[ok], device)
        flops += 2.0 * n_pilot * layer.d * layer.V
        lose = win[win != layer.target]
        if lose.size:
            vals, counts = np.unique(lose, return_counts=True)
            order = np.lexsort((vals, -counts))
            added = [int(v) for v in vals[order][:extra] if v not in chosen]
            chosen += added
    A, c = layer.halfspaces(np.asarray(chosen))
    sampler = TiltedPolytopeSampler(A, -c, np.inf, model.mean, model.cov)
    xs, lw = sampler.sample(n_samples, seed=rng)
    ok = np.isfinite(lw)
    hit = np.zeros(n_samples, dtype=bool)
    hit[ok] = _event_torch(layer, xs[ok], device)
    flops += 2.0 * n_samples * layer.d * layer.V
    lwh = np.where(hit, lw, -np.inf)
    if not np.any(hit):
        return PolytopeResult(
            -math.inf, math.inf, "gauss-tilt-is", n_samples=n_samples, converged=sampler.converged, flops=flops,
            diagnostics={"K": len(chosen), "added": added, "pass_fraction": 0.0},
        )
    lp = float(logsumexp(lwh) - math.log(n_samples))
    w = np.exp(lwh - lp)
    rel = float(np.std(w, ddof=1) / math.sqrt(n_samples))
    ess = float(w.sum() ** 2 / np.sum(w * w))
    return PolytopeResult(
        lp, rel, "gauss-tilt-is", n_samples=n_samples, rank=sampler.rank, converged=sampler.converged, flops=flops,
        diagnostics={
            "K": len(chosen),
            "added": added,
            "pass_fraction": float(hit.mean()),
            "ess": ess,
            "log_upper_bound_topk": float(sampler.log_upper_bound),
        },
    )


# --------------------------------------------------------------------------------------
# deduction--projection over competitors (assumed-density filtering, :mod:`.adf`)
# --------------------------------------------------------------------------------------
def adf_probability(
    model: GaussianModel | GaussianMixture, layer: FinalLayer, *, n_competitors: int | None = None
) -> PolytopeResult:
    """Deduction--projection over at most ``n_competitors`` competitors (default all dangerous ones).

    One pass of :func:`~.adf.adf_over_competitors` per Gaussian (per component of a mixture,
    masses added with the mixture weights); the conditional-danger ordering and the filter
    are the same pass. Deterministic; FLOPs counted by the loop.
    """
    comps = mixture_components(model) if isinstance(model, GaussianMixture) else [model]
    logw = np.log(model.weights) if isinstance(model, GaussianMixture) else np.zeros(1)
    K = layer.V - 1 if n_competitors is None else layer.check_k(n_competitors, name="n_competitors")
    logs, flops, used = [], 0.0, []
    for comp in comps:
        trace = adf_over_competitors(comp, layer, max_competitors=K)
        used.append(len(trace.final.gaps.chosen))
        logs.append(float(trace.final.log_mass))
        flops += trace.flops
    lp = float(logsumexp(np.asarray(logs) + logw))
    return PolytopeResult(lp, 0.0, "adf", flops=flops, diagnostics={"competitors_used": used, "component_log_p": logs})


# --------------------------------------------------------------------------------------
# dispatch by model type
# --------------------------------------------------------------------------------------
POLYTOPE_ESTIMATORS: Registry[Callable[..., PolytopeResult]] = Registry("polytope estimator")


@POLYTOPE_ESTIMATORS.register(GaussianModel)
def _gauss(model: GaussianModel, layer: FinalLayer, **kw: Any) -> PolytopeResult:
    return corrected_gaussian_probability(model, layer, **kw)


@POLYTOPE_ESTIMATORS.register(GaussianMixture)
def _mixture(model: GaussianMixture, layer: FinalLayer, *, n_samples: int = 2**13, seed: object = None, **kw: Any) -> PolytopeResult:
    """``sum_c pi_c P_c`` with ``n_samples / C`` draws per component (independent runs)."""
    rng = as_generator(seed)
    C = model.n_components
    per = max(n_samples // C, 2)
    lps, rels, flops, diags = [], [], 0.0, []
    for k, comp in enumerate(mixture_components(model)):
        r = corrected_gaussian_probability(comp, layer, n_samples=per, seed=rng, **kw)
        lps.append(math.log(model.weights[k]) + r.log_probability)
        rels.append(r.relative_error if np.isfinite(r.log_probability) else 0.0)
        flops += r.flops
        diags.append(r.diagnostics)
    lps_a = np.asarray(lps)
    lp = float(logsumexp(lps_a))
    if not np.isfinite(lp):
        return PolytopeResult(-math.inf, math.inf, "mixture-tilt-is", flops=flops, diagnostics={"components": diags})
    share = np.exp(lps_a - lp)
    rel = float(np.sqrt(np.sum((share * np.asarray(rels)) ** 2)))
    return PolytopeResult(
        lp, rel, "mixture-tilt-is", flops=flops, diagnostics={"components": diags, "shares": share.tolist()}
    )


@POLYTOPE_ESTIMATORS.register(EmpiricalModel)
def _empirical(model: EmpiricalModel, layer: FinalLayer, *, device: str | torch.device = "cpu", **kw: Any) -> PolytopeResult:
    hits = int(_event_torch(layer, model.x, device).sum())
    n = model.x.shape[0]
    lp = math.log(hits / n) if hits else -math.inf
    rel = math.sqrt((1 - hits / n) / hits) if hits else math.inf
    return PolytopeResult(
        lp, rel, "empirical", n_samples=n, flops=2.0 * n * layer.d * layer.V, diagnostics={"hits": hits, "n": n}
    )


@POLYTOPE_ESTIMATORS.register(ProductModel)
def _product(model: ProductModel, layer: FinalLayer, *, device: str | torch.device = "cpu", **kw: Any) -> PolytopeResult:
    from lowprob.lm_bridge.methods.qld import qld_from_activations

    x = torch.as_tensor(model.x, device=device)
    W, b = (torch.as_tensor(np.array(a), device=device) for a in (layer.W_U, layer.b_U))
    res = qld_from_activations(x, W, b, layer.target)
    return PolytopeResult(res.log_p, 0.0, "product-qld", diagnostics={"pair_count": res.count, "status": res.status})


def polytope_probability(model: Any, layer: FinalLayer, **options: Any) -> PolytopeResult:
    """``P_M[argmax = t]`` by the estimator registered for ``type(model)`` (MRO-aware)."""
    if not isinstance(layer, FinalLayer):
        raise InputTypeError(f"layer must be a FinalLayer, got {type(layer).__name__}.")
    for t in type(model).__mro__:
        if t in POLYTOPE_ESTIMATORS:
            return POLYTOPE_ESTIMATORS.get(t)(model, layer, **options)
    raise InputTypeError(
        f"no polytope estimator for activation model {type(model).__name__!r}; known: "
        f"{[getattr(k, '__name__', k) for k in POLYTOPE_ESTIMATORS.keys()]!r}."
    )
