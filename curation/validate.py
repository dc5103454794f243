"""Validate LAVIS VQA annotation files against the contract, in one pass.

A clean file takes the fast path (``curation._fastpath``: decoded and
type-checked in C). A file with any problem falls back to ``json.loads`` and
the pydantic model, which locate each problem precisely. Every problem is collected; nothing stops at
the first one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from curation._fastpath import Columns, decode_clean, gc_paused
from curation.errors import DataError, UsageError
from curation.images import check_images
from curation.report import Problem, ValidationReport
from curation.schemas.annotation import KEY_ALIASES, VQARecord, image_path_problem

_RECORDS = TypeAdapter(list[VQARecord])
CONTRACT_KEYS = ("instance_id", "image", "text_input", "answer")
#: One answer above this share of a yes/no set makes the model learn to always say it.
BALANCE_LIMIT = 0.90


class _NonFinite(float):
    """Marks a NaN/Infinity token so the record holding it can be named."""

    token: str

    def __new__(cls, token: str) -> _NonFinite:
        obj = super().__new__(cls, float(token.replace("Infinity", "inf")))
        obj.token = token
        return obj


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
    for path in paths:
        cols, n_records, problems = _validate_one(Path(path))
        report.files.append(str(path))
        report.problems.extend(problems)
        report.records += n_records
        if cols and check_image_files:
            root = Path(image_root) if image_root is not None else Path(path).parent
            if not root.is_dir():
                raise UsageError(f"image root is not a folder: {root}. Fix: pass --image-root DIR")
            checked, image_problems = _check_images(Path(path), cols, root, workers)
            report.images_checked += checked
            report.problems.extend(image_problems)
    return report


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Load a contract-valid annotation file as plain dicts, or raise ``DataError``.

    For library callers (export, mix) that need records, not a report.
    """
    data = _read(Path(path))
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
    return [r.model_dump() for r in records]


def _read(path: Path) -> bytes:
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; pass an annotation JSON file")
    return path.read_bytes()


def _validate_one(path: Path) -> tuple[Columns | None, int, list[Problem]]:
    """Return the valid records, the number of records, and the problems of one file."""
    data = _read(path)
    file = str(path)
    problems: list[Problem] = []
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append(
            Problem(
                file,
                "utf8_bom",
                "the file starts with a UTF-8 byte-order mark; LAVIS's json.load "
                "fails on it ('Unexpected UTF-8 BOM').",
                "save the file as UTF-8 without BOM (or run with --fix).",
            )
        )
        data = data[3:]
    # msgspec rejects NaN/Infinity and invalid UTF-8, so such files take the slow path
    with gc_paused():
        if not problems and (cols := decode_clean(data)):
            problems.extend(_set_problems(file, cols))
            problems.extend(_balance_problems(file, list(map(itemgetter(0), cols.answer))))
            return cols, len(cols), problems

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(
                file,
                "not_utf8",
                f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}).",
                "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).",
            )
        )
        return None, 0, problems

    # Slow path: locate every problem precisely.
    try:
        raw = json.loads(text, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        problems.append(_json_problem(file, text, exc))
        return None, 0, problems
    if not isinstance(raw, list):
        problems.append(
            Problem(
                file,
                "not_a_list",
                f"the top level is a JSON {_json_type(raw)}; LAVIS expects an array of records.",
                'wrap the records in [ ... ] (a list of {"instance_id", "image", '
                '"text_input", "answer"} objects).',
            )
        )
        return None, 0, problems
    if not raw:
        problems.append(_empty_problem(file))
        return [], 0, problems

    cols = Columns([], [], [], [], [])
    for i, rec in enumerate(raw):
        rec_problems = _record_problems(file, i, rec)
        problems.extend(rec_problems)
        if not any(p.severity == "error" for p in rec_problems):
            cols.index.append(i)
            cols.instance_id.append(rec["instance_id"])
            cols.image.append(rec["image"])
            cols.text_input.append(rec["text_input"])
            cols.answer.append(rec["answer"])
    problems.extend(_set_problems(file, cols))
    problems.extend(_balance_problems(file, [a for rec in raw if (a := _first_answer(rec))]))
    return cols, len(raw), problems


def _first_answer(rec: Any) -> str | None:
    answer = rec.get("answer") if isinstance(rec, dict) else None
    if isinstance(answer, list) and answer:
        answer = answer[0]
    return answer if isinstance(answer, str) else None


def _empty_problem(file: str) -> Problem:
    return Problem(
        file,
        "empty_file",
        "the file holds an empty list: no records to train on.",
        "add records, or point at the right file.",
    )


def _json_type(value: Any) -> str:
    return {dict: "object", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _json_problem(file: str, text: str, exc: json.JSONDecodeError) -> Problem:
    before = text[: exc.pos].rstrip()
    if before.endswith(","):
        comma_line = before.count("\n") + 1
        hint = f" There is a trailing comma on line {comma_line}."
        fix = f"remove the comma at the end of line {comma_line}; JSON allows no trailing commas."
    else:
        hint, fix = "", "fix the JSON syntax at that position (a JSON linter shows it)."
    return Problem(
        file,
        "invalid_json",
        f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}.{hint}",
        fix,
    )


def _find_nonfinite(value: Any) -> str | None:
    if isinstance(value, _NonFinite):
        return value.token
    if isinstance(value, list):
        return next((t for v in value if (t := _find_nonfinite(v))), None)
    if isinstance(value, dict):
        return next((t for v in value.values() if (t := _find_nonfinite(v))), None)
    return None


def _record_problems(file: str, index: int, rec: Any) -> list[Problem]:
    if not isinstance(rec, dict):
        return [
            Problem(
                file,
                "record_not_object",
                f"the record is a JSON {_json_type(rec)}, not an object.",
                'make each record an object: {"instance_id": 1, "image": "1.jpg", '
                '"text_input": "...", "answer": ["yes"]}.',
                index=index,
            )
        ]
    rid = rec.get("instance_id")
    rid = rid if isinstance(rid, int | str) and not isinstance(rid, bool) else None
    problems: list[Problem] = []
    for key, value in rec.items():
        if token := _find_nonfinite(value):
            problems.append(
                Problem(
                    file,
                    "nonfinite_number",
                    f"{token} is not valid JSON (Python writes it, other readers reject it).",
                    "write null or a real number.",
                    index=index,
                    instance_id=rid,
                    field=key,
                )
            )
    try:
        model = VQARecord.model_validate(rec)
    except ValidationError as exc:
        problems.extend(_map_errors(file, index, rid, rec, exc.errors(include_url=False)))
    else:
        if model.__pydantic_extra__:
            problems.extend(_extra_key_warnings(file, index, rid, model.__pydantic_extra__))
    return problems


def _map_errors(
    file: str, index: int, rid: Any, rec: dict, errors: Iterable[dict]
) -> list[Problem]:
    problems: list[Problem] = []
    wrong_keys_reported: set[str] = set()
    for err in errors:
        loc, etype, value = err["loc"], err["type"], err.get("input")
        fname = str(loc[0]) if loc else None
        where = ".".join(str(p) for p in loc)
        kw = {"index": index, "instance_id": rid, "field": where or None}
        if etype == "missing" and fname:
            found = [k for k in rec if KEY_ALIASES.get(k) == fname]
            if found:
                wrong_keys_reported.update(found)
                problems.append(
                    Problem(
                        file,
                        "wrong_key",
                        f"missing; the record has '{found[0]}', but LAVIS's builder reads '{fname}'.",
                        f"rename '{found[0]}' to '{fname}' (or run with --fix).",
                        **kw,
                    )
                )
            else:
                problems.append(
                    Problem(
                        file,
                        "missing_key",
                        "missing.",
                        f"add '{fname}' (the contract's keys: {', '.join(CONTRACT_KEYS)}).",
                        **kw,
                    )
                )
        elif fname == "answer" and len(loc) == 1 and isinstance(value, str):
            problems.append(
                Problem(
                    file,
                    "answer_is_string",
                    f'got the string "{value}"; LAVIS iterates it as '
                    f"{','.join(json.dumps(c) for c in value[:3])}{',...' if len(value) > 3 else ''} "
                    "and training crashes with RuntimeError: shape '[..., -1, 32, 64]' is invalid.",
                    f'"answer": [{json.dumps(value)}] (or run with --fix).',
                    **kw,
                )
            )
        elif etype in ("string_too_short", "string_pattern_mismatch", "too_short"):
            problems.append(
                Problem(
                    file,
                    "empty_value",
                    "is empty or blank.",
                    "give a non-empty value"
                    + (" (at least one answer)." if fname == "answer" else "."),
                    **kw,
                )
            )
        elif fname == "image" and etype == "value_error":
            problems.append(
                Problem(
                    file,
                    "bad_image_path",
                    f"{json.dumps(value)}: {err['msg'].removeprefix('Value error, ')}.",
                    'use a path relative to --image-root with forward slashes, e.g. "fall/1.jpg" '
                    "(--fix turns backslashes into slashes).",
                    **kw,
                )
            )
        else:
            expected = {
                "instance_id": "an int or a non-empty string",
                "answer": "a list of strings",
            }
            fix = f"make it {expected.get(fname or '', 'a non-empty string')}."
            problems.append(
                Problem(
                    file,
                    f"bad_{etype}",
                    f"{err['msg']} (got {json.dumps(value, default=str)[:60]}).",
                    fix,
                    **kw,
                )
            )
    extras = {k: rec[k] for k in rec if k not in CONTRACT_KEYS and k not in wrong_keys_reported}
    problems.extend(_extra_key_warnings(file, index, rid, extras))
    return problems


def _extra_key_warnings(file: str, index: int, rid: Any, extras: dict) -> list[Problem]:
    out = []
    for key in extras:
        target = KEY_ALIASES.get(key)
        if target:
            msg = f"unknown key '{key}' (LAVIS ignores it); did you mean '{target}'?"
            fix = f"rename it to '{target}' or remove it."
        else:
            msg = f"unknown key '{key}' (LAVIS ignores it)."
            fix = "remove it, or keep it if your own tools read it."
        out.append(Problem(file, "unknown_key", msg, fix, "warning", index, rid, key))
    return out


def _set_problems(file: str, cols: Columns) -> list[Problem]:
    """Duplicate ids, duplicate records and conflicting answers across the file."""
    problems: list[Problem] = []
    ids = cols.instance_id
    # C-speed filters first; the per-record loops run only where they tripped
    if len(set(ids)) != len(ids) or (set(map(type, ids)) == {int, str}):
        first_by_id: dict[str, int] = {}
        for i, rid in zip(cols.index, ids, strict=True):
            first = first_by_id.setdefault(str(rid), i)
            if first != i:
                problems.append(
                    Problem(
                        file,
                        "duplicate_id",
                        f"instance_id {rid!r} is also record #{first}.",
                        "give every record a unique instance_id.",
                        index=i,
                        instance_id=rid,
                        field="instance_id",
                    )
                )
    questions = map(str.casefold, map(str.strip, cols.text_input))
    pairs = list(zip(cols.image, questions, strict=True))
    if len(set(pairs)) == len(pairs):
        return problems
    counts = Counter(pairs)
    repeated = [counts[p] > 1 for p in pairs]
    first_by_pair: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for i, rid, pair, answer in zip(
        compress(cols.index, repeated),
        compress(ids, repeated),
        compress(pairs, repeated),
        compress(cols.answer, repeated),
        strict=True,
    ):
        twin, twin_answer = first_by_pair.setdefault(pair, (i, answer))
        if twin == i:
            continue
        if answer == twin_answer:
            problems.append(
                Problem(
                    file,
                    "duplicate_record",
                    f"same image, question and answer as record #{twin}.",
                    "drop the copy (--fix does).",
                    "warning",
                    i,
                    rid,
                )
            )
        elif set(answer) != set(twin_answer):
            problems.append(
                Problem(
                    file,
                    "conflicting_answers",
                    f"same image and question as record #{twin} but answer {answer} vs "
                    f"{twin_answer}.",
                    "decide the right label and keep one record.",
                    index=i,
                    instance_id=rid,
                    field="answer",
                )
            )
    return problems


def _balance_problems(file: str, first_answers: list[str]) -> list[Problem]:
    counts: Counter[str] = Counter()
    for answer, n in Counter(first_answers).items():
        if (key := answer.strip().lower()) in ("yes", "no"):
            counts[key] += n
    total = sum(counts.values())
    if total < 2:
        return []
    answer, n = counts.most_common(1)[0]
    share = n / total
    if share <= BALANCE_LIMIT:
        return []
    return [
        Problem(
            file,
            "unbalanced_answers",
            f'{share:.0%} of the {total} yes/no records answer "{answer}"; the model will learn '
            f'to always say "{answer}".',
            "add negatives and general VQA data: curate mix --vqav2-ratio 0.7 --yes-share 0.5.",
            "warning",
            field="answer",
        )
    ]


def _check_images(
    path: Path, cols: Columns, root: Path, workers: int | None
) -> tuple[int, list[Problem]]:
    first: dict[str, int] = {}
    for pos, rel in enumerate(cols.image):
        if rel not in first and image_path_problem(rel) is None:
            first[rel] = pos
    results = check_images((root / rel for rel in first), workers)
    problems = []
    for rel, pos in first.items():
        issue = results[root / rel]
        if issue is not None:
            problems.append(
                Problem(
                    str(path),
                    issue.code,
                    issue.message,
                    issue.fix,
                    issue.severity,  # type: ignore[arg-type]
                    cols.index[pos],
                    cols.instance_id[pos],
                    "image",
                )
            )
    return len(first), problems


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
    import shlex

    report = validate_files([path], image_root=image_root, check_image_files=check_image_files)
    if report.ok:
        return report
    errors = report.errors
    lines = "\n  ".join(p.render() for p in errors[:shown])
    more = f"\n  ... and {len(errors) - shown} more" if len(errors) > shown else ""
    command = f"curate validate {shlex.quote(str(path))}"
    if image_root is not None:
        command += f" --image-root {shlex.quote(str(image_root))}"
    raise DataError(
        f"{path}{hint} has {len(errors)} error(s); {action}:\n  {lines}{more}\n"
        f"  (run {command} --fix FIXED.json to write a corrected copy)"
    )
