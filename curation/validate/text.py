"""The annotation file as bytes and text: reading it, its encoding, JSON syntax and nesting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from curation._io import read_user_file
from curation.errors import UsageError
from curation.report import Problem


class NonFinite(float):
    """Marks a NaN/Infinity token so the record holding it can be named."""

    token: str

    def __new__(cls, token: str) -> NonFinite:
        obj = super().__new__(cls, float(token.replace("Infinity", "inf")))
        obj.token = token
        return obj


def read_annotation_file(path: Path) -> bytes:
    """The bytes of an annotation file; a missing file or a folder is a usage error."""
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; pass an annotation JSON file")
    return read_user_file(path, "annotation file", "Fix: pass an annotation JSON file.")


class _LongInt:
    """A JSON integer too long for Python to read (its place is what we want)."""


def huge_int_key(raw: Any) -> str | None:
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


def utf16_problem(file: str, data: bytes) -> Problem | None:
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


def utf8_problem(file: str, data: bytes) -> Problem:
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


def nesting_problem(file: str, data: bytes) -> Problem:
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


def jsonl_problem(file: str, text: str, exc: json.JSONDecodeError) -> Problem | None:
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


def empty_problem(file: str) -> Problem:
    return Problem(
        file,
        "empty_file",
        "the file holds an empty list: no records to train on.",
        "add records, or point at the right file.",
    )


def json_type(value: Any) -> str:
    return {dict: "object", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def json_problem(file: str, text: str, exc: json.JSONDecodeError) -> Problem:
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


def find_nonfinite(value: Any) -> str | None:
    if isinstance(value, NonFinite):
        return value.token
    if isinstance(value, list):
        return next((t for v in value if (t := find_nonfinite(v))), None)
    if isinstance(value, dict):
        return next((t for v in value.values() if (t := find_nonfinite(v))), None)
    return None
