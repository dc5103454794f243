"""Validate LAVIS VQA annotation files against the contract, in one pass.

A clean file takes the fast path (``curation._fastpath``: decoded and
type-checked in C). A file with a bad record is split by msgspec into one raw
slice per record; each record that msgspec cannot accept is decoded alone and
checked by the pydantic model, which locates each problem precisely, so memory
stays proportional to the file, not to the number of bad records. Only a file
msgspec cannot split (invalid JSON, NaN, lone surrogates, deep nesting) is read
whole with ``json.loads``. Every problem is counted; nothing stops at the first one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from curation._fastpath import Columns, decode_clean, decode_record, gc_paused, split_records
from curation.errors import UsageError
from curation.images import default_image_root
from curation.report import Problem, ValidationReport
from curation.schemas.annotation import with_contract_keys
from curation.validate.images import check_images
from curation.validate.records import first_answer, record_problems
from curation.validate.sets import content_conflicts, label_problems, set_problems
from curation.validate.text import (
    NonFinite,
    empty_problem,
    huge_int_key,
    json_problem,
    json_type,
    jsonl_problem,
    nesting_problem,
    read_annotation_file,
    utf8_problem,
    utf16_problem,
)


def validate_files(
    paths: Sequence[str | Path],
    image_root: str | Path | None = None,
    check_image_files: bool = True,
    workers: int | None = None,
) -> ValidationReport:
    """Validate annotation files; return every problem found.

    Raises:
        UsageError: a file does not exist or the image root is not a folder.
    """
    report = ValidationReport()
    for path in map(Path, paths):
        cols, n_records = _validate_one(path, report)
        report.files.append(str(path))
        report.records += n_records
        if cols and check_image_files:
            if image_root is not None:
                root = Path(image_root)
            else:
                root = default_image_root(path, cols.image[:20])
            if not root.is_dir():
                raise UsageError(f"image root is not a folder: {root}. Fix: pass --image-root DIR")
            checked, sha_by_image = check_images(path, cols, root, workers, report)
            report.images_checked += checked
            content_conflicts(str(path), cols, sha_by_image, report)
    return report


def _validate_one(path: Path, report: ValidationReport) -> tuple[Columns | None, int]:
    """Add the problems of one file to ``report``; return its valid records and record count."""
    data = read_annotation_file(path)
    file = str(path)
    if problem := utf16_problem(file, data):
        report.add(problem)
        return None, 0
    if data.startswith(b"\xef\xbb\xbf"):
        report.add(
            Problem(
                file,
                "utf8_bom",
                "the file starts with a UTF-8 byte-order mark; LAVIS's json.load "
                "fails on it ('Unexpected UTF-8 BOM').",
                "save the file as UTF-8 without BOM (or run with --fix).",
            )
        )
        data = data[3:]
    with gc_paused():
        if cols := decode_clean(data):
            set_problems(file, cols, report)
            label_problems(file, cols, [], report)
            return cols, len(cols)
        # msgspec rejects NaN/Infinity, lone surrogates and invalid JSON: the reference path
        raws = split_records(data)
        if raws is not None:
            return _validate_records(file, data, raws, report)
    return _validate_reference(file, data, report)


def _validate_records(
    file: str, data: bytes, raws: list[Any], report: ValidationReport
) -> tuple[Columns | None, int]:
    """Record by record: msgspec where it accepts the record, pydantic where it does not."""
    n = len(raws)
    if not n:
        report.add(empty_problem(file))
        return Columns.empty(), 0
    cols = Columns.empty()
    other_firsts: list[str] = []
    shared: dict[str, str] = {}
    for i in range(n):
        raw = raws[i]
        rec = decode_record(raw)
        if rec is not None:
            # one string object per distinct label, question and image (as on the fast path)
            first = shared.setdefault(rec.first, rec.first)
            image = shared.setdefault(rec.image, rec.image)
            text = shared.setdefault(rec.text_input, rec.text_input)
            cols.append(i, rec.instance_id, image, text, rec.answer, first)
            continue
        try:
            value = _decode_one(raw)
        except UnicodeDecodeError:
            report.add(utf8_problem(file, data))
            return None, 0
        except RecursionError:  # split_records already parsed it; be safe
            report.add(nesting_problem(file, data))
            return None, 0
        except ValueError as exc:  # e.g. an integer of thousands of digits
            key = huge_int_key(raw)
            report.add(
                Problem(
                    file,
                    "unreadable_value",
                    f"a value cannot be read ({exc}).",
                    f"write {key or 'the value'} as a short integer or a string.",
                    index=i,
                    field=key,
                )
            )
            return None, 0
        # msgspec split the file, so it holds no lone surrogate
        _add_record(file, i, value, cols, other_firsts, report, surrogates_possible=False)
        raws[i] = None  # free the slice's reference as we go
    set_problems(file, cols, report)
    label_problems(file, cols, other_firsts, report)
    return cols, n


def _decode_one(raw: Any) -> Any:
    """One record as plain Python values (msgspec in C; json for what it cannot hold)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return json.loads(bytes(raw))


def _add_record(
    file: str,
    index: int,
    value: Any,
    cols: Columns,
    other_firsts: list[str],
    report: ValidationReport,
    surrogates_possible: bool = True,
) -> None:
    rec_problems = record_problems(file, index, value, surrogates_possible)
    report.extend(rec_problems)
    if not any(p.severity == "error" for p in rec_problems):
        value = with_contract_keys(value)  # LAVIS's coco-vqa keys stand in for ours
        cols.append(
            index, value["instance_id"], value["image"], value["text_input"], value["answer"]
        )
    elif first := first_answer(value):
        other_firsts.append(first)


def _validate_reference(
    file: str, data: bytes, report: ValidationReport
) -> tuple[Columns | None, int]:
    """The whole file through ``json.loads``: for what msgspec cannot even split."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        report.add(utf8_problem(file, data))
        return None, 0
    try:
        raw = json.loads(text, parse_constant=NonFinite)
    except json.JSONDecodeError as exc:
        report.add(jsonl_problem(file, text, exc) or json_problem(file, text, exc))
        return None, 0
    except RecursionError:
        report.add(nesting_problem(file, data))
        return None, 0
    del text
    if not isinstance(raw, list):
        report.add(
            Problem(
                file,
                "not_a_list",
                f"the top level is a JSON {json_type(raw)}; LAVIS expects an array of records.",
                'wrap the records in [ ... ] (a list of {"instance_id", "image", '
                '"text_input", "answer"} objects).',
            )
        )
        return None, 0
    if not raw:
        report.add(empty_problem(file))
        return Columns.empty(), 0
    cols = Columns.empty()
    other_firsts: list[str] = []
    n = len(raw)
    for i in range(n):
        _add_record(file, i, raw[i], cols, other_firsts, report)
        raw[i] = None
    set_problems(file, cols, report)
    label_problems(file, cols, other_firsts, report)
    return cols, n
