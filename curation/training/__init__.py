"""LAVIS integration: config, plugin (dataset, builder, model), train, predict.

Importing this package does not import torch or LAVIS; ``import_plugin`` does.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType


def import_plugin() -> ModuleType:
    """Import LAVIS and register our plugin, without torch/fairscale deprecation noise.

    Hugging Face tokenizers' own threads are switched off (unless the user set
    TOKENIZERS_PARALLELISM): the FiftyOne database service and torchrun fork after a
    tokenizer ran, and tokenizers then print a 5-line warning per fork.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from curation.training import plugin
    return plugin
