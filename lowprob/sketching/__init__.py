"""lowprob.sketching (see the package docstring of lowprob)."""
