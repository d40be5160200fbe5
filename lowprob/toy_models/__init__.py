"""Toy problems with known answers: the halfspace toy (+ exact oracle), random MLPs, random products."""

from lowprob.toy_models.halfspace import HalfspaceFactor, HalfspaceToy
from lowprob.toy_models.oracle import OracleResult, exact_probabilities, exact_probability
from lowprob.toy_models.orthant import orthant_probability, simplicial_cone_masses

__all__ = [
    "HalfspaceFactor",
    "HalfspaceToy",
    "OracleResult",
    "exact_probabilities",
    "exact_probability",
    "orthant_probability",
    "simplicial_cone_masses",
]
