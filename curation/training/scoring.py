"""Moved to :mod:`curation.inference.scoring`; ``p_yes`` stays importable from here."""

from __future__ import annotations

from curation.inference.scoring import p_yes

__all__ = ["p_yes"]
