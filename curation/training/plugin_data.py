"""Where LAVIS finds our default configs (kept apart from ``plugin``: no torch needed)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "lavis"
