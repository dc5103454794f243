"""`curate watch`: frames of a video (or a folder of them, or a stream) scored and turned into alerts.

Frames are sampled by time (``curation.events.frames``), decoded in a thread while the
previous batch is scored, scored in batches by a scorer (``curation.events.scorers``),
and pushed through the event engine. Events are handed to ``on_event`` as they happen;
when the source ends, fails, or the run is interrupted (Ctrl-C, SIGTERM), the engine is
finished first, so an alert still open is reported as ``resolved`` with ``stream_ended``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.events.engine import Event, EventEngine
from curation.events.frames import Frame, FrameSourceError, is_stream, prefetch, read_frames
from curation.events.params import EventParams
from curation.events.scorers import Scorer

EVENTS_BESIDE_MODEL = "events.yaml"
_CLIP_BEFORE = 2.0  # seconds of frames before an alert's episode in its review strip
_CLIP_FRAMES = 8


@dataclass
class VideoWatch:
    """What watching one video gave: its events, and every frame's time and P(yes)."""

    video: str
    camera: str
    events: list[Event] = field(default_factory=list)
    scores: list[tuple[float, float]] = field(default_factory=list)
    smoothed: list[tuple[float, float]] = field(default_factory=list)
    problem: str | None = None
    clips: list[str] = field(default_factory=list)
    score_seconds: float = 0.0
    wall_seconds: float = 0.0
    end: float | None = None  # when the video stops (decoded to the end); None for a stream

    @property
    def frames(self) -> int:
        return len(self.scores)

    def seconds(self, fps: float) -> float:
        """The footage covered: the video's length where it decoded to the end (its last
        frame's time plus that frame's duration), else up to one sampling period after
        the last frame scored."""
        if self.end is not None:
            return self.end
        return self.scores[-1][0] + 1.0 / fps if self.scores else 0.0

    def event_dicts(self) -> list[dict[str, Any]]:
        return [event_dict(e, self.video, self.camera) for e in self.events]


@dataclass
class WatchResult:
    videos: list[VideoWatch]
    params: EventParams
    on: float
    off: float
    threshold_note: str
    off_note: str = ""

    @property
    def alerts(self) -> int:
        return sum(e.kind == "fall" for v in self.videos for e in v.events)


def event_dict(event: Event, video: str, camera: str) -> dict[str, Any]:
    return {"camera": camera, "video": video, **event.as_dict()}


def resolve_threshold(
    params: EventParams, scorer: Scorer, explicit: float | None = None
) -> tuple[float, str]:
    """The operating threshold the engine's ``on`` defaults to, and where it came from.

    One order, first found wins: ``explicit`` (``--threshold`` on the command line), the
    ``on_threshold`` of the event parameters (``--set``, ``--events``, the ``events.yaml``
    beside the model, the shipped defaults, in that order), the scorer's operating point.

    Raises:
        UsageError: no ``on_threshold``, no ``--threshold`` and no saved operating point.
    """
    if explicit is not None:
        return explicit, f"--threshold {explicit:g}"
    if params.on_threshold is not None:
        return params.on_threshold, "on_threshold from the event parameters"
    if scorer.threshold is not None:
        return scorer.threshold, scorer.note or "the operating point"
    raise UsageError(
        "no threshold to raise alerts at: no operating point beside the model, no --threshold "
        "and no on_threshold. Fix: choose one with curate eval CHECKPOINT --data VAL.json "
        "--max-false-alarm 0.05, or pass --threshold 0.5"
    )


def with_threshold(params: EventParams, explicit: float | None) -> EventParams:
    """``params`` with ``on_threshold`` replaced by a command-line ``--threshold``."""
    if explicit is None:
        return params
    return params.model_copy(update={"on_threshold": explicit})


def off_note(params: EventParams) -> str:
    """Where the ``off`` threshold came from."""
    if params.off_threshold is not None:
        return "off_threshold from the event parameters"
    return f"off_ratio {params.off_ratio:g} x on"


def check_output_folder(folder: str | Path | None, option: str) -> None:
    """Refuse an output folder that cannot be one, before a frame is scored.

    Raises:
        UsageError: ``folder`` is an existing file (or link to one), or a path the file
            system cannot take (a parent that is a file, a name too long).
    """
    from curation._io import check_output_path

    if folder is None:
        return
    check_output_path(folder, option)
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"{option} {path} is a file, not a folder. Fix: give {option} a new or existing folder"
        )


def video_files(folder: Path) -> list[Path]:
    """The videos under ``folder`` (by suffix, any depth), in path order."""
    from curation.curator.video import VIDEO_SUFFIXES

    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _file_stem(video: str) -> str:
    """A file name for ``video`` (its path under the folder watched, or a stream URL) that
    two videos of the same name in different folders do not share."""
    if is_stream(video):
        return "stream"
    return video.replace("/", "__").rsplit(".", 1)[0] or "video"


def _camera(video: str) -> str:
    """The camera id of a video: its path under the folder watched, without the suffix
    (``a/clip`` and ``b/clip`` stay apart); a stream's last path part."""
    if is_stream(video):
        return Path(video).stem or "stream"
    return Path(video).with_suffix("").as_posix()


def _write_strip(
    folder: Path, video: str, event: Event, recent: collections.deque[Frame]
) -> Path | None:
    """A strip of thumbnails from just before the episode to the alert, for review."""
    from PIL import Image

    from curation._io import atomic_write_bytes

    shown = [f for f in recent if event.start - _CLIP_BEFORE <= f.t <= event.end]
    if not shown:
        return None
    step = max(1, -(-len(shown) // _CLIP_FRAMES))
    shown = shown[::step][:_CLIP_FRAMES]
    h = 96
    thumbs = [f.image.resize((max(1, f.image.width * h // f.image.height), h)) for f in shown]
    strip = Image.new("RGB", (sum(t.width for t in thumbs), h))
    x = 0
    for thumb in thumbs:
        strip.paste(thumb, (x, 0))
        x += thumb.width
    stem = _file_stem(video)
    out = folder / f"{stem}_{event.kind}_{event.start:08.1f}s.png"
    import io

    buf = io.BytesIO()
    strip.save(buf, "PNG")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    return out


def watch_video(
    source: str | Path,
    scorer: Scorer,
    params: EventParams,
    threshold: float,
    *,
    camera: str | None = None,
    name: str | None = None,
    batch_size: int = 16,
    clips: Path | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    on_progress: Callable[[VideoWatch, float], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    frames: Iterator[Frame] | None = None,
) -> VideoWatch:
    """Watch one video file or stream; a file that fails to decode ends with ``problem`` set.

    ``frames`` replaces decoding ``source`` (tests; a caller's own frames).
    """
    stop = stop or threading.Event()
    video = name or str(source)
    result = VideoWatch(
        video, camera or (_camera(name) if name else Path(str(source)).stem or "stream")
    )
    engine = EventEngine(params, threshold)
    keep = max(_CLIP_BEFORE + params.min_duration + params.smoothing_seconds + 2.0, 5.0)
    recent: collections.deque[Frame] = collections.deque()
    stream = is_stream(source)
    started = time.perf_counter()

    def emit(events: list[Event]) -> None:
        for event in events:
            result.events.append(event)
            data = event_dict(event, result.video, result.camera)
            if clips is not None and event.kind in ("fall", "long_lie"):
                path = _write_strip(clips, result.video, event, recent)
                if path is not None:
                    result.clips.append(str(path))
                    data["clip"] = str(path)
            if on_event is not None:
                on_event(data)

    ends: dict[str, float] = {}
    if frames is None:
        frames = read_frames(source, params.fps, stop=stop, on_retry=on_retry, ends=ends)
    source_frames = prefetch(frames)
    try:
        for batch in _batches(source_frames, 1 if stream else batch_size):
            t0 = time.perf_counter()
            scores = scorer.score([f.image for f in batch])
            result.score_seconds += time.perf_counter() - t0
            for frame, p in zip(batch, scores, strict=True):
                if clips is not None:
                    recent.append(frame)
                    while recent and recent[0].t < frame.t - keep:
                        recent.popleft()
                result.scores.append((frame.t, float(p)))
                emit(engine.push(frame.t, float(p)))
            if on_progress is not None:
                on_progress(result, batch[-1].t)
            if stop.is_set():
                break
    except FrameSourceError as exc:
        result.problem = str(exc)
    finally:
        close = getattr(source_frames, "close", None)
        if close is not None:
            close()
        emit(engine.finish())  # also on Ctrl-C/SIGTERM: an open alert is closed, not lost
        result.smoothed = engine.smoothed
        result.end = ends.get("end") if not stop.is_set() else None
        result.wall_seconds = time.perf_counter() - started
    return result


def watch(
    source: str | Path,
    scorer: Scorer,
    params: EventParams,
    *,
    camera: str | None = None,
    batch_size: int = 16,
    clips: Path | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    on_progress: Callable[[VideoWatch, float], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    threshold: float | None = None,
) -> WatchResult:
    """Watch a video file, every video in a folder, or a stream URL.

    A file that cannot be read is skipped: its ``problem`` says why (``on_problem`` hears
    it at once), and the next file is watched.

    ``threshold`` (``--threshold``) wins over the event parameters' ``on_threshold``
    and over the operating point (``resolve_threshold``).

    Raises:
        UsageError: a source that is neither a file, a folder nor a stream URL; no threshold.
    """
    check_output_folder(clips, "--clips")
    operating, note = resolve_threshold(params, scorer, threshold)
    params = with_threshold(params, threshold)
    on, off = params.thresholds(operating)
    if is_stream(source):
        sources: list[tuple[str, str]] = [(str(source), str(source))]
    else:
        path = Path(source)
        if path.is_dir():
            files = video_files(path)
            if not files:
                raise UsageError(
                    f"{path}: no video files in this folder. Fix: give a video file, a folder "
                    "of .mp4/.avi/... files, or a stream URL (rtsp://...)"
                )
            sources = [(str(f), f.relative_to(path).as_posix()) for f in files]
        elif path.is_file():
            sources = [(str(path), path.name)]
        else:
            raise UsageError(
                f"{source}: no such file or folder. Fix: give a video file, a folder of "
                "videos, or a stream URL (rtsp://, http://, udp://)"
            )
    videos = []
    for src, name in sources:
        if stop is not None and stop.is_set():
            break
        watched = watch_video(
            src,
            scorer,
            params,
            operating,
            camera=camera,
            name=name,
            batch_size=batch_size,
            clips=clips,
            on_event=on_event,
            on_progress=on_progress,
            on_retry=on_problem,
            stop=stop,
        )
        if watched.problem and on_problem is not None:
            on_problem(f"skipped the rest of {name}: {watched.problem}")
        if clips is not None and watched.scores:
            from curation.events.timeline import write_timeline

            alerts = [e.as_dict() for e in watched.events if e.kind in ("fall", "long_lie")]
            png = write_timeline(
                clips / f"{_file_stem(name)}_timeline.png",
                name,
                watched.scores,
                watched.smoothed,
                on,
                off,
                alerts=alerts,
            )
            if png is not None:
                watched.clips.append(str(png))
        videos.append(watched)
    return WatchResult(videos, params, on, off, note, off_note(params))


def event_params_for(
    model: str | Path | None, events: str | Path | None, overrides: list[str] | None
) -> tuple[EventParams, str]:
    """The event parameters ``curate watch`` uses, and where they came from.

    ``events`` if given, else the ``events.yaml`` that ``curate eval-events --tune-on val``
    wrote beside the model, else the shipped defaults; then the ``key=value`` overrides.
    """
    from curation.events.params import load_event_params

    if events is None and model is not None:
        beside = Path(model).parent / EVENTS_BESIDE_MODEL
        if Path(model).is_dir():
            beside = Path(model) / EVENTS_BESIDE_MODEL
        if beside.is_file():
            events = beside
    where = str(events) if events is not None else "the shipped defaults"
    if overrides:
        where += " with " + " ".join(overrides)
    return load_event_params(events, overrides), where
