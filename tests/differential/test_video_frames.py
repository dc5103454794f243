"""Video frames against references the project did not write.

Which frames ingest keeps, and when, is checked against PyAV's decoded
timestamps and against FFmpeg's own filters (the ``ffmpeg`` program of
imageio-ffmpeg): its ``select`` filter evaluating the rule docs/videos.md states
("the first frame at or after each k/F"), its ``fps`` filter where every k/F is a
frame's time, and its autorotation for the pixels of a phone's rotated clip. The
clips cover 25 fps (0.5 s between two frames), B-frames and none, a variable
frame rate, a display matrix, an MP4 trimmed with an edit list and 29.97 fps.
Labels are recomputed from the label file alone (``csv``, exact fractions, the
decoded times), and the segment ranges of the video dataset are checked against
FiftyOne's ``TemporalDetection`` frame numbering.
"""

from __future__ import annotations

import csv
import math
import shutil
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")
pytest.importorskip("imageio_ffmpeg")

from _video_clips import (  # noqa: E402
    VFR_TIMES,
    ffmpeg_fps_times,
    ffmpeg_frames,
    ffmpeg_select_times,
    first_at_or_after,
    make_clips,
    pyav_times,
)

from curation.curator.video import ingest_videos  # noqa: E402

KINDS = ["cfr10", "cfr25-bframes", "cfr25-no-bframes", "vfr", "rotated", "ntsc", "trimmed"]
#: the answers of the classes these tests use, as configs/class_map.yaml gives them
ANSWERS = {"walk": "no", "sitting": "no", "fall": "yes", "fallen": "yes"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("diff-clips") / "clips")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def stored(name: str) -> dict[int, dict]:
    """frame index -> the stored frame (one video per dataset here)."""
    ds = fo.load_dataset(name)
    fields = ["filepath", "frame_index", "time", "answer", "tags", "activity"]
    rows = [dict(zip(fields, v, strict=True)) for v in zip(*ds.values(fields), strict=True)]
    return {r["frame_index"]: r for r in rows}


def whole_clip(clips: dict[str, Path], kind: str, tmp_path: Path, fps: int) -> dict[int, dict]:
    """Ingest one clip as a whole "no" clip (no boundary) at ``fps``: every kept frame stored."""
    folder = tmp_path / "folder" / "no_fall"
    folder.mkdir(parents=True)
    shutil.copy(clips[kind], folder / f"{kind}.mp4")
    name = unique("diff-frames")
    ingest_videos(tmp_path / "folder", name, fps=float(fps), frames_dir=tmp_path / "frames")
    return stored(name)


@pytest.mark.parametrize("fps", [2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_kept_frames_and_times_match_pyav_and_ffmpegs_select(
    clips: dict[str, Path], kind: str, fps: int, tmp_path: Path
) -> None:
    frames = whole_clip(clips, kind, tmp_path, fps)
    times = pyav_times(clips[kind])
    assert sorted(frames) == first_at_or_after(times, Fraction(fps))
    for index, frame in frames.items():
        assert frame["time"] == pytest.approx(float(times[index]), abs=1e-6)
    by_ffmpeg = ffmpeg_select_times(clips[kind], fps)
    assert sorted(f["time"] for f in frames.values()) == pytest.approx(by_ffmpeg, abs=1e-3)


@pytest.mark.parametrize("fps", [1, 2, 5, 10])
def test_where_every_sampling_time_is_a_frame_the_fps_filter_agrees(
    clips: dict[str, Path], fps: int, tmp_path: Path
) -> None:
    frames = whole_clip(clips, "cfr10", tmp_path, fps)
    assert sorted(f["time"] for f in frames.values()) == pytest.approx(
        ffmpeg_fps_times(clips["cfr10"], fps), abs=1e-6
    )


@pytest.mark.parametrize(
    "kind", ["rotated", "rotated-270", "mirrored", "rotated-mirrored", "cfr25-bframes", "trimmed"]
)
def test_frame_pixels_are_ffmpegs_displayed_frames(
    clips: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    from PIL import Image

    frames = whole_clip(clips, kind, tmp_path, 2)
    shown = ffmpeg_frames(clips[kind])  # autorotated by the ffmpeg program
    for index, frame in frames.items():
        with Image.open(frame["filepath"]) as im:
            ours = np.asarray(im.convert("RGB"), dtype=float)
        assert ours.shape == shown[index].shape
        assert np.abs(ours - shown[index]).mean() < 6  # JPEG at quality 95


# --- labels from the label file alone ------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def expected_labels(
    rows: list[dict[str, str]],
    times: list[Fraction],
    duration: Fraction,
    period: Fraction,
    kept: set[int],
    margin: Fraction,
) -> dict[int, str | None]:
    """frame index -> answer (None: unsure) for the frames the file labels, by brute force.

    A row in frame numbers holds frames start_frame..end_frame (by decoded index); a
    row in seconds the frames with start <= t < end, where an end while the last frame
    shows (within ``period``, its duration, of ``duration``, the video's decoded end) is
    the end. A frame near a boundary between rows (less than
    ``margin``) is unsure, except a "yes" row's middle frame, the first at or after
    the middle of its time span. Frames kept: ``kept`` and the middle frames.
    """
    spans = []
    for r in rows:
        if "start_frame" in r:
            first, last = int(r["start_frame"]), int(r["end_frame"])
            start = times[first]
            end = times[last + 1] if last + 1 < len(times) else math.inf
            spans.append((start, end, r["label"], (first, last)))
        else:
            start, end = Fraction(r["start"]), Fraction(r["end"])
            end = math.inf if end >= duration - period else end
            spans.append((start, end, r["label"], None))
    boundaries = {s for s, _, _, _ in spans if s > 0} | {e for _, e, _, _ in spans if e != math.inf}

    def covers(span: tuple, i: int) -> bool:
        s, e, _, frames = span
        return frames[0] <= i <= frames[1] if frames else s <= times[i] < e

    middles = set()
    for span in spans:
        if ANSWERS[span[2]] == "yes":
            s, e = span[0], span[1]
            mid = (s + (duration if e == math.inf else e)) / 2
            i = next((i for i, t in enumerate(times) if t >= mid), None)
            if i is not None and covers(span, i):
                middles.add(i)
    out: dict[int, str | None] = {}
    for i in sorted(kept | middles):
        covering = [sp for sp in spans if covers(sp, i)]
        if not covering:
            continue
        answers = {ANSWERS[sp[2]] for sp in covering}
        near = any(abs(times[i] - b) < margin for b in boundaries)
        if len(answers) > 1 or (near and i not in middles):
            out[i] = None
        else:
            out[i] = answers.pop()
    return out


def _decoded_end(path: Path) -> tuple[Fraction, Fraction]:
    """(when the video ends, how long its last frame shows), from PyAV's decoded frames:
    the last frame's time plus its duration, not the header's duration."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        origin = Fraction(stream.start_time or 0) * tb
        last = list(container.decode(stream))[-1]
        shows = Fraction(last.duration) * tb
        assert shows > 0
        return Fraction(last.pts) * tb - origin + shows, shows


@pytest.mark.parametrize(
    ("kind", "header", "rows", "options"),
    [
        # frame numbers on a variable frame rate: the decoded index, not seconds
        (
            "vfr",
            ["video", "start_frame", "end_frame", "label"],
            [[0, 9, "walk"], [10, 45, "fall"]],
            {"every_n": 1, "margin": 0.0},
        ),
        (
            "vfr",
            ["video", "start_frame", "end_frame", "label"],
            [[0, 12, "walk"], [13, 30, "fall"], [31, 49, "fallen"]],
            {"every_n": 2, "margin": 0.1},
        ),
        # 29.97 fps, 6.006 s: the row's end of 6.0 is the video's end; a short fall
        (
            "ntsc",
            ["video", "start", "end", "label"],
            [[0, 2.5, "walk"], [2.5, 2.9, "fall"], [2.9, 6.0, "fallen"]],
            {"fps": 2.0, "margin": 0.5},
        ),
        # 25 fps with B-frames, boundaries between frames, overlapping rows
        (
            "cfr25-bframes",
            ["video", "start", "end", "label"],
            [[0, 1.01, "walk"], [0.9, 1.5, "sitting"], [1.5, 2.4, "fall"]],
            {"fps": 3.0, "margin": 0.3},
        ),
        (
            "trimmed",
            ["video", "start", "end", "label"],
            [[0, 1.25, "walk"], [1.25, 2.3, "fall"]],
            {"fps": 4.0, "margin": 0.2},
        ),
        # the edit list's header says 2.55 s, the frames end at 2.5 s: the fall's middle
        # is (1.28 + 2.5) / 2 = 1.89 s, frame 1.9 s (the header's 1.915 s gave frame 2.0 s)
        (
            "trimmed",
            ["video", "start", "end", "label"],
            [[0, 1.28, "walk"], [1.28, 2.5, "fall"]],
            {"fps": 2.0, "margin": 0.1},
        ),
        # the header says 2.1 s, the last frame shows at 2.5 s: the fallen row ending at
        # 2.1 s does not hold it, and 2.1 s is a boundary
        (
            "vfr-tail",
            ["video", "start", "end", "label"],
            [[0, 1.0, "walk"], [1.0, 1.6, "fall"], [1.6, 2.1, "fallen"]],
            {"every_n": 1, "margin": 0.5},
        ),
        # a row may end past the header's 2.1 s, up to the decoded end (2.6 s)
        (
            "vfr-tail",
            ["video", "start", "end", "label"],
            [[0, 1.0, "walk"], [1.0, 1.6, "fall"], [1.6, 2.55, "fallen"]],
            {"fps": 2.0, "margin": 0.2},
        ),
    ],
)
def test_labels_recomputed_from_the_label_file_alone(
    clips: dict[str, Path], kind: str, header: list, rows: list, options: dict, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clips[kind], videos / "v.mp4")
    labels = tmp_path / "labels.csv"
    with labels.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([["v.mp4", *r] for r in rows])
    name = unique("diff-labels")
    ingest_videos(labels, name, videos=videos, frames_dir=tmp_path / "frames", **options)
    times = pyav_times(clips[kind])
    duration, period = _decoded_end(clips[kind])
    if "every_n" in options:
        kept = set(range(0, len(times), options["every_n"]))
    else:
        kept = set(first_at_or_after(times, Fraction(str(options["fps"]))))
    want = expected_labels(
        _rows(labels), times, duration, period, kept, Fraction(str(options["margin"]))
    )
    got = {i: f["answer"] for i, f in stored(name).items()}
    assert got == want


def test_the_variable_rate_case_from_the_report(clips: dict[str, Path], tmp_path: Path) -> None:
    """walk 0-9, fall 10-45 on frames 0-9 at 10 fps and 10-49 at 50 fps: frames 4-9 walk,
    46-49 in no row (the average rate put 4-9 in the fall and 46-49 in it too)."""
    assert len(VFR_TIMES) == len(pyav_times(clips["vfr"])) == 50
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clips["vfr"], videos / "v.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "video,start_frame,end_frame,label\nv.mp4,0,9,walk\nv.mp4,10,45,fall\n", encoding="utf-8"
    )
    name = unique("diff-vfr")
    ingest_videos(labels, name, videos=videos, every_n=1, margin=0.0, frames_dir=tmp_path / "f")
    got = {i: f["answer"] for i, f in stored(name).items()}
    assert [i for i, a in got.items() if a == "yes"] == list(range(10, 46))
    assert all(got[i] == "no" for i in range(10)) and not set(got) & {46, 47, 48, 49}


# --- segment ranges in the video dataset ------------------------------------------------------


def test_segment_ranges_against_fiftyones_frame_numbering(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clips["cfr10"], videos / "v.mp4")  # 35 frames at 10 fps, 3.5 s
    rows = [(0, 1.55, "walk"), (1.55, 2.0, "fall"), (2.0, 3.5, "fallen")]  # 1.55: between frames
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "video,start,end,label\n" + "".join(f"v.mp4,{s},{e},{c}\n" for s, e, c in rows),
        encoding="utf-8",
    )
    name = unique("diff-ranges")
    ingest_videos(labels, name, videos=videos, every_n=1, frames_dir=tmp_path / "f")
    sample = fo.load_dataset(f"{name}-videos").first()
    supports = {d.label: list(d.support) for d in sample.segments.detections}
    times = pyav_times(clips["cfr10"])
    n = len(times)
    # FiftyOne numbers frames from 1 and maps time t to 1 + round(t / duration * (n - 1)):
    # exact for a clip whose frame n lies at `duration`, i.e. duration = (n - 1) / fps
    exact = fo.VideoMetadata(total_frame_count=n, duration=(n - 1) / 10, frame_rate=10)
    for start, end, label in rows:
        inside = [
            i + 1 for i, t in enumerate(times) if Fraction(str(start)) <= t < Fraction(str(end))
        ]
        assert supports[label] == [inside[0], inside[-1]]  # the frames PyAV decodes in it
        theirs = fo.TemporalDetection.from_timestamps([start, end], metadata=exact).support
        if start * 10 == int(start * 10):  # a start on a frame: FiftyOne's first frame
            assert supports[label][0] == theirs[0]
        # FiftyOne's range ends at the frame at `end` (or the last frame); a row's end
        # is exclusive, so ours stops one frame before it
        assert supports[label][1] == min(theirs[1] - (end * 10 < n), n) or end >= 3.5
        ts, te = fo.TemporalDetection(support=supports[label]).to_timestamps(metadata=exact)
        assert start <= ts + 1e-9 and te < end
    # segments that meet between two frames share none
    ordered = sorted(supports.values())
    assert all(a[1] < b[0] for a, b in zip(ordered, ordered[1:], strict=False))
