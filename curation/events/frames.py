"""Frames of a video file or a stream, sampled by time with ingest's rule.

``read_frames`` yields ``(t, image)`` for the frames ``FrameSampler`` keeps (the first
frame at or after each k/fps of the video's own clock), shown as the display matrix asks,
so a frame that ``curate watch`` scores is the frame ``curate ingest`` would have cut.
Decoding runs in a thread ahead of the scorer (``prefetch``), so decoding and scoring
overlap. A damaged file ends with ``FrameSourceError`` after the frames that decoded; a
stream URL that drops is reopened with backoff and its clock carries on where it stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from curation.errors import DataError, require

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class FrameSourceError(DataError):
    """A video that cannot be read (to the end): the message names it and says why."""


def is_stream(source: str | Path) -> bool:
    """True for a URL that PyAV opens as a live source (rtsp, http, udp...)."""
    return str(source).lower().startswith(STREAM_SCHEMES)


@dataclass(frozen=True, slots=True)
class Frame:
    t: float  # seconds from the start of the video (a stream: from when watching began)
    image: Any  # PIL image, RGB, as shown


def _open(source: str, timeout: float | None) -> Any:
    av = require("av", "video")
    try:
        if timeout is not None and is_stream(source):
            return av.open(source, timeout=(timeout, timeout))
        return av.open(source)
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise FrameSourceError(
            f"{source}: not a readable video ({exc}). Fix: check the path or URL; re-encode a "
            "damaged file (ffmpeg -i IN -c:v libx264 OUT.mp4)"
        ) from None


def _decode(
    container: Any,
    source: str,
    fps: float,
    origin_shift: float,
    stop: threading.Event,
    ends: dict[str, float] | None = None,
) -> Iterator[Frame]:
    """The kept frames of one opened container; ``FrameSourceError`` when decoding fails.

    When every frame decoded, ``ends["end"]`` is set to when the video stops: the last
    decoded frame's time plus its duration (``video_end``, ingest's rule).
    """
    av = require("av", "video")
    from curation.curator.video import FrameSampler
    from curation.curator.video.decode import video_end

    with container:
        if not container.streams.video:
            raise FrameSourceError(f"{source}: holds no video stream. Fix: give a video")
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(0)
        origin = Fraction(stream.start_time) * tb if stream.start_time is not None else Fraction(0)
        rate = stream.average_rate or stream.guessed_rate
        sampler = FrameSampler(fps, None)
        # one converter for the whole video: VideoFrame.to_image() builds a new swscale
        # context per frame, 5x the time of decoding a small frame (same pixels either way)
        reformatter = av.video.reformatter.VideoReformatter()
        decoded = discarded = 0
        last: list[Fraction] = []  # the times of the last two decoded frames
        last_length: Fraction | None = None
        try:
            for packet in container.demux(stream):
                discarded += bool(packet.is_discard)
                for frame in packet.decode():
                    if stop.is_set():
                        return
                    i = decoded
                    decoded += 1
                    if frame.pts is not None and tb:
                        t = Fraction(frame.pts) * tb - origin
                    elif rate:
                        t = Fraction(i) / Fraction(rate)
                    else:
                        t = Fraction(i) / Fraction(repr(fps))
                    last = [*last[-1:], t]
                    length = getattr(frame, "duration", None)
                    last_length = Fraction(length) * tb if length and tb else None
                    if not sampler.take(i, t):
                        continue
                    image = shown_image(frame, reformatter)
                    yield Frame(float(t) + origin_shift, image)
        except (av.error.FFmpegError, EOFError) as exc:
            raise FrameSourceError(
                f"{source}: decoding failed after {decoded} frame(s) ({exc}); the file is "
                "damaged (truncated?). Fix: replace it (re-download or re-copy)"
            ) from None
        expected = stream.frames - discarded if stream.frames else 0
        if decoded == 0:
            raise FrameSourceError(f"{source}: holds no frames (0 decoded). Fix: replace it")
        if expected and decoded < expected and not is_stream(source):
            raise FrameSourceError(
                f"{source}: truncated: its header says {expected} frames, only {decoded} "
                "decode. Fix: replace it (re-download or re-copy)"
            )
        if ends is not None and last:
            ends["end"] = float(video_end(last, last_length, float(rate or fps))) + origin_shift


def read_frames(
    source: str | Path,
    fps: float,
    *,
    stop: threading.Event | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 10.0,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    ends: dict[str, float] | None = None,
) -> Iterator[Frame]:
    """The frames of ``source`` that ``fps`` keeps, in order.

    A file: ``FrameSourceError`` when it cannot be opened or decoding fails (after the
    frames that did decode). A stream URL: a drop (end, decode error, no data for
    ``timeout`` seconds) is reported to ``on_retry`` and the stream reopened after
    ``backoff``, doubled each time, up to ``retries`` times in a row; the clock carries on
    from the last frame plus the time spent away, so times keep rising.

    A file read to the end sets ``ends["end"]``: the seconds it lasts (its last decoded
    frame's time plus that frame's duration).
    """
    stop = stop or threading.Event()
    name = str(source)
    if not is_stream(name):
        yield from _decode(_open(name, None), name, fps, 0.0, stop, ends)
        return
    shift, failures, wait = 0.0, 0, backoff
    while not stop.is_set():
        started = time.monotonic()
        last = None
        try:
            for frame in _decode(_open(name, timeout), name, fps, shift, stop):
                last = frame.t
                failures, wait = 0, backoff
                yield frame
            problem = "the stream ended"
        except FrameSourceError as exc:
            problem = str(exc)
        if stop.is_set():
            return
        failures += 1
        if failures > retries:
            raise FrameSourceError(
                f"{name}: gave up after {retries} reconnection(s): {problem}. Fix: check that "
                "the camera is reachable, then run again"
            )
        if on_retry is not None:
            on_retry(f"{name}: {problem}; reconnecting in {wait:g} s ({failures}/{retries})")
        sleep(wait)
        away = time.monotonic() - started
        shift = (last if last is not None else shift) + max(away, 1.0 / fps)
        wait *= 2


def shown_image(frame: Any, reformatter: Any = None) -> Any:
    """A decoded PyAV frame as a PIL image, turned or mirrored as its display matrix asks
    (phones write one for portrait video); a matrix at another angle is taken to the
    nearest quarter turn. ``reformatter`` (a PyAV ``VideoReformatter``) is reused across
    frames when given."""
    from curation.curator.video.decode import as_shown, display_transpose

    if reformatter is None:
        image = frame.to_image()
    else:
        image = reformatter.reformat(frame, format="rgb24").to_image()
    return as_shown(image, display_transpose(frame))


_END = object()


def prefetch(frames: Iterator[Frame], depth: int = 64) -> Iterator[Frame]:
    """``frames`` decoded in a thread ahead of the consumer (at most ``depth`` waiting).

    An error in the decoding thread is raised in the consumer, after the frames before it.
    Closing the iterator early stops the thread.
    """
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def work() -> None:
        try:
            for frame in frames:
                while not done.is_set():
                    try:
                        box.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if done.is_set():
                    return
            item: Any = _END
        except BaseException as exc:  # handed to the consumer
            item = exc
        while not done.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=work, name="decode", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        done.set()
        close = getattr(frames, "close", None)
        thread.join(timeout=5)
        if close is not None and not thread.is_alive():
            close()
