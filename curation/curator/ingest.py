"""`curate ingest`: put images with their question and answer into a FiftyOne dataset.

Sources: a raw folder with one sub-folder per label (``fall/`` = "yes",
``no_fall/`` = "no", optional ``unsure/``), a LAVIS annotation file (the
contract) with its image root, or easy-VQA (general VQA). Every image is
opened and hashed before anything is added, so bad input adds nothing.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.curator._fo import fiftyone
from curation.errors import DataError, UsageError
from curation.images import scan_images
from curation.schemas.questions import TASK_QUESTION

LABEL_FOLDERS = {"fall": "yes", "no_fall": "no", "unsure": None}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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

    @property
    def key(self) -> str:
        """Identity for idempotent re-ingest: the same source record is the same sample."""
        return hashlib.sha1(
            f"{self.source}\0{self.original_id}\0{self.question}".encode()
        ).hexdigest()


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


def items_from_folder(folder: Path, questions: Sequence[str], seed: int) -> list[Item]:
    """``folder/fall``, ``folder/no_fall`` (and ``folder/unsure``) -> items."""
    if not folder.is_dir():
        raise UsageError(f"folder not found: {folder}")
    present = [name for name in LABEL_FOLDERS if (folder / name).is_dir()]
    if not {"fall", "no_fall"} & set(present):
        raise DataError(
            f"{folder} has neither a fall/ nor a no_fall/ sub-folder. Fix: put "
            "images of people falling in fall/ and others in no_fall/"
        )
    items = []
    for name in present:
        files = sorted(
            p
            for p in (folder / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"{folder / name} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        answer = LABEL_FOLDERS[name]
        for path in files:
            rel = path.relative_to(folder).as_posix()
            q = random.Random(f"{seed}:{rel}").choice(list(questions))
            items.append(
                Item(
                    path.resolve(),
                    q,
                    [answer] if answer else [],
                    f"folder:{folder.name}",
                    rel,
                    "folder",
                    answer_type="yes/no",
                    tags=[] if answer else ["unsure"],
                )
            )
    return items


def items_from_file(path: Path, image_root: Path | None) -> list[Item]:
    from curation.validate import load_records, require_valid

    root = image_root or path.parent
    require_valid(path, root, action="nothing was ingested")
    from curation.answers import answer_type_of

    split = path.stem if path.stem in ("train", "val", "test") else None
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
) -> IngestResult:
    """Add a source to the persistent FiftyOne dataset ``dataset`` (idempotently).

    ``source`` is a folder, a LAVIS annotation file, or ``easy-vqa[:train|test]``.
    """
    import time

    text = str(source)
    if text.startswith("easy-vqa"):
        items = items_from_easy_vqa(text.partition(":")[2] or "train", max_records, seed)
    elif Path(text).is_dir():
        items = items_from_folder(Path(text), questions, seed)
    elif Path(text).is_file():
        items = items_from_file(Path(text), Path(image_root) if image_root else None)
    else:
        raise UsageError(f"source not found: {text} (a folder, an annotation file, or easy-vqa)")

    t0 = time.perf_counter()
    try:
        import imagehash  # noqa: F401
    except ImportError:
        raise UsageError(
            "this needs imagehash. Fix: pip install 'falldown-curate[fiftyone]'"
        ) from None
    scans = scan_images([it.filepath for it in items])
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

    fo = fiftyone()
    if dataset in fo.list_datasets() and overwrite:
        fo.delete_dataset(dataset)
    ds = fo.load_dataset(dataset) if dataset in fo.list_datasets() else fo.Dataset(dataset)
    ds.persistent = True
    _declare_fields(fo, ds)
    existing = set(ds.distinct("ingest_key"))
    new = [it for it in items if it.key not in existing]
    t1 = time.perf_counter()  # FiftyOne's import and database start are not counted
    run = uuid.uuid4().hex
    samples = [
        _sample(fo, it, scans[it.filepath].sha256, scans[it.filepath].phash, run) for it in new
    ]
    try:
        if samples:
            # every field is declared above, so FiftyOne's per-sample validation is redundant
            ds.add_samples(samples, expand_schema=False, validate=False, progress=False)
    except BaseException:
        # add_samples writes in batches: take back whatever this run wrote
        from fiftyone import ViewField as F

        ds.delete_samples(ds.match(F("ingest_run") == run))
        raise
    t2 = time.perf_counter()
    return IngestResult(
        dataset,
        text,
        len(new),
        len(items) - len(new),
        len(ds),
        unsure=sum("unsure" in it.tags for it in new),
        hash_seconds=hash_seconds,
        add_seconds=t2 - t1,
    )


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
    "ingest_key": "StringField",
    "ingest_run": "StringField",
}


def _declare_fields(fo: Any, ds: Any) -> None:
    """Declare every field up front: FiftyOne skips a field whose values are all None."""
    schema = ds.get_field_schema()
    for name, kind in SAMPLE_FIELDS.items():
        if name not in schema:
            if kind == "ListField":
                ds.add_sample_field(name, fo.ListField, subfield=fo.StringField)
            else:
                ds.add_sample_field(name, getattr(fo, kind))


def _sample(fo: Any, it: Item, sha256: str, phash: str, run: str) -> Any:
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
        ingest_key=it.key,
        ingest_run=run,
    )
