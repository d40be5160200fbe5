"""LM low-probability estimation methods, each registered in :data:`LM_METHODS`.

Importing this package registers the built-ins: ``naive``, ``gld``, ``qld`` (corrected),
``qld_official`` (bug-compatible, for reproduction only), ``itgis`` and ``mhis``.
"""

from lowprob.lm_bridge.methods import gld, itgis, mhis, naive, qld, qld_official  # noqa: F401
from lowprob.lm_bridge.methods.registry import (
    LM_METHODS,
    available_lm_methods,
    load_lm_plugins,
    make_lm_method,
    register_lm_method,
)

__all__ = ["LM_METHODS", "available_lm_methods", "load_lm_plugins", "make_lm_method", "register_lm_method"]
