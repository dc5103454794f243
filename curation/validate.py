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
import posixpath
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
from pydantic import TypeAdapter, ValidationError

from curation._fastpath import Columns, decode_clean, decode_record, gc_paused, split_records
from curation._io import read_user_file, shell_quote
from curation.answers import canonical_label, yes_no
from curation.errors import DataError, UsageError
from curation.images import (
    default_image_root,
    escapes_root,
    fingerprint_images,
    name_form_mismatch,
)
from curation.report import Problem, ValidationReport
from curation.schemas.annotation import (
    KEY_ALIASES,
    LAVIS_COCO_KEYS,
    VQARecord,
    builders_reading,
    has_lone_surrogate,
    image_path_problem,
    with_contract_keys,
)
from curation.schemas.questions import same_question_key

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
            checked, sha_by_image = _check_images(path, cols, root, workers, report)
            report.images_checked += checked
            _content_conflicts(str(path), cols, sha_by_image, report)
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
    # unset: a record without question/question_id gets no None for them
    return [r.model_dump(exclude_unset=True) for r in records]


def _read(path: Path) -> bytes:
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; pass an annotation JSON file")
    return read_user_file(path, "annotation file", "Fix: pass an annotation JSON file.")


def _validate_one(path: Path, report: ValidationReport) -> tuple[Columns | None, int]:
    """Add the problems of one file to ``report``; return its valid records and record count."""
    data = _read(path)
    file = str(path)
    if problem := _utf16_problem(file, data):
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
            _set_problems(file, cols, report)
            _label_problems(file, cols, [], report)
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
        report.add(_empty_problem(file))
        return Columns.empty(), 0
    cols = Columns.empty()
    other_firsts: list[str] = []
    shared: dict[str, str] = {}
    for i in range(n):
        raw = raws[i]
        checked = decode_record(raw)
        if checked is not None:
            rec, first = checked
            # one string object per distinct label, question and image (as on the fast path)
            first = shared.setdefault(first, first)
            image = shared.setdefault(rec.image, rec.image)
            text = shared.setdefault(rec.text_input, rec.text_input)
            cols.append(i, rec.instance_id, image, text, rec.answer, first)
            continue
        try:
            value = _decode_one(raw)
        except UnicodeDecodeError:
            report.add(_utf8_problem(file, data))
            return None, 0
        except RecursionError:  # split_records already parsed it; be safe
            report.add(_nesting_problem(file, data))
            return None, 0
        except ValueError as exc:  # e.g. an integer of thousands of digits
            key = _huge_int_key(raw)
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
    _set_problems(file, cols, report)
    _label_problems(file, cols, other_firsts, report)
    return cols, n


class _LongInt:
    """A JSON integer too long for Python to read (its place is what we want)."""


def _huge_int_key(raw: Any) -> str | None:
    """The key (``subject``, ``answer[0]``...) of the first over-long integer of a record."""

    def read(digits: str) -> object:
        return _LongInt() if len(digits) > 4000 else 0

    try:
        value = json.loads(bytes(raw), parse_int=read)
    except (ValueError, RecursionError):
        return None

    def find(node: Any, at: str) -> str | None:
        if isinstance(node, _LongInt):
            return at
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for k, v in items:
            where = find(v, f"{at}[{k}]" if isinstance(k, int) else (f"{at}.{k}" if at else k))
            if where:
                return where
        return None

    return find(value, "")


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
    rec_problems = _record_problems(file, index, value, surrogates_possible)
    report.extend(rec_problems)
    if not any(p.severity == "error" for p in rec_problems):
        value = with_contract_keys(value)  # LAVIS's coco-vqa keys stand in for ours
        cols.append(
            index, value["instance_id"], value["image"], value["text_input"], value["answer"]
        )
    elif first := _first_answer(value):
        other_firsts.append(first)


def _validate_reference(
    file: str, data: bytes, report: ValidationReport
) -> tuple[Columns | None, int]:
    """The whole file through ``json.loads``: for what msgspec cannot even split."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        report.add(_utf8_problem(file, data))
        return None, 0
    try:
        raw = json.loads(text, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        report.add(_jsonl_problem(file, text, exc) or _json_problem(file, text, exc))
        return None, 0
    except RecursionError:
        report.add(_nesting_problem(file, data))
        return None, 0
    del text
    if not isinstance(raw, list):
        report.add(
            Problem(
                file,
                "not_a_list",
                f"the top level is a JSON {_json_type(raw)}; LAVIS expects an array of records.",
                'wrap the records in [ ... ] (a list of {"instance_id", "image", '
                '"text_input", "answer"} objects).',
            )
        )
        return None, 0
    if not raw:
        report.add(_empty_problem(file))
        return Columns.empty(), 0
    cols = Columns.empty()
    other_firsts: list[str] = []
    n = len(raw)
    for i in range(n):
        _add_record(file, i, raw[i], cols, other_firsts, report)
        raw[i] = None
    _set_problems(file, cols, report)
    _label_problems(file, cols, other_firsts, report)
    return cols, n


def _utf16_problem(file: str, data: bytes) -> Problem | None:
    head = data[:2]
    if head in (b"\xff\xfe", b"\xfe\xff") or (len(head) == 2 and b"\x00" in head):
        return Problem(
            file,
            "utf16",
            "the file is UTF-16 encoded (Windows tools write it: PowerShell's Out-File, "
            "Notepad's 'Unicode'); LAVIS's json.load reads UTF-8.",
            "convert it: iconv -f UTF-16 -t UTF-8 in.json > out.json "
            "(or save it as UTF-8 in your editor).",
        )
    return None


def _utf8_problem(file: str, data: bytes) -> Problem:
    try:
        data.decode("utf-8")
        start, byte = 0, 0
    except UnicodeDecodeError as exc:
        start, byte = exc.start, data[exc.start]
    line = data[:start].count(b"\n") + 1
    return Problem(
        file,
        "not_utf8",
        f"not UTF-8: byte 0x{byte:02x} at offset {start} (line {line}).",
        "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).",
    )


#: Deeper than this is reported (Python's json module gives up near 1,000 levels).
_MAX_DEPTH = 200
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_problem(file: str, data: bytes) -> Problem:
    depth, line = 0, 0
    for m in _JSON_TOKENS.finditer(data):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > _MAX_DEPTH:
                line = data.count(b"\n", 0, m.start()) + 1
                break
        elif c in (b"]", b"}"):
            depth -= 1
    where = f" (line {line})" if line else ""
    return Problem(
        file,
        "too_deeply_nested",
        f"a value is nested more than {_MAX_DEPTH} levels deep{where}; Python's json.load "
        "gives up at about 1,000 levels, so LAVIS cannot load the file.",
        "flatten or remove that value: a record holds only strings, an int id and a list "
        "of strings.",
    )


def _jsonl_problem(file: str, text: str, exc: json.JSONDecodeError) -> Problem | None:
    if exc.msg != "Extra data":
        return None
    first = text.lstrip().split("\n", 1)[0]
    try:
        if not isinstance(json.loads(first), dict):
            return None
    except (ValueError, RecursionError):
        return None
    return Problem(
        file,
        "json_lines",
        "the file is JSON Lines (one JSON object per line); LAVIS reads one JSON array of records.",
        'convert it: jq -s . in.jsonl > out.json (or python -c "import json,sys; '
        'print(json.dumps([json.loads(l) for l in open(sys.argv[1]) if l.strip()]))" '
        "in.jsonl > out.json).",
    )


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


def _record_problems(
    file: str, index: int, rec: Any, surrogates_possible: bool = True
) -> list[Problem]:
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
    rid = with_contract_keys(rec).get("instance_id")
    rid = rid if isinstance(rid, int | str) and not isinstance(rid, bool) else None
    if surrogates_possible and (surrogates := _surrogate_problems(file, index, rid, rec)):
        return surrogates  # the model cannot even read such strings: report them alone
    problems: list[Problem] = []
    for key, value in rec.items():
        try:
            token = _find_nonfinite(value)
        except RecursionError:
            return [_nested_value_problem(file, index, rid, key)]
        if token:
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
    except RecursionError:
        return [_nested_value_problem(file, index, rid, None)]
    else:
        if model.__pydantic_extra__:
            problems.extend(_extra_key_warnings(file, index, rid, model.__pydantic_extra__))
        if model.question is not None and model.question != model.text_input:
            problems.append(_two_questions_problem(file, index, rid))
    return problems


def _two_questions_problem(file: str, index: int, rid: Any) -> Problem:
    return Problem(
        file,
        "two_questions",
        f"'question' and 'text_input' differ: {builders_reading('text_input')}, so the "
        "two would train on different questions.",
        "make them the same (or keep one of the two keys).",
        "warning",
        index,
        rid,
        "question",
    )


def _nested_value_problem(file: str, index: int, rid: Any, key: str | None) -> Problem:
    return Problem(
        file,
        "too_deeply_nested",
        "a value is nested too deep to check.",
        "flatten or remove it: a record holds only strings, an int id and a list of strings.",
        index=index,
        instance_id=rid,
        field=key,
    )


def _surrogate_problems(file: str, index: int, rid: Any, rec: dict) -> list[Problem]:
    """Lone surrogates ("\\ud800") in a key, a string value or an answer."""
    problems = []
    rid = None if isinstance(rid, str) and has_lone_surrogate(rid) else rid
    for key, value in rec.items():
        values = value if isinstance(value, list) else [value]
        if has_lone_surrogate(key) or any(
            isinstance(v, str) and has_lone_surrogate(v) for v in values
        ):
            where = "the key" if has_lone_surrogate(key) else "the value"
            problems.append(
                Problem(
                    file,
                    "lone_surrogate",
                    f"{where} holds a lone surrogate (a JSON escape like \\ud800 with no "
                    "partner): not valid Unicode, so it cannot be written as UTF-8 or used "
                    "as a file name.",
                    "remove the escape, or write the character it was meant to be.",
                    index=index,
                    instance_id=rid,
                    field=key,
                )
            )
    return problems


def _map_errors(
    file: str, index: int, rid: Any, rec: dict, errors: Iterable[dict]
) -> list[Problem]:
    problems: list[Problem] = []
    wrong_keys_reported: set[str] = set()
    ids_reported: set[str] = set()
    # a key the record lacks was filled from LAVIS's coco-vqa key: that key's own error says it
    filled = {
        k for k, theirs in LAVIS_COCO_KEYS.items() if k not in rec and rec.get(theirs) is not None
    }
    for err in errors:
        loc, etype, value = err["loc"], err["type"], err.get("input")
        fname = str(loc[0]) if loc else None
        if fname in filled:
            continue
        where = ".".join(str(p) for p in loc)
        kw = {"index": index, "instance_id": rid, "field": where or None}
        if fname in ("instance_id", "question_id") and len(loc) > 1 and isinstance(value, str):
            if loc[1] in ("int", "none"):
                continue  # a string id: only the string branch's complaint matters
            kw["field"] = fname
            where = fname
        if fname in ("instance_id", "question_id") and len(loc) > 1 and not isinstance(value, str):
            # one problem for the union (int | string), not one per branch
            if fname in ids_reported:
                continue
            ids_reported.add(fname)
            kind = _json_type(value)
            kind = "a boolean" if isinstance(value, bool) else f"a {kind}"
            if isinstance(value, float):
                kind = "a number with a fraction"
            problems.append(
                Problem(
                    file,
                    "bad_instance_id",
                    f"got {json.dumps(value, default=str)[:60]} ({kind}); an id must be an int "
                    "or a non-empty string.",
                    'make it an int (1) or a non-empty string ("1").',
                    index=index,
                    instance_id=rid,
                    field=fname,
                )
            )
        elif etype == "missing" and fname:
            found = [k for k in rec if KEY_ALIASES.get(k) == fname]
            if found:
                wrong_keys_reported.update(found)
                problems.append(
                    Problem(
                        file,
                        "wrong_key",
                        f"missing; the record has '{found[0]}', which no builder reads: "
                        f"{builders_reading(fname)}.",
                        f"rename '{found[0]}' to '{fname}' (or run with --fix).",
                        **kw,
                    )
                )
            else:
                problems.append(
                    Problem(
                        file,
                        "missing_key",
                        f"missing ({builders_reading(fname)}).",
                        f"add '{fname}' (the contract's keys: {', '.join(CONTRACT_KEYS)}"
                        + (
                            f"; LAVIS's coco-vqa format has '{LAVIS_COCO_KEYS[fname]}' instead"
                            if fname in LAVIS_COCO_KEYS
                            else ""
                        )
                        + ").",
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
    extras = {
        k: rec[k] for k in rec if k not in VQARecord.model_fields and k not in wrong_keys_reported
    }
    problems.extend(_extra_key_warnings(file, index, rid, extras))
    return problems


def _extra_key_warnings(file: str, index: int, rid: Any, extras: dict) -> list[Problem]:
    from curation.record_types import FRAME_METADATA

    out = []
    for key in extras:
        if key in FRAME_METADATA:  # subject, video, negative_kind...: export and mix read them
            continue
        target = KEY_ALIASES.get(key)
        if target:
            msg = f"unknown key '{key}' (LAVIS ignores it); did you mean '{target}'?"
            fix = f"rename it to '{target}' or remove it."
        else:
            msg = f"unknown key '{key}' (LAVIS ignores it)."
            fix = "remove it, or keep it if your own tools read it."
        out.append(Problem(file, "unknown_key", msg, fix, "warning", index, rid, key))
    return out


def normalized_image(path: str) -> str:
    """An image path as the file system reads it: "./a.png" and "a//b.png" are one file."""
    return posixpath.normpath(path) if ("./" in path or "//" in path) else path


def _question_keys(questions: list[str]) -> list[str]:
    """Each question's comparison key; the task question's paraphrases share one key."""
    keys = {q: same_question_key(q) for q in set(questions)}
    return list(map(keys.__getitem__, questions))


def _set_problems(file: str, cols: Columns, report: ValidationReport) -> None:
    """Duplicate ids, duplicate records and conflicting answers across the file."""
    ids = cols.instance_id
    # C-speed filters first; the per-record loops run only where they tripped
    if len(set(ids)) != len(ids) or (set(map(type, ids)) == {int, str}):
        first_by_id: dict[str, int] = {}
        for i, rid in zip(cols.index, ids, strict=True):
            first = first_by_id.setdefault(str(rid), i)
            if first != i:
                report.add(
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
    images = cols.image
    joined = "\n".join(images)
    if "./" in joined or "//" in joined:  # only then can two spellings name one file
        images = list(map(normalized_image, images))
    del joined
    _pair_problems(file, cols, images, _question_keys(cols.text_input), report, same_path=True)


def _pair_problems(
    file: str,
    cols: Columns,
    firsts: list[Any],
    seconds: list[str],
    report: ValidationReport,
    same_path: bool,
) -> None:
    """Records that share a key (image + question): duplicates, case-only and real conflicts."""
    # hashes first (no tuple kept per record): exact pairs only where a hash repeats
    hashes = list(map(hash, zip(firsts, seconds, strict=True)))
    if len(set(hashes)) == len(hashes):
        return
    counts = Counter(hashes)
    positions = [k for k, h in enumerate(hashes) if counts[h] > 1]
    del hashes, counts
    first_by_pair: dict[Any, tuple[int, list[str], str]] = {}
    for k in positions:
        i, rid, pair = cols.index[k], cols.instance_id[k], (firsts[k], seconds[k])
        answer, image = cols.answer[k], cols.image[k]
        twin, twin_answer, twin_image = first_by_pair.setdefault(pair, (i, answer, image))
        if twin == i:
            continue
        if not same_path:
            if normalized_image(image) == normalized_image(twin_image):
                continue  # reported by the path comparison already
            if set(answer) != set(twin_answer) and yes_no(answer) != yes_no(twin_answer):
                report.add(
                    Problem(
                        file,
                        "conflicting_answers",
                        f"conflicting answers: same image content as record #{twin} (identical files "
                        f"{json.dumps(image)} and {json.dumps(twin_image)}) and the same "
                        f"question, but answer {answer} vs {twin_answer}.",
                        "decide the right label and keep one record.",
                        index=i,
                        instance_id=rid,
                        field="answer",
                    )
                )
            continue
        if answer == twin_answer:
            report.add(
                Problem(
                    file,
                    "duplicate_record",
                    f"same image, question and answer as record #{twin}.",
                    "drop the copy (--fix drops the later one).",
                    "warning",
                    i,
                    rid,
                )
            )
        elif [a.casefold() for a in answer] == [a.casefold() for a in twin_answer]:
            report.add(
                Problem(
                    file,
                    "answer_case",
                    f"same image and question as record #{twin}; only the case differs "
                    f"({answer} vs {twin_answer}).",
                    'write labels one way, e.g. lower-case "yes"/"no" (--fix does for yes/no), '
                    "and keep one record.",
                    "warning",
                    i,
                    rid,
                    "answer",
                )
            )
        elif set(answer) != set(twin_answer):
            same = yes_no(answer) == yes_no(twin_answer) != "other"
            report.add(
                Problem(
                    file,
                    "answer_spelling" if same else "conflicting_answers",
                    ("" if same else "conflicting answers: ")
                    + f"same image and question as record #{twin} but answer {answer} vs "
                    f"{twin_answer}" + ("; both mean the same yes/no label." if same else "."),
                    'write the label one way ("yes"/"no"; --fix does) and keep one record.'
                    if same
                    else "decide the right label and keep one record.",
                    "warning" if same else "error",
                    i,
                    rid,
                    "answer",
                )
            )


def _content_conflicts(
    file: str, cols: Columns, sha_by_image: dict[str, str], report: ValidationReport
) -> None:
    """Conflicting answers between byte-identical image files under different names."""
    if len(set(sha_by_image.values())) == len(sha_by_image):
        return
    keep = [k for k, image in enumerate(cols.image) if sha_by_image.get(image)]
    sub = Columns.empty()
    for k in keep:
        sub.append(
            cols.index[k], cols.instance_id[k], cols.image[k], cols.text_input[k], cols.answer[k]
        )
    shas = list(map(sha_by_image.__getitem__, sub.image))
    _pair_problems(file, sub, shas, _question_keys(sub.text_input), report, same_path=False)


def _label_problems(
    file: str, cols: Columns, other_firsts: list[str], report: ValidationReport
) -> None:
    """The yes/no balance (by the one answer rule) and labels written other than "yes"/"no"."""
    firsts = Counter(cols.first_answer)
    firsts.update(other_firsts)
    label_of = {a: yes_no(a) for a in firsts}
    odd = {a: c for a in firsts if (c := canonical_label(a))}
    if odd:
        for i, rid, first in zip(cols.index, cols.instance_id, cols.first_answer, strict=True):
            if first in odd:
                report.add(
                    Problem(
                        file,
                        "noncanonical_label",
                        f'{json.dumps(first)} counts as "{odd[first]}" in eval but is '
                        f"not a canonical yes/no label; the model learns to generate it as "
                        "written.",
                        f'write "{odd[first]}" (--fix rewrites it).',
                        "warning",
                        i,
                        rid,
                        "answer",
                    )
                )
    counts: Counter[str] = Counter()
    for answer, n in firsts.items():
        if (label := label_of[answer]) != "other":
            counts[label] += n
    total = sum(counts.values())
    if total < 2:
        return
    answer, n = counts.most_common(1)[0]
    share = n / total
    if share <= BALANCE_LIMIT:
        return
    report.add(
        Problem(
            file,
            "unbalanced_answers",
            f'{share:.0%} of the {total} yes/no records answer "{answer}"; the model will learn '
            f'to always say "{answer}".',
            "add negatives and general VQA data: curate mix --vqav2-ratio 0.7 --yes-share 0.5.",
            "warning",
            field="answer",
        )
    )


def _check_images(
    path: Path, cols: Columns, root: Path, workers: int | None, report: ValidationReport
) -> tuple[int, dict[str, str]]:
    """Open each distinct image once; return how many, and each image's sha256."""
    first: dict[str, int] = {}
    for pos, rel in enumerate(cols.image):
        if rel not in first and image_path_problem(rel) is None:
            first[rel] = pos
    file = str(path)

    def add(pos: int, code: str, message: str, fix: str, severity: str = "error") -> None:
        report.add(
            Problem(
                file,
                code,
                message,
                fix,
                severity,  # type: ignore[arg-type]
                cols.index[pos],
                cols.instance_id[pos],
                "image",
            )
        )

    inside: dict[str, int] = {}
    for rel, pos in first.items():
        target = escapes_root(root, root / rel)
        if target is None:
            inside[rel] = pos
            continue
        add(
            pos,
            "image_outside_root",
            f"{json.dumps(rel)} is a link to {target}, outside the image root {root}; "
            "it was not opened.",
            "copy the file into the image root (or pass --image-root a folder that holds it).",
        )
    scans = fingerprint_images((root / rel for rel in inside), workers)
    sha_by_image: dict[str, str] = {}
    for rel, pos in inside.items():
        scan = scans[root / rel]
        if scan.sha256:
            sha_by_image[rel] = scan.sha256
        issue = scan.issue
        if issue is None:
            continue
        if issue.code == "image_missing" and (on_disk := name_form_mismatch(root / rel)):
            form = "NFC" if unicodedata.is_normalized("NFC", rel) else "NFD"
            disk = "NFD" if form == "NFC" else "NFC"
            add(
                pos,
                "image_name_form",
                f"{json.dumps(rel)} not found as written ({form}), but the folder has "
                f"{json.dumps(on_disk, ensure_ascii=False)}: the same name in Unicode {disk} "
                "form (other bytes; macOS and some zip tools write decomposed names).",
                f"rename the file to the {form} form (convmv --{form.lower()}), or write the "
                "path as it is on disk.",
            )
            continue
        add(pos, issue.code, issue.message, issue.fix, issue.severity)
    return len(first), sha_by_image


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
