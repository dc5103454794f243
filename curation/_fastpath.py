"""The fast path of ``validate``: decode a well-formed file at C speed.

``msgspec`` decodes and type-checks the whole array in C; the rules msgspec
cannot express (blank strings, safe image paths) are checked over whole
columns with C-level string operations. Anything unexpected returns None and
the caller checks record by record (``split_records`` + ``decode_record``),
handing only the records msgspec refuses to the pydantic model, the reference
implementation of the contract, which reports each problem precisely. A
property test checks that the paths and the model accept the same records.

Answers stay raw JSON slices (checked chunk by chunk, decoded again only where
needed) and equal strings share one object: ten answer strings a record would
otherwise cost more memory than the file itself.

The cyclic garbage collector is paused while decoding: the decoded records
hold no cycles, and on a VQAv2-size file its repeated full scans of the
millions of new objects cost more than the parsing itself.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Annotated, Any, NamedTuple

import msgspec

from curation.schemas.annotation import MAX_NAME, image_path_problem

_Str = Annotated[str, msgspec.Meta(min_length=1)]


class _LazyRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A record whose answers stay raw JSON: ten small strings a record would cost
    more memory than the file itself; they are checked chunk by chunk instead.

    ``question``/``question_id`` are LAVIS's coco-vqa keys: they stand in for
    ``text_input``/``instance_id`` where a record has only those (an export has both).
    """

    image: _Str
    answer: msgspec.Raw
    instance_id: int | _Str | None = None
    text_input: _Str | None = None
    question: _Str | None = None
    question_id: int | _Str | None = None


_Answers = Annotated[list[_Str], msgspec.Meta(min_length=1)]
_DECODER = msgspec.json.Decoder(list[_LazyRecord])
_ANSWER = msgspec.json.Decoder(_Answers)
_ANSWER_LISTS = msgspec.json.Decoder(list[_Answers])
#: answers checked this many records at a time (bounds the strings alive at once)
_ANSWER_CHUNK = 1 << 15
_RECORD = msgspec.json.Decoder(_LazyRecord)
#: the array split into one raw JSON slice per record (no Python objects built)
_RAW_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])
#: a line that starts with white space: the only place a blank (non-empty) string can be
_STARTS_BLANK = re.compile(r"\n\s")
#: control characters image_path_problem() rejects (the joiner "\n" is counted apart)
_PATH_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


@dataclass(slots=True)
class Columns:
    """The valid records of a file, column by column (``index[i]`` = position in the file)."""

    index: list[int] | range
    instance_id: list[int | str]
    image: list[str]
    text_input: list[str]
    answer: RawAnswers
    #: the first answer of each record (the label)
    first_answer: list[str]

    @classmethod
    def empty(cls) -> Columns:
        return cls([], [], [], [], RawAnswers(), [])

    def append(
        self,
        index: int,
        instance_id: int | str,
        image: str,
        text: str,
        answer: list[str] | msgspec.Raw,
        first: str | None = None,
    ) -> None:
        """Add one valid record (``answer`` raw JSON with its ``first`` answer, or a list)."""
        if isinstance(self.index, range):
            raise TypeError("columns built from a clean file take no more records")
        if first is None:
            if isinstance(answer, msgspec.Raw):
                raise TypeError("raw answers are added with their first answer")
            first = answer[0]
        self.index.append(index)
        self.instance_id.append(instance_id)
        self.image.append(image)
        self.text_input.append(text)
        self.answer.append(answer)
        self.first_answer.append(first)

    def __len__(self) -> int:
        return len(self.index)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees memory)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class RawAnswers(Sequence[list[str]]):
    """Answer lists kept as raw JSON (or as lists), each decoded when it is read."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any] | None = None) -> None:
        self._items = items if items is not None else []

    def __len__(self) -> int:
        return len(self._items)

    # ignore: Sequence's also takes a slice; nothing slices the answers, and testing for
    # one would cost on every read
    def __getitem__(self, i: int) -> list[str]:  # type: ignore[override]
        item = self._items[i]
        return _ANSWER.decode(item) if isinstance(item, msgspec.Raw) else item

    def append(self, item: Any) -> None:
        self._items.append(item)


def decode_clean(data: bytes) -> Columns | None:
    """Columns of a file whose every record passes the contract, else None.

    Call it inside ``gc_paused()`` together with the work on the columns.
    """
    try:
        records = _DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not records:
        return None
    ids = list(map(attrgetter("instance_id"), records))
    texts = list(map(attrgetter("text_input"), records))
    if not _lavis_keys_fit(records, ids, texts):
        return None
    raw_answers = list(map(attrgetter("answer"), records))
    cols = Columns(
        range(len(records)),
        ids,
        _shared(map(attrgetter("image"), records)),
        _shared(texts),
        RawAnswers(raw_answers),
        [],
    )
    del records
    if set(map(type, cols.instance_id)) != {int} and any(map(_blank, cols.instance_id)):
        return None
    if any(map(str.isspace, cols.text_input)) or any(map(str.isspace, cols.image)):
        return None
    labels: dict[str, str] = {}  # one string object per distinct label
    for start in range(0, len(raw_answers), _ANSWER_CHUNK):
        chunk = raw_answers[start : start + _ANSWER_CHUNK]
        try:
            answers = _ANSWER_LISTS.decode(b"[" + b",".join(chunk) + b"]")
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return None
        # strings are non-empty, so a blank one starts with white space: search the joined
        # text for that first and test each answer only when it could be there
        joined = "\n" + "\n".join(chain.from_iterable(answers))
        if _STARTS_BLANK.search(joined) and any(map(str.isspace, chain.from_iterable(answers))):
            return None
        firsts = list(map(itemgetter(0), answers))
        cols.first_answer.extend(map(labels.setdefault, firsts, firsts))
        del answers, joined, firsts
    joined = "\n" + "\n".join(cols.image) + "\n"
    # a cheap superset of image_path_problem(): the slow path decides precisely
    if (
        "\\" in joined
        or "\n/" in joined
        or "/\n" in joined
        or ":" in joined
        or "/../" in joined.replace("\n", "/")
        or joined.count("\n") != len(cols.image) + 1  # a newline inside a path
        or _has_control(joined)
        # a superset of "path or one of its names too long": the slow path decides
        or max(map(len, cols.image)) > MAX_NAME
    ):
        return None
    return cols


def _lavis_keys_fit(
    records: Sequence[_LazyRecord], ids: list[int | str | None], texts: list[str | None]
) -> bool:
    """Fill ``ids``/``texts`` from ``question_id``/``question`` where a record has only
    those; False where one is missing, blank, or a ``question`` differs from its
    ``text_input`` (the record-by-record path names it). C-speed when they are absent."""
    questions = list(map(attrgetter("question"), records))
    question_ids = list(map(attrgetter("question_id"), records))
    no_questions = questions.count(None) == len(questions)
    if no_questions and question_ids.count(None) == len(question_ids):
        return None not in ids and None not in texts
    for i, (q, qid) in enumerate(zip(questions, question_ids, strict=True)):
        if (q is not None and q.isspace()) or (qid is not None and _blank(qid)):
            return False
        if ids[i] is None:
            ids[i] = qid
        if texts[i] is None:
            texts[i] = q
        elif q is not None and q != texts[i]:
            return False
    return None not in ids and None not in texts


def _shared(strings: Iterable[str]) -> list[str]:
    """The strings, equal ones as one object: a task file asks one question thousands of
    times, and VQAv2 asks about each image about five times (C-speed, no Python loop)."""
    cache: dict[str, str] = {}
    items = list(strings)
    return list(map(cache.setdefault, items, items))


def split_records(data: bytes) -> list[msgspec.Raw] | None:
    """The top-level array as one raw slice per record, or None when msgspec cannot split it.

    None means invalid JSON, NaN/Infinity, a lone surrogate, very deep nesting or not
    an array: the caller's reference path (``json.loads``) says which.
    """
    try:
        return _RAW_RECORDS.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


class CheckedRecord(NamedTuple):
    """A record that passed the contract, its LAVIS keys resolved."""

    instance_id: int | str
    image: str
    text_input: str
    #: the answers, still raw JSON (as on the fast path)
    answer: msgspec.Raw
    #: the first answer (the label)
    first: str


def decode_record(raw: msgspec.Raw) -> CheckedRecord | None:
    """One record checked against the whole contract, with its first answer; else None."""
    try:
        rec = _RECORD.decode(raw)
        answers = _ANSWER.decode(rec.answer)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    ids, texts = [rec.instance_id], [rec.text_input]
    if not _lavis_keys_fit([rec], ids, texts):
        return None
    instance_id, text = ids[0], texts[0]
    if (
        instance_id is None  # never: _lavis_keys_fit fills both or returns False
        or text is None
        or _blank(instance_id)
        or text.isspace()
        or rec.image.isspace()
        or any(map(str.isspace, answers))
        or image_path_problem(rec.image) is not None
    ):
        return None
    return CheckedRecord(instance_id, rec.image, text, rec.answer, answers[0])


def _has_control(joined: str) -> bool:
    """A control character other than the joiner "\\n" (str.isprintable is C-fast for ASCII)."""
    if joined.isascii():
        return not joined.replace("\n", "").isprintable()
    return _PATH_CONTROL.search(joined) is not None


def _blank(value: int | str) -> bool:
    return isinstance(value, str) and value.isspace()
