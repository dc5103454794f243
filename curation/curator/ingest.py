"""`curate ingest`: put images with their question and answer into a FiftyOne dataset.

Sources: a raw folder with one sub-folder per label (``fall/`` = "yes",
``no_fall/`` = "no", optional ``unsure/``; common spellings such as ``no-fall/``
count, hidden files never), a LAVIS annotation file (the contract) with its
image root, or easy-VQA (general VQA). Every image is opened and hashed before
anything is added, so bad input adds nothing; a new dataset appears only whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation._io import path_kind
from curation.curator._fo import fiftyone
from curation.errors import DataError, UsageError
from curation.images import ImageScan, scan_images
from curation.schemas.questions import TASK_QUESTION

if TYPE_CHECKING:
    from curation.curator._lock import DatabaseLock

#: Label sub-folders of a raw folder, compared case-insensitively with "-" and " " as "_".
LABEL_FOLDERS: dict[str, str | None] = {
    "fall": "yes",
    "falls": "yes",
    "falling": "yes",
    "no_fall": "no",
    "nofall": "no",
    "no_falls": "no",
    "not_fall": "no",
    "notfall": "no",
    "not_falling": "no",
    "unsure": None,
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
#: The sources that mean the easy-VQA package data (anything else is a path).
EASY_VQA_SOURCES = {"easy-vqa": "train", "easy-vqa:train": "train", "easy-vqa:test": "test"}


def label_of_folder(name: str) -> tuple[bool, str | None]:
    """(is a label folder, its answer) for a sub-folder name like ``No-Fall``."""
    key = name.casefold().replace("-", "_").replace(" ", "_")
    return key in LABEL_FOLDERS, LABEL_FOLDERS.get(key)


@dataclass
class Item:
    """One sample to add: an image and what is asked and answered about it."""

    filepath: Path
    question: str
    answers: list[str]
    source: str
    original_id: str
    provenance: str  # "folder" | "file" (later "review")
    part: str = "task"
    split: str | None = None
    answer_type: str = ""
    tags: list[str] = field(default_factory=list)
    #: The resolved source (folder, file or package split): where the item came from.
    source_path: str = ""
    #: Whether the question is part of the identity (not for folder images: their
    #: question is a seeded choice among paraphrases).
    question_in_key: bool = True
    #: More sample fields (a video frame's ``FRAME_FIELDS``: video, time, subject, ...).
    fields: dict[str, Any] = field(default_factory=dict)

    def key(self, sha256: str) -> str:
        """Identity for idempotent re-ingest: the same source record with the same bytes."""
        question = self.question if self.question_in_key else ""
        text = "\0".join([self.source_path, self.original_id, question, sha256])
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def legacy_key(self) -> str:
        """The key of samples ingested before source paths were recorded (base name, no bytes)."""
        text = f"{self.source}\0{self.original_id}\0{self.question}"
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class IngestResult:
    dataset: str
    source: str
    added: int
    already_present: int
    total: int
    unsure: int = 0
    hash_seconds: float = 0.0
    add_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: Stored samples whose labels ``relabel`` rewrote, and those it removed (no longer labelled).
    relabelled: int = 0
    removed: int = 0
    #: What the dataset holds after the ingest: task samples per answer ("yes", "no",
    #: "unsure": none yet) and general VQA records ("general").
    holds: dict[str, int] = field(default_factory=dict)


def _hidden(path: Path, root: Path) -> bool:
    """Dot-files and anything in a dot-folder (``._x.png``, ``.thumbnails/``) below ``root``."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def folder_file_problem(path: Path, rel: str, root: Path) -> str:
    """Why a file under a label folder cannot be a sample ('' when it can)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return (
            f"{shown}: the file name is not UTF-8, which FiftyOne and LAVIS need. "
            "Fix: rename it (convmv -f latin1 -t utf8 --notest NAME)."
        )
    real = path.resolve()
    if real != root and root not in real.parents:
        return (
            f"{rel} is a link to {real}, outside {root}; it was not opened. Fix: copy the "
            "file into the folder (validate and annotation-file ingest refuse such links too)."
        )
    return ""


def items_from_folder(
    folder: Path, questions: Sequence[str], seed: int, warnings: list[str] | None = None
) -> list[Item]:
    """``folder/fall``, ``folder/no_fall`` (and ``folder/unsure``) -> items.

    Spellings such as ``no-fall``, ``NoFall`` or ``not_fall`` count too. Hidden files
    and folders are skipped; other sub-folders and loose images are named in ``warnings``.
    """
    warnings = warnings if warnings is not None else []
    if not folder.is_dir():
        raise UsageError(f"folder not found: {folder}")
    labelled: list[tuple[Path, str | None]] = []
    unknown: list[str] = []
    for sub in sorted(folder.iterdir()):
        if sub.name.startswith("."):
            continue
        if sub.is_dir():
            is_label, answer = label_of_folder(sub.name)
            if is_label:
                labelled.append((sub, answer))
            else:
                unknown.append(sub.name + "/")
    loose = [
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    spellings = "fall/ (or falls/, falling/) and no_fall/ (or no-fall/, nofall/, not_fall/)"
    if not any(answer is not None for _, answer in labelled):
        raise DataError(
            f"{folder} has neither a fall/ nor a no_fall/ sub-folder"
            + (f" (found: {', '.join(unknown)})" if unknown else "")
            + f". Fix: put images of people falling in {spellings.split(' and ')[0]} and "
            f"the others in {spellings.split(' and ')[1]}"
        )
    if unknown:
        warnings.append(
            f"{folder}: sub-folder(s) {', '.join(unknown)} are not label folders and were "
            f"not ingested (label folders: {spellings}, unsure/; videos with their labels: "
            "curate ingest LABELS.csv --videos DIR)"
        )
    if loose:
        warnings.append(
            f"{folder}: {len(loose)} image(s) directly in the folder were not ingested "
            f"(e.g. {sorted(loose)[0]}): put them in fall/ or no_fall/"
        )
    items = []
    source_path = str(folder.resolve())
    refused: list[str] = []
    for sub, answer in labelled:
        files = sorted(
            p
            for p in sub.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p, sub)
        )
        if not files:
            if answer is not None:
                warnings.append(f"{sub} holds no images; nothing is labelled {answer!r} from it")
            continue
        for path in files:
            rel = path.relative_to(folder).as_posix()
            problem = folder_file_problem(path, rel, Path(source_path))
            if problem:
                refused.append(problem)
                continue
            q = random.Random(f"{seed}:{rel}").choice(list(questions))
            items.append(
                Item(
                    path.resolve(),
                    q,
                    [answer] if answer else [],
                    f"folder:{Path(source_path).name}",
                    rel,
                    "folder",
                    answer_type="yes/no",
                    tags=[] if answer else ["unsure"],
                    source_path=source_path,
                    question_in_key=False,
                )
            )
    if refused:
        shown = "\n  ".join(refused[:10])
        more = f"\n  ... and {len(refused) - 10} more" if len(refused) > 10 else ""
        raise DataError(
            f"{folder}: {len(refused)} file(s) cannot be ingested; nothing was "
            f"added:\n  {shown}{more}"
        )
    if not any(it.answers for it in items):
        raise DataError(
            f"{folder} holds no images in its label folders "
            f"({', '.join(s.name + '/' for s, _ in labelled)}; images are "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}). Fix: put images of people "
            "falling in fall/ and the others in no_fall/"
        )
    labels = {it.answers[0] for it in items if it.answers}
    if len(labels) == 1:
        (only,) = labels
        other = "no_fall/" if only == "yes" else "fall/"
        warnings.append(
            f"WARNING: every labelled image in {folder} is {only!r} (no images in {other}): "
            "a model trained on this learns to always answer "
            f"{only!r}. Fix: add images to {other} (spellings: {spellings})"
        )
    return items


def items_from_file(path: Path, image_root: Path | None) -> list[Item]:
    from curation.validate.load import load_records, require_valid

    root = image_root or path.parent
    require_valid(path, root, action="nothing was ingested")
    from curation.answers import answer_type_of

    split = path.stem if path.stem in ("train", "val", "test") else None
    source_path = str(path.resolve())
    return [
        Item(
            (root / r["image"]).resolve(),
            r["text_input"],
            list(r["answer"]),
            f"file:{path.name}",
            str(r["instance_id"]),
            "file",
            split=split,
            answer_type=answer_type_of(r["answer"]),
            source_path=source_path,
        )
        for r in load_records(path)
    ]


def items_from_easy_vqa(split: str, max_records: int | None, seed: int) -> list[Item]:
    from curation.sources import load_easy_vqa

    rows = load_easy_vqa(split).rows
    if max_records is not None and max_records < len(rows):
        rows = sorted(random.Random(seed).sample(rows, max_records), key=lambda r: r.original_id)
    return [
        Item(
            Path(r.image),
            r.question,
            list(r.answer_list()),
            "easy_vqa",
            r.original_id,
            "file",
            part="general",
            answer_type=r.answer_type,
            source_path=f"easy-vqa:{split}",
        )
        for r in rows
    ]


def ingest(
    source: str | Path,
    dataset: str,
    *,
    image_root: str | Path | None = None,
    questions: Sequence[str] = (TASK_QUESTION,),
    seed: int = 0,
    overwrite: bool = False,
    max_records: int | None = None,
    relabel: bool = False,
) -> IngestResult:
    """Add a source to the persistent FiftyOne dataset ``dataset`` (idempotently).

    ``source`` is a folder, a LAVIS annotation file, or exactly ``easy-vqa``,
    ``easy-vqa:train`` or ``easy-vqa:test``. A sample's identity is its resolved
    source, its place in it and its image bytes, so the same source ingested again
    (from any folder, by a relative or absolute path) adds nothing, and another
    source with the same base name adds its own samples. A new dataset appears only
    once every sample is in it. A source that now answers a stored sample otherwise
    is refused unless ``relabel`` (see ``add_items``).
    """
    from curation.curator._fo import check_dataset_name

    check_dataset_name(dataset)
    if max_records is not None and max_records < 1:
        raise UsageError(f"--max-records must be at least 1 (got {max_records})")
    text = str(source)
    warnings: list[str] = []
    if image_root is not None and path_kind(Path(text), "SOURCE") != "file":
        raise UsageError(
            f"--image-root applies to an annotation file, not to {text}. Fix: leave it out"
        )
    if text in EASY_VQA_SOURCES:
        items = items_from_easy_vqa(EASY_VQA_SOURCES[text], max_records, seed)
    elif max_records is not None:
        raise UsageError(
            f"--max-records applies to easy-vqa only, not to {text}. Fix: leave it out"
        )
    elif (kind := path_kind(Path(text), "SOURCE")) in ("dir", "file"):
        try:
            if kind == "dir":
                items = items_from_folder(Path(text), questions, seed, warnings)
            else:
                items = items_from_file(Path(text), Path(image_root) if image_root else None)
        except OSError as exc:  # unreadable folders or files met while listing
            raise DataError(
                f"{exc.filename or text}: {exc.strerror or exc}; nothing was ingested. "
                "Fix: make it readable (or move it out of the source)"
            ) from None
    else:
        raise UsageError(
            f"source not found: {text} (a folder, an annotation file, or exactly "
            "easy-vqa, easy-vqa:train or easy-vqa:test)"
        )

    return add_items(
        dataset, items, overwrite=overwrite, source=text, warnings=warnings, relabel=relabel
    )


def add_items(
    dataset: str,
    items: list[Item],
    *,
    overwrite: bool = False,
    source: str = "",
    warnings: list[str] | None = None,
    scans: dict[Path, ImageScan] | None = None,
    relabel: bool = False,
    no_longer_labelled: NoLongerLabelled | None = None,
) -> IngestResult:
    """Check and hash every item's image, then add the new ones to ``dataset`` (all or none).

    The second half of ``ingest``; video ingest calls it with the frames it cut and
    their ``scans`` (hashed as they were written, so they are not read again).

    A stored sample that an item gives another answer (or another class, kind or
    segment), and one that ``no_longer_labelled`` names (a frame now in no segment),
    would keep a label its source no longer gives: without ``relabel`` that is a
    ``DataError`` and nothing is written; with it, their labels are rewritten (review
    tags kept) and the others removed, all or nothing.
    """
    import time

    text = source
    warnings = warnings if warnings is not None else []
    t0 = time.perf_counter()
    try:
        import imagehash  # noqa: F401
    except ImportError:
        raise UsageError(
            "this needs imagehash. Fix: pip install 'falldown-curate[fiftyone]'"
        ) from None
    known = scans or {}
    scans = {**known, **scan_images([it.filepath for it in items if it.filepath not in known])}
    hash_seconds = time.perf_counter() - t0
    problems = {
        p: scan.issue
        for p, scan in scans.items()
        if scan.issue is not None and scan.issue.severity == "error"
    }
    if problems:
        shown = "\n  ".join(f"{p}: {i.message}" for p, i in list(problems.items())[:10])
        raise DataError(
            f"{len(problems)} image(s) cannot be read; nothing was ingested:\n  {shown}"
            "\n  Fix: remove or replace them, then ingest again."
        )

    from curation.curator._lock import database_lock, dataset_lock_key

    fo = fiftyone()
    t1 = time.perf_counter()  # FiftyOne's import and database start are not counted
    # one writer per dataset at a time, across machines: the lock lives in the database
    with database_lock(dataset_lock_key(dataset), f"curate ingest {text}") as lock:
        new, ds, relabelled, removed = _write_items(
            fo,
            dataset,
            items,
            scans,
            overwrite=overwrite,
            lock=lock,
            relabel=relabel,
            no_longer_labelled=no_longer_labelled,
        )
    t2 = time.perf_counter()
    return IngestResult(
        dataset,
        text,
        len(new),
        len(items) - len(new),
        len(ds),
        unsure=sum("unsure" in it.tags for it, _ in new),
        hash_seconds=hash_seconds,
        add_seconds=t2 - t1,
        warnings=warnings,
        relabelled=relabelled,
        removed=removed,
        holds=holdings(ds),
    )


def holdings(ds: Any) -> dict[str, int]:
    """Task samples per answer ("unsure": none yet) and general VQA records of ``ds``."""
    from fiftyone import ViewField as F

    schema = ds.get_field_schema()
    parts = ds.count_values("part") if "part" in schema else {}
    task = ds.match(F("part") != "general") if "part" in schema else ds
    answers = task.count_values("answer") if "answer" in schema else {}
    held = {"yes": answers.get("yes", 0), "no": answers.get("no", 0)}
    held["unsure"] = answers.get(None, 0)
    other = sum(n for a, n in answers.items() if a not in ("yes", "no", None))
    if other:
        held["other"] = other
    if parts.get("general"):
        held["general"] = parts["general"]
    return held


#: How video ingest names stored samples of its source that the source no longer labels:
#: called with the dataset and the ingest keys of this run's items, it returns
#: (sample id, "video#frame", why) for each, why e.g. "in no segment now".
NoLongerLabelled = Callable[[Any, set[str]], list[tuple[str, str, str]]]

#: The fields, beside the answers and the ``unsure`` tag, that say how a sample is labelled.
LABEL_FIELDS = ("activity", "negative_kind", "segment")


@dataclass
class _Relabel:
    """A stored sample whose source now labels it otherwise: its stored and its new labels."""

    sample_id: str
    name: str  # for messages: the item's original id
    old: dict[str, Any]
    new: dict[str, Any]

    @property
    def answer_changed(self) -> bool:
        return self.old["answers"] != self.new["answers"]

    def shown(self) -> str:
        def said(values: dict[str, Any]) -> str:
            answer = values["answers"][0] if values["answers"] else "unsure"
            kind = values.get("activity") or values.get("negative_kind")
            return f"{answer!r}" + (f" ({kind})" if kind else "")

        return f"{self.name}: {said(self.old)} -> {said(self.new)}"


def _labels_of(answers: list[str], tags: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"answers": list(answers), "unsure": "unsure" in tags}
    out.update({f: fields.get(f) for f in LABEL_FIELDS})
    return out


def _relabels(ds: Any, stored: dict[str, Item]) -> list[_Relabel]:
    """The samples among ``stored`` (ingest key -> item) whose stored labels differ."""
    if not stored:
        return []
    from fiftyone import ViewField as F

    schema = ds.get_field_schema()
    present = [f for f in LABEL_FIELDS if f in schema]
    view = ds.match(F("ingest_key").is_in(sorted(stored)))
    rows = view.values(["id", "ingest_key", "answers", "tags", *present])
    out = []
    for sid, key, answers, tags, *values in zip(*rows, strict=True):
        it = stored[key]
        old = _labels_of(answers or [], tags or [], dict(zip(present, values, strict=True)))
        new = _labels_of(it.answers, it.tags, {f: it.fields.get(f) for f in present})
        if old != new:
            out.append(_Relabel(sid, it.original_id, old, new))
    return out


def _frames_stored_elsewhere(
    ds: Any, new: list[tuple[Item, str]], scans: dict[Path, Any]
) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Video frames among ``new`` (item, key) that the dataset already holds from another
    source (a label file under another name): key -> [(sample id, its source path, its
    stored labels)].

    A frame is the same when it is the same frame file (named by its video's content and
    frame index), or the same video, frame index and bytes (another ``--frames-dir``).
    """
    frames = [
        (it, k)
        for it, k in new
        if it.fields.get("video") is not None and it.fields.get("frame_index") is not None
    ]
    schema = ds.get_field_schema()
    if not frames or not {"video", "frame_index", "source_path"} <= set(schema):
        return {}
    from fiftyone import ViewField as F

    present = [f for f in LABEL_FIELDS if f in schema]
    videos = sorted({str(it.fields["video"]) for it, _ in frames})
    paths = sorted({str(it.filepath) for it, _ in frames})
    view = ds.match(F("video").is_in(videos) | F("filepath").is_in(paths))
    wanted = ["id", "filepath", "video", "frame_index", "sha256", "source_path", "answers"]
    by_path: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    by_frame: dict[tuple[str, int, str], list[tuple[str, str, dict[str, Any]]]] = {}
    for sid, path, video, index, sha, where, answers, tags, *values in zip(
        *view.values([*wanted, "tags", *present]), strict=True
    ):
        stored = (
            sid,
            where or "",
            _labels_of(answers or [], tags or [], dict(zip(present, values, strict=True))),
        )
        by_path.setdefault(path, []).append(stored)
        by_frame.setdefault((video, index, sha), []).append(stored)
    out = {}
    for it, k in frames:
        frame = (str(it.fields["video"]), it.fields["frame_index"], scans[it.filepath].sha256)
        found = {s[0]: s for s in [*by_path.get(str(it.filepath), []), *by_frame.get(frame, [])]}
        others = [s for s in found.values() if s[1] != it.source_path]
        if others:
            out[k] = others
    return out


def _relabel_refusal(
    dataset: str,
    relabels: list[_Relabel],
    gone: list[tuple[str, str, str]],
    elsewhere: Sequence[str] = (),
) -> str:
    answers = sum(r.answer_changed for r in relabels)
    parts = []
    if answers:
        parts.append(f"{answers} would get another answer")
    if len(relabels) > answers:
        parts.append(f"{len(relabels) - answers} another class, kind or segment")
    whys: dict[str, int] = {}
    for _, _, why in gone:
        whys[why] = whys.get(why, 0) + 1
    parts += [f"{n} {why}" for why, n in whys.items()]
    shown = [r.shown() for r in sorted(relabels, key=lambda r: not r.answer_changed)[:3]]
    shown += [f"{where}: {why}" for _, where, why in gone[:2]]
    whose = "of this source"
    if elsewhere:  # the same frames, stored from a label file under another name
        files = ", ".join(sorted({Path(p).name for p in elsewhere})[:3])
        whose = f"(the same video frames; {len(elsewhere)} stored from another label file: {files})"
    return (
        f"dataset {dataset!r} holds {len(relabels) + len(gone)} sample(s) {whose} that "
        f"it now labels otherwise: {', '.join(parts)} (e.g. {'; '.join(shown)}); nothing was "
        "changed or added. Fix: --relabel rewrites their stored labels (and removes the "
        "samples it no longer gives; review tags are kept), or --overwrite starts the "
        "dataset again"
    )


def _apply_relabels(ds: Any, relabels: list[_Relabel], new: bool) -> None:
    """Write the new labels (``new``) or put the stored ones back (``new=False``)."""
    if not relabels:
        return
    schema = ds.get_field_schema()
    tags = dict(
        zip(*ds.select([r.sample_id for r in relabels]).values(["id", "tags"]), strict=True)
    )
    answers, answer, tag_values = {}, {}, {}
    fields: dict[str, dict[str, Any]] = {f: {} for f in LABEL_FIELDS if f in schema}
    for r in relabels:
        values = r.new if new else r.old
        sid = r.sample_id
        answers[sid] = list(values["answers"])
        answer[sid] = values["answers"][0] if values["answers"] else None
        kept = [t for t in tags.get(sid) or [] if t != "unsure"]
        tag_values[sid] = [*kept, "unsure"] if values["unsure"] else kept
        for f, by_id in fields.items():
            by_id[sid] = values.get(f)
    ds.set_values("answers", answers, key_field="id")
    ds.set_values("answer", answer, key_field="id")
    ds.set_values("tags", tag_values, key_field="id")
    for f, by_id in fields.items():
        ds.set_values(f, by_id, key_field="id")


def _write_items(
    fo: Any,
    dataset: str,
    items: Sequence[Item],
    scans: dict[Path, Any],
    *,
    overwrite: bool = False,
    lock: DatabaseLock | None = None,
    relabel: bool = False,
    no_longer_labelled: NoLongerLabelled | None = None,
) -> tuple[list[tuple[Item, str]], Any, int, int]:
    """Add the items not yet in ``dataset`` (a new one appears whole); (added, dataset,
    relabelled, removed): see ``add_items`` for ``relabel``.

    Call it holding ``database_lock(dataset_lock_key(dataset), ...)``: with two writers,
    both could see "no such dataset" or "key not there yet". A unique index on
    ``ingest_key`` keeps duplicates out at the database level even so.
    """
    from pymongo.errors import BulkWriteError, DuplicateKeyError

    from curation.curator._fo import (
        PARTIAL_PREFIX,
        check_dataset_name,
        partial_dataset_name,
        slug_clash,
        user_datasets,
    )

    clash = slug_clash(fo, dataset)
    if clash is not None:
        raise UsageError(
            f"--dataset {dataset!r} clashes with the existing dataset {clash!r}: FiftyOne "
            f"gives both the URL name {check_dataset_name(dataset)!r}. Fix: --dataset "
            f"{shlex.quote(clash)} to add to it, or another name"
        )
    # --overwrite builds the replacement first and deletes the old dataset only at the end
    replaces = overwrite and dataset in user_datasets(fo)
    is_new = replaces or dataset not in user_datasets(fo)
    # a new dataset is filled under a temporary, non-persistent name and renamed when
    # complete: a failed ingest deletes it; a killed one's is deleted by the next command
    # once this ingest's lock is gone (its name carries the lock's owner)
    if is_new:
        partial = partial_dataset_name(lock) if lock else f"{PARTIAL_PREFIX}{uuid.uuid4().hex}"
    ds = fo.Dataset(partial) if is_new else fo.load_dataset(dataset)
    run = uuid.uuid4().hex
    relabels: list[_Relabel] = []
    relabelled = False
    try:
        _declare_fields(fo, ds, frames=any(it.fields for it in items))
        _unique_ingest_keys(ds)
        existing = set(ds.distinct("ingest_key"))
        # samples from before source_path was recorded: the same old key and the same bytes
        legacy = {
            (k, sha)
            for k, sha, where in zip(
                *ds.values(["ingest_key", "sha256", "source_path"]), strict=True
            )
            if not where
        }
        new = []
        stored: dict[str, Item] = {}  # key -> item, for the items already in the dataset
        new_keys: set[str] = set()
        for it in items:
            sha = scans[it.filepath].sha256
            k = it.key(sha)
            if k not in existing and (it.legacy_key(), sha) not in legacy:
                existing.add(k)  # the same record twice in one source is one sample
                new_keys.add(k)
                new.append((it, k))
            elif k not in new_keys:
                stored.setdefault(k, it)
        # a source that now labels a stored sample otherwise (a corrected label file,
        # another --margin): the sample must not keep the old label while the summary
        # says "already there"
        relabels = [] if is_new else _relabels(ds, stored)
        gone = []
        if not is_new and no_longer_labelled is not None:
            gone = no_longer_labelled(ds, {*stored, *(k for _, k in new)})
        # a frame stored from a label file under another name is the same frame: already
        # there, and, labelled otherwise now, relabelled like a corrected file's frame
        elsewhere = {} if is_new else _frames_stored_elsewhere(ds, new, scans)
        moved: list[str] = []
        for it, k in new:
            new_labels = _labels_of(it.answers, it.tags, it.fields)
            for sid, where, old in elsewhere.get(k, []):
                if old != new_labels:
                    relabels.append(_Relabel(sid, it.original_id, old, new_labels))
                    moved.append(where)
        new = [(it, k) for it, k in new if k not in elsewhere]
        if (relabels or gone) and not relabel:
            raise DataError(_relabel_refusal(dataset, relabels, gone, moved))
        samples = [
            _sample(fo, it, k, scans[it.filepath].sha256, scans[it.filepath].phash, run)
            for it, k in new
        ]
        if samples:
            # every field is declared above, so FiftyOne's per-sample validation is redundant
            try:
                ds.add_samples(samples, expand_schema=False, validate=False, progress=False)
            except (BulkWriteError, DuplicateKeyError, ValueError) as exc:
                if not _duplicate_key(exc):
                    raise
                raise DataError(
                    f"dataset {dataset!r}: another writer added some of these samples at the "
                    f"same time ({type(exc).__name__}); nothing of this run was kept. Fix: "
                    "run the ingest again (it adds only what is missing)."
                ) from None
        relabelled = True  # from here on, a failure puts the stored labels back
        _apply_relabels(ds, relabels, new=True)
        if lock is not None:
            lock.check()  # never commit after losing the lock
        if gone:  # the one step not taken back: last, after every other write held
            ds.delete_samples([sid for sid, _, _ in gone])
        if is_new:
            if replaces:
                fo.delete_dataset(dataset)
            # persistent first: killed between the two, it is a partial dataset still
            ds.persistent = True
            try:
                ds.name = dataset
            except ValueError as exc:  # created meanwhile by another process
                raise UsageError(
                    f"--dataset {dataset!r} could not be created: {exc}. Fix: run again "
                    "(it now adds to that dataset) or pick another name"
                ) from None
    except BaseException:
        if is_new:
            with contextlib.suppress(Exception):
                ds.delete()
        else:
            # add_samples writes in batches: take back whatever this run wrote
            from fiftyone import ViewField as F

            if relabelled:
                _apply_relabels(ds, relabels, new=False)
            ds.delete_samples(ds.match(F("ingest_run") == run))
        raise
    return new, ds, len(relabels), len(gone)


SAMPLE_FIELDS = {
    "question": "StringField",
    "answers": "ListField",
    "answer": "StringField",
    "source": "StringField",
    "original_id": "StringField",
    "part": "StringField",
    "split": "StringField",
    "answer_type": "StringField",
    "label_provenance": "StringField",
    "sha256": "StringField",
    "phash": "StringField",
    "source_path": "StringField",
    "ingest_key": "StringField",
    "ingest_run": "StringField",
}


def _duplicate_key(exc: Exception) -> bool:
    """Whether a write failed on the unique ``ingest_key`` index (FiftyOne re-raises
    pymongo's BulkWriteError as a ValueError holding the server's E11000 message)."""
    from pymongo.errors import BulkWriteError, DuplicateKeyError

    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return {e.get("code") for e in exc.details.get("writeErrors", [])} == {11000}
    return "E11000 duplicate key" in str(exc)


def _unique_ingest_keys(ds: Any) -> None:
    """A unique index on ``ingest_key``: the database itself refuses a second copy."""
    from pymongo.errors import PyMongoError

    # a dataset from before keys were unique may hold repeats: it keeps the lock alone
    with contextlib.suppress(PyMongoError):
        ds.create_index(
            "ingest_key",
            unique=True,
            partialFilterExpression={"ingest_key": {"$type": "string"}},
        )


def _declare_fields(fo: Any, ds: Any, frames: bool = False) -> None:
    """Declare every field up front: FiftyOne skips a field whose values are all None."""
    from curation.class_map import FRAME_FIELDS

    schema = ds.get_field_schema()
    for name, kind in {**SAMPLE_FIELDS, **(FRAME_FIELDS if frames else {})}.items():
        if name not in schema:
            if kind == "ListField":
                ds.add_sample_field(name, fo.ListField, subfield=fo.StringField)
            else:
                ds.add_sample_field(name, getattr(fo, kind))


def _sample(fo: Any, it: Item, key: str, sha256: str, phash: str, run: str) -> Any:
    return fo.Sample(
        filepath=str(it.filepath),
        tags=list(it.tags),
        question=it.question,
        answers=it.answers,
        answer=it.answers[0] if it.answers else None,
        source=it.source,
        original_id=it.original_id,
        part=it.part,
        split=it.split,
        answer_type=it.answer_type,
        label_provenance=it.provenance,
        sha256=sha256,
        phash=phash,
        source_path=it.source_path,
        ingest_key=key,
        ingest_run=run,
        **it.fields,
    )
