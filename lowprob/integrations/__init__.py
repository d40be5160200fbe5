"""lowprob.integrations (see the package docstring of lowprob)."""
