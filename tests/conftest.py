"""Test tiers (see tests/README.md): default = fast; ``-m slow`` = long statistical tests."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("ci")
