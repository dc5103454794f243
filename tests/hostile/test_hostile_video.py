"""Hostile inputs for video ingest: `curate ingest LABELS --videos DIR` and clip folders.

Each test runs the real command and checks the promises: the exit code, the
file, row, field and fix named, no traceback, inputs untouched, and on failure
nothing added and no frame file left behind.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from _data import CLIPS, GOOD, HEADER, copy_clip_inputs
from _harness import expect, invoke, untouched

pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """``in/videos/synthetic/video/`` with two real clips (OmniFall's layout)."""
    return copy_clip_inputs(tmp_path)


def run(inputs: Path, csv_text: str | bytes, *extra: str, name: str | None = None):
    labels = inputs / "labels.csv"
    if isinstance(csv_text, bytes):
        labels.write_bytes(csv_text)
    else:
        labels.write_text(csv_text, encoding="utf-8")
    frames = inputs.parent / "frames"
    name = name or unique("hostile-video")
    with untouched(inputs):
        outcome = invoke(
            ["ingest", labels, "--videos", inputs / "videos", "--dataset", name]
            + ["--frames-dir", frames, *extra]
        )
    return outcome, name, frames


def nothing_left(name: str, frames: Path) -> None:
    assert name not in fo.list_datasets()
    assert f"{name}-videos" not in fo.list_datasets()
    assert not frames.exists() or not any(p.is_file() for p in frames.rglob("*"))


def test_a_row_naming_a_missing_video_stops_all_or_is_skipped(inputs: Path) -> None:
    text = HEADER + GOOD + "nope,0,0,1,2,1,synthetic\n"
    outcome, name, frames = run(inputs, text)
    expect(outcome, 1, "video not found", "synthetic/video/nope.mp4", "row 3", "--skip-bad")
    assert "nothing was added and no frame file left" in outcome.output
    nothing_left(name, frames)
    outcome, name, frames = run(inputs, text, "--skip-bad")
    expect(outcome, 0, "skipped synthetic/video/nope.mp4: video not found", "1 video(s)")
    assert len(fo.load_dataset(name)) > 0


def test_a_label_not_in_the_class_map_lists_the_known_ones(inputs: Path) -> None:
    outcome, name, frames = run(inputs, HEADER + GOOD + "s02_c01_sit,99,0,1,2,1,synthetic\n")
    expect(outcome, 1, "row 3 (line 4): label: '99' is not in the class map", "0 walk, 1 fall")
    assert "--class-map" in outcome.output
    nothing_left(name, frames)
    # a name is looked up the same way
    outcome, name, frames = run(inputs, HEADER + "s02_c01_sit,tumble,0,1,2,1,synthetic\n")
    expect(outcome, 1, "label: 'tumble' is not in the class map")


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("s02_c01_sit,3,2,1,2,1,synthetic", "end: 1 is not after start 2"),
        ("s02_c01_sit,3,1,1,2,1,synthetic", "end: 1 is not after start 1"),
        ("s02_c01_sit,3,-1,1,2,1,synthetic", "start: -1 is negative"),
        ("s02_c01_sit,3,0,-0.5,2,1,synthetic", "end: -0.5 is negative"),
        ("s02_c01_sit,3,0,nan,2,1,synthetic", "end: 'nan' is not a number"),
        ("s02_c01_sit,3,zero,1,2,1,synthetic", "start: 'zero' is not a number"),
        ("s02_c01_sit,3,0,1,2,1", "row 3 (line 4): (row): 6 cells, the header has 7"),
    ],
)
def test_bad_times_name_the_row_and_field(inputs: Path, row: str, needle: str) -> None:
    outcome, name, frames = run(inputs, HEADER + GOOD + row + "\n")
    expect(outcome, 1, needle, "Fix:", "nothing was ingested")
    nothing_left(name, frames)


def test_a_segment_past_the_end_of_its_video(inputs: Path) -> None:
    outcome, name, frames = run(inputs, HEADER + GOOD + "s01_c01_fall,2,2,10,1,1,synthetic\n")
    expect(outcome, 1, "row 3 (line 4): end: 10 s is past the end of", "lasts 3.5 s")
    nothing_left(name, frames)
    outcome, name, frames = run(inputs, HEADER + "s01_c01_fall,2,4,5,1,1,synthetic\n")
    expect(outcome, 1, "start: 4 s is past the end of")
    nothing_left(name, frames)


def _faststart_truncated(path: Path) -> None:
    """An MP4 whose index is at the front but whose frame data is cut off half-way."""
    import av
    from PIL import Image

    whole = path.with_suffix(".whole.mp4")
    with av.open(str(whole), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for i in range(30):
            img = Image.effect_noise((32, 32), 60 + i).convert("RGB")
            c.mux(s.encode(av.VideoFrame.from_image(img)))
        c.mux(s.encode(None))
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 2 // 3])


def _zero_frames(path: Path, fmt: str) -> None:
    import av

    c = av.open(str(path), "w", format=fmt)
    s = c.add_stream("mpeg4", rate=10)
    s.width = s.height = 32
    s.pix_fmt = "yuv420p"
    c.start_encoding()
    c.close()


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_text("hello, I am not a video"), "not a readable video"),
        (lambda p: p.write_bytes(b""), "not a readable video"),
        (
            lambda p: p.write_bytes((CLIPS / "s02_c01_sit.mp4").read_bytes()[:2000]),
            "not a readable video",
        ),
        (_faststart_truncated, "truncated"),
        (lambda p: _zero_frames(p, "avi"), "holds no frames"),
        (lambda p: _zero_frames(p, "mp4"), "holds no video stream"),
    ],
    ids=["text", "empty", "truncated", "truncated-faststart", "zero-frames", "no-stream"],
)
def test_a_file_that_is_not_a_whole_video(inputs: Path, make, needle: str) -> None:
    bad = inputs / "videos" / "synthetic" / "video" / "bad.mp4"
    make(bad)
    text = HEADER + GOOD + "bad,0,0,1,3,1,synthetic\n"
    outcome, name, frames = run(inputs, text)
    expect(outcome, 1, needle, str(bad), "Fix:", "--skip-bad")
    nothing_left(name, frames)  # the good video's frames were cut first, then taken back
    outcome, name, frames = run(inputs, text, "--skip-bad")
    expect(outcome, 0, "skipped synthetic/video/bad.mp4", needle, "1 video(s)")


def test_a_header_that_is_neither_format(inputs: Path) -> None:
    outcome, name, frames = run(inputs, "file,class,from,to\na.mp4,fall,0,1\n")
    expect(outcome, 1, "the header file,class,from,to is neither OmniFall's", "video, label")
    nothing_left(name, frames)
    outcome, name, frames = run(inputs, "")
    expect(outcome, 1, "(empty file)")


def test_a_label_file_that_is_not_utf8(inputs: Path) -> None:
    text = (HEADER + GOOD + "s02_c01_sit,4,0,1,2,caf\xe9,synthetic\n").encode("latin-1")
    outcome, name, frames = run(inputs, text)
    expect(outcome, 1, "not UTF-8", "iconv")
    nothing_left(name, frames)


@pytest.mark.parametrize(
    "path", ["../../../../outside", "../../elsewhere/x", "/etc/passwd", "a\\b"]
)
def test_a_path_escaping_the_videos_root(inputs: Path, path: str) -> None:
    outcome, name, frames = run(inputs, HEADER + f"{path},0,0,1,1,1,synthetic\n")
    expect(outcome, 1, "row 1 (line 2): path: ", "Fix: give the path relative to --videos")
    nothing_left(name, frames)


def test_a_link_leading_out_of_the_videos_root(inputs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    shutil.copy(CLIPS / "s02_c01_sit.mp4", outside)
    (inputs / "videos" / "synthetic" / "video" / "link.mp4").symlink_to(outside)
    outcome, name, frames = run(inputs, HEADER + "link,0,0,1,1,1,synthetic\n")
    expect(outcome, 1, "is a link to", "outside")
    nothing_left(name, frames)


def test_overlapping_segments_that_disagree_make_unsure_frames(inputs: Path) -> None:
    # walk 0-2 and fall 1.5-2: frames in 1.5-2 are in both, with different answers
    text = HEADER + "s01_c01_fall,0,0,2,1,1,synthetic\ns01_c01_fall,1,1.5,2,1,1,synthetic\n"
    text += "s01_c01_fall,0,0,2,1,1,synthetic\n"  # an exact duplicate row is one segment
    outcome, name, frames = run(inputs, text, "--every-n", "1", "--margin", "0")
    expect(outcome, 0, "20 frame(s) sampled (5 unsure")
    ds = fo.load_dataset(name)
    both = ds.match({"activity": "fall/walk"})
    assert sorted(both.values("frame_index")) == [15, 16, 17, 18, 19]
    assert set(both.values("answer")) == {None}
    assert all("unsure" in t for t in both.values("tags"))
    assert set(ds.match({"activity": "walk"}).values("answer")) == {"no"}


def test_bad_options(inputs: Path, tmp_path: Path) -> None:
    labels = inputs / "labels.csv"
    labels.write_text(HEADER + GOOD, encoding="utf-8")
    base = ["ingest", labels, "--videos", inputs / "videos", "--dataset", unique("opts")]
    with untouched(inputs):
        expect(invoke([*base, "--fps", "2", "--every-n", "3"]), 2, "exclude each other")
        expect(invoke([*base, "--fps", "0"]), 2, "--fps must be above 0")
        expect(invoke([*base, "--margin", "-1"]), 2, "--margin must be 0 or more")
        expect(invoke([*base, "--frames-dir", inputs / "videos" / "f"]), 2, "inside the input")
        expect(invoke(["ingest", labels, "--dataset", "x"]), 2, "--videos DIR says where")
        expect(invoke([*base[:3], inputs / "nope", *base[4:]]), 2, "--videos folder not found")
        expect(invoke(["ingest", inputs, "--dataset", "x", "--fps", "2"]), 2, "videos only")
        cmap = tmp_path / "map.yaml"
        cmap.write_text("classes: {fall: {id: 1, answer: maybe}}\n")
        expect(invoke([*base, "--class-map", cmap]), 1, "map.yaml", "answer")


def test_a_clip_folder_with_a_link_leading_out(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "clips"
    (folder / "fall").mkdir(parents=True)
    (folder / "no_fall" / "sitting").mkdir(parents=True)
    shutil.copy(CLIPS / "s01_c01_fall.mp4", folder / "fall" / "a.mp4")
    shutil.copy(CLIPS / "s02_c01_sit.mp4", tmp_path / "outside.mp4")
    (folder / "no_fall" / "sitting" / "b.mp4").symlink_to(tmp_path / "outside.mp4")
    name = unique("hostile-clips")
    frames = tmp_path / "frames"
    with untouched(tmp_path / "in"):
        outcome = invoke(["ingest", folder, "--dataset", name, "--frames-dir", frames])
    expect(outcome, 1, "no_fall/sitting/b.mp4 is a link to", "outside", "nothing was added")
    nothing_left(name, frames)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_faststart_truncated, "truncated"),
        (
            lambda p: p.write_bytes((CLIPS / "s02_c01_sit.mp4").read_bytes()[:2000]),
            "not a readable video",
        ),
    ],
    ids=["truncated-faststart", "truncated"],
)
def test_frame_numbered_rows_on_a_damaged_video(inputs: Path, make, needle: str) -> None:
    # rows in frame numbers read the frames' times before decoding: a damaged file is
    # named there too, never a traceback
    bad = inputs / "videos" / "synthetic" / "video" / "bad.mp4"
    make(bad)
    labels = inputs / "frames.csv"
    labels.write_text(
        "video,start_frame,end_frame,label\nsynthetic/video/bad.mp4,0,5,walk\n", encoding="utf-8"
    )
    frames = inputs.parent / "frames"
    name = unique("hostile-frame-rows")
    with untouched(inputs):
        outcome = invoke(
            ["ingest", labels, "--videos", inputs / "videos", "--dataset", name]
            + ["--frames-dir", frames]
        )
    expect(outcome, 1, needle, str(bad), "Fix:", "--skip-bad")
    nothing_left(name, frames)


def test_a_frame_numbered_row_past_the_last_frame_names_frames(inputs: Path) -> None:
    labels = inputs / "frames.csv"
    labels.write_text(
        "video,start_frame,end_frame,label\n"
        "synthetic/video/s01_c01_fall.mp4,0,14,walk\n"
        "synthetic/video/s01_c01_fall.mp4,30,40,fallen\n",
        encoding="utf-8",
    )
    frames = inputs.parent / "frames"
    name = unique("hostile-frame-rows")
    with untouched(inputs):
        outcome = invoke(
            ["ingest", labels, "--videos", inputs / "videos", "--dataset", name]
            + ["--frames-dir", frames]
        )
    # the clip has 35 frames (0-34): the row is named in frames, the unit it was written in
    expect(outcome, 1, "row 2 (line 3): end_frame: frame 40 is past the last frame", "0-34")
    assert " s " not in outcome.output.split("end_frame")[1].split("Fix")[0]
    nothing_left(name, frames)
