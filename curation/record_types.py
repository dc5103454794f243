"""The record types every stage passes around (a leaf: imports nothing of ours but answers).

``ExportRecord`` is one task or general question about one image on its way
into an export; ``PoolRow``/``GeneralPool`` are what a general VQA source
offers ``curate mix``. Kept apart so that sources, the curator, export and mix
can all use them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from curation.answers import answer_type_of
from curation.errors import DataError


@dataclass(frozen=True)
class ExportRecord:
    """One question about one image, with where it came from."""

    image: Path
    question: str
    answers: tuple[str, ...]
    source: str = "task"
    original_id: str = ""
    part: Literal["task", "general"] = "task"
    answer_type: str = ""
    group: str = ""  # records sharing a group never land in different splits
    review: str = ""  # e.g. "relabel:yes" when a reviewer changed the label
    fiftyone_id: str = ""  # the FiftyOne sample it came from, if any
    # a frame cut from a video (curation.class_map.FRAME_FIELDS); None when unknown
    subject: str | None = None  # unique only within its source_dataset
    video: str | None = None
    camera: str | None = None
    source_dataset: str | None = None
    activity: str | None = None  # the class map's class name
    negative_kind: str | None = None  # for "no" frames
    time: float | None = None  # seconds from the video's start

    @property
    def kind(self) -> str:
        return self.answer_type or answer_type_of(self.answers)

    def frame_metadata(self) -> dict[str, str | float]:
        """The frame fields this record knows (none for a photo), in ``FRAME_METADATA`` order."""
        values = {k: getattr(self, k) for k in FRAME_METADATA}
        return {k: v for k, v in values.items() if v is not None}


#: The frame fields an ``ExportRecord`` carries into the provenance sidecar (when known).
FRAME_METADATA = (
    "subject",
    "video",
    "camera",
    "source_dataset",
    "activity",
    "negative_kind",
    "time",
)


class _Answer(msgspec.Struct):
    answer: str


class PoolRow(NamedTuple):
    question: str
    answers: tuple[str, ...] | msgspec.Raw  # Raw: still JSON, decoded only if chosen
    image: str  # a path to an image file
    original_id: str
    answer_type: str
    source: str

    def answer_list(self) -> tuple[str, ...]:
        if isinstance(self.answers, msgspec.Raw):
            try:
                decoded = msgspec.json.decode(self.answers, type=list[_Answer])
            except msgspec.ValidationError as exc:
                raise DataError(
                    f"{self.source} question {self.original_id}: answers: {exc} (VQAv2 gives a "
                    'list of {"answer": ...} objects). Fix: correct that annotation, or drop it.'
                ) from None
            return tuple(a.answer for a in decoded)
        return self.answers


@dataclass
class GeneralPool:
    """Every record a general VQA source offers, plus the files it was read from."""

    source: str
    rows: list[PoolRow]
    inputs: list[Path] = field(default_factory=list)
    image_roots: list[Path] = field(default_factory=list)  # folders an export must not touch
