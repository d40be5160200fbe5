"""Re-export of :mod:`lowprob.gaussian_polytope` (Botev tilting moved there: it is a general
Gaussian-polytope tool, not a toy model). Import from :mod:`lowprob.gaussian_polytope`."""

from lowprob.gaussian_polytope import (
    PolytopeResult,
    TiltedPolytopeSampler,
    gaussian_polytope_probability,
    log_normal_interval,
)

__all__ = ["PolytopeResult", "TiltedPolytopeSampler", "gaussian_polytope_probability", "log_normal_interval"]
