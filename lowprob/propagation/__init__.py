"""lowprob.propagation (see the package docstring of lowprob)."""
