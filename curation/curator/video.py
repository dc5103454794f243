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
``negative_kind``) or unsure. Frames are sampled at ``fps`` (or every n-th
frame); a frame less than ``margin`` seconds from a boundary between segments,
or in two segments whose answers differ, or in an "unsure" class, is kept
without an answer and tagged ``unsure`` (out of exports until a reviewer tags
``relabel:yes``/``relabel:no``); a frame in no segment is not ingested. Each
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

import contextlib
import csv
import hashlib
import io
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from curation.images import ImageScan
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
        return set(OMNIFALL_COLUMNS) <= header or {"video", "label"} <= header
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
    text: str, where: str, root: Path, problems: list[str], fld: str = "video", shown: str = ""
) -> str | None:
    """The relative path ``text`` if it stays inside ``root``; else a problem and None."""
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
        elif _video_path(path, where, root, problems, "path") is not None:
            # the file is {videos}/{dataset}/video/{path}.mp4 (OmniFall's layout)
            full = f"{dataset}/video/{path}.mp4"
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
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
            kind = kind_parts[0] if kind_parts and answer == "no" else None
            if answer == "yes":
                name, rule = "fall", ClassRule(id=1, answer="yes")
                with contextlib.suppress(KeyError):
                    name, rule = class_map.rule("fall")
            elif answer == "no":
                name = kind or "no_fall"
                try:  # no_fall/fall/: a negative kind that the class map answers otherwise
                    _, known = class_map.rule(name)
                except KeyError:
                    known = None
                if known is not None and known.answer != "no":
                    refused.append(
                        f"{path}: the folder no_fall/{kind}/ names the class {kind!r}, which "
                        f"the class map answers {known.answer!r}, not 'no'. Fix: move the clip "
                        f"to {'fall/' if known.answer == 'yes' else 'unsure/'}, or rename the "
                        "folder to the kind of non-fall it shows"
                    )
                    continue
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
    size: tuple[int, int]
    unsure: int
    unlabelled: int
    segments: list[SegmentRow]
    sha256: str
    scans: dict[Path, ImageScan]


def _in_seconds(seg: SegmentRow, fps: float) -> tuple[float, float]:
    if seg.in_frames:
        return seg.start / fps, (seg.end + 1) / fps
    return seg.start, seg.end


def _label(
    t: float, spans: list[tuple[float, float, SegmentRow]], boundaries: list[float], margin: float
) -> tuple[str | None, SegmentRow | None, str, str | None] | None:
    """(answer or None, the segment, the segment text, activity) of a frame at ``t``; None: none."""
    covering = [(s, e, seg) for s, e, seg in spans if s <= t < e]
    if not covering:
        return None
    text = "+".join(f"{s:g}-{e:g}" if math.isfinite(e) else f"{s:g}-end" for s, e, _ in covering)
    answers = {seg.rule.answer for _, _, seg in covering}
    if len(answers) > 1:  # overlapping segments that disagree: a reviewer decides
        return None, None, text, "/".join(sorted({seg.name for _, _, seg in covering}))
    s, e, seg = max(covering, key=lambda c: c[0])
    answer = seg.rule.answer
    near = any(abs(t - b) < margin for b in boundaries)
    if answer == "unsure" or near:
        return None, seg, text, seg.name
    return answer, seg, text, seg.name


_KIND_PROBLEM = {
    "dir": "not a file",
    "special": "not a regular file (a FIFO, device or looping link)",
}


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
) -> _Cut:
    """Decode one video, sample its frames, write the labelled ones; raise ``_VideoProblem``."""
    av = require("av", "video")
    imagehash = require("imagehash", "fiftyone")
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
            rate = stream.average_rate or stream.guessed_rate
            native = float(rate) if rate else 0.0
            if native <= 0:
                raise _VideoProblem(f"{path}: no frame rate in the file. Fix: re-encode it")
            tb = float(stream.time_base) if stream.time_base else 0.0
            if stream.duration and tb:
                duration = stream.duration * tb
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = math.inf
            origin = stream.start_time * tb if stream.start_time is not None and tb else 0.0
            if duration <= 0:
                raise _VideoProblem(
                    f"{path}: holds no frames (its length is 0). Fix: replace it, or --skip-bad"
                )
            spans = [(*_in_seconds(s, native), s) for s in seg_list]
            period = 1.0 / native
            for s, e, seg in spans:
                if s >= duration:
                    raise _VideoProblem(
                        f"{seg.where}: start: {s:g} s is past the end of {path}, which lasts "
                        f"{duration:g} s. Fix: correct the row (or the video it names)"
                    )
                if math.isfinite(e) and e > duration + period + 1e-6:
                    raise _VideoProblem(
                        f"{seg.where}: end: {e:g} s is past the end of {path}, which lasts "
                        f"{duration:g} s. Fix: correct the row (end at most {duration:g})"
                    )
            # the video's own start and end are no boundary between two labels
            boundaries = sorted(
                {s for s, _, _ in spans if s > 1e-9}
                | {e for _, e, _ in spans if math.isfinite(e) and e < duration - 1e-9}
            )
            digest = sha256_file(path)
            folder = frames_dir / f"{video}-{digest[:12]}"
            items: list[Item] = []
            scans: dict[Path, ImageScan] = {}
            unsure = unlabelled = 0
            decoded = 0
            target = 0  # the k of the next sampling time k / fps
            half = period / 2
            size = (0, 0)
            try:
                for i, frame in enumerate(container.decode(stream)):
                    decoded = i + 1
                    t = frame.time - origin if frame.time is not None else i * period
                    if every_n:
                        take = i % every_n == 0
                    else:  # the first frame at or after each k / fps, half a frame early
                        reach = t + half + 1e-9
                        take = reach >= target / fps  # type: ignore[operator]
                        if take:  # the next k with k / fps past reach: jump, then settle
                            target = max(target, math.floor(reach * fps) - 1)  # type: ignore[operator]
                            while target / fps <= reach:  # type: ignore[operator]
                                target += 1
                    if not take:
                        continue
                    label = _label(t, spans, boundaries, margin)
                    if label is None:
                        unlabelled += 1
                        continue
                    answer, seg, text, activity = label
                    image = frame.to_image()
                    size = image.size
                    buf = io.BytesIO()
                    image.save(buf, "JPEG", quality=JPEG_QUALITY)
                    data = buf.getvalue()
                    file = folder / f"{i:06d}.jpg"
                    # hashed here rather than read back: the sha256 of the file's bytes, the
                    # phash of the frame (at JPEG quality 95 the file's phash is the same
                    # 64 bits; tests/test_video.py compares them)
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
                    first = seg or seg_list[0]
                    items.append(
                        make_item(
                            file,
                            answer,
                            f"{video}#{i}",
                            {
                                "video": video,
                                "time": round(t, 6),
                                "frame_index": i,
                                "segment": text,
                                "subject": first.subject,
                                "camera": first.camera,
                                "source_dataset": first.source_dataset,
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
            if stream.frames and decoded < stream.frames:
                raise _VideoProblem(
                    f"{path}: truncated: its header says {stream.frames} frames, only "
                    f"{decoded} decode. Fix: replace it (re-download or re-copy), or --skip-bad"
                )
            if not math.isfinite(duration):
                duration = decoded * period
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
            )
    except BaseException:
        _remove(created)
        raise


def _remove(files: Sequence[Path]) -> None:
    for f in files:
        with contextlib.suppress(OSError):
            f.unlink()
    for d in sorted({f.parent for f in files}, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


# --- the command ------------------------------------------------------------------------


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
) -> VideoIngestResult:
    """Cut labelled frames out of videos and add them to ``dataset`` (idempotently).

    ``labels`` is an OmniFall CSV or a generic segment file (with ``videos``, the
    folder the paths in it are relative to), or a folder of whole clips. All or
    nothing: a video that cannot be read stops the ingest with nothing added and
    no frame file left, unless ``skip_bad``, which leaves it out and reports why.

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
                )
            except _VideoProblem as exc:
                return exc

        try:
            # one thread per core: PyAV decodes and PIL encodes with the GIL released
            workers = max(1, min(len(by_video), os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [(video, pool.submit(cut, segs)) for video, segs in by_video.items()]
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
            result = add_items(dataset, items, overwrite=overwrite, source=str(labels), scans=scans)
        except BaseException:
            _remove([f for c in cuts for f in c.created])
            raise
        from curation.curator._lock import database_lock, dataset_lock_key

        # the sibling video dataset: one writer at a time too (shared database, issue 14)
        with database_lock(dataset_lock_key(videos_dataset), f"curate ingest {labels}"):
            _add_videos(videos_dataset, dataset, cuts, source_path, overwrite)
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
    )


def _add_videos(
    name: str, frames_dataset: str, cuts: list[_Cut], source_path: str, overwrite: bool
) -> None:
    """Each video with its segments as ``TemporalDetections`` in the sibling video dataset."""
    from curation.curator._fo import fiftyone, user_datasets

    fo = fiftyone()
    if overwrite and name in user_datasets(fo):
        fo.delete_dataset(name)
    ds = fo.load_dataset(name) if name in user_datasets(fo) else fo.Dataset(name, persistent=True)
    existing = set(ds.distinct("ingest_key")) if "ingest_key" in ds.get_field_schema() else set()
    samples = []
    for c in cuts:
        key = hashlib.sha1(
            f"{source_path}\0{c.video}\0{c.sha256}".encode("utf-8", "surrogatepass")
        ).hexdigest()
        if key in existing:
            continue
        detections = []
        for seg in c.segments:
            s, e = _in_seconds(seg, c.fps)
            first = int(s * c.fps) + 1
            last = (
                c.frames
                if not math.isfinite(e)
                else min(c.frames, max(first, math.ceil(e * c.fps)))
            )
            detections.append(
                fo.TemporalDetection(label=seg.name, support=[first, last], answer=seg.rule.answer)
            )
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
    if samples:
        ds.add_samples(samples, progress=False)
