"""The sampling schedule: which decoded frames become samples, and with what label.

Frames are sampled at ``fps`` (the first frame at or after each k/fps, by exact
presentation time; ``FrameSampler``) or every n-th frame. A frame less than
``margin`` seconds from a boundary between segments, or in two segments whose
answers differ, or in an "unsure" class, is kept without an answer; the middle
frame of a "yes" segment keeps its answer (``keep_middle``). A frame in no segment
is not ingested. Everything here is pure: times in, decisions out.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from curation.curator.video.segments import SegmentRow
from curation.errors import UsageError

#: Default sampling rate (frames per second of video) and boundary margin (seconds).
DEFAULT_FPS = 2.0
DEFAULT_MARGIN = 0.5
#: The highest --fps taken (high-speed cameras film at a few thousand frames per second).
MAX_FPS = 10_000.0


def exact(value: float) -> Fraction:
    """A number as the user wrote it (``0.7`` is 7/10, not the binary float next to it)."""
    return Fraction(repr(float(value)))


@dataclass(frozen=True, slots=True)
class Sampling:
    """How frames are sampled: ``fps`` or ``every_n`` (the default: ``DEFAULT_FPS``), the
    boundary ``margin`` in seconds, and whether each "yes" segment's middle frame is kept.

    Raises:
        UsageError: both or neither-valid of fps and every_n, or a bad value.
    """

    fps: float | None = None
    every_n: int | None = None
    margin: float = DEFAULT_MARGIN
    keep_middle: bool = True

    def __post_init__(self) -> None:
        fps, every_n, margin = self.fps, self.every_n, self.margin
        if fps is not None and every_n is not None:
            raise UsageError("--fps and --every-n exclude each other. Fix: give one of them")
        if every_n is None and fps is None:
            object.__setattr__(self, "fps", fps := DEFAULT_FPS)
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

    def sampler(self) -> FrameSampler:
        """A fresh sampler for one video."""
        return FrameSampler(self.fps, self.every_n)

    def text(self) -> str:
        """The schedule in words, as stored on each frame: ``fps=2 margin=0.5 middle=yes``."""
        rate = f"fps={self.fps:g}" if self.every_n is None else f"every_n={self.every_n}"
        return f"{rate} margin={self.margin:g} middle={'yes' if self.keep_middle else 'no'}"


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
        self._fps = exact(fps) if fps is not None else None
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


def seconds_end(seg: SegmentRow, duration: float, period: float) -> Fraction | float:
    """Where a seconds row ends on a video of ``duration`` s and frame ``period`` s
    (exclusive): an end within one frame of the video's end (6.0 for a clip of 6.006 s)
    is the video's end, ``math.inf``, so the last frames are the segment's."""
    if math.isfinite(seg.end) and seg.end < duration - period - 1e-9:
        return exact(seg.end)
    return math.inf


@dataclass(frozen=True, slots=True)
class Span:
    """A segment on the decoded video: seconds rows by time, frame rows by frame index."""

    seg: SegmentRow
    start: Fraction  # seconds (frame rows: the time of their first frame)
    end: Fraction | float  # seconds, exclusive; math.inf: to the end of the video

    @classmethod
    def in_seconds(cls, seg: SegmentRow, duration: float, period: float) -> Span:
        """A seconds row's span (``seconds_end``); for a frame row, one that covers its
        frames by index (its times are those of the decoded frames, not needed to cover)."""
        if seg.in_frames:
            return cls(seg, Fraction(0), math.inf)
        return cls(seg, exact(seg.start), seconds_end(seg, duration, period))

    def covers(self, index: int, t: Fraction) -> bool:
        """Whether the frame ``index`` at ``t`` s (exact) lies in the segment: a frame row
        holds its frames by index (both ends inclusive), a seconds row from start to end."""
        if self.seg.in_frames:
            return self.seg.start <= index <= self.seg.end
        return self.start <= t < self.end

    def text(self) -> str:
        if self.seg.in_frames:
            return f"frames {self.seg.start:g}-{self.seg.end:g}"
        end = f"{self.seg.end:g}" if math.isfinite(self.seg.end) else "end"
        return f"{self.seg.start:g}-{end}"  # as the row gives it


def boundaries_of(spans: Sequence[Span]) -> list[Fraction]:
    """The times between segments, sorted: each span's start and end, except the video's
    own start (0) and end (``math.inf``). A frame row's start counts from its second frame."""
    found: set[Fraction] = set()
    for sp in spans:
        if sp.seg.in_frames:
            if sp.seg.start > 0:
                found.add(sp.start)
        elif sp.start > 0:
            found.add(sp.start)
        if math.isfinite(sp.end):
            found.add(Fraction(sp.end))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class FrameLabel:
    """What the schedule says of a kept frame that some segment covers."""

    answer: str | None  # None: kept unsure
    seg: SegmentRow | None  # None: covering segments disagree
    text: str  # the covering segments, as their rows give them
    activity: str | None
    covering: list[Span]


def label_frame(
    index: int, t: Fraction, spans: Sequence[Span], boundaries: Sequence[Fraction], margin: Fraction
) -> FrameLabel | None:
    """The label of a frame; None when no segment covers it."""
    covering = [sp for sp in spans if sp.covers(index, t)]
    if not covering:
        return None
    text = "+".join(sp.text() for sp in covering)
    answers = {sp.seg.rule.answer for sp in covering}
    if len(answers) > 1:  # overlapping segments that disagree: a reviewer decides
        return FrameLabel(
            None, None, text, "/".join(sorted({sp.seg.name for sp in covering})), covering
        )
    seg = max(covering, key=lambda sp: sp.start).seg
    answer = seg.rule.answer
    near = any(abs(t - b) < margin for b in boundaries)
    if answer == "unsure" or near:
        return FrameLabel(None, seg, text, seg.name, covering)
    return FrameLabel(answer, seg, text, seg.name, covering)


#: ``FrameSchedule.decide``'s answer for a frame the schedule does not keep.
SKIPPED = "skipped"


class FrameSchedule:
    """One video's schedule, asked frame by frame in decoded order: skip the frame, keep it
    in no segment (None: counted, not ingested), or keep it with a ``FrameLabel``.

    The middle of each "yes" segment (``keep_middle``) is kept beside the sampled frames:
    the first frame at or after it, labelled even within the margin.
    """

    def __init__(
        self, spans: Sequence[Span], sampling: Sampling, duration: Fraction | float
    ) -> None:
        """``duration``: when the video ends (its last frame's time plus its duration), which
        places the middle of a "yes" segment that runs to the end."""
        self.spans = list(spans)
        self.boundaries = boundaries_of(self.spans)
        self._margin = exact(sampling.margin)
        self._sampler = sampling.sampler()
        middles: list[tuple[Fraction, Span]] = []
        for sp in self.spans if sampling.keep_middle else []:
            stop_at = sp.end if math.isfinite(sp.end) else duration
            if sp.seg.rule.answer == "yes" and math.isfinite(stop_at):
                middles.append(((sp.start + Fraction(stop_at)) / 2, sp))
        middles.sort(key=lambda m: m[0])
        self._middles = middles
        self._next_middle = 0  # middles[:_next_middle] have had their frame

    def decide(self, index: int, t: Fraction) -> FrameLabel | None | str:
        """``SKIPPED``, None (kept, in no segment) or the kept frame's label."""
        middle = None
        # each middle's frame is the first at or after it: reached once
        while self._next_middle < len(self._middles) and t >= self._middles[self._next_middle][0]:
            if self._middles[self._next_middle][1].covers(index, t):
                middle = self._middles[self._next_middle]
            self._next_middle += 1
        if not self._sampler.take(index, t) and middle is None:
            return SKIPPED
        return label_frame(
            index, t, self.spans, self.boundaries, Fraction(0) if middle else self._margin
        )


def schedule(
    times: Sequence[Fraction], spans: Sequence[Span], sampling: Sampling, duration: float
) -> list[tuple[int, FrameLabel | None]]:
    """The kept frames of a video whose decoded frames are at ``times`` (s): (index, label),
    label None for a frame in no segment."""
    plan = FrameSchedule(spans, sampling, duration)
    kept: list[tuple[int, FrameLabel | None]] = []
    for i, t in enumerate(times):
        decision = plan.decide(i, t)
        if decision is not SKIPPED:
            assert not isinstance(decision, str)
            kept.append((i, decision))
    return kept


def segment_support(span: Span, times: list[Fraction]) -> tuple[int, int] | None:
    """The segment's frames as FiftyOne numbers them (from 1, both ends inclusive): the
    decoded frames it covers, so that segments meeting between two frames share none."""
    if span.seg.in_frames:
        first, last = int(span.seg.start), min(int(span.seg.end), len(times) - 1)
    else:
        first = bisect.bisect_left(times, span.start)
        end = span.end if math.isfinite(span.end) else None
        last = (bisect.bisect_left(times, end) if end is not None else len(times)) - 1
    return (first + 1, last + 1) if first <= last else None


def no_yes_frame(span: Span, margin: float, keep_middle: bool) -> str:
    """Why a "yes" segment gave no labelled frame, and the fix."""
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
