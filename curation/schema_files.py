"""Generate the JSON Schema files in ``schemas/`` from the pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from curation._io import atomic_write_json, dumps_json
from curation.schemas.annotation import VQARecord


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every contract the toolkit publishes."""
    file_schema = TypeAdapter(list[VQARecord]).json_schema()
    file_schema.update(
        title="LAVIS VQA annotation file",
        description="A JSON array of LAVIS VQA records (falldown-curate contract).",
        minItems=1,
    )
    return {
        "vqa_record.schema.json": VQARecord.model_json_schema(),
        "vqa_annotation_file.schema.json": file_schema,
    }


def write_json_schemas(folder: str | Path) -> list[Path]:
    """Write every schema into ``folder``; return the paths written."""
    folder = Path(folder)
    written = []
    for name, schema in json_schemas().items():
        atomic_write_json(folder / name, schema)
        written.append(folder / name)
    return written


def stale_json_schemas(folder: str | Path) -> list[str]:
    """Names of schema files in ``folder`` that differ from the models (or are missing)."""
    folder = Path(folder)
    stale = []
    for name, schema in json_schemas().items():
        path = folder / name
        try:  # bytes, so a file that is not UTF-8 (or a folder) is stale, not a crash
            same = path.read_bytes() == dumps_json(schema).encode("utf-8")
        except OSError:
            same = False
        if not same:
            stale.append(name)
    return stale
