"""Annotation loading for library callers (export, ingest, eval, train): records or one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from curation._io import shell_quote
from curation.errors import DataError
from curation.report import ValidationReport
from curation.schemas.annotation import VQARecord
from curation.validate.files import validate_files
from curation.validate.text import read_annotation_file

_RECORDS = TypeAdapter(list[VQARecord])


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Load a contract-valid annotation file as plain dicts, or raise ``DataError``.

    For library callers (export, mix) that need records, not a report.
    """
    data = read_annotation_file(Path(path))
    try:
        records = _RECORDS.validate_json(data.removeprefix(b"\xef\xbb\xbf"))
    except ValidationError:
        report = validate_files([path], check_image_files=False)
        shown = "\n".join(p.render() for p in report.errors[:10])
        more = len(report.errors) - 10
        tail = f"\n... and {more} more (run: curate validate {path})" if more > 0 else ""
        raise DataError(f"{path} does not follow the LAVIS VQA contract:\n{shown}{tail}") from None
    if not records:
        raise DataError(f"{path}: the file holds no records. Fix: add at least one record.")
    # unset: a record without question/question_id gets no None for them
    return [r.model_dump(exclude_unset=True) for r in records]


def require_valid(
    path: str | Path,
    image_root: str | Path | None = None,
    *,
    action: str = "nothing was done",
    hint: str = "",
    check_image_files: bool = True,
    shown: int = 10,
) -> ValidationReport:
    """Validate one annotation file (images too); raise ``DataError`` listing its first errors.

    The one "validate, show the first problems, stop" rule of export, ingest and train.
    """

    report = validate_files([path], image_root=image_root, check_image_files=check_image_files)
    if report.ok:
        return report
    errors = report.errors
    total = len(errors) + report.omitted_errors  # past the stored cap, still counted
    lines = "\n  ".join(p.render() for p in errors[:shown])
    more = f"\n  ... and {total - shown} more" if total > shown else ""
    command = f"curate validate {shell_quote(str(path))}"
    if image_root is not None:
        command += f" --image-root {shell_quote(str(image_root))}"
    raise DataError(
        f"{path}{hint} has {total} error(s); {action}:\n  {lines}{more}\n"
        f"  (run {command} --fix FIXED.json to write a corrected copy)"
    )
