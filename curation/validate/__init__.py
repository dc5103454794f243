"""Validate LAVIS VQA annotation files against the contract, and load them.

``files`` runs one pass over a file; ``text`` (encoding, JSON syntax), ``records``
(one record against the contract), ``sets`` (across records) and ``images`` (the
image files) each find one kind of problem; ``load`` gives library callers the
records or one clear error.
"""

from curation.validate.files import validate_files
from curation.validate.load import load_records, require_valid
from curation.validate.records import CONTRACT_KEYS
from curation.validate.sets import BALANCE_LIMIT, normalized_image

__all__ = [
    "BALANCE_LIMIT",
    "CONTRACT_KEYS",
    "load_records",
    "normalized_image",
    "require_valid",
    "validate_files",
]
