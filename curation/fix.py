"""Write a corrected copy of an annotation file; the input is never changed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation._io import (
    atomic_write_bytes,
    dumps_json,
    read_user_file,
    refuse_overwriting_inputs,
)
from curation.answers import canonical_label
from curation.errors import DataError
from curation.images import default_image_root
from curation.report import ValidationReport
from curation.schemas.annotation import KEY_ALIASES, with_contract_keys
from curation.schemas.questions import same_question_key
from curation.validate import CONTRACT_KEYS, normalized_image, validate_files


@dataclass
class FixResult:
    """What ``fix_file`` changed, and what is still wrong in the written copy."""

    source: str
    out: str
    records_in: int
    records_out: int
    changes: list[str] = field(default_factory=list)
    remaining: ValidationReport | None = None


def fix_file(
    path: str | Path,
    out: str | Path,
    image_root: str | Path | None = None,
    check_image_files: bool = True,
) -> FixResult:
    """Apply the safe fixes to ``path`` and write the result to ``out`` atomically.

    Safe fixes: a string answer becomes a one-item list; a known wrong key is
    renamed to the contract's key when the record lacks it; strings are
    stripped; backslashes in image paths become slashes; a BOM is dropped; a
    yes/no label written another way ("Yes.", "Yeah") becomes "yes"/"no"; a
    record with the same image, question and answers as an earlier one is
    dropped whatever its id (the rule validate's duplicate warning uses).

    Raises:
        DataError: the file cannot be parsed at all (invalid JSON, not a list).
    """
    path, out = Path(path), Path(out)
    refuse_overwriting_inputs(out, [path], "--fix")
    data = read_user_file(path, "annotation file", "Fix: pass an annotation JSON file.")
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        raw = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise DataError(
            f"{path}: cannot fix a file nested this deep. Fix the nesting first "
            "(curate validate shows where)."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an endless integer
        raise DataError(
            f"{path}: cannot fix a file that is not valid UTF-8 JSON ({exc}). "
            "Fix the syntax first (curate validate shows where)."
        ) from None
    if not isinstance(raw, list):
        raise DataError(f"{path}: the top level is not a JSON array; cannot fix it automatically.")

    result = FixResult(str(path), str(out), records_in=len(raw), records_out=0)
    fixed: list[Any] = []
    seen: dict[Any, int] = {}
    for i, rec in enumerate(raw):
        if isinstance(rec, dict):
            rec = _fix_record(rec, i, result.changes)
            signature = _duplicate_key(rec)
            if signature is not None and signature in seen:
                result.changes.append(
                    f"record #{i}: dropped, the same image, question and answer as record "
                    f"#{seen[signature]}"
                )
                continue
            if signature is not None:
                seen[signature] = i
        fixed.append(rec)
    result.records_out = len(fixed)
    try:
        encoded = dumps_json(fixed).encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(
            f"{path}: cannot fix a file that holds lone surrogates (JSON escapes like "
            "\\ud800 with no partner); nothing was written. Fix: remove them (curate validate "
            "names each record)."
        ) from None
    except (RecursionError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: cannot write a fixed copy ({exc}); nothing was written."
        ) from None
    atomic_write_bytes(out, encoded)
    root = image_root if image_root is not None else default_image_root(path)
    result.remaining = validate_files([out], image_root=root, check_image_files=check_image_files)
    return result


def _duplicate_key(rec: dict[str, Any]) -> tuple[str, str, str] | None:
    """What makes two records copies: image (normalised), question (paraphrases one), answers."""
    rec = with_contract_keys(rec)  # LAVIS's coco-vqa "question" is the question too
    image, question, answer = rec.get("image"), rec.get("text_input"), rec.get("answer")
    if not (isinstance(image, str) and isinstance(question, str) and isinstance(answer, list)):
        return None
    try:
        answers = json.dumps(answer)
    except (TypeError, ValueError, RecursionError):
        return None
    return normalized_image(image), same_question_key(question), answers


def _fix_record(rec: dict[str, Any], index: int, changes: list[str]) -> dict[str, Any]:
    rec = dict(rec)
    for key in list(rec):
        target = KEY_ALIASES.get(key)
        if target and target not in rec:
            rec = {(target if k == key else k): v for k, v in rec.items()}
            changes.append(f"record #{index}: renamed '{key}' to '{target}'")
    for key in CONTRACT_KEYS:
        value = rec.get(key)
        if isinstance(value, str) and value != value.strip():
            rec[key] = value.strip()
            changes.append(f"record #{index}: stripped whitespace in '{key}'")
    image = rec.get("image")
    if isinstance(image, str) and "\\" in image:
        rec["image"] = image.replace("\\", "/")
        changes.append(f"record #{index}: image path {image!r} -> {rec['image']!r}")
    answer = rec.get("answer")
    if isinstance(answer, str):
        rec["answer"] = [answer]
        changes.append(f'record #{index}: answer "{answer}" -> ["{answer}"]')
    elif isinstance(answer, list):
        # VQAv2-style [{"answer": "yes", ...}] and padded strings
        new = [a.get("answer") if isinstance(a, dict) and "answer" in a else a for a in answer]
        new = [a.strip() if isinstance(a, str) else a for a in new]
        new = [(canonical_label(a) or a) if isinstance(a, str) else a for a in new]
        if new != answer:
            rec["answer"] = new
            changes.append(f"record #{index}: answer list normalised to {new!r}")
    return rec
