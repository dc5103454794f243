"""LAVIS integration: config, plugin (dataset, builder, model), train, predict.

Importing this package does not import torch or LAVIS; ``import_plugin`` does.
"""

from __future__ import annotations

import warnings
from types import ModuleType


def import_plugin() -> ModuleType:
    """Import LAVIS and register our plugin, without torch/fairscale deprecation noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from curation.training import plugin
    return plugin
