"""Hostile video ingest: label files (CSV and JSON), sampling rates, look-alike videos,
paths inside the project, concurrent ingests.

Each runs the real command and checks the documented promises: the exit code,
the file, row, field and fix named, no traceback, inputs untouched, and on
failure nothing added and no frame file left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _data import CLIPS, GOOD, HEADER, copy_clip_inputs
from _harness import REPO, expect, invoke, invoke_process, unique, untouched

pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """``in/videos/synthetic/video/`` with two real clips (OmniFall's layout)."""
    return copy_clip_inputs(tmp_path)


def run(inputs: Path, text: str | bytes, *extra: str, labels: str = "labels.csv"):
    path = inputs / labels
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    frames = inputs.parent / "frames"
    name = unique("attack4")
    with untouched(inputs):
        outcome = invoke(
            ["ingest", path, "--videos", inputs / "videos", "--dataset", name]
            + ["--frames-dir", frames, *extra]
        )
    return outcome, name, frames


def nothing_left(name: str, frames: Path) -> None:
    assert name not in fo.list_datasets()
    assert f"{name}-videos" not in fo.list_datasets()
    assert not frames.exists() or not any(p.is_file() for p in frames.rglob("*"))


def test_a_huge_fps_is_refused_and_a_high_one_is_quick(inputs: Path) -> None:
    # --fps 1e9 stepped the next sampling time k/fps one k at a time: 348 s for a
    # 35-frame clip; now above MAX_FPS is a usage error, and below it k jumps
    labels = inputs / "labels.csv"
    labels.write_text(HEADER + GOOD, encoding="utf-8")
    base = ["ingest", labels, "--videos", inputs / "videos", "--dataset", unique("attack4")]
    with untouched(inputs):
        outcome = invoke_process([*base, "--fps", "1e9"], timeout=120)
    expect(outcome, 2, "--fps 1e+09 is above 10000", "--every-n 1")
    outcome, name, frames = run(inputs, HEADER + GOOD, "--fps", "10000", "--margin", "0")
    expect(outcome, 0, "20 frame(s) sampled")  # every frame of the first 2 s at 10 fps


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_image_renamed_mp4_is_not_a_video(inputs: Path, fmt: str) -> None:
    # FFmpeg's image demuxers read a still image as a one-frame video: it was ingested
    from PIL import Image

    bad = inputs / "videos" / "synthetic" / "video" / "still.mp4"
    Image.new("RGB", (16, 16), "red").save(bad, fmt)
    text = HEADER + GOOD + "still,1,0,1,3,1,synthetic\n"
    outcome, name, frames = run(inputs, text)
    expect(outcome, 1, str(bad), "a still image", "not a video", "--skip-bad")
    nothing_left(name, frames)
    outcome, name, frames = run(inputs, text, "--skip-bad")
    expect(outcome, 0, "skipped synthetic/video/still.mp4", "1 video(s)")


def test_a_deeply_nested_json_segment_file(inputs: Path) -> None:
    # json.loads raised RecursionError, which escaped as a traceback
    outcome, name, frames = run(inputs, "[" * 100_000 + "]" * 100_000, labels="segs.json")
    expect(outcome, 1, "segs.json", "nested too deeply", "Fix:")
    nothing_left(name, frames)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ('{"a": [1]}', "subject"),
        ("[1, 2]", "camera"),
        ("NaN", "subject"),
        ("Infinity", "subject"),
        ("true", "dataset"),
    ],
)
def test_a_json_subject_that_is_no_id(inputs: Path, value: str, key: str) -> None:
    # a nested object became the subject "{'a': [1]}" and NaN the subject "nan": group
    # keys that join strangers into one split group (or split one person)
    video = "synthetic/video/s01_c01_fall.mp4"
    text = f'[{{"video": "{video}", "label": "fall", "start": 0, "end": 1, "{key}": {value}}}]'
    outcome, name, frames = run(inputs, text, labels="segs.json")
    expect(outcome, 1, f"segs.json record #0: {key}: ", "is not an id", "Fix:")
    nothing_left(name, frames)


def test_frames_and_exports_inside_the_projects_raw_from_another_folder(
    inputs: Path, tmp_path: Path
) -> None:
    # raw/ was found from the cwd only: run from outside the project, --frames-dir
    # (and export's --out) inside the project's raw/ were written to
    labels = inputs / "labels.csv"
    labels.write_text(HEADER + GOOD, encoding="utf-8")
    project = tmp_path / "project"
    (project / "raw" / "sample").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ["ingest", labels, "--videos", inputs / "videos", "--dataset", unique("attack4")]
    with untouched(project, inputs):
        outcome = invoke([*args, "--frames-dir", project / "raw" / "frames"], cwd=elsewhere)
        expect(outcome, 2, "is inside the input", "raw")
        task = REPO / "raw" / "sample" / "annotations.json"
        outcome = invoke(["export", "--task", task, "--out", project / "raw" / "ex"], cwd=elsewhere)
        expect(outcome, 2, "raw/ folder")


def test_a_hundred_thousand_segments_of_one_video_group_in_linear_time() -> None:
    # duplicates were found by comparing each row with all the video's rows so far:
    # 100k distinct rows of one tiny clip spent ~10 min there (now ~0.1 s)
    import time

    from curation.class_map import ClassRule
    from curation.curator.video import SegmentRow, group_segments

    rule = ClassRule(id=1, answer="yes")
    rows = [
        SegmentRow(f"row {i}", "a.mp4", i * 1e-5, 1.0, False, "fall", rule) for i in range(100_000)
    ]
    rows += rows[:10]  # exact duplicates count once
    t0 = time.perf_counter()
    grouped = group_segments(rows)
    assert time.perf_counter() - t0 < 5
    assert list(grouped) == ["a.mp4"] and len(grouped["a.mp4"]) == 100_000


def test_a_header_naming_a_column_twice(inputs: Path) -> None:
    # "label" twice: the last one silently won
    text = HEADER.replace("dataset", "dataset,label") + "s01_c01_fall,1,0,1,1,1,synthetic,0\n"
    outcome, name, frames = run(inputs, text)
    expect(outcome, 1, "labels.csv", "names the column(s) label more than once", "Fix:")
    nothing_left(name, frames)


def test_a_time_with_an_underscore_is_no_number(inputs: Path) -> None:
    # Python's float("1_0") is 10: a typo for 1.0 was read as 10 s
    outcome, name, frames = run(inputs, HEADER + "s01_c01_fall,1,0,1_0,1,1,synthetic\n")
    expect(outcome, 1, "row 1 (line 2): end: '1_0' is not a number", "Fix:")
    nothing_left(name, frames)


def test_a_utf16_label_file_says_utf16(inputs: Path) -> None:
    # the fix named iconv -f latin1, which garbles a UTF-16 file
    outcome, name, frames = run(inputs, (HEADER + GOOD).encode("utf-16"))
    expect(outcome, 1, "not UTF-8 (UTF-16)", "iconv -f utf-16 -t utf-8")
    nothing_left(name, frames)


@pytest.mark.parametrize("kind", ["fifo", "loop"])
def test_a_fifo_or_looping_link_is_not_reported_missing(inputs: Path, kind: str) -> None:
    # both were "video not found", though the file is there
    import os

    bad = inputs / "videos" / "synthetic" / "video" / "odd.mp4"
    if kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.symlink_to("odd.mp4")
    outcome, name, frames = run(inputs, HEADER + GOOD + "odd,1,0,1,3,1,synthetic\n")
    expect(outcome, 1, f"not a regular file (a FIFO, device or looping link): {bad}", "--skip-bad")
    nothing_left(name, frames)


@pytest.mark.parametrize(
    ("kind", "moved"), [("fall", "fall/"), ("fallen", "fall/"), ("other", "unsure/")]
)
def test_a_no_fall_kind_folder_named_after_a_fall_class(
    tmp_path: Path, kind: str, moved: str
) -> None:
    # no_fall/fall/x.mp4 became answer "no" with negative_kind "fall" and activity "fall"
    folder = tmp_path / "in" / "clips"
    (folder / "fall").mkdir(parents=True)
    (folder / "no_fall" / kind).mkdir(parents=True)
    shutil.copy(CLIPS / "s01_c01_fall.mp4", folder / "fall" / "a.mp4")
    shutil.copy(CLIPS / "s02_c01_sit.mp4", folder / "no_fall" / kind / "b.mp4")
    name = unique("attack4")
    frames = tmp_path / "frames"
    with untouched(tmp_path / "in"):
        outcome = invoke(["ingest", folder, "--dataset", name, "--frames-dir", frames])
    expect(
        outcome, 1, f"no_fall/{kind}/b.mp4: the folder no_fall/{kind}/", f"move the clip to {moved}"
    )
    nothing_left(name, frames)


def test_two_ingests_of_one_file_at_once_leave_every_frame_file(tmp_path: Path) -> None:
    # both cut the same frame files; the one that lost the race to create the dataset
    # took back "its" new files, which were the winner's: 3 of 432 frames were left
    import subprocess
    import sys

    videos = REPO / "raw" / "sample" / "videos"
    name = unique("attack4-conc")
    frames = tmp_path / "frames"
    argv = ["ingest", videos / "labels.csv", "--videos", videos, "--dataset", name]
    argv += ["--frames-dir", frames, "--every-n", "1"]
    code = "from curation.cli import app; app()"
    with untouched(videos):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, *map(str, argv)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all("Traceback" not in out for out in outputs), outputs
    assert any(p.returncode == 0 for p in procs), outputs
    paths = fo.load_dataset(name).values("filepath")
    assert len(paths) == 840
    missing = [p for p in paths if not Path(p).is_file()]
    assert not missing, f"{len(missing)} frame file(s) of the dataset are gone: {outputs}"
