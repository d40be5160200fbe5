"""lowprob.lm_bridge (see the package docstring of lowprob)."""
