"""The committed JSON Schema files match the pydantic models (golden check)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import REPO
from typer.testing import CliRunner

from curation.cli import app
from curation.schema_files import json_schemas, stale_json_schemas, write_json_schemas


def test_committed_schemas_match_models() -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        write_json_schemas(REPO / "schemas")
    stale = stale_json_schemas(REPO / "schemas")
    assert stale == [], f"regenerate with: curate schema --out schemas  (stale: {stale})"


def test_schema_describes_the_contract() -> None:
    record = json_schemas()["vqa_record.schema.json"]
    assert record["required"] == ["image", "answer"]
    # the question and the id under our builder's key or LAVIS's coco-vqa builder's
    assert record["allOf"] == [
        {"anyOf": [{"required": ["text_input"]}, {"required": ["question"]}]},
        {"anyOf": [{"required": ["instance_id"]}, {"required": ["question_id"]}]},
    ]
    assert record["properties"]["answer"]["type"] == "array"
    assert record["properties"]["answer"]["minItems"] == 1
    file_schema = json_schemas()["vqa_annotation_file.schema.json"]
    assert file_schema["type"] == "array" and file_schema["minItems"] == 1


def test_schema_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["schema", "--out", str(tmp_path), "--check"]).exit_code == 1
    assert runner.invoke(app, ["schema", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schema", "--out", str(tmp_path), "--check"]).exit_code == 0
    assert json.loads((tmp_path / "vqa_record.schema.json").read_text())["title"]
