"""Toy problems with known answers: the halfspace toy (+ exact oracle), random MLPs, random products."""

from lowprob.toy_models.halfspace import HalfspaceFactor, HalfspaceToy

__all__ = ["HalfspaceFactor", "HalfspaceToy"]
