"""General VQA sources for `curate mix`, picked by name from a registry; all read local files.

Each loader returns a ``GeneralPool``: light rows (question, answers, image,
id, answer type) that ``curate mix`` samples from. Nothing is downloaded: a
missing file gets an error naming it and where users get it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from curation._fastpath import gc_paused
from curation.answers import answer_type_of
from curation.errors import DataError, UsageError
from curation.record_types import GeneralPool, PoolRow

WHERE = {
    "vqav2": "visualqa.org (v2_OpenEnded_mscoco_<split>_questions.json, "
    "v2_mscoco_<split>_annotations.json) and cocodataset.org (the <split> image zip)",
    "lavis_vqa": "LAVIS's dataset download script (coco/annotations/vqa_train.json)",
    "hf": "a Hugging Face dataset saved with Dataset.save_to_disk() on a machine with internet",
}


def _need(path: str | Path, what: str, source: str, folder: bool = False) -> Path:
    from curation._io import not_a_file, path_kind

    path = Path(path)
    kind = path_kind(path, what)
    if not folder and kind in ("dir", "special"):  # /dev/zero would be read without end
        raise UsageError(f"{what} {path} {not_a_file(kind)}. Get it from {WHERE[source]}.")
    if kind != ("dir" if folder else "file"):
        raise UsageError(f"{what} not found: {path}. Get it from {WHERE[source]}.")
    return path


class _Question(msgspec.Struct, gc=False):
    image_id: int
    question: str
    question_id: int


class _Questions(msgspec.Struct):
    questions: list[_Question]
    data_subtype: str = ""


class _Answer(msgspec.Struct):
    answer: str


class _Annotation(msgspec.Struct, gc=False):
    question_id: int
    image_id: int
    answers: msgspec.Raw  # ten answers: decoded only for the records a mix picks
    multiple_choice_answer: str = ""
    answer_type: str = ""


class _Annotations(msgspec.Struct):
    annotations: list[_Annotation]


def _decode(path: Path, kind: type, what: str) -> Any:
    try:
        with gc_paused():
            return msgspec.json.decode(path.read_bytes(), type=kind)
    except msgspec.ValidationError as exc:
        raise DataError(f"{path}: not a VQAv2 {what} file: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc}") from None


def load_vqav2(questions: str | Path, annotations: str | Path, images: str | Path) -> GeneralPool:
    """Official VQAv2: questions JSON + annotations JSON + a COCO image folder.

    Images are ``COCO_<data_subtype>_<12-digit image id>.jpg``; each record
    keeps the ten human answers (LAVIS's VQA format) and VQAv2's answer type.
    """
    qpath = _need(questions, "VQAv2 questions file", "vqav2")
    apath = _need(annotations, "VQAv2 annotations file", "vqav2")
    root = _need(images, "COCO image folder", "vqav2", folder=True)
    qs = _decode(qpath, _Questions, "questions")
    anns = _decode(apath, _Annotations, "annotations")
    subtype = qs.data_subtype or _guess_subtype(root)
    by_id = {a.question_id: a for a in anns.annotations}
    rows = []
    prefix = f"{root}{os.sep}COCO_{subtype}_"
    with gc_paused():
        for q in qs.questions:
            a = by_id.get(q.question_id)
            if a is None:
                raise DataError(
                    f"{apath}: no annotation for question_id {q.question_id} "
                    f"(from {qpath}); the two files must be the same split"
                )
            kind = a.answer_type or answer_type_of((a.multiple_choice_answer or "?",))
            rows.append(
                PoolRow(
                    q.question,
                    a.answers,
                    f"{prefix}{q.image_id:012d}.jpg",
                    str(q.question_id),
                    kind,
                    "vqav2",
                )
            )
    return GeneralPool("vqav2", rows, [qpath, apath], [root])


def _guess_subtype(root: Path) -> str:
    for entry in os.scandir(root):
        parts = entry.name.split("_")
        if entry.name.startswith("COCO_") and len(parts) == 3:
            return parts[1]
    raise DataError(
        f"{root}: no COCO_<split>_<id>.jpg image found, and the questions file "
        "has no data_subtype to name the split"
    )


class _LavisRecord(msgspec.Struct):
    question_id: int | str
    question: str
    answer: list[str]
    image: str


def load_lavis_vqa(annotation_file: str | Path, images: str | Path) -> GeneralPool:
    """LAVIS's own coco-vqa annotation format (``question_id``, ``question``, ``answer``, ``image``)."""
    path = _need(annotation_file, "LAVIS VQA annotation file", "lavis_vqa")
    root = _need(images, "image folder", "lavis_vqa", folder=True)
    try:
        with gc_paused():
            recs = msgspec.json.decode(path.read_bytes(), type=list[_LavisRecord])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DataError(f"{path}: not a LAVIS coco-vqa annotation file: {exc}") from None
    rows = [
        PoolRow(
            r.question,
            tuple(r.answer),
            str(root / r.image),
            str(r.question_id),
            answer_type_of(r.answer),
            "lavis_vqa",
        )
        for r in recs
        if r.answer
    ]
    return GeneralPool("lavis_vqa", rows, [path], [root])


EASY_VQA_SPLITS = ("train", "test")


def load_easy_vqa(split: str = "train") -> GeneralPool:
    """easy-VQA (its PyPI package ships 5,000 real images and 48,248 questions)."""
    try:
        import easy_vqa
    except ImportError:
        raise UsageError(
            "the easy-vqa package is not installed. Fix: pip install easy-vqa"
        ) from None
    if split not in EASY_VQA_SPLITS:
        raise UsageError(
            f"easy-VQA split must be one of {', '.join(EASY_VQA_SPLITS)}, got {split!r}"
        )
    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    rows = [
        PoolRow(q, (a,), paths[i], f"{split}-{n}", answer_type_of((a,)), "easy_vqa")
        for n, (q, a, i) in enumerate(zip(questions, answers, image_ids, strict=True))
    ]
    data_dir = Path(easy_vqa.__file__).parent / "data" / split
    return GeneralPool(
        "easy_vqa",
        rows,
        sorted(data_dir.glob("*.json")),
        sorted({Path(p).parent for p in paths.values()}),
    )


def load_hf_dataset(path: str | Path, columns: dict[str, str] | None = None) -> GeneralPool:
    """A Hugging Face dataset saved with ``save_to_disk``; ``columns`` maps ours to its names.

    Our names: ``question``, ``answers`` (a string or a list of strings), ``image``
    (a file path, or an Image feature whose files are written once to a cache).
    """
    folder = _need(path, "saved Hugging Face dataset folder", "hf", folder=True)
    try:
        from datasets import Image as ImageFeature
        from datasets import load_from_disk
    except ImportError:
        raise UsageError(
            "this needs the 'datasets' package. Fix: pip install 'falldown-curate[datasets]'"
        ) from None
    cols = {
        "question": "question",
        "answers": "answers",
        "image": "image",
        "id": "",
        **(columns or {}),
    }
    try:
        ds = load_from_disk(str(folder))
    except (OSError, ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(
            f"{folder}: not a Hugging Face dataset saved with save_to_disk() "
            f"({type(exc).__name__}: {exc}). Fix: point --hf-dataset at the folder "
            "Dataset.save_to_disk() (or DatasetDict.save_to_disk()) wrote."
        ) from None
    if hasattr(ds, "keys"):  # a DatasetDict: use its train split
        ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
    missing = [f"{k}->{v}" for k, v in cols.items() if v and v not in ds.column_names]
    if missing:
        raise UsageError(
            f"{folder}: column(s) not found: {', '.join(missing)}; the data set "
            f"has {ds.column_names}. Fix: --hf-columns question=COL,answers=COL,"
            "image=COL"
        )
    is_image = isinstance(ds.features[cols["image"]], ImageFeature)
    if is_image:
        ds = ds.cast_column(cols["image"], ImageFeature(decode=False))
        cache = _hf_cache(folder)
    rows = []
    for n, item in enumerate(ds):
        answers = item[cols["answers"]]
        if isinstance(answers, str):
            answers = (answers,)
        elif isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers):
            answers = tuple(answers)
        else:
            raise DataError(
                f"{folder} record #{n}: column {cols['answers']!r} (answers) holds "
                f"{answers!r:.80}; expected a string or a non-empty list of strings. "
                "Fix: --hf-columns answers=COLUMN naming the answer column"
            )
        question = item[cols["question"]]
        if not isinstance(question, str) or not question.strip():
            raise DataError(
                f"{folder} record #{n}: column {cols['question']!r} (question) holds "
                f"{question!r:.80}; expected a non-empty string. "
                "Fix: --hf-columns question=COLUMN naming the question column"
            )
        image = item[cols["image"]]
        if is_image:
            image = _materialise(image, cache, n)
        elif not isinstance(image, str):
            raise DataError(
                f"{folder} record #{n}: column {cols['image']!r} (image) holds {image!r:.80}; "
                "expected a file path or an Image feature. Fix: --hf-columns image=COLUMN"
            )
        rid = str(item[cols["id"]]) if cols["id"] else str(n)
        rows.append(PoolRow(question, answers, str(image), rid, answer_type_of(answers), "hf"))
    return GeneralPool("hf", rows, sorted(folder.glob("*.json")), [folder])


def _hf_cache(folder: Path) -> Path:
    import hashlib

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = base / "falldown-curate" / "hf-images" / key
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _materialise(image: dict[str, Any], cache: Path, n: int) -> Path:
    if image.get("path") and Path(image["path"]).is_file():
        return Path(image["path"])
    data = image.get("bytes")
    if not data:
        raise DataError(f"record {n}: the image column holds neither a file nor bytes")
    suffix = Path(image.get("path") or "x.png").suffix or ".png"
    target = cache / f"{n:08d}{suffix}"
    if not target.exists():
        from curation._io import atomic_write_bytes

        atomic_write_bytes(target, data)
    return target


SOURCES: dict[str, Callable[..., GeneralPool]] = {
    "vqav2": load_vqav2,
    "lavis_vqa": load_lavis_vqa,
    "easy_vqa": load_easy_vqa,
    "hf": load_hf_dataset,
}


def load_source(name: str, **kwargs: Any) -> GeneralPool:
    """Load a general VQA source by registry name; an unknown name lists the valid ones."""
    try:
        loader = SOURCES[name]
    except KeyError:
        raise UsageError(
            f"unknown VQA source {name!r}; choose one of: {', '.join(SOURCES)}"
        ) from None
    return loader(**kwargs)


def parse_columns(text: str | None) -> dict[str, str]:
    """``question=q,answers=a,image=img`` -> mapping (for --hf-columns)."""
    if not text:
        return {}
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise UsageError(
            f"--hf-columns {text!r}: expected ours=theirs pairs, e.g. "
            "question=q,answers=a,image=img"
        )
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass(frozen=True)
class GeneralSources:
    """The general VQA sources of a mix, as a user names them (any number, or none).

    ``load()`` reads each one that is named; a half-named source is a usage
    error that says what is missing.
    """

    vqav2_questions: Path | None = None
    vqav2_annotations: Path | None = None
    vqav2_images: Path | None = None
    lavis_vqa: Path | None = None
    lavis_vqa_images: Path | None = None
    easy_vqa: bool = False
    easy_vqa_split: str = "train"
    hf_dataset: Path | None = None
    hf_columns: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse a half-named source before anything is read.

        Raises:
            UsageError: a source named without the files it needs, or an unknown split.
        """
        vqav2 = [self.vqav2_questions, self.vqav2_annotations, self.vqav2_images]
        if any(vqav2) and not all(vqav2):
            raise UsageError(
                "VQAv2 needs --vqav2-questions, --vqav2-annotations and --vqav2-images together"
            )
        if self.lavis_vqa is not None and self.lavis_vqa_images is None:
            raise UsageError("--lavis-vqa needs --lavis-vqa-images DIR")
        if self.easy_vqa_split not in EASY_VQA_SPLITS:
            raise UsageError(
                f"--easy-vqa-split must be one of {', '.join(EASY_VQA_SPLITS)}, "
                f"got {self.easy_vqa_split!r}"
            )

    def load(self) -> list[GeneralPool]:
        """One pool per named source, in a fixed order (VQAv2, LAVIS, HF, easy-VQA)."""
        self.check()
        pools = []
        if self.vqav2_questions is not None:
            pools.append(
                load_source(
                    "vqav2",
                    questions=self.vqav2_questions,
                    annotations=self.vqav2_annotations,
                    images=self.vqav2_images,
                )
            )
        if self.lavis_vqa is not None:
            pools.append(
                load_source(
                    "lavis_vqa", annotation_file=self.lavis_vqa, images=self.lavis_vqa_images
                )
            )
        if self.hf_dataset is not None:
            pools.append(load_source("hf", path=self.hf_dataset, columns=self.hf_columns))
        if self.easy_vqa:
            pools.append(load_source("easy_vqa", split=self.easy_vqa_split))
        return pools
