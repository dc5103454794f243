"""A normal install: a missing extra is an install hint, never a ModuleNotFoundError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _harness import REPO, expect, invoke, untouched

SAMPLE = REPO / "raw" / "sample"


def test_tiny_export_without_tokenizers_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a core install (no lavis extra) looks like: `import tokenizers` fails
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    out = tmp_path / "out"
    with untouched(SAMPLE, tmp_path):
        outcome = invoke(["export", "--task", SAMPLE / "annotations.json", "--out", out])
    expect(outcome, 2, "'tokenizers'", "pip install 'falldown-curate[lavis]'")
    assert not out.exists()
