"""lowprob.sketching: claim distributions, claim kernels, K-term sketches and their exact error.

Modules (named by their mathematics):
    funk_hecke          normalised Gegenbauer polynomials, Funk–Hecke eigenvalues of zonal kernels
    harmonics           exact real orthonormal spherical harmonics on S^{n-1}
    sphere_quadrature   product Gauss rules exact for polynomials on S^{n-1}
    kernels             kernel objects (zonal, RBF) and the PSD-checked eigen-decomposition
    claims              claim distributions C and their kernels k(x, y) = E_f f(x) f(y)
    pullback            backward claim propagation through a step (registry by step type)
    measures            target distributions with deterministic reference rules
    eigensystems        eigenpairs grouped into eigenspaces (harmonic); nystrom: general kernels
    kterm               the one K-term contract (KTerm), views of loop states (as_sketch)
    sketches            PointSketch, HarmonicSketch, SampleSketch, KernelSketch, QuadratureSketch,
                        GaussianMomentSketch
    sketch_error        the exact error E_f (E_M f - E_D f)^2 with bounds; brute-force check
"""

from lowprob.sketching.claims import (
    ClaimDistribution,
    ComposedClaims,
    FiniteClaims,
    KernelClaims,
    MultipliedClaims,
    RandomHalfspaceProduct,
    SampledClaims,
)
from lowprob.sketching.funk_hecke import (
    funk_hecke_eigenvalues,
    gegenbauer_table,
    halfspace_product_profile,
    harmonic_dimension,
)
from lowprob.sketching.harmonics import SphericalHarmonics
from lowprob.sketching.kernels import NotPSDError, RBFKernel, ZonalKernel
from lowprob.sketching.kterm import SKETCH_VIEWS, KTerm, as_sketch
from lowprob.sketching.measures import (
    GaussianMixture,
    Measure,
    ScaledMeasure,
    SphericalCone,
    UniformSphere,
    WeightedPoints,
)
from lowprob.sketching.pullback import pullback, register_pullback
from lowprob.sketching.sketch_error import SketchError, sampled_sketch_error, sketch_error
from lowprob.sketching.sketches import (
    GaussianMomentSketch,
    HarmonicSketch,
    KernelSketch,
    PointSketch,
    QuadratureSketch,
    SampleSketch,
    Sketch,
)
from lowprob.sketching.sphere_quadrature import sphere_quadrature

__all__ = [
    "SKETCH_VIEWS",
    "ClaimDistribution",
    "ComposedClaims",
    "FiniteClaims",
    "GaussianMixture",
    "GaussianMomentSketch",
    "HarmonicSketch",
    "KTerm",
    "KernelSketch",
    "Measure",
    "PointSketch",
    "QuadratureSketch",
    "SampleSketch",
    "ScaledMeasure",
    "Sketch",
    "SketchError",
    "SphericalCone",
    "UniformSphere",
    "WeightedPoints",
    "KernelClaims",
    "MultipliedClaims",
    "NotPSDError",
    "RBFKernel",
    "RandomHalfspaceProduct",
    "SampledClaims",
    "SphericalHarmonics",
    "ZonalKernel",
    "funk_hecke_eigenvalues",
    "gegenbauer_table",
    "halfspace_product_profile",
    "harmonic_dimension",
    "pullback",
    "register_pullback",
    "as_sketch",
    "sampled_sketch_error",
    "sketch_error",
    "sphere_quadrature",
]
