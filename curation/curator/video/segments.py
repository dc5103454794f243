"""Label files: OmniFall's segment CSV, generic segment files (CSV or JSON), clip folders.

Each gives ``SegmentRow``s: one labelled stretch of one video, with the class map's
rule for its class. Every bad row is collected and named in one ``DataError``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from curation._io import is_within, path_kind, real_path
from curation.class_map import ClassMap, ClassRule
from curation.curator.ingest import folder_file_problem, label_of_folder
from curation.errors import DataError
from curation.images import name_form_mismatch

OMNIFALL_COLUMNS = ("path", "label", "start", "end", "subject", "cam", "dataset")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
#: Problems shown in one error; the rest are counted.
SHOWN_PROBLEMS = 10


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


def refuse_other_delimiter(labels: Path, header: str) -> None:
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
        refuse_other_delimiter(labels, text.split("\n", 1)[0])
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
    raise_all(problems, f"{labels}: {len(problems)} problem(s); nothing was ingested")
    return fmt, segments


def raise_all(problems: list[str], head: str) -> None:
    """One ``DataError`` naming the first problems (and counting the rest), if any."""
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = (
            f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more"
            if len(problems) > SHOWN_PROBLEMS
            else ""
        )
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
            problem = folder_file_problem(path, rel.as_posix(), real_path(folder))
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
    raise_all(refused, f"{folder}: {len(refused)} file(s) cannot be ingested; nothing was added")
    if not segments:
        raise DataError(
            f"{folder} holds no videos in fall/, no_fall/ or unsure/ "
            f"({', '.join(sorted(VIDEO_SUFFIXES))}). Fix: put whole clips there"
        )
    return segments


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
