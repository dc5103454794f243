"""watch's frames against PyAV's times and the ffmpeg program's pixels.

The frames ``curate watch`` scores are the first at or after each k/fps (brute force over
PyAV's presentation times), and their pixels are what the ffmpeg program shows (it applies
the display matrix: rotated and mirrored phone clips), on the marker clips the video
differential suite uses (variable frame rate, B-frames, an edit list, NTSC rates).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("imageio_ffmpeg")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_clips import ffmpeg_frames, first_at_or_after, make_clips, pyav_times  # noqa: E402

from curation.events.frames import read_frames  # noqa: E402

KINDS = [
    "cfr10",
    "cfr25-bframes",
    "vfr",
    "rotated",
    "rotated-270",
    "mirrored",
    "rotated-mirrored",
    "ntsc",
    "trimmed",
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("watch-clips") / "clips")


@pytest.mark.parametrize("kind", KINDS)
def test_watch_frames_are_the_first_at_each_tick_shown_as_ffmpeg_shows_them(
    clips: dict[str, Path], kind: str
) -> None:
    times = pyav_times(clips[kind])
    kept = first_at_or_after(times, Fraction(2))
    frames = list(read_frames(clips[kind], 2.0))
    assert [f.t for f in frames] == [float(times[i]) for i in kept]
    shown = ffmpeg_frames(clips[kind])
    for frame, index in zip(frames, kept, strict=True):
        ours = np.asarray(frame.image, dtype=float)
        assert ours.shape == shown[index].shape
        assert np.abs(ours - shown[index]).mean() < 2


@pytest.mark.parametrize("kind", ["cfr10", "vfr", "ntsc", "trimmed"])
def test_watch_pixels_are_exactly_pyav_to_image_as_ingest_converts(
    clips: dict[str, Path], kind: str
) -> None:
    import av

    with av.open(str(clips[kind])) as container:
        images = [f.to_image().tobytes() for f in container.decode(video=0)]
    kept = first_at_or_after(pyav_times(clips[kind]), Fraction(2))
    frames = list(read_frames(clips[kind], 2.0))
    assert [f.image.tobytes() for f in frames] == [images[i] for i in kept]
