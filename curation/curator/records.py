"""Turn a reviewed FiftyOne dataset into export records, honouring the review tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.curator._fo import EXCLUDE_TAG, RELABEL_TAGS, load_dataset
from curation.errors import DataError
from curation.record_types import FRAME_METADATA, ExportRecord, GeneralPool, PoolRow


@dataclass
class DatasetRecords:
    task: list[ExportRecord]
    general: GeneralPool | None
    excluded: int = 0
    relabelled: int = 0
    unlabelled: int = 0
    review: dict[str, int] = field(default_factory=dict)


def _tag_key(tag: str) -> str:
    return "".join(tag.casefold().split()).replace("-", ":").replace("_", ":")


def refuse_misspelled_review_tags(dataset: str, tags_per_sample: list[list[str] | None]) -> None:
    """A tag typed in the App that looks like a review tag but is not one would be ignored.

    Raises:
        DataError: names each such tag, how many samples carry it, and the exact spelling.
    """
    exact = {EXCLUDE_TAG, *RELABEL_TAGS}
    wanted = {_tag_key(t): t for t in exact}
    found: dict[str, int] = {}
    for tags in tags_per_sample:
        for tag in tags or ():
            if tag not in exact and _tag_key(tag) in wanted:
                found[tag] = found.get(tag, 0) + 1
    if found:
        shown = "; ".join(
            f"{tag!r} on {n} sample(s) (write {wanted[_tag_key(tag)]!r})"
            for tag, n in sorted(found.items())
        )
        raise DataError(
            f"dataset {dataset!r}: review tags spelled another way would be ignored: {shown}. "
            "Fix: retag those samples in the App with the exact tag, then export again."
        )


def _frame_values(values: dict[str, list[Any]], frame: list[str], i: int) -> dict[str, Any]:
    """Sample ``i``'s frame fields, as strings (``time`` a float); None stays None."""
    out: dict[str, Any] = {}  # keyword arguments of ExportRecord, named by the frame fields
    for f in frame:
        v = values[f][i]
        if v is not None and v != "":
            out[f] = float(v) if f == "time" else str(v)
    return out


def _split_group(values: dict[str, list[Any]], i: int, across_videos: bool = True) -> str:
    """Sample ``i``'s curator split group: its near-copy group, else its copy group.

    ``curate check`` joins frames of two videos as near copies only when the videos are
    copies of each other (``checks.video_copies``), so its groups hold across videos. A
    dataset checked before that rule (``across_videos`` False) joined any look-alike frames
    (one fixed camera, whoever walks through it): its near groups count within a video only.
    """
    near, dup = values["near_dup_group"][i], values["dup_group"][i]
    video = values["video"][i] if "video" in values else None
    if near is not None and video and not across_videos:
        return f"dup:{dup}" if dup is not None else f"near:{near}@{video}"
    if near is not None:
        return f"near:{near}"
    return f"dup:{dup}" if dup is not None else f"sha:{values['sha256'][i]}"


def records_from_dataset(name: str) -> DatasetRecords:
    """Task records (and a general pool) from dataset ``name``.

    ``exclude`` drops a sample, ``relabel:yes``/``relabel:no`` replace its
    answer; samples without an answer (``unsure/``) stay out until relabelled.
    Copies and near-copies share a split group, so they never straddle splits
    (near copies across videos when ``curate check`` found the videos copies: ``_split_group``).
    """
    ds = load_dataset(name)
    fields = ds.get_field_schema()
    wanted = [
        "id",
        "filepath",
        "question",
        "answers",
        "source",
        "original_id",
        "part",
        "tags",
        "answer_type",
        "sha256",
        "dup_group",
        "near_dup_group",
    ]
    frame = [f for f in FRAME_METADATA if f in fields]  # frames cut from videos carry these
    values = dict(
        zip(
            wanted + frame,
            ds.values([f if f in fields else "id" for f in wanted] + frame),
            strict=True,
        )
    )
    refuse_misspelled_review_tags(name, values["tags"])
    from curation.curator.checks import NEAR_DUP_RULE

    across_videos = ds.info.get("near_dup_rule") == NEAR_DUP_RULE
    for f in ("dup_group", "near_dup_group"):
        if f not in fields:
            values[f] = [None] * len(values["id"])
    result = DatasetRecords([], None)
    general_rows: list[PoolRow] = []
    conflicting = []
    for i, sid in enumerate(values["id"]):
        tags = set(values["tags"][i] or [])
        if EXCLUDE_TAG in tags:
            result.excluded += 1
            continue
        relabels = [RELABEL_TAGS[t] for t in tags if t in RELABEL_TAGS]
        if len(relabels) > 1:
            conflicting.append(sid)
            continue
        answers = list(values["answers"][i] or [])
        review = ""
        if relabels:
            answers, review = [relabels[0]], f"relabel:{relabels[0]}"
            result.relabelled += 1
        if not answers:
            result.unlabelled += 1
            continue
        group = _split_group(values, i, across_videos)
        if values["part"][i] == "general":
            general_rows.append(
                PoolRow(
                    values["question"][i],
                    tuple(answers),
                    values["filepath"][i],
                    values["original_id"][i],
                    values["answer_type"][i] or "",
                    values["source"][i],
                )
            )
            continue
        result.task.append(
            ExportRecord(
                Path(values["filepath"][i]),
                values["question"][i],
                tuple(answers),
                source=values["source"][i],
                original_id=values["original_id"][i] or sid,
                answer_type=values["answer_type"][i] or "",
                group=group,
                review=review,
                fiftyone_id=sid,
                **_frame_values(values, frame, i),
            )
        )
    if conflicting:
        raise DataError(
            f"{len(conflicting)} sample(s) carry both relabel:yes and relabel:no, e.g. "
            f"{conflicting[:3]}. Fix: keep one of the two tags in the App."
        )
    if general_rows:
        result.general = GeneralPool(f"fiftyone:{name}", general_rows)
    result.review = {
        "excluded": result.excluded,
        "relabelled": result.relabelled,
        "unlabelled": result.unlabelled,
    }
    return result
