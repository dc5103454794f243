"""Decoding: PyAV cuts one video's scheduled frames into JPEG files; a pool cuts many.

PyAV (FFmpeg's libraries in the wheel, extra ``video``) decodes; frames are turned
as the file's display matrix asks, an edit list's cut packets are not counted, and
frames over the images' pixel limit are refused. ``cut_videos`` runs one thread per
core and, interrupted (Ctrl-C, SIGTERM) or failing, stops the others at their next
frame and removes every frame file the run wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from curation._io import atomic_write_bytes, path_kind, sha256_file
from curation.class_map import ClassMap
from curation.curator.ingest import Item
from curation.curator.video.sampling import (
    SKIPPED,
    FrameLabel,
    FrameSchedule,
    Sampling,
    Span,
    exact,
    no_yes_frame,
    segment_support,
)
from curation.curator.video.segments import SegmentRow
from curation.errors import require
from curation.images import ImageScan

#: JPEG quality of the frame files (LAVIS reads plain image files).
JPEG_QUALITY = 95


class VideoProblem(Exception):
    """A video that cannot be used (skippable with --skip-bad)."""


@dataclass
class Cut:
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
    #: how long the last frame shows (s): a seconds row ending after the last frame's time
    #: runs to the end (``Span.in_seconds``); 0: one frame at ``fps``
    last_frame_shows: float = 0.0


class _Stopped(Exception):
    """The ingest was interrupted (Ctrl-C, SIGTERM) while this video was being cut."""


_KIND_PROBLEM = {
    "dir": "not a file",
    "special": "not a regular file (a FIFO, device or looping link)",
}


def _presentation_times(
    path: Path, stream_index: int, origin: Fraction
) -> tuple[list[Fraction], Fraction | None]:
    """The times of the frames that decode, in presentation order, from the packets alone,
    and how long the last of them shows (its packet's duration; None when the file gives
    none).

    Packets an edit list cuts away (``is_discard``) decode to no frame; the others'
    pts, sorted, are the decoded frames' (B-frames come out of order).
    """
    av = require("av", "video")
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(0)
        shown = sorted(
            (Fraction(p.pts) * tb - origin, Fraction(p.duration or 0) * tb)
            for p in container.demux(stream)
            if p.size and p.pts is not None and not p.is_discard
        )
    last = shown[-1][1] if shown and shown[-1][1] > 0 else None
    return [t for t, _ in shown], last


def video_end(times: Sequence[Fraction], last_length: Fraction | None, rate: float) -> Fraction:
    """When a video whose frames show at ``times`` stops: its last frame's time plus that
    frame's duration (``last_length``; without one, the gap before it, else one frame
    at ``rate``). The header's duration can say less: a variable frame rate's last frame
    may show past it, and an edit list's cut packets are in it."""
    if last_length is None:
        last_length = times[-1] - times[-2] if len(times) > 1 else 1 / exact(rate)
    return times[-1] + last_length


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
DISPLAY_TRANSPOSE = {
    (0, -1, 1, 0): "ROTATE_90",
    (-1, 0, 0, -1): "ROTATE_180",
    (0, 1, -1, 0): "ROTATE_270",
    (-1, 0, 0, 1): "FLIP_LEFT_RIGHT",
    (1, 0, 0, -1): "FLIP_TOP_BOTTOM",
    (0, 1, 1, 0): "TRANSPOSE",
    (0, -1, -1, 0): "TRANSVERSE",
}


def display_transpose(frame: Any) -> str | None:
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
    if signs in DISPLAY_TRANSPOSE:
        return DISPLAY_TRANSPOSE[signs]
    quarter = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return {1: "ROTATE_90", 2: "ROTATE_180", 3: "ROTATE_270"}.get(quarter)


def as_shown(image: Any, transpose: str | None) -> Any:
    """``image`` turned or mirrored by ``transpose`` (a name from ``display_transpose``)."""
    from PIL import Image

    return image if transpose is None else image.transpose(getattr(Image.Transpose, transpose))


def cut_video(
    seg_list: list[SegmentRow],
    root: Path,
    frames_dir: Path,
    *,
    sampling: Sampling,
    class_map: ClassMap,
    make_item: Any,
    stop: threading.Event | None = None,
) -> Cut:
    """Decode one video, sample its frames, write the labelled ones; raise ``VideoProblem``."""
    av = require("av", "video")
    imagehash = require("imagehash", "fiftyone")
    from curation import images

    video = seg_list[0].video
    path = root / video
    kind = path_kind(path, "video")
    if kind != "file":
        raise VideoProblem(
            f"{_KIND_PROBLEM.get(kind, 'video not found')}: {path} (named by "
            f"{seg_list[0].where}{' and more' if len(seg_list) > 1 else ''}). Fix: put the video "
            "there (OmniFall's layout is {videos}/{dataset}/video/{path}.mp4) or correct the "
            "row; --skip-bad ingests the other videos"
        )
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise VideoProblem(
            f"{path}: not a readable video ({exc}). Fix: replace the file (re-download or "
            "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4), or --skip-bad"
        ) from None
    created: list[Path] = []
    try:
        with container:
            demuxer = container.format.name
            if demuxer.endswith("_pipe") or demuxer.startswith("image2"):
                # FFmpeg reads a PNG or JPEG as a one-frame "video": not what the row meant
                raise VideoProblem(
                    f"{path}: a still image ({demuxer.removesuffix('_pipe')}), not a video. "
                    "Fix: name the video file in the row, or replace the file; --skip-bad"
                )
            if not container.streams.video:
                raise VideoProblem(f"{path}: holds no video stream. Fix: replace it, or --skip-bad")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > images.MAX_PIXELS:  # refused before a frame is decoded
                raise VideoProblem(_too_large(path, width, height, images.MAX_PIXELS))
            rate = stream.average_rate or stream.guessed_rate
            native = float(rate) if rate else 0.0
            if native <= 0:
                raise VideoProblem(f"{path}: no frame rate in the file. Fix: re-encode it")
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(0)
            if stream.duration and tb:
                duration = float(stream.duration * tb)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = math.inf
            origin = Fraction(stream.start_time) * tb if stream.start_time is not None else 0
            origin = Fraction(origin)
            period = 1.0 / native
            # the frames' times, read from the packets first: frame-numbered rows name decoded
            # frames (a variable frame rate has no one period), and the video ends when its
            # last frame stops showing, not when the header says (``video_end``)
            try:
                times_ahead, last_length = _presentation_times(path, stream.index, origin)
            except (av.error.FFmpegError, OSError, EOFError) as exc:
                raise VideoProblem(
                    f"{path}: reading its frames' times failed ({exc}); the file is "
                    "damaged. Fix: replace it (re-download or re-copy), or --skip-bad"
                ) from None
            stops: Fraction | float = duration  # exact where the frames' times give it
            last_shown = period  # how long the last frame shows
            if times_ahead:
                stops = video_end(times_ahead, last_length, native)
                duration = float(stops)
                last_shown = float(stops - times_ahead[-1])
            if duration <= 0:
                raise VideoProblem(
                    f"{path}: holds no frames (its length is 0). Fix: replace it, or --skip-bad"
                )
            for row in seg_list:
                problem = row.in_frames and _frame_rows_problem(row, path, len(times_ahead))
                if problem:
                    raise VideoProblem(problem)
            spans: list[Span] = []
            for row in seg_list:
                if row.in_frames:
                    first, last = int(row.start), int(row.end)
                    end: Fraction | float = (
                        times_ahead[last + 1] if last + 1 < len(times_ahead) else math.inf
                    )
                    spans.append(Span(row, times_ahead[first], end))
                    continue
                if row.start >= duration:
                    raise VideoProblem(
                        f"{row.where}: start: {row.start:g} s is past the end of {path}, which "
                        f"lasts {duration:g} s. Fix: correct the row (or the video it names)"
                    )
                if math.isfinite(row.end) and row.end > duration + period + 1e-6:
                    raise VideoProblem(
                        f"{row.where}: end: {row.end:g} s is past the end of {path}, which "
                        f"lasts {duration:g} s. Fix: correct the row (end at most {duration:g})"
                    )
                # a row that ends while the last frame shows runs to the end
                spans.append(Span.in_seconds(row, duration, last_shown))
            plan = FrameSchedule(spans, sampling, stops)
            sampling_text = sampling.text()
            digest = sha256_file(path)
            folder = frames_dir / f"{video}-{digest[:12]}"
            items: list[Item] = []
            scans: dict[Path, ImageScan] = {}
            per_class: dict[str, list[int]] = {}
            labelled_in: dict[int, int] = {}  # id(span) -> labelled frames in it
            unsure = unlabelled = 0
            decoded = discarded = 0
            times: list[Fraction] = []
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
                            raise VideoProblem(
                                _too_large(path, frame.width, frame.height, images.MAX_PIXELS)
                            )
                        t = (
                            Fraction(frame.pts) * tb - origin
                            if frame.pts is not None and tb
                            else Fraction(i) / exact(native)
                        )
                        times.append(t)
                        label = plan.decide(i, t)
                        if label is SKIPPED:
                            continue
                        if label is None:
                            unlabelled += 1
                            continue
                        assert isinstance(label, FrameLabel)
                        answer, seg, text, activity = (
                            label.answer,
                            label.seg,
                            label.text,
                            label.activity,
                        )
                        covering = label.covering
                        if answer is None:
                            for name in {sp.seg.name for sp in covering}:
                                per_class.setdefault(name, [0, 0])[1] += 1
                        else:
                            assert seg is not None
                            per_class.setdefault(seg.name, [0, 0])[0] += 1
                            for sp in covering:
                                labelled_in[id(sp)] = labelled_in.get(id(sp), 0) + 1
                        image = as_shown(frame.to_image(), display_transpose(frame))
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
                                    "sampling": sampling_text,
                                },
                            )
                        )
            except (av.error.FFmpegError, EOFError) as exc:
                raise VideoProblem(
                    f"{path}: decoding failed after {decoded} frame(s) ({exc}); the file is "
                    "damaged (truncated?). Fix: replace it (re-download or re-copy), or --skip-bad"
                ) from None
            if decoded == 0:
                raise VideoProblem(
                    f"{path}: holds no frames (0 decoded). Fix: replace it, or --skip-bad"
                )
            # an edit list (a trimmed MP4) cuts packets that the header still counts
            expected = stream.frames - discarded if stream.frames else 0
            if expected and decoded < expected:
                raise VideoProblem(
                    f"{path}: truncated: its header says {expected} frames, only "
                    f"{decoded} decode. Fix: replace it (re-download or re-copy), or --skip-bad"
                )
            if not math.isfinite(duration):
                duration = decoded * period
            supports = [segment_support(sp, times) for sp in spans]
            empty_yes = [
                no_yes_frame(sp, sampling.margin, sampling.keep_middle)
                for sp in spans
                if sp.seg.rule.answer == "yes" and not labelled_in.get(id(sp))
            ]
            if size == (0, 0):
                size = (width, height)
            return Cut(
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
                last_shown,
            )
    except BaseException:
        remove_files(created, frames_dir)
        raise


def _too_large(path: Path, width: int, height: int, limit: int) -> str:
    return (
        f"{path}: frames of {width}x{height} pixels are over the limit of {limit:,} pixels "
        "that images have (a decompression bomb, or a video too large to cut safely). Fix: "
        "scale it down (ffmpeg -i IN -vf scale=1920:-2 OUT.mp4), or --skip-bad"
    )


def remove_files(files: Sequence[Path], root: Path | None = None) -> None:
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


def cut_videos(
    by_video: dict[str, list[SegmentRow]],
    root: Path,
    frames_dir: Path,
    *,
    sampling: Sampling,
    class_map: ClassMap,
    make_item: Any,
) -> list[tuple[str, Cut | VideoProblem]]:
    """Each video's ``Cut`` (or the ``VideoProblem`` it has), in the order given.

    One thread per core: PyAV decodes and PIL encodes with the GIL released. An
    interrupt (Ctrl-C, SIGTERM) or an unexpected error stops the other videos at
    their next frame, those not started never start, and every frame file written
    so far is removed before it propagates.
    """
    stop = threading.Event()

    def cut(segs: list[SegmentRow]) -> Cut | VideoProblem:
        try:
            return cut_video(
                segs,
                root,
                frames_dir,
                sampling=sampling,
                class_map=class_map,
                make_item=make_item,
                stop=stop,
            )
        except VideoProblem as exc:
            return exc

    def written(futures: list[tuple[str, Any]]) -> list[Path]:
        done = []
        for _, future in futures:
            ok = future.done() and not future.cancelled() and not future.exception()
            if ok and isinstance(future.result(), Cut):
                done.extend(future.result().created)
        return done

    workers = max(1, min(len(by_video), os.cpu_count() or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="curate-video")
    futures: list[tuple[str, Any]] = []
    try:
        with _signals_to_this_thread():  # the pool's threads start in here
            for video, segs in by_video.items():
                futures.append((video, pool.submit(cut, segs)))
        pending = {future for _, future in futures}
        while pending:  # short waits: a signal another thread took is handled here
            pending = wait(pending, timeout=0.2).not_done
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        remove_files(written(futures), frames_dir)
        raise
    pool.shutdown(wait=True)
    failures = [future.exception() for _, future in futures if future.exception() is not None]
    if failures:
        remove_files(written(futures), frames_dir)
        raise failures[0]
    return [(video, future.result()) for video, future in futures]
