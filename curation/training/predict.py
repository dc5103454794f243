"""Moved to :mod:`curation.inference`; these names stay importable from here."""

from __future__ import annotations

from curation.inference.model import LoadedModel, find_config, load_model
from curation.inference.predict import check_images_open, predict
from curation.inference.scoring import answer

__all__ = ["LoadedModel", "answer", "check_images_open", "find_config", "load_model", "predict"]
