"""`curate ingest LABELS --videos DIR`: cut labelled frames out of videos into the task dataset.

Label sources, told apart by their header:

- OmniFall's segment CSV ``path,label,start,end,subject,cam,dataset`` (``label``
  a class id or name, times in seconds, ``subject`` -1 when unknown); videos at
  ``{videos}/{dataset}/video/{path}.mp4``.
- A generic segment file, CSV or JSON (a list of objects): ``video`` (relative
  to ``--videos``, with its extension), ``label`` (a class name or id),
  ``start``/``end`` in seconds or ``start_frame``/``end_frame`` (frame numbers
  from 0, both inclusive), optional ``subject``, ``camera``, ``dataset``.
- A folder of whole clips: ``fall/`` ("yes"), ``no_fall/`` and
  ``no_fall/<kind>/`` ("no", with that ``negative_kind``), ``unsure/``.

The class map (``curation.class_map``) turns a class into "yes", "no" (with its
``negative_kind``) or unsure. Frames are sampled at ``fps`` (the first frame at
or after each k/fps, by exact presentation time; ``FrameSampler``) or every n-th
frame; a frame less than ``margin`` seconds from a boundary between segments,
or in two segments whose answers differ, or in an "unsure" class, is kept
without an answer and tagged ``unsure`` (out of exports until a reviewer tags
``relabel:yes``/``relabel:no``), except the middle frame of a "yes" segment,
which keeps its answer; a frame in no segment is not ingested. Each
frame is a JPEG named by its video's content and frame index, so re-ingest
writes and adds nothing new; the frames join the task dataset through
``ingest.add_items`` (the images' own checks and hashes) and each video, with
its segments as ``TemporalDetections``, joins the sibling dataset
``NAME-videos`` for the App's video player.

Decoding is PyAV's (FFmpeg's libraries in the wheel, extra ``video``):
FiftyOne's own frame sampling (``fiftyone.utils.video``) shells out to the
``ffmpeg`` and ``ffprobe`` binaries, which no pip package installs together.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import io
import math
import os
import random
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from curation._io import atomic_write_bytes, is_within, path_kind, real_path, sha256_file
from curation.class_map import ClassMap, ClassRule, load_class_map
from curation.curator.ingest import (
    IngestResult,
    Item,
    _folder_file_problem,
    add_items,
    label_of_folder,
)
from curation.errors import DataError, UsageError, require
from curation.images import ImageScan, name_form_mismatch
from curation.schemas.questions import TASK_QUESTION

OMNIFALL_COLUMNS = ("path", "label", "start", "end", "subject", "cam", "dataset")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
#: Default sampling rate (frames per second of video) and boundary margin (seconds).
DEFAULT_FPS = 2.0
DEFAULT_MARGIN = 0.5
#: The highest --fps taken (high-speed cameras film at a few thousand frames per second).
MAX_FPS = 10_000.0
#: JPEG quality of the frame files (LAVIS reads plain image files).
JPEG_QUALITY = 95
_SHOWN = 10


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One labelled segment of one video, as the label file gives it."""

    where: str  # "labels.csv row 3" for messages
    video: str  # relative to the videos root, with its extension
    start: float
    end: float  # math.inf: to the end of the video (a whole clip)
    in_frames: bool  # start/end are frame numbers (end inclusive)
    name: str
    rule: ClassRule
    subject: str | None = None
    camera: str | None = None
    source_dataset: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedVideo:
    video: str
    reason: str


@dataclass
class VideoIngestResult:
    """What ``ingest_videos`` did (``ingest`` is the frames' ordinary ingest result)."""

    ingest: IngestResult
    format: str  # "omnifall" | "generic-csv" | "generic-json" | "clip-folder"
    videos: int
    frames: int  # frames sampled inside a segment (labelled or unsure)
    unsure: int
    unlabelled: int  # sampled frames in no segment: not ingested
    frames_dir: str
    videos_dataset: str
    skipped: list[SkippedVideo] = field(default_factory=list)
    decode_seconds: float = 0.0
    #: per class (``activity``): sampled frames labelled and unsure
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    #: each "yes" segment that gave no labelled frame, named with the reason and the fix
    empty_yes: list[str] = field(default_factory=list)


class _VideoProblem(Exception):
    """A video that cannot be used (skippable with --skip-bad)."""


def is_video_source(source: str | Path) -> bool:
    """True for a segment CSV (by its header) and a folder whose label folders hold videos."""
    folder = Path(source)
    kind = path_kind(folder, "SOURCE")
    if kind == "file" and folder.suffix.lower() == ".csv":
        try:
            with folder.open("rb") as fh:
                head = fh.readline(4096).decode("utf-8-sig", "replace").strip().lower()
        except OSError:
            return False
        header = {h.strip() for h in head.split(",")}
        # a spreadsheet's "CSV" separated by ";" is a segment file too (refused with the fix)
        return (
            set(OMNIFALL_COLUMNS) <= header
            or {"video", "label"} <= header
            or _other_delimiter(head) is not None
        )
    if kind != "dir":
        return False
    found = False
    for sub in folder.iterdir():
        if sub.is_dir() and not sub.name.startswith(".") and label_of_folder(sub.name)[0]:
            for p in sub.rglob("*"):
                if p.suffix.lower() in VIDEO_SUFFIXES:
                    found = True
                elif p.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                    return False
    return found


# --- reading the label file -------------------------------------------------------------

_DELIMITER_NAMES = {";": "semicolons (';')", "\t": "tabs", "|": "bars ('|')"}


def _other_delimiter(header: str) -> str | None:
    """The separator other than ',' that makes ``header`` a segment file's header, if any
    (spreadsheets in locales with a decimal comma save "CSV" with ';')."""
    for delimiter in _DELIMITER_NAMES:
        cells = {c.strip().strip('"').lower() for c in header.split(delimiter)}
        if set(OMNIFALL_COLUMNS) <= cells or {"video", "label"} <= cells:
            return delimiter
    return None


def _refuse_other_delimiter(labels: Path, header: str) -> None:
    """A segment file separated by ';' (or tabs): one error naming the separator and the fix."""
    delimiter = _other_delimiter(header)
    if delimiter is None:
        return
    raise DataError(
        f"{labels}: the columns are separated by {_DELIMITER_NAMES[delimiter]}, not commas "
        "(a spreadsheet saved in a locale with decimal commas does that); nothing was "
        "ingested. Fix: save it as CSV with ',' as the field separator and '.' in numbers "
        "(LibreOffice: Save As, Text CSV, Field delimiter ',')"
    )


def _problem(where: str, fld: str, what: str, fix: str) -> str:
    return f"{where}: {fld}: {what}. Fix: {fix}"


def _number(text: Any, where: str, fld: str, problems: list[str], frames: bool) -> float | None:
    try:  # Python's float reads "1_0" as 10: a typo there is no number
        value = math.nan if "_" in str(text) else float(str(text).strip())
    except ValueError:
        value = math.nan
    unit = "a frame number" if frames else "seconds"
    if not math.isfinite(value):
        problems.append(_problem(where, fld, f"{text!r} is not a number", f"write {unit}"))
        return None
    if value < 0:
        problems.append(_problem(where, fld, f"{value:g} is negative", f"write {unit} from 0"))
        return None
    if frames and value != int(value):
        problems.append(_problem(where, fld, f"{value:g} is not a whole frame number", unit))
        return None
    return value


def _optional(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return None if text in ("", "-1") else text


def _id_problem(rec: dict[str, Any], where: str, problems: list[str]) -> None:
    """A JSON ``subject``/``camera``/``dataset`` that is no id: an object, a list, true/false,
    NaN or infinity would become a group key such as "{'a': 1}" or "nan" that joins strangers."""
    for key in ("subject", "camera", "cam", "dataset"):
        value = rec.get(key)
        if isinstance(value, dict | list | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            problems.append(
                _problem(
                    where,
                    key,
                    f"{str(value)[:40]!r} is not an id",
                    "write a string or a whole number (null or -1 when unknown)",
                )
            )


def _video_path(
    text: str,
    where: str,
    root: Path,
    problems: list[str],
    fld: str = "video",
    shown: str = "",
    file: bool = True,
) -> str | None:
    """The relative path ``text`` if it stays inside ``root``; else a problem and None.

    A ``file`` missing only because its name is in another Unicode form is a problem too.
    """
    fix = "give the path relative to --videos, without '..', backslashes or a leading '/'"
    shown = shown or text
    if not text or "\0" in text or "\\" in text or text.startswith("/"):
        problems.append(_problem(where, fld, f"{shown!r} is not a relative path", fix))
        return None
    parts = PurePosixPath(text).parts
    if ".." in parts:
        problems.append(_problem(where, fld, f"{shown!r} leads out of --videos ({root})", fix))
        return None
    full = real_path(root / text)
    if not is_within(full, real_path(root)):
        problems.append(_problem(where, fld, f"{shown!r} is a link to {full}, outside {root}", fix))
        return None
    if file and not os.path.lexists(root / text) and (on_disk := name_form_mismatch(root / text)):
        # macOS and some zip tools write decomposed (NFD) names: other bytes, same look
        form = "NFC" if unicodedata.is_normalized("NFC", text) else "NFD"
        problems.append(
            _problem(
                where,
                fld,
                f"{shown!r} is not found as written ({form}), but its folder holds "
                f"{on_disk!r}: the same name in Unicode {'NFD' if form == 'NFC' else 'NFC'} "
                "form",
                f"rename the file to the {form} form (convmv --{form.lower()}), or write the "
                "name as it is on disk",
            )
        )
        return None
    return PurePosixPath(*parts).as_posix()


def _segment(
    rec: dict[str, Any], where: str, fmt: str, class_map: ClassMap, root: Path, problems: list[str]
) -> SegmentRow | None:
    before = len(problems)
    if fmt == "omnifall":
        path = str(rec.get("path") or "").strip()
        dataset = str(rec.get("dataset") or "").strip()
        video = None
        if not path or not dataset:
            problems.append(
                _problem(where, "path" if not path else "dataset", "is empty", "fill it in")
            )
        elif _video_path(path, where, root, problems, "path", file=False) is not None:
            # the file is {videos}/{dataset}/video/{path}.mp4 (OmniFall's layout); a path
            # that already ends in .mp4 names the file itself, not {path}.mp4.mp4
            full = f"{dataset}/video/{path}"
            if not (path.lower().endswith(".mp4") and not (root / f"{full}.mp4").exists()):
                full += ".mp4"
            video = _video_path(full, where, root, problems, "path", shown=f"{path} ({full})")
        in_frames = False
        start_key, end_key = "start", "end"
        camera, source_dataset = _optional(rec.get("cam")), dataset or None
    else:
        video = _video_path(str(rec.get("video") or "").strip(), where, root, problems)
        in_frames = "start" not in rec and "start_frame" in rec
        start_key, end_key = ("start_frame", "end_frame") if in_frames else ("start", "end")
        camera, source_dataset = _optional(rec.get("camera")), _optional(rec.get("dataset"))
    _id_problem(rec, where, problems)
    start = _number(rec.get(start_key), where, start_key, problems, in_frames)
    end = _number(rec.get(end_key), where, end_key, problems, in_frames)
    if start is not None and end is not None and (end < start or (end == start and not in_frames)):
        problems.append(
            _problem(
                where,
                end_key,
                f"{end:g} is not after {start_key} {start:g}",
                f"{end_key} must be later than {start_key} (swap them if reversed)",
            )
        )
    label = rec.get("label")
    try:
        name, rule = class_map.rule(str(label).strip() if label is not None else "")
    except KeyError:
        problems.append(
            _problem(
                where,
                "label",
                f"{label!r} is not in the class map (known: {class_map.known_labels()})",
                "use one of them, or add the class to a copy of configs/class_map.yaml "
                "and pass it with --class-map",
            )
        )
        name, rule = "", None
    if len(problems) > before or video is None or rule is None:
        return None
    assert start is not None and end is not None
    return SegmentRow(
        where,
        video,
        start,
        end,
        in_frames,
        name,
        rule,
        subject=_optional(rec.get("subject")),
        camera=camera,
        source_dataset=source_dataset,
    )


def _decode_text(path: Path) -> str:
    from curation._io import read_user_file

    data = read_user_file(path, "label file", "Fix: give the CSV or JSON label file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # a UTF-16 byte-order mark: spreadsheets' "Unicode text"; anything else, say latin1
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise DataError(
            f"{path}: not UTF-8 ({'UTF-16' if utf16 else f'byte {exc.start}: '}"
            f"{'' if utf16 else repr(data[exc.start : exc.start + 1])}); nothing was ingested. "
            f"Fix: convert it, e.g. iconv -f {'utf-16' if utf16 else 'latin1'} -t utf-8 {path} "
            "> labels-utf8.csv"
        ) from None


def read_segments(
    labels: Path, videos_root: Path, class_map: ClassMap
) -> tuple[str, list[SegmentRow]]:
    """(format, segments) of a label file; every bad row is named in one ``DataError``."""
    import json

    text = _decode_text(labels)
    omnifall = ", ".join(OMNIFALL_COLUMNS)
    generic = "video, label, start, end (or start_frame, end_frame)[, subject, camera, dataset]"
    records: list[tuple[str, dict[str, Any]]] = []
    if labels.suffix.lower() == ".json" or text.lstrip().startswith("["):
        fmt = "generic-json"
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{labels}: not valid JSON ({exc}); nothing was ingested") from None
        except RecursionError:
            raise DataError(
                f"{labels}: JSON nested too deeply to read; nothing was ingested. Fix: a "
                'segment file is a flat list of objects: [{"video": "a.mp4", "start": 0, '
                '"end": 2.5, "label": "fall"}]'
            ) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(
                f"{labels}: a JSON segment file is a list of objects with {generic}. "
                'Fix: [{"video": "a.mp4", "start": 0, "end": 2.5, "label": "fall"}]'
            )
        records = [(f"{labels} record #{i}", r) for i, r in enumerate(data)]
        keys = set().union(*(r.keys() for r in data)) if data else set()
        if data and not ({"video", "label"} <= keys):
            raise DataError(f"{labels}: records need the keys {generic}; found {sorted(keys)}")
    else:
        rows = list(csv.reader(io.StringIO(text)))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        twice = sorted({h for h in header if header.count(h) > 1 and h})
        if twice:  # the last column would silently win over the first
            raise DataError(
                f"{labels}: the header names the column(s) {', '.join(twice)} more than once; "
                "nothing was ingested. Fix: keep one column of each name"
            )
        _refuse_other_delimiter(labels, text.split("\n", 1)[0])
        if set(OMNIFALL_COLUMNS) <= set(header):
            fmt = "omnifall"
        elif {"video", "label"} <= set(header) and (
            {"start", "end"} <= set(header) or {"start_frame", "end_frame"} <= set(header)
        ):
            fmt = "generic-csv"
        else:
            raise DataError(
                f"{labels}: the header {','.join(header) or '(empty file)'} is neither "
                f"OmniFall's ({omnifall}) nor a generic segment file's ({generic}); nothing "
                "was ingested. Fix: give the file one of these headers"
            )
        for n, row in enumerate(rows[1:], start=1):
            where = f"{labels} row {n} (line {n + 1})"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                records.append((where, {"__width__": len(row)}))
                continue
            records.append((where, dict(zip(header, row, strict=True))))
    if not records:
        raise DataError(f"{labels}: no segments in it; nothing was ingested")
    problems: list[str] = []
    segments = []
    for where, rec in records:
        if "__width__" in rec:
            problems.append(
                _problem(
                    where,
                    "(row)",
                    f"{rec['__width__']} cells, the header has {len(header)}",
                    "one cell per column (quote cells holding commas)",
                )
            )
            continue
        seg = _segment(
            rec,
            where,
            "omnifall" if fmt == "omnifall" else "generic",
            class_map,
            videos_root,
            problems,
        )
        if seg is not None:
            segments.append(seg)
    _raise_all(problems, f"{labels}: {len(problems)} problem(s); nothing was ingested")
    return fmt, segments


def _raise_all(problems: list[str], head: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise DataError(f"{head}:\n  {shown}{more}")


def _folder_key(name: str) -> str:
    """A folder name compared as label folders are: case-folded, "-" and " " as "_"."""
    return name.casefold().replace("-", "_").replace(" ", "_")


def _kind_of_folder(folder: str, class_map: ClassMap) -> str:
    """The negative kind a ``no_fall/<folder>/`` names: the class map's own spelling of a
    class it names (``Sitting`` -> ``sitting``), else the folder name normalised."""
    key = _folder_key(folder)
    for name in class_map.classes:
        if _folder_key(name) == key:
            return name
    return key


def _kind_refusal(folder: str, kind: str, class_map: ClassMap) -> str:
    """Why ``no_fall/<folder>/`` cannot hold negatives ('' when it can): it names a fall
    (``Fall/``, ``falls/``, ``Fallen/``), the unsure folder, or a class not answered 'no'."""
    is_label, answer = label_of_folder(kind)
    rule = class_map.classes.get(kind)
    if is_label and answer != "no":
        what = f"is the label folder {'fall/' if answer == 'yes' else 'unsure/'}"
        answer = answer or "unsure"
    elif rule is not None and rule.answer != "no":
        what, answer = f"names the class {kind!r}", rule.answer
    else:
        return ""
    return (
        f"the folder no_fall/{folder}/ {what}, which answers {answer!r}, not 'no'. Fix: move "
        f"the clip to {'fall/' if answer == 'yes' else 'unsure/'}, or rename the folder to "
        "the kind of non-fall it shows"
    )


def clip_folder_segments(folder: Path, class_map: ClassMap) -> list[SegmentRow]:
    """Whole clips of ``fall/``, ``no_fall/`` (``no_fall/<kind>/``) and ``unsure/``."""
    segments = []
    refused: list[str] = []
    for sub in sorted(folder.iterdir()):
        is_label, answer = label_of_folder(sub.name)
        if not is_label or not sub.is_dir() or sub.name.startswith("."):
            continue
        for path in sorted(sub.rglob("*")):
            rel = path.relative_to(folder)
            if path.suffix.lower() not in VIDEO_SUFFIXES or any(
                p.startswith(".") for p in rel.parts
            ):
                continue
            # the image folders' rule: UTF-8 names, no link leading out of the folder
            problem = _folder_file_problem(path, rel.as_posix(), real_path(folder))
            if problem:
                refused.append(problem)
                continue
            kind_parts = path.relative_to(sub).parts[:-1]
            kind = _kind_of_folder(kind_parts[0], class_map) if kind_parts else None
            if answer == "yes":
                name, rule = "fall", ClassRule(id=1, answer="yes")
                with contextlib.suppress(KeyError):
                    name, rule = class_map.rule("fall")
            elif answer == "no":
                refusal = _kind_refusal(kind_parts[0], kind, class_map) if kind else ""
                if refusal:
                    refused.append(f"{path}: {refusal}")
                    continue
                if kind is not None and label_of_folder(kind) == (True, "no"):
                    kind = None  # no_fall/No-Fall/: a label folder inside its own kind
                name = kind or "no_fall"
                rule = ClassRule(
                    id=0, answer="no", negative_kind=class_map.negative_kind_of(kind or "") or kind
                )
            else:
                name, rule = "unsure", ClassRule(id=0, answer="unsure")
            segments.append(
                SegmentRow(
                    f"{folder}/{rel.as_posix()}", rel.as_posix(), 0.0, math.inf, False, name, rule
                )
            )
    _raise_all(refused, f"{folder}: {len(refused)} file(s) cannot be ingested; nothing was added")
    if not segments:
        raise DataError(
            f"{folder} holds no videos in fall/, no_fall/ or unsure/ "
            f"({', '.join(sorted(VIDEO_SUFFIXES))}). Fix: put whole clips there"
        )
    return segments


# --- cutting frames ---------------------------------------------------------------------


@dataclass
class _Cut:
    """One video's sampled frames, ready to become items."""

    video: str
    path: Path
    items: list[Item]
    created: list[Path]
    fps: float
    frames: int  # decoded
    duration: float
    size: tuple[int, int]  # as shown: after the rotation the file asks for
    unsure: int
    unlabelled: int
    segments: list[SegmentRow]
    sha256: str
    scans: dict[Path, ImageScan]
    #: per segment of ``segments``: its first and last frame number (from 1, FiftyOne's
    #: ``support``), None when no decoded frame lies in it
    supports: list[tuple[int, int] | None] = field(default_factory=list)
    #: per class: [labelled, unsure] sampled frames
    per_class: dict[str, list[int]] = field(default_factory=dict)
    #: the "yes" segments that gave no labelled frame, each named with the reason
    empty_yes: list[str] = field(default_factory=list)


class _Stopped(Exception):
    """The ingest was interrupted (Ctrl-C, SIGTERM) while this video was being cut."""


def _exact(value: float) -> Fraction:
    """A number as the user wrote it (``0.7`` is 7/10, not the binary float next to it)."""
    return Fraction(repr(float(value)))


class FrameSampler:
    """Which decoded frames are kept, one decision per frame in presentation order.

    ``every_n`` N keeps frames 0, N, 2N, ... (by decoded index); ``fps`` F keeps the
    first frame at or after each time k/F (k = 0, 1, 2, ...), so no kept frame precedes
    its time and a frame showing through several times k/F is kept once. Times are
    exact (``Fraction``: the frame's pts times the stream's time base), so a frame at
    exactly k/F is the one kept.
    """

    def __init__(self, fps: float | None = None, every_n: int | None = None) -> None:
        if (fps is None) == (every_n is None):
            raise ValueError("give fps or every_n")
        self._fps = _exact(fps) if fps is not None else None
        self._every_n = every_n
        self._next = 0  # the k of the first time k/F that no kept frame covers yet

    def take(self, index: int, time: Fraction) -> bool:
        if self._every_n is not None:
            return index % self._every_n == 0
        assert self._fps is not None
        slot = time * self._fps
        if slot < self._next:
            return False
        self._next = math.floor(slot) + 1
        return True


def sample_indices(
    times: Sequence[Fraction | float], *, fps: float | None = None, every_n: int | None = None
) -> list[int]:
    """Indices of the frames that ingest keeps, given the frames' times (s) in decoded order."""
    sampler = FrameSampler(fps, every_n)
    return [i for i, t in enumerate(times) if sampler.take(i, Fraction(t))]


@dataclass(frozen=True, slots=True)
class _Span:
    """A segment on the decoded video: seconds rows by time, frame rows by frame index."""

    seg: SegmentRow
    start: Fraction  # seconds (frame rows: the time of their first frame)
    end: Fraction | float  # seconds, exclusive; math.inf: to the end of the video

    def covers(self, index: int, t: Fraction) -> bool:
        if self.seg.in_frames:
            return self.seg.start <= index <= self.seg.end
        return self.start <= t < self.end

    def text(self) -> str:
        if self.seg.in_frames:
            return f"frames {self.seg.start:g}-{self.seg.end:g}"
        end = f"{self.seg.end:g}" if math.isfinite(self.seg.end) else "end"
        return f"{self.seg.start:g}-{end}"  # as the row gives it


def _label(
    index: int, t: Fraction, spans: list[_Span], boundaries: list[Fraction], margin: Fraction
) -> tuple[str | None, SegmentRow | None, str, str | None, list[_Span]] | None:
    """(answer or None, the segment, the segment text, activity, the covering spans) of a
    frame; None when no segment covers it."""
    covering = [sp for sp in spans if sp.covers(index, t)]
    if not covering:
        return None
    text = "+".join(sp.text() for sp in covering)
    answers = {sp.seg.rule.answer for sp in covering}
    if len(answers) > 1:  # overlapping segments that disagree: a reviewer decides
        return None, None, text, "/".join(sorted({sp.seg.name for sp in covering})), covering
    seg = max(covering, key=lambda sp: sp.start).seg
    answer = seg.rule.answer
    near = any(abs(t - b) < margin for b in boundaries)
    if answer == "unsure" or near:
        return None, seg, text, seg.name, covering
    return answer, seg, text, seg.name, covering


_KIND_PROBLEM = {
    "dir": "not a file",
    "special": "not a regular file (a FIFO, device or looping link)",
}


def _presentation_times(path: Path, stream_index: int, origin: Fraction) -> list[Fraction]:
    """The times of the frames that decode, in presentation order, from the packets alone.

    Packets an edit list cuts away (``is_discard``) decode to no frame; the others'
    pts, sorted, are the decoded frames' (B-frames come out of order).
    """
    av = require("av", "video")
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(0)
        pts = [
            Fraction(p.pts) * tb - origin
            for p in container.demux(stream)
            if p.size and p.pts is not None and not p.is_discard
        ]
    return sorted(pts)


def _frame_rows_problem(seg: SegmentRow, path: Path, count: int) -> str | None:
    """A frame-numbered row naming a frame the video does not have, in frame numbers."""
    last = count - 1
    for fld, value in (("start_frame", seg.start), ("end_frame", seg.end)):
        if value > last:
            return (
                f"{seg.where}: {fld}: frame {value:g} is past the last frame of {path} "
                f"({count} frames decode, numbered 0-{last}). Fix: correct the row "
                f"({fld} at most {last})"
            )
    return None


#: the display matrix's a, b, c, d (signs) -> the PIL transpose that shows the frame as
#: FFmpeg's own player and the ``ffmpeg`` program do (all eight EXIF orientations)
_DISPLAY_TRANSPOSE = {
    (0, -1, 1, 0): "ROTATE_90",
    (-1, 0, 0, -1): "ROTATE_180",
    (0, 1, -1, 0): "ROTATE_270",
    (-1, 0, 0, 1): "FLIP_LEFT_RIGHT",
    (1, 0, 0, -1): "FLIP_TOP_BOTTOM",
    (0, 1, 1, 0): "TRANSPOSE",
    (0, -1, -1, 0): "TRANSVERSE",
}


def _display_transpose(frame: Any) -> str | None:
    """The PIL transpose a frame's display matrix asks for (phones write one for portrait
    video), None when it asks for none. A matrix at an angle other than a quarter turn is
    taken to the nearest quarter turn (``VideoFrame.rotation``, counter-clockwise)."""
    import struct

    matrix = None
    for data in frame.side_data:
        if str(data.type).endswith("DISPLAYMATRIX") and len(bytes(data)) >= 36:
            matrix = struct.unpack("=9i", bytes(data)[:36])
    if matrix is None:
        return None
    a, b, c, d = (matrix[0], matrix[1], matrix[3], matrix[4])
    big = max(abs(a), abs(b), abs(c), abs(d)) or 1
    signs = tuple(round(v / big) for v in (a, b, c, d))
    if signs in _DISPLAY_TRANSPOSE:
        return _DISPLAY_TRANSPOSE[signs]
    quarter = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return {1: "ROTATE_90", 2: "ROTATE_180", 3: "ROTATE_270"}.get(quarter)


def _as_shown(image: Any, transpose: str | None) -> Any:
    from PIL import Image

    return image if transpose is None else image.transpose(getattr(Image.Transpose, transpose))


def _cut_video(
    seg_list: list[SegmentRow],
    root: Path,
    frames_dir: Path,
    *,
    fps: float | None,
    every_n: int | None,
    margin: float,
    class_map: ClassMap,
    make_item: Any,
    keep_middle: bool = True,
    stop: threading.Event | None = None,
) -> _Cut:
    """Decode one video, sample its frames, write the labelled ones; raise ``_VideoProblem``."""
    av = require("av", "video")
    imagehash = require("imagehash", "fiftyone")
    from curation import images

    video = seg_list[0].video
    path = root / video
    kind = path_kind(path, "video")
    if kind != "file":
        raise _VideoProblem(
            f"{_KIND_PROBLEM.get(kind, 'video not found')}: {path} (named by "
            f"{seg_list[0].where}{' and more' if len(seg_list) > 1 else ''}). Fix: put the video "
            "there (OmniFall's layout is {videos}/{dataset}/video/{path}.mp4) or correct the "
            "row; --skip-bad ingests the other videos"
        )
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise _VideoProblem(
            f"{path}: not a readable video ({exc}). Fix: replace the file (re-download or "
            "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4), or --skip-bad"
        ) from None
    created: list[Path] = []
    try:
        with container:
            demuxer = container.format.name
            if demuxer.endswith("_pipe") or demuxer.startswith("image2"):
                # FFmpeg reads a PNG or JPEG as a one-frame "video": not what the row meant
                raise _VideoProblem(
                    f"{path}: a still image ({demuxer.removesuffix('_pipe')}), not a video. "
                    "Fix: name the video file in the row, or replace the file; --skip-bad"
                )
            if not container.streams.video:
                raise _VideoProblem(
                    f"{path}: holds no video stream. Fix: replace it, or --skip-bad"
                )
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > images.MAX_PIXELS:  # refused before a frame is decoded
                raise _VideoProblem(_too_large(path, width, height, images.MAX_PIXELS))
            rate = stream.average_rate or stream.guessed_rate
            native = float(rate) if rate else 0.0
            if native <= 0:
                raise _VideoProblem(f"{path}: no frame rate in the file. Fix: re-encode it")
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(0)
            if stream.duration and tb:
                duration = float(stream.duration * tb)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = math.inf
            origin = Fraction(stream.start_time) * tb if stream.start_time is not None else 0
            origin = Fraction(origin)
            if duration <= 0:
                raise _VideoProblem(
                    f"{path}: holds no frames (its length is 0). Fix: replace it, or --skip-bad"
                )
            period = 1.0 / native
            # frame-numbered rows name decoded frames: their times, read from the packets
            # first, place their boundaries (a variable frame rate has no one period)
            times_ahead: list[Fraction] = []
            if any(s.in_frames for s in seg_list):
                try:
                    times_ahead = _presentation_times(path, stream.index, origin)
                except (av.error.FFmpegError, OSError, EOFError) as exc:
                    raise _VideoProblem(
                        f"{path}: reading its frames' times failed ({exc}); the file is "
                        "damaged. Fix: replace it (re-download or re-copy), or --skip-bad"
                    ) from None
                for seg in seg_list:
                    problem = seg.in_frames and _frame_rows_problem(seg, path, len(times_ahead))
                    if problem:
                        raise _VideoProblem(problem)
            spans: list[_Span] = []
            boundaries_set: set[Fraction] = set()
            for seg in seg_list:
                if seg.in_frames:
                    first, last = int(seg.start), int(seg.end)
                    start: Fraction = times_ahead[first]
                    end: Fraction | float = (
                        times_ahead[last + 1] if last + 1 < len(times_ahead) else math.inf
                    )
                    spans.append(_Span(seg, start, end))
                    if first > 0:
                        boundaries_set.add(start)
                    if math.isfinite(end):
                        boundaries_set.add(Fraction(end))
                    continue
                if seg.start >= duration:
                    raise _VideoProblem(
                        f"{seg.where}: start: {seg.start:g} s is past the end of {path}, which "
                        f"lasts {duration:g} s. Fix: correct the row (or the video it names)"
                    )
                if math.isfinite(seg.end) and seg.end > duration + period + 1e-6:
                    raise _VideoProblem(
                        f"{seg.where}: end: {seg.end:g} s is past the end of {path}, which "
                        f"lasts {duration:g} s. Fix: correct the row (end at most {duration:g})"
                    )
                start = _exact(seg.start)
                # an end within one frame of the video's end (6.0 for a clip of 6.006 s) is
                # the video's end: no boundary, and the last frames are the segment's
                end = (
                    _exact(seg.end)
                    if math.isfinite(seg.end) and seg.end < duration - period - 1e-9
                    else math.inf
                )
                spans.append(_Span(seg, start, end))
                if start > 0:  # the video's own start and end are no boundary
                    boundaries_set.add(start)
                if math.isfinite(end):
                    boundaries_set.add(Fraction(end))
            boundaries = sorted(boundaries_set)
            exact_margin = _exact(margin)
            # the middle of each "yes" segment (the first frame at or after it is kept)
            middles: list[tuple[Fraction, _Span]] = []
            for sp in spans if keep_middle else []:
                stop_at = sp.end if math.isfinite(sp.end) else duration
                if sp.seg.rule.answer == "yes" and math.isfinite(stop_at):
                    middles.append(((sp.start + Fraction(stop_at)) / 2, sp))
            middles.sort(key=lambda m: m[0])
            next_middle = 0  # middles[:next_middle] have had their frame
            digest = sha256_file(path)
            folder = frames_dir / f"{video}-{digest[:12]}"
            items: list[Item] = []
            scans: dict[Path, ImageScan] = {}
            per_class: dict[str, list[int]] = {}
            labelled_in: dict[int, int] = {}  # id(span) -> labelled frames in it
            unsure = unlabelled = 0
            decoded = discarded = 0
            times: list[Fraction] = []
            sampler = FrameSampler(fps, None) if every_n is None else FrameSampler(None, every_n)
            size = (0, 0)
            try:
                for packet in container.demux(stream):
                    discarded += packet.is_discard
                    for frame in packet.decode():
                        if stop is not None and stop.is_set():
                            raise _Stopped
                        i = decoded
                        decoded += 1
                        if frame.width * frame.height > images.MAX_PIXELS:
                            raise _VideoProblem(
                                _too_large(path, frame.width, frame.height, images.MAX_PIXELS)
                            )
                        t = (
                            Fraction(frame.pts) * tb - origin
                            if frame.pts is not None and tb
                            else Fraction(i) / _exact(native)
                        )
                        times.append(t)
                        middle = None
                        # each middle's frame is the first at or after it: reached once
                        while next_middle < len(middles) and t >= middles[next_middle][0]:
                            if middles[next_middle][1].covers(i, t):
                                middle = middles[next_middle]
                            next_middle += 1
                        if not sampler.take(i, t) and middle is None:
                            continue
                        label = _label(
                            i, t, spans, boundaries, Fraction(0) if middle else exact_margin
                        )
                        if label is None:
                            unlabelled += 1
                            continue
                        answer, seg, text, activity, covering = label
                        if answer is None:
                            for name in {sp.seg.name for sp in covering}:
                                per_class.setdefault(name, [0, 0])[1] += 1
                        else:
                            assert seg is not None
                            per_class.setdefault(seg.name, [0, 0])[0] += 1
                            for sp in covering:
                                labelled_in[id(sp)] = labelled_in.get(id(sp), 0) + 1
                        image = _as_shown(frame.to_image(), _display_transpose(frame))
                        size = image.size
                        buf = io.BytesIO()
                        image.save(buf, "JPEG", quality=JPEG_QUALITY)
                        data = buf.getvalue()
                        file = folder / f"{i:06d}.jpg"
                        # hashed here rather than read back: the sha256 of the file's bytes,
                        # the phash of the frame (at JPEG quality 95 the file's phash is the
                        # same 64 bits; tests/test_video.py compares them)
                        scans[file] = ImageScan(
                            None, hashlib.sha256(data).hexdigest(), str(imagehash.phash(image))
                        )
                        if not (file.is_file() and file.read_bytes() == data):
                            if not file.exists():
                                created.append(file)
                            file.parent.mkdir(parents=True, exist_ok=True)
                            atomic_write_bytes(file, data, durable=False)  # flushed once, later
                        unsure += answer is None
                        kind_ = None
                        if seg is not None and seg.rule.answer == "no":
                            kind_ = seg.rule.negative_kind or class_map.negative_kind_of(seg.name)
                        first_seg = seg or covering[0].seg
                        items.append(
                            make_item(
                                file,
                                answer,
                                f"{video}#{i}",
                                {
                                    "video": video,
                                    "time": round(float(t), 6),
                                    "frame_index": i,
                                    "segment": text,
                                    "subject": first_seg.subject,
                                    "camera": first_seg.camera,
                                    "source_dataset": first_seg.source_dataset,
                                    "activity": activity,
                                    "negative_kind": kind_ if answer != "yes" else None,
                                },
                            )
                        )
            except (av.error.FFmpegError, EOFError) as exc:
                raise _VideoProblem(
                    f"{path}: decoding failed after {decoded} frame(s) ({exc}); the file is "
                    "damaged (truncated?). Fix: replace it (re-download or re-copy), or --skip-bad"
                ) from None
            if decoded == 0:
                raise _VideoProblem(
                    f"{path}: holds no frames (0 decoded). Fix: replace it, or --skip-bad"
                )
            # an edit list (a trimmed MP4) cuts packets that the header still counts
            expected = stream.frames - discarded if stream.frames else 0
            if expected and decoded < expected:
                raise _VideoProblem(
                    f"{path}: truncated: its header says {expected} frames, only "
                    f"{decoded} decode. Fix: replace it (re-download or re-copy), or --skip-bad"
                )
            if not math.isfinite(duration):
                duration = decoded * period
            supports = [_support(sp, times) for sp in spans]
            empty_yes = [
                _no_yes_frame(sp, margin, keep_middle)
                for sp in spans
                if sp.seg.rule.answer == "yes" and not labelled_in.get(id(sp))
            ]
            if size == (0, 0):
                size = (width, height)
            return _Cut(
                video,
                path,
                items,
                created,
                native,
                decoded,
                duration,
                size,
                unsure,
                unlabelled,
                seg_list,
                digest,
                scans,
                supports,
                per_class,
                empty_yes,
            )
    except BaseException:
        _remove(created, frames_dir)
        raise


def _too_large(path: Path, width: int, height: int, limit: int) -> str:
    return (
        f"{path}: frames of {width}x{height} pixels are over the limit of {limit:,} pixels "
        "that images have (a decompression bomb, or a video too large to cut safely). Fix: "
        "scale it down (ffmpeg -i IN -vf scale=1920:-2 OUT.mp4), or --skip-bad"
    )


def _support(span: _Span, times: list[Fraction]) -> tuple[int, int] | None:
    """The segment's frames as FiftyOne numbers them (from 1, both ends inclusive): the
    decoded frames it covers, so that segments meeting between two frames share none."""
    if span.seg.in_frames:
        first, last = int(span.seg.start), min(int(span.seg.end), len(times) - 1)
    else:
        first = bisect.bisect_left(times, span.start)
        end = span.end if math.isfinite(span.end) else None
        last = (bisect.bisect_left(times, end) if end is not None else len(times)) - 1
    return (first + 1, last + 1) if first <= last else None


def _no_yes_frame(span: _Span, margin: float, keep_middle: bool) -> str:
    seg = span.seg
    where = f"{seg.where}: the {seg.name!r} segment ({span.text()}{'' if seg.in_frames else ' s'})"
    if keep_middle:
        return (
            f"{where} gives no labelled frame: no decoded frame lies in it, or segments that "
            "answer otherwise overlap its middle. Fix: check the row's times"
        )
    return (
        f"{where} gives no labelled frame: every sampled frame in it is within --margin "
        f"{margin:g} s of a boundary, or none is sampled. Fix: keep each 'yes' segment's "
        "middle frame (leave out --no-middle), or a smaller --margin or higher --fps"
    )


def _remove(files: Sequence[Path], root: Path | None = None) -> None:
    """Delete ``files`` and the folders they leave empty, up to ``root`` (kept)."""
    for f in files:
        with contextlib.suppress(OSError):
            f.unlink()
    folders: set[Path] = set()
    for f in files:
        parent = f.parent
        while root is not None and parent != root and parent.is_relative_to(root):
            folders.add(parent)
            parent = parent.parent
        folders.add(f.parent)
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


# --- the command ------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_to_this_thread() -> Iterator[None]:
    """Block Ctrl-C and SIGTERM while threads are started, so they inherit the block: the
    signal then reaches this thread (its handler runs here at once, not when a wait ends),
    and never a thread half-started. Held back until the block ends, not lost."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _frames_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the frames folder (created if new, removed again if empty)."""
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; concurrent ingests are not serialised
            yield
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
    finally:
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: a failed first ingest leaves no folder


def group_segments(segments: Sequence[SegmentRow]) -> dict[str, list[SegmentRow]]:
    """Each video's segments, in file order; an exact duplicate row is one segment.

    A set, in linear time: comparing each row with the video's rows so far took
    10 minutes for 100k segments of one video.
    """
    by_video: dict[str, list[SegmentRow]] = {}
    seen: set[tuple[str, float, float, str]] = set()
    for seg in segments:
        same = by_video.setdefault(seg.video, [])
        key = (seg.video, seg.start, seg.end, seg.name)
        if key not in seen:
            seen.add(key)
            same.append(seg)
    return by_video


def _frames_dir(frames_dir: str | Path | None, dataset: str, inputs: list[Path]) -> Path:
    from curation._io import project_raw

    if frames_dir is None:
        from curation.curator._fo import _import

        fo = _import()
        folder = Path(fo.config.default_dataset_dir).expanduser() / dataset / "frames"
    else:
        folder = Path(frames_dir)
    folder = real_path(folder)
    if path_kind(folder, "--frames-dir") == "file":
        raise UsageError(f"--frames-dir {folder} is a file. Fix: give a folder")
    raws = [r for r in dict.fromkeys((project_raw(), project_raw(folder))) if r is not None]
    for inp in raws + inputs:
        if is_within(folder, real_path(inp)):
            raise UsageError(
                f"--frames-dir {folder} is inside the input {inp}; inputs are never written "
                "to. Fix: --frames-dir a folder outside it (the default is FiftyOne's "
                "dataset folder)"
            )
    return folder


def ingest_videos(
    labels: str | Path,
    dataset: str,
    *,
    videos: str | Path | None = None,
    fps: float | None = None,
    every_n: int | None = None,
    margin: float = DEFAULT_MARGIN,
    class_map: str | Path | None = None,
    skip_bad: bool = False,
    frames_dir: str | Path | None = None,
    questions: Sequence[str] = (TASK_QUESTION,),
    seed: int = 0,
    overwrite: bool = False,
    relabel: bool = False,
    keep_middle: bool = True,
) -> VideoIngestResult:
    """Cut labelled frames out of videos and add them to ``dataset`` (idempotently).

    ``labels`` is an OmniFall CSV or a generic segment file (with ``videos``, the
    folder the paths in it are relative to), or a folder of whole clips. All or
    nothing: a video that cannot be read stops the ingest with nothing added and
    no frame file left, unless ``skip_bad``, which leaves it out and reports why.
    ``keep_middle`` keeps, beside the sampled frames, the frame at the middle of each
    "yes" segment, labelled "yes" even within ``margin`` of a boundary, so that a fall
    shorter than twice the margin still gives a labelled frame. Interrupted (Ctrl-C,
    SIGTERM), it stops decoding and removes the frames it wrote.

    Ingested again after the label file (or ``margin``, or the class map) changed,
    stored frames that it now labels otherwise, or that lie in no segment of it now,
    are a ``DataError`` naming how many, with nothing changed; ``relabel`` rewrites
    their labels (and the segments in ``NAME-videos``) and removes those in no
    segment, all or nothing.

    Raises:
        UsageError: bad options or paths.
        DataError: bad rows (all named), unreadable videos (without ``skip_bad``).
    """
    from curation.curator._fo import check_dataset_name

    check_dataset_name(dataset)
    videos_dataset = f"{dataset}-videos"
    check_dataset_name(videos_dataset)
    if fps is not None and every_n is not None:
        raise UsageError("--fps and --every-n exclude each other. Fix: give one of them")
    if every_n is None and fps is None:
        fps = DEFAULT_FPS
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"--fps must be above 0 (got {fps})")
    if fps is not None and fps > MAX_FPS:
        raise UsageError(
            f"--fps {fps:g} is above {MAX_FPS:g}, faster than any camera. Fix: --every-n 1 "
            "keeps every frame"
        )
    if every_n is not None and every_n < 1:
        raise UsageError(f"--every-n must be at least 1 (got {every_n})")
    if overwrite and relabel:
        raise UsageError(
            "--overwrite and --relabel exclude each other: --overwrite starts the dataset "
            "again, --relabel rewrites the labels of the frames already in it. Fix: give one"
        )
    if not (math.isfinite(margin) and margin >= 0):
        raise UsageError(f"--margin must be 0 or more seconds (got {margin})")
    cmap = load_class_map(class_map)
    source = Path(labels)
    kind = path_kind(source, "LABELS")
    if kind == "missing":
        raise UsageError(f"label file not found: {source}")
    if kind == "dir":
        if videos is not None:
            raise UsageError(
                f"--videos applies to a label file, not to the clip folder {source}. "
                "Fix: leave it out"
            )
        root, fmt = source, "clip-folder"
        segments = clip_folder_segments(source, cmap)
    else:
        if videos is None:
            with contextlib.suppress(OSError, UnicodeDecodeError), source.open("rb") as fh:
                _refuse_other_delimiter(source, fh.readline(4096).decode("utf-8-sig"))
            raise UsageError(
                f"{source} is a label file: --videos DIR says where its videos are. "
                "Fix: curate ingest LABELS.csv --videos DIR --dataset NAME"
            )
        root = Path(videos)
        if path_kind(root, "--videos") != "dir":
            raise UsageError(f"--videos folder not found: {root}")
        fmt, segments = read_segments(source, root, cmap)
    out = _frames_dir(frames_dir, dataset, [root, source])
    source_path = str(real_path(source))
    source_name = f"{'video-folder' if kind == 'dir' else 'video'}:{source.name}"
    provenance = "folder" if kind == "dir" else "file"

    def make_item(file: Path, answer: str | None, original_id: str, fields: dict[str, Any]) -> Item:
        return Item(
            file,
            random.Random(f"{seed}:{original_id}").choice(list(questions)),
            [answer] if answer else [],
            source_name,
            original_id,
            provenance,
            answer_type="yes/no",
            tags=[] if answer else ["unsure"],
            source_path=source_path,
            question_in_key=False,
            fields=fields,
        )

    # one ingest at a time per frames folder: two ingests of one video write the same
    # frame files, and a failing one took back files the other's dataset points at
    with _frames_lock(out):
        by_video = group_segments(segments)
        t0 = time.perf_counter()
        cuts: list[_Cut] = []
        skipped: list[SkippedVideo] = []
        problems: list[str] = []

        stop = threading.Event()

        def cut(segs: list[SegmentRow]) -> _Cut | _VideoProblem:
            try:
                return _cut_video(
                    segs,
                    root,
                    out,
                    fps=fps,
                    every_n=every_n,
                    margin=margin,
                    class_map=cmap,
                    make_item=make_item,
                    keep_middle=keep_middle,
                    stop=stop,
                )
            except _VideoProblem as exc:
                return exc

        try:
            # one thread per core: PyAV decodes and PIL encodes with the GIL released
            workers = max(1, min(len(by_video), os.cpu_count() or 1))
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="curate-video")
            futures = []
            try:
                with _signals_to_this_thread():  # the pool's threads start in here
                    for video, segs in by_video.items():
                        futures.append((video, pool.submit(cut, segs)))
                pending = {future for _, future in futures}
                while pending:  # short waits: a signal another thread took is handled here
                    pending = wait(pending, timeout=0.2).not_done
            except BaseException:
                # the other videos stop at their next packet, those not started never
                # start, and the frames written so far go (below) with the rest
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                for _, future in futures:
                    ok = future.done() and not future.cancelled() and not future.exception()
                    if ok and isinstance(future.result(), _Cut):
                        cuts.append(future.result())
                raise
            pool.shutdown(wait=True)
            failures = []
            for video, future in futures:
                if future.exception() is not None:
                    failures.append(future.exception())
                    continue
                done = future.result()
                if isinstance(done, _Cut):
                    cuts.append(done)
                elif skip_bad:
                    skipped.append(SkippedVideo(video, str(done)))
                else:
                    problems.append(str(done))
            if failures:
                raise failures[0]
            _raise_all(
                problems,
                f"{len(problems)} video(s) cannot be ingested; nothing was added and no frame "
                f"file left (--skip-bad ingests the others)",
            )
            if hasattr(os, "sync"):
                os.sync()  # the frames reach the disk before the dataset points at them
            decode_seconds = time.perf_counter() - t0
            items = [it for c in cuts for it in c.items]
            if not items:
                raise DataError(
                    f"{source}: no frame to ingest ({len(skipped)} video(s) skipped, "
                    f"{sum(c.unlabelled for c in cuts)} frame(s) in no segment). Fix: check "
                    "the segments and the videos"
                )
            scans = {p: scan for c in cuts for p, scan in c.scans.items()}
            stale = _no_longer_labelled(source_path, by_video, cuts, skipped)
            result = add_items(
                dataset,
                items,
                overwrite=overwrite,
                source=str(labels),
                scans=scans,
                relabel=relabel,
                no_longer_labelled=stale,
            )
        except BaseException:
            _remove([f for c in cuts for f in c.created], out)
            raise
        from curation.curator._lock import database_lock, dataset_lock_key

        # the sibling video dataset: one writer at a time too (shared database, issue 14)
        with database_lock(dataset_lock_key(videos_dataset), f"curate ingest {labels}"):
            _add_videos(videos_dataset, dataset, cuts, source_path, overwrite, relabel)
    return VideoIngestResult(
        result,
        fmt,
        len(cuts),
        len(items),
        sum(c.unsure for c in cuts),
        sum(c.unlabelled for c in cuts),
        str(out),
        videos_dataset,
        skipped,
        decode_seconds,
        _per_class(cuts),
        [w for c in cuts for w in c.empty_yes],
    )


def _per_class(cuts: list[_Cut]) -> dict[str, dict[str, int]]:
    totals: dict[str, list[int]] = {}
    for c in cuts:
        for name, (labelled, unsure) in c.per_class.items():
            total = totals.setdefault(name, [0, 0])
            total[0] += labelled
            total[1] += unsure
    return {n: {"labelled": v[0], "unsure": v[1]} for n, v in sorted(totals.items())}


def _covers(seg: SegmentRow, time: float, index: int, duration: float, fps: float) -> bool:
    """Whether a frame (its time from the video's start and its index) lies in ``seg``.

    A row in frame numbers holds its frames by index (both ends inclusive), a row in
    seconds the frames from ``start`` up to ``end``; an end within one frame of the
    video's end is the video's end.
    """
    if seg.in_frames:
        return seg.start <= index <= seg.end
    end = seg.end
    if math.isfinite(duration) and fps > 0 and end >= duration - 1.0 / fps:
        end = math.inf
    return seg.start <= time < end


def _no_longer_labelled(
    source_path: str,
    by_video: dict[str, list[SegmentRow]],
    cuts: list[_Cut],
    skipped: list[SkippedVideo],
) -> Any:
    """The stored frames of this label file that it no longer gives (for ``add_items``).

    A stored frame this run did not cut is one of: a frame of a video the file no
    longer names, or in no segment now (either would keep a label no row gives it);
    an older cut of a frame this run cut again with other bytes (the video or the
    decoding changed: it would stay beside its new cut); or a frame of another
    ``--fps``/``--every-n`` inside a segment, left as it is. A skipped video's frames
    are left as they are.
    """
    cut_of = {c.video: c for c in cuts}
    cut_again = {(c.video, it.fields.get("frame_index")) for c in cuts for it in c.items}
    left_alone = {s.video for s in skipped}

    def find(ds: Any, keys: set[str]) -> list[tuple[str, str, str]]:
        from fiftyone import ViewField as F

        wanted = ["id", "ingest_key", "video", "time", "frame_index"]
        if not set(wanted) <= set(ds.get_field_schema()):
            return []
        view = ds.match(F("source_path") == source_path)
        gone = []
        for sid, key, video, at, index in zip(*view.values(wanted), strict=True):
            if key in keys or video is None or video in left_alone:
                continue
            cut = cut_of.get(video)
            duration, fps = (cut.duration, cut.fps) if cut is not None else (math.inf, 0.0)
            segs = by_video.get(video, [])
            if not segs:
                gone.append((sid, f"{video}#{index}", "of a video it no longer names"))
            elif (video, index) in cut_again:
                gone.append((sid, f"{video}#{index}", "older cuts of frames cut again"))
            elif not any(_covers(s, at or 0.0, index or 0, duration, fps) for s in segs):
                gone.append((sid, f"{video}#{index}", "in no segment now"))
        return gone

    return find


def _add_videos(
    name: str,
    frames_dataset: str,
    cuts: list[_Cut],
    source_path: str,
    overwrite: bool,
    relabel: bool = False,
) -> None:
    """Each video with its segments as ``TemporalDetections`` in the sibling video dataset
    (with ``relabel``, a video already there gets the label file's segments again)."""
    from curation.curator._fo import fiftyone, user_datasets

    fo = fiftyone()
    if overwrite and name in user_datasets(fo):
        fo.delete_dataset(name)
    ds = fo.load_dataset(name) if name in user_datasets(fo) else fo.Dataset(name, persistent=True)
    existing = set(ds.distinct("ingest_key")) if "ingest_key" in ds.get_field_schema() else set()
    samples = []
    relabelled: dict[str, Any] = {}
    for c in cuts:
        key = hashlib.sha1(
            f"{source_path}\0{c.video}\0{c.sha256}".encode("utf-8", "surrogatepass")
        ).hexdigest()
        if key in existing and not relabel:
            continue
        detections = []
        for seg, support in zip(c.segments, c.supports, strict=True):
            if support is None:  # no decoded frame lies in it (named in empty_yes if "yes")
                continue
            detections.append(
                fo.TemporalDetection(label=seg.name, support=list(support), answer=seg.rule.answer)
            )
        if key in existing:
            relabelled[key] = fo.TemporalDetections(detections=detections)
            continue
        seg0 = c.segments[0]
        sample = fo.Sample(
            filepath=str(c.path.resolve()),
            video=c.video,
            source_path=source_path,
            ingest_key=key,
            frames_dataset=frames_dataset,
            subject=seg0.subject,
            camera=seg0.camera,
            source_dataset=seg0.source_dataset,
            segments=fo.TemporalDetections(detections=detections),
        )
        sample.metadata = fo.VideoMetadata(
            size_bytes=c.path.stat().st_size,
            frame_width=c.size[0] or None,
            frame_height=c.size[1] or None,
            frame_rate=c.fps,
            total_frame_count=c.frames,
            duration=c.duration,
        )
        samples.append(sample)
    if relabelled:
        ids = dict(zip(*ds.values(["ingest_key", "id"]), strict=True))
        ds.set_values("segments", {ids[k]: v for k, v in relabelled.items()}, key_field="id")
    if samples:
        ds.add_samples(samples, progress=False)
