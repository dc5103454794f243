"""`curate check`'s checks are a registry: adding one is one small class."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

from curation.cli import app
from curation.curator import checks

fo = pytest.importorskip("fiftyone")


def test_every_registered_check_has_a_tag_and_a_description() -> None:
    assert set(checks.check_tags()) == {
        "dup:exact",
        "dup:near",
        "corrupt",
        "tiny",
        "conflict",
        "leak",
        "leak:group",
    }
    for tag, cls in checks.CHECKS.items():
        assert cls.tag == tag and cls.description


def test_a_new_check_is_one_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "set"
    shutil.copytree(SAMPLE / "fall", root / "fall")
    shutil.copytree(SAMPLE / "no_fall", root / "no_fall")
    name = f"registry-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(root), "--dataset", name]).exit_code == 0

    monkeypatch.setattr(checks, "CHECKS", dict(checks.CHECKS))

    @checks.register
    class Camera(checks.Check):  # flags the one real photo of the sample
        tag = "real-photo"
        description = "the bundled real photo"

        def find(self, cols: checks.Columns) -> list[list[int]]:
            return [[i] for i, p in enumerate(cols.paths) if p.endswith("camera.png")]

    report = checks.run_checks(name, use_brain=False)
    assert report.counts["real-photo"] == 1
    tagged = fo.load_dataset(name).match_tags("real-photo")
    assert [Path(p).name for p in tagged.values("filepath")] == ["camera.png"]
    result = runner.invoke(app, ["check", "--dataset", name], terminal_width=200)
    assert result.exit_code == 0 and "real-photo" in result.output
