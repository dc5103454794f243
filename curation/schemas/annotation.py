"""The LAVIS VQA annotation contract, as pydantic models.

LAVIS's VQA datasets read a JSON array of records with an image path, a
question, an id and ``answer`` (a *list* of strings). Two builders name the
question and the id differently: ours (``falldown_vqa``, what ``curate train``
uses) reads ``text_input`` and ``instance_id``; LAVIS's stock coco-vqa builder
(``COCOVQADataset``, ``COCOVQAEvalDataset``) reads ``question`` and
``question_id``. An export writes both; a file with either is accepted. These
models are the single source of truth for that contract: the validator, the
fixer, the exporters and the generated JSON Schema in ``schemas/`` all come
from them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

NonBlank = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]

#: Keys people use instead of the contract's, mapped to the key LAVIS reads.
KEY_ALIASES: dict[str, str] = {
    "questions": "text_input",
    "text": "text_input",
    "prompt": "text_input",
    "id": "instance_id",
    "qid": "instance_id",
    "answers": "answer",
    "text_output": "answer",
    "label": "answer",
    "multiple_choice_answer": "answer",
    "img": "image",
    "image_path": "image",
    "image_id": "image",
    "file_name": "image",
    "filename": "image",
    "filepath": "image",
    "path": "image",
}

#: Our builder's key -> the key LAVIS's stock coco-vqa builder reads for the same thing.
LAVIS_COCO_KEYS: dict[str, str] = {"text_input": "question", "instance_id": "question_id"}


def builders_reading(key: str) -> str:
    """Which builder reads ``key`` (one of the contract's), and what the other one reads."""
    from curation.contract import BUILDER_NAME

    theirs = LAVIS_COCO_KEYS.get(key)
    if theirs is None:
        return f"both curate train's builder ({BUILDER_NAME}) and LAVIS's coco-vqa builder read '{key}'"
    return (
        f"curate train's builder ({BUILDER_NAME}) reads '{key}', LAVIS's coco-vqa builder "
        f"reads '{theirs}'"
    )


def with_contract_keys(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``text_input``/``instance_id`` taken from LAVIS's coco-vqa keys
    (``question``/``question_id``) where it has only those (a copy; else the record)."""
    filled = {
        ours: record[theirs]
        for ours, theirs in LAVIS_COCO_KEYS.items()
        if ours not in record and record.get(theirs) is not None
    }
    return {**record, **filled} if filled else record


#: Longest image path accepted (Linux allows 4,096 bytes; no real annotation comes close).
MAX_IMAGE_PATH = 1024
#: Longest folder or file name inside an image path (the usual file system limit, in bytes).
MAX_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (JSON's "\\ud800"): not valid Unicode."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def image_path_problem(path: str) -> str | None:  # noqa: PLR0911 - one rule per return
    """Return why ``path`` is not a safe relative image path, or None when it is."""
    if not (path.isascii() and path.isprintable()):  # the common case skips these checks
        if "\x00" in path:
            return "contains a NUL byte (no file name can hold one)"
        if _CONTROL.search(path):
            return "contains a control character (a newline or tab; no real file name has one)"
        if has_lone_surrogate(path):
            return "contains a lone surrogate (an escape like \\ud800), which is not valid Unicode"
    if len(path) > MAX_NAME:
        if len(path) > MAX_IMAGE_PATH:
            return f"is {len(path):,} characters long (too long; at most {MAX_IMAGE_PATH:,})"
        if any(len(part.encode()) > MAX_NAME for part in path.split("/")):
            return f"has a folder or file name longer than {MAX_NAME} bytes (too long)"
    if "\\" in path:
        return "contains a backslash (a Windows path)"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is an absolute path"
    if ".." in path.split("/"):
        return "contains '..' and could escape the image root"
    if path.endswith("/"):
        return "ends with '/': that names a folder, and LAVIS cannot open it as an image"
    return None


def _either_key_required(schema: dict[str, Any]) -> None:
    """The JSON Schema's form of "text_input or question, instance_id or question_id"."""
    schema["required"] = [k for k in schema["required"] if k not in LAVIS_COCO_KEYS]
    schema["allOf"] = [
        {"anyOf": [{"required": [ours]}, {"required": [theirs]}]}
        for ours, theirs in LAVIS_COCO_KEYS.items()
    ]


class VQARecord(BaseModel):
    """One record of a LAVIS VQA annotation file.

    ``question``/``question_id`` (LAVIS's coco-vqa builder) stand in for
    ``text_input``/``instance_id`` (ours) when a record has only those. Unknown
    keys are allowed (LAVIS ignores them) and reported as warnings by the validator.
    """

    model_config = ConfigDict(
        extra="allow",
        title="LAVIS VQA annotation record",
        json_schema_extra=_either_key_required,
    )

    instance_id: StrictInt | NonBlank = Field(
        description="Unique id of the record within the file (int or string)."
    )
    image: NonBlank = Field(
        description=(
            "Image path relative to the image root (vis_root): forward slashes, "
            "no absolute path, no '..'."
        ),
        examples=["1.jpg", "fall/0001.png"],
    )
    text_input: NonBlank = Field(
        description="The question, e.g. 'Is anyone falling in this image?'."
    )
    answer: list[NonBlank] = Field(
        min_length=1,
        description='Non-empty list of answers, e.g. ["yes"]. Never a bare string.',
    )
    question: NonBlank | None = Field(
        default=None,
        description=(
            "The question as LAVIS's stock coco-vqa builder (COCOVQADataset) reads it; "
            "stands in for text_input when that is absent. An export writes both."
        ),
    )
    question_id: StrictInt | NonBlank | None = Field(
        default=None,
        description=(
            "The id LAVIS's coco-vqa evaluation (COCOVQAEvalDataset, VQATask) matches "
            "against the vqa_eval files; stands in for instance_id when that is absent."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _lavis_coco_keys(cls, data: Any) -> Any:
        return with_contract_keys(data) if isinstance(data, dict) else data

    @field_validator("image")
    @classmethod
    def _relative_inside_root(cls, value: str) -> str:
        problem = image_path_problem(value)
        if problem:
            raise ValueError(f"image path {problem}")
        return value
