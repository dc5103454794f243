"""The sampling schedule as a pure function: frame times in, kept frames and labels out."""

from __future__ import annotations

import ast
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from curation.class_map import ClassAnswer, ClassRule
from curation.curator.video import (
    DEFAULT_FPS,
    DEFAULT_MARGIN,
    Sampling,
    SegmentRow,
    Span,
    schedule,
    video_only_options,
)
from curation.errors import UsageError

PACKAGE = Path(__file__).resolve().parent.parent / "curation" / "curator" / "video"


def row(
    start: float, end: float, answer: ClassAnswer, name: str = "", in_frames: bool = False
) -> SegmentRow:
    rule = ClassRule(id=1 if answer == "yes" else 0, answer=answer)
    return SegmentRow("labels.csv row 1", "a.mp4", start, end, in_frames, name or answer, rule)


def test_the_schedule_keeps_sampled_frames_and_each_yes_middle_as_brute_force_says() -> None:
    # 10 frames a second for 6 s; a fall of 1 s (shorter than twice the margin) then "no"
    times = [Fraction(i, 10) for i in range(60)]
    fall, rest = row(1.0, 2.0, "yes"), row(2.0, math.inf, "no")
    duration, period = 6.0, 0.1
    spans = [Span.in_seconds(s, duration, period) for s in (fall, rest)]
    kept = schedule(times, spans, Sampling(fps=2, margin=0.6), duration)

    # the same answer, by hand: every 5th frame (exactly k/2 s) and the fall's middle (1.5 s)
    expected: dict[int, str | None] = {}
    for i, t in enumerate(times):
        middle = t == Fraction(3, 2)
        if i % 5 and not middle:
            continue
        if t < 1:
            expected[i] = "in no segment"
        elif not middle and (abs(t - 1) < Fraction(6, 10) or abs(t - 2) < Fraction(6, 10)):
            expected[i] = None  # near a boundary: unsure
        else:
            expected[i] = "yes" if t < 2 else "no"
    got = {i: ("in no segment" if label is None else label.answer) for i, label in kept}
    assert got == expected
    assert got[15] == "yes"  # the middle frame keeps its answer within the margin

    # without the middle-frame rule the fall gives no labelled frame at this margin
    plain = schedule(times, spans, Sampling(fps=2, margin=0.6, keep_middle=False), duration)
    assert [i for i, label in plain if label is not None and label.answer == "yes"] == []


def test_every_n_keeps_every_nth_decoded_frame_and_frame_rows_cover_by_index() -> None:
    times = [Fraction(i, 7) for i in range(20)]  # times unrelated to the frame numbers
    frames_row = row(4, 9, "no", in_frames=True)
    span = Span(frames_row, times[4], times[10])
    kept = schedule(times, [span], Sampling(every_n=3, margin=0), 20 / 7)
    assert [i for i, _ in kept] == list(range(0, 20, 3))
    covered = [i for i, label in kept if label is not None]
    assert covered == [i for i in range(0, 20, 3) if 4 <= i <= 9]


def test_an_end_within_one_frame_of_the_video_end_is_the_end() -> None:
    # a clip of 6.006 s at 30 fps whose row says 6.0: its last frames are the segment's
    span = Span.in_seconds(row(5.0, 6.0, "no"), 6.006, 1 / 30)
    assert span.end == math.inf
    assert span.covers(180, Fraction(6))
    earlier = Span.in_seconds(row(5.0, 5.5, "no"), 6.006, 1 / 30)
    assert earlier.end == Fraction(11, 2) and not earlier.covers(165, Fraction(11, 2))
    # the start is exact as written: 0.7 is 7/10, not the binary float below it
    assert Span.in_seconds(row(0.7, 1.0, "no"), 6.0, 0.1).covers(7, Fraction(7, 10))


def test_sampling_defaults_and_refusals() -> None:
    assert Sampling() == Sampling(DEFAULT_FPS, None, DEFAULT_MARGIN, True)
    assert Sampling(every_n=4).fps is None
    assert Sampling().text() == "fps=2 margin=0.5 middle=yes"
    assert Sampling(every_n=4, margin=0, keep_middle=False).text() == "every_n=4 margin=0 middle=no"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"fps": 2, "every_n": 3}, "exclude each other"),
        ({"fps": 0}, "--fps must be above 0"),
        ({"fps": math.nan}, "--fps must be above 0"),
        ({"fps": 20_000}, "faster than any camera"),
        ({"every_n": 0}, "--every-n must be at least 1"),
        ({"margin": -1}, "--margin must be 0 or more"),
    ]
    for bad, says in cases:
        with pytest.raises(UsageError, match=says):
            Sampling(**bad)


def test_video_only_options_names_those_given_and_not_the_defaults() -> None:
    assert video_only_options() == []
    assert video_only_options(margin=DEFAULT_MARGIN, keep_middle=True) == []
    assert video_only_options(margin=0.25, keep_middle=False, every_n=2) == [
        "--every-n",
        "--margin",
        "--no-middle",
    ]
    assert video_only_options(fps=DEFAULT_FPS, skip_bad=True) == ["--fps", "--skip-bad"]


def test_no_private_name_crosses_the_video_modules() -> None:
    crossing = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("curation"):
                crossing += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and a.name != "__future__"
                ]
    assert crossing == []
