"""One record against the contract: pydantic's errors mapped to problems that name the fix."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from curation.report import Problem
from curation.schemas.annotation import (
    KEY_ALIASES,
    LAVIS_COCO_KEYS,
    VQARecord,
    builders_reading,
    has_lone_surrogate,
    with_contract_keys,
)
from curation.validate.text import find_nonfinite, json_type

CONTRACT_KEYS = ("instance_id", "image", "text_input", "answer")


def first_answer(rec: Any) -> str | None:
    answer = rec.get("answer") if isinstance(rec, dict) else None
    if isinstance(answer, list) and answer:
        answer = answer[0]
    return answer if isinstance(answer, str) else None


def record_problems(
    file: str, index: int, rec: Any, surrogates_possible: bool = True
) -> list[Problem]:
    if not isinstance(rec, dict):
        return [
            Problem(
                file,
                "record_not_object",
                f"the record is a JSON {json_type(rec)}, not an object.",
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
            token = find_nonfinite(value)
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


def _surrogate_problems(file: str, index: int, rid: Any, rec: dict[str, Any]) -> list[Problem]:
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
    file: str, index: int, rid: Any, rec: dict[str, Any], errors: Iterable[ErrorDetails]
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
            kind = json_type(value)
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


def _extra_key_warnings(file: str, index: int, rid: Any, extras: dict[str, Any]) -> list[Problem]:
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
