"""Video ingest, start to end: read the labels, cut the videos, add the frames and videos.

``ingest_videos`` (keyword options, for a notebook) and ``ingest_video_request`` (a
``VideoIngestRequest``, what the command builds) cut labelled frames out of videos
into the task dataset, all or nothing, one ingest at a time per frames folder
(``frames_lock``), and find stored frames the label file no longer gives
(``--relabel``).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation._io import is_within, path_kind, real_path
from curation.class_map import load_class_map
from curation.curator.ingest import IngestResult, Item, add_items
from curation.curator.video.dataset import add_videos
from curation.curator.video.decode import Cut, cut_videos, remove_files
from curation.curator.video.sampling import DEFAULT_MARGIN, Sampling, Span, exact
from curation.curator.video.segments import (
    SegmentRow,
    clip_folder_segments,
    group_segments,
    raise_all,
    read_segments,
    refuse_other_delimiter,
)
from curation.errors import DataError, UsageError
from curation.schemas.questions import TASK_QUESTION


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
    #: the sampling schedule the frames were cut with (also stored on each frame)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True, slots=True)
class VideoIngestRequest:
    """Everything one video ingest needs (see ``ingest_videos`` for the meaning of each).

    ``labels`` is an OmniFall CSV or a generic segment file (with ``videos``, the folder
    the paths in it are relative to), or a folder of whole clips.
    """

    labels: str | Path
    dataset: str
    videos: str | Path | None = None
    sampling: Sampling = field(default_factory=Sampling)
    class_map: str | Path | None = None
    skip_bad: bool = False
    frames_dir: str | Path | None = None
    questions: tuple[str, ...] = (TASK_QUESTION,)
    seed: int = 0
    overwrite: bool = False
    relabel: bool = False


def video_only_options(
    *,
    fps: float | None = None,
    every_n: int | None = None,
    margin: float = DEFAULT_MARGIN,
    class_map: str | Path | None = None,
    frames_dir: str | Path | None = None,
    skip_bad: bool = False,
    keep_middle: bool = True,
) -> list[str]:
    """The video-only options (as the command spells them) that differ from their
    defaults: given for a source that is no video, each is refused."""
    given = {"--fps": fps, "--every-n": every_n, "--class-map": class_map}
    given |= {"--frames-dir": frames_dir, "--skip-bad": skip_bad or None}
    given["--margin"] = None if margin == DEFAULT_MARGIN else margin
    given["--no-middle"] = None if keep_middle else True
    return [name for name, value in given.items() if value is not None]


def refuse_video_only_options(source: str | Path, given: Sequence[str]) -> None:
    """A ``UsageError`` naming the video-only options ``given`` for the non-video ``source``."""
    if given:
        raise UsageError(
            f"{', '.join(given)} apply to videos only (a segment file with --videos DIR, or a "
            f"folder of clips), not to {source}. Fix: leave them out"
        )


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
    Frames are sampled at ``fps`` (default ``DEFAULT_FPS``) or every ``every_n``-th
    (``Sampling``); ``keep_middle`` keeps, beside the sampled frames, the frame at the
    middle of each "yes" segment, labelled "yes" even within ``margin`` of a boundary,
    so that a fall shorter than twice the margin still gives a labelled frame.
    Interrupted (Ctrl-C, SIGTERM), it stops decoding and removes the frames it wrote.

    Ingested again after the label file (or ``margin``, or the class map) changed,
    stored frames that it now labels otherwise, or that lie in no segment of it now,
    are a ``DataError`` naming how many, with nothing changed; ``relabel`` rewrites
    their labels (and the segments in ``NAME-videos``) and removes those in no
    segment, all or nothing.

    Raises:
        UsageError: bad options or paths.
        DataError: bad rows (all named), unreadable videos (without ``skip_bad``).
    """
    request = VideoIngestRequest(
        labels,
        dataset,
        videos=videos,
        sampling=Sampling(fps, every_n, margin, keep_middle),
        class_map=class_map,
        skip_bad=skip_bad,
        frames_dir=frames_dir,
        questions=tuple(questions),
        seed=seed,
        overwrite=overwrite,
        relabel=relabel,
    )
    return ingest_video_request(request)


def ingest_video_request(request: VideoIngestRequest) -> VideoIngestResult:
    """``ingest_videos`` with its options in one ``VideoIngestRequest``."""
    from curation.curator._fo import check_dataset_name

    dataset, sampling, labels = request.dataset, request.sampling, request.labels
    check_dataset_name(dataset)
    videos_dataset = f"{dataset}-videos"
    check_dataset_name(videos_dataset)
    if request.overwrite and request.relabel:
        raise UsageError(
            "--overwrite and --relabel exclude each other: --overwrite starts the dataset "
            "again, --relabel rewrites the labels of the frames already in it. Fix: give one"
        )
    cmap = load_class_map(request.class_map)
    source = Path(labels)
    kind = path_kind(source, "LABELS")
    if kind == "missing":
        raise UsageError(f"label file not found: {source}")
    if kind == "dir":
        if request.videos is not None:
            raise UsageError(
                f"--videos applies to a label file, not to the clip folder {source}. "
                "Fix: leave it out"
            )
        root, fmt = source, "clip-folder"
        segments = clip_folder_segments(source, cmap)
    else:
        if request.videos is None:
            with contextlib.suppress(OSError, UnicodeDecodeError), source.open("rb") as fh:
                refuse_other_delimiter(source, fh.readline(4096).decode("utf-8-sig"))
            raise UsageError(
                f"{source} is a label file: --videos DIR says where its videos are. "
                "Fix: curate ingest LABELS.csv --videos DIR --dataset NAME"
            )
        root = Path(request.videos)
        if path_kind(root, "--videos") != "dir":
            raise UsageError(f"--videos folder not found: {root}")
        fmt, segments = read_segments(source, root, cmap)
    out = _frames_dir(request.frames_dir, dataset, [root, source])
    source_path = str(real_path(source))
    source_name = f"{'video-folder' if kind == 'dir' else 'video'}:{source.name}"
    provenance = "folder" if kind == "dir" else "file"
    questions, seed = list(request.questions), request.seed

    def make_item(file: Path, answer: str | None, original_id: str, fields: dict[str, Any]) -> Item:
        return Item(
            file,
            random.Random(f"{seed}:{original_id}").choice(questions),
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
    with frames_lock(out):
        by_video = group_segments(segments)
        t0 = time.perf_counter()
        cuts: list[Cut] = []
        skipped: list[SkippedVideo] = []
        problems: list[str] = []
        done = cut_videos(
            by_video, root, out, sampling=sampling, class_map=cmap, make_item=make_item
        )
        try:
            for video, cut in done:
                if isinstance(cut, Cut):
                    cuts.append(cut)
                elif request.skip_bad:
                    skipped.append(SkippedVideo(video, str(cut)))
                else:
                    problems.append(str(cut))
            raise_all(
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
                overwrite=request.overwrite,
                source=str(labels),
                scans=scans,
                relabel=request.relabel,
                no_longer_labelled=stale,
            )
        except BaseException:
            remove_files([f for c in cuts for f in c.created], out)
            raise
        from curation.curator._lock import database_lock, dataset_lock_key

        # the sibling video dataset: one writer at a time too (a shared database)
        with database_lock(dataset_lock_key(videos_dataset), f"curate ingest {labels}"):
            add_videos(
                videos_dataset, dataset, cuts, source_path, request.overwrite, request.relabel
            )
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
        sampling,
    )


@contextlib.contextmanager
def frames_lock(folder: Path) -> Iterator[None]:
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


def _frames_dir(frames_dir: str | Path | None, dataset: str, inputs: list[Path]) -> Path:
    from curation._io import project_raw

    if frames_dir is None:
        from curation.curator._fo import import_fiftyone

        fo = import_fiftyone()
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


def _per_class(cuts: list[Cut]) -> dict[str, dict[str, int]]:
    totals: dict[str, list[int]] = {}
    for c in cuts:
        for name, (labelled, unsure) in c.per_class.items():
            total = totals.setdefault(name, [0, 0])
            total[0] += labelled
            total[1] += unsure
    return {n: {"labelled": v[0], "unsure": v[1]} for n, v in sorted(totals.items())}


def _no_longer_labelled(
    source_path: str,
    by_video: dict[str, list[SegmentRow]],
    cuts: list[Cut],
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
        # frames of the videos cut here that a label file under another name stored: this
        # file labels those videos now (the same video: its frames' folder is named by its
        # content); a frame it puts in no segment goes, as one of its own would
        folders = {str(Path(it.filepath).parent) for c in cuts for it in c.items}
        others = ds.match(
            (F("source_path") != source_path) & F("video").is_in(sorted(cut_of))
        ).values([*wanted, "filepath", "source_path"])
        rows = [(*row, "") for row in zip(*view.values(wanted), strict=True)]
        rows += [
            (sid, key, video, at, index, f" (stored from {Path(where).name})")
            for sid, key, video, at, index, path, where in zip(*others, strict=True)
            if str(Path(path).parent) in folders and (video, index) not in cut_again
        ]
        gone = []
        for sid, key, video, at, index, whose in rows:
            if key in keys or video is None or video in left_alone:
                continue
            cut = cut_of.get(video)
            duration, period = (
                (cut.duration, cut.last_frame_shows or 1.0 / cut.fps)
                if cut is not None
                else (math.inf, 0.0)
            )
            segs = by_video.get(video, [])
            if not segs:
                gone.append((sid, f"{video}#{index}", "of a video it no longer names"))
            elif (video, index) in cut_again:
                gone.append((sid, f"{video}#{index}", "older cuts of frames cut again"))
            elif not any(
                Span.in_seconds(s, duration, period).covers(index or 0, exact(at or 0.0))
                for s in segs
            ):
                gone.append((sid, f"{video}#{index}", f"in no segment now{whose}"))
        return gone

    return find
