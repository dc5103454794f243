"""Default model settings of each preset, read from the YAML files LAVIS also reads.

Kept apart from ``plugin`` so that exporting a config needs neither torch nor LAVIS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "lavis"
MODEL_FILES = {"tiny": DATA / "tiny.yaml", "pretrain_flant5xl": DATA / "pretrain_flant5xl.yaml"}


def model_defaults(model_type: str) -> dict[str, Any]:
    return yaml.safe_load(MODEL_FILES[model_type].read_text())["model"]
