"""Moved to :mod:`curation.inference.operating_point`; these names stay importable from here."""

from __future__ import annotations

from curation.inference.operating_point import (
    FINGERPRINT_KEY,
    MAX_BYTES,
    answer_at,
    chosen_for,
    fingerprint,
    saved_threshold,
    write_point,
)

__all__ = [
    "FINGERPRINT_KEY",
    "MAX_BYTES",
    "answer_at",
    "chosen_for",
    "fingerprint",
    "saved_threshold",
    "write_point",
]
