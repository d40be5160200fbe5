"""Toy problems with known answers: the halfspace toy (+ exact oracle), random MLPs, random products."""

from lowprob.toy_models.baselines import NaiveMonteCarlo, SequentialMonteCarlo
from lowprob.toy_models.halfspace import (
    HalfspaceFactor,
    HalfspaceStep,
    HalfspaceToy,
    as_halfspace_toy,
)
from lowprob.toy_models.instance_stats import (
    InstanceStats,
    instance_statistics,
    wendel_feasibility_probability,
)
from lowprob.toy_models.oracle import OracleResult, exact_probabilities, exact_probability
from lowprob.toy_models.orthant import orthant_probability, simplicial_cone_masses
from lowprob.toy_models.random_mlp import RandomMLP

__all__ = [
    "HalfspaceFactor",
    "HalfspaceStep",
    "HalfspaceToy",
    "InstanceStats",
    "NaiveMonteCarlo",
    "OracleResult",
    "RandomMLP",
    "SequentialMonteCarlo",
    "as_halfspace_toy",
    "exact_probabilities",
    "exact_probability",
    "instance_statistics",
    "orthant_probability",
    "simplicial_cone_masses",
    "wendel_feasibility_probability",
]
