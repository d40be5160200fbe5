"""Model adapters (one per architecture family) behind :class:`ModelAdapter`."""

from lowprob.lm_bridge.adapters.base import ModelAdapter

__all__ = ["ModelAdapter"]
