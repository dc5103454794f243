"""Video ingest on synthetic clips: frames labelled as the segments say, boundaries unsure."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

from curation.cli import app
from curation.errors import DataError

pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")

from curation.class_map import FRAME_FIELDS, load_class_map  # noqa: E402
from curation.curator.video import ingest_videos  # noqa: E402
from curation.synthetic_video import SCENARIOS, write_clips  # noqa: E402

VIDEOS = SAMPLE / "videos"
runner = CliRunner()
CLIP_SECONDS = {name: sum(s for _, s in parts) for name, parts in SCENARIOS.items()}
FPS = 10  # the synthetic clips' frame rate


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two subjects, one camera, every scenario; labels.csv and segments.csv."""
    root = tmp_path_factory.mktemp("clips")
    write_clips(root, subjects=2, cameras=1, seed=3, generic=True)
    return root


def segments_of(labels: Path) -> dict[str, list[tuple[float, float, int]]]:
    """OmniFall CSV -> {path: [(start, end, class id)]}, read independently of the ingest."""
    out: dict[str, list[tuple[float, float, int]]] = {}
    with labels.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["path"], []).append(
                (float(row["start"]), float(row["end"]), int(row["label"]))
            )
    return out


def frames_of(name: str) -> list[dict]:
    ds = fo.load_dataset(name)
    fields = ["filepath", "answer", "answers", "tags", *FRAME_FIELDS]
    values = ds.values(fields)
    return [dict(zip(fields, row, strict=True)) for row in zip(*values, strict=True)]


def test_every_frame_is_labelled_as_its_segment_says(clips: Path, tmp_path: Path) -> None:
    name = unique("video-labels")
    margin = 0.25
    result = ingest_videos(
        clips / "labels.csv",
        name,
        videos=clips,
        every_n=1,
        margin=margin,
        frames_dir=tmp_path / "frames",
    )
    cmap = load_class_map()
    by_id = {rule.id: (n, rule) for n, rule in cmap.classes.items()}
    segments = segments_of(clips / "labels.csv")
    frames = frames_of(name)
    assert (
        len(frames)
        == result.ingest.added
        == sum(round(CLIP_SECONDS[p.split("_", 2)[2]] * FPS) for p in segments)
    )
    seen_unsure = seen_yes = seen_no = 0
    for f in frames:
        path = f["video"].removeprefix("synthetic/video/").removesuffix(".mp4")
        segs = segments[path]
        assert f["time"] == pytest.approx(f["frame_index"] / FPS)
        (start, end, label) = next(s for s in segs if s[0] <= f["time"] < s[1])
        class_name, rule = by_id[label]
        assert f["activity"] == class_name
        assert f["segment"] == f"{start:g}-{end:g}"
        inner = {s for s, _, _ in segs if s > 0} | {e for _, e, _ in segs if e < segs[-1][1]}
        near = any(abs(f["time"] - b) < margin for b in inner)
        # a "yes" segment's middle frame (the first at or after its middle) keeps its answer
        middle = math.ceil((start + end) / 2 * FPS - 1e-9) == f["frame_index"]
        if (near and not (middle and rule.answer == "yes")) or rule.answer == "unsure":
            seen_unsure += 1
            assert f["answer"] is None and f["answers"] == [] and "unsure" in f["tags"], f
        else:
            assert f["answers"] == [rule.answer] and f["answer"] == rule.answer, f
            assert "unsure" not in f["tags"]
            seen_yes += rule.answer == "yes"
            seen_no += rule.answer == "no"
        if rule.answer == "no":
            assert f["negative_kind"] == cmap.negative_kind_of(class_name)
        else:
            assert f["negative_kind"] is None
        assert f["subject"] in ("1", "2") and f["camera"] == "1"
        assert f["source_dataset"] == "synthetic"
        assert Path(f["filepath"]).is_file()
        assert Path(f["filepath"]).is_relative_to(tmp_path / "frames")
    assert seen_unsure == result.unsure > 0 and seen_yes > 0 and seen_no > 0
    # the hashes taken while writing are the ones ingest's image scan gives the files
    import imagehash

    from curation.images import scan_image

    ds = fo.load_dataset(name)
    for path, sha, phash in zip(*ds.values(["filepath", "sha256", "phash"]), strict=True):
        scan = scan_image(Path(path))
        assert scan.issue is None and scan.sha256 == sha
        assert imagehash.hex_to_hash(scan.phash) - imagehash.hex_to_hash(phash) <= 2


def _timeline(scenario: str) -> list[tuple[float, float, str]]:
    out, start = [], 0.0
    for label, seconds in SCENARIOS[scenario]:
        out.append((start, start + seconds, label))
        start += seconds
    return out


def test_the_bundled_clips_ingest_by_the_cli_and_again_add_nothing(tmp_path: Path) -> None:
    name = unique("video-sample")
    args = ["ingest", VIDEOS / "labels.csv", "--videos", VIDEOS, "--dataset", name]
    args += ["--frames-dir", tmp_path / "frames"]
    manifest = json.loads((VIDEOS / "manifest.json").read_text())
    n_videos = len(manifest["videos"])
    # --fps 2 on 3.5 s clips: the frames at 0, 0.5, ... 3.0 s, and the frame at or after
    # the middle of each "yes" segment (1.75 -> 1.8 s for "fall" 1.5-2.0)
    cmap = load_class_map()
    expected = sum(
        len(
            {k * FPS // 2 for k in range(100) if k / 2 < CLIP_SECONDS[v["scenario"]]}
            | {
                math.ceil((start + end) / 2 * FPS - 1e-9)
                for start, end, label in _timeline(v["scenario"])
                if cmap.rule(label)[1].answer == "yes"
            }
        )
        for v in manifest["videos"]
    )
    before = sorted((p, p.stat().st_mtime_ns) for p in SAMPLE.rglob("*"))
    first = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert f"{n_videos} video(s), {expected} frame(s) sampled" in first.output
    assert f"{expected} added" in first.output
    frames = list((tmp_path / "frames").rglob("*.jpg"))
    stamps = {p: p.stat().st_mtime_ns for p in frames}
    again = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert f"0 added, {expected} already there, {expected} in the dataset" in again.output
    assert sorted((p, p.stat().st_mtime_ns) for p in SAMPLE.rglob("*")) == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "frames").rglob("*.jpg")} == stamps
    ds = fo.load_dataset(name)
    assert len(ds) == expected
    schema = ds.get_field_schema()
    assert set(FRAME_FIELDS) <= set(schema)
    for f in frames_of(name):
        for key in ("video", "time", "frame_index", "segment", "camera", "source_dataset"):
            assert f[key] is not None, (key, f)
    assert {f["subject"] for f in frames_of(name)} == {
        str(v["subject"]) for v in manifest["videos"]
    }
    # the sibling video dataset: one video sample per clip, segments for the App's player
    videos = fo.load_dataset(f"{name}-videos")
    assert len(videos) == n_videos and videos.media_type == "video"
    sample = videos.match({"video": "synthetic/video/s01_c01_fall.mp4"}).first()
    labels = [d.label for d in sample.segments.detections]
    assert labels == [c for c, _ in SCENARIOS["fall"]]
    assert sample.metadata.total_frame_count == round(CLIP_SECONDS["fall"] * FPS)
    assert sample.frames_dataset == name


@pytest.mark.parametrize(
    "options", [{"fps": 2.0}, {"fps": 4.0}, {"fps": 30.0}, {"every_n": 3}, {"every_n": 1}]
)
def test_sampling_counts(clips: Path, tmp_path: Path, options: dict) -> None:
    name = unique("video-rate")
    result = ingest_videos(
        clips / "labels.csv",
        name,
        videos=clips,
        frames_dir=tmp_path / "f",
        keep_middle=False,  # the schedule alone
        **options,
    )

    def per_clip(seconds: float) -> int:
        n = round(seconds * FPS)
        if "every_n" in options:
            return len(range(0, n, options["every_n"]))
        # one frame per target time k / fps; never more frames than the video has
        return min(n, len([k for k in range(10_000) if k / options["fps"] < seconds]))

    assert result.videos == len(SCENARIOS) * 2
    expected = 2 * sum(per_clip(CLIP_SECONDS[s]) for s in SCENARIOS)
    assert result.frames == result.ingest.added == len(fo.load_dataset(name)) == expected


def test_generic_csv_json_and_frame_numbers_agree_with_omnifall(
    clips: Path, tmp_path: Path
) -> None:
    """The same segments written three ways give the same frames and labels."""
    rows = list(csv.DictReader((clips / "segments.csv").open(encoding="utf-8")))
    as_json = tmp_path / "segments.json"
    as_json.write_text(json.dumps(rows), encoding="utf-8")
    in_frames = tmp_path / "frames.csv"
    with in_frames.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "start_frame", "end_frame", "label", "subject", "camera"])
        for r in rows:  # end_frame is inclusive: the last frame before `end`
            first, last = round(float(r["start"]) * FPS), round(float(r["end"]) * FPS) - 1
            w.writerow([r["video"], first, last, r["label"], r["subject"], r["camera"]])
    seen = {}
    for labels in (clips / "labels.csv", clips / "segments.csv", as_json, in_frames):
        name = unique("video-fmt")
        ingest_videos(labels, name, videos=clips, fps=5.0, frames_dir=tmp_path / "frames")
        seen[labels.name] = sorted(
            (f["video"], f["frame_index"], f["answer"], f["activity"], f["negative_kind"])
            for f in frames_of(name)
        )
    first = seen.pop("labels.csv")
    assert first and all(other == first for other in seen.values())


def test_a_folder_of_whole_clips(clips: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    for sub in ("fall", "no_fall/sitting", "no_fall/my_kind", "no_fall", "unsure"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    video = clips / "synthetic" / "video"
    shutil.copy(video / "s01_c01_fall.mp4", folder / "fall" / "a.mp4")
    shutil.copy(video / "s01_c01_sit.mp4", folder / "no_fall" / "sitting" / "b.mp4")
    shutil.copy(video / "s02_c01_walk.mp4", folder / "no_fall" / "my_kind" / "c.mp4")
    shutil.copy(video / "s02_c01_walk.mp4", folder / "no_fall" / "d.mp4")
    shutil.copy(video / "s02_c01_lie.mp4", folder / "unsure" / "e.mp4")
    name = unique("video-folder")
    result = ingest_videos(folder, name, frames_dir=tmp_path / "frames")
    assert result.format == "clip-folder" and result.videos == 5
    by_video: dict[str, set] = {}
    for f in frames_of(name):
        by_video.setdefault(f["video"], set()).add((f["answer"], f["negative_kind"]))
    assert by_video == {
        "fall/a.mp4": {("yes", None)},
        "no_fall/sitting/b.mp4": {("no", "sitting")},
        "no_fall/my_kind/c.mp4": {("no", "my_kind")},
        "no_fall/d.mp4": {("no", None)},
        "unsure/e.mp4": {(None, None)},
    }
    assert result.unsure == 7  # a whole clip has no boundary: only unsure/ is unsure


def _decoded(path: Path) -> list:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_clip_generation_is_deterministic(tmp_path: Path) -> None:
    a = write_clips(tmp_path / "a", scenarios=("fall",), subjects=1, cameras=1)
    b = write_clips(tmp_path / "b", scenarios=("fall",), subjects=1, cameras=1)
    # the drawn frames are identical; libx264 once gave bytes one byte apart (see the module)
    first, second = _decoded(a[0].file), _decoded(b[0].file)
    assert len(first) == len(second) > 0
    for x, y in zip(first, second, strict=True):
        assert x.shape == y.shape
        assert np.abs(x.astype(int) - y.astype(int)).mean() < 1.0
    assert (tmp_path / "a" / "labels.csv").read_text() == (
        tmp_path / "b" / "labels.csv"
    ).read_text()


def test_frames_go_to_fiftyones_dataset_folder_by_default(
    clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fo.config, "default_dataset_dir", str(tmp_path / "fo-datasets"))
    name = unique("video-default-dir")
    result = ingest_videos(clips / "labels.csv", name, videos=clips)
    assert Path(result.frames_dir) == tmp_path / "fo-datasets" / name / "frames"
    paths = fo.load_dataset(name).values("filepath")
    assert paths and all(Path(p).is_relative_to(result.frames_dir) for p in paths)


def test_a_failed_add_leaves_no_frame_file(
    clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fiftyone.core.dataset as fod

    def broken(self, *args, **kwargs):  # the database goes away half-way
        raise ConnectionError("lost the database")

    monkeypatch.setattr(fod.Dataset, "add_samples", broken)
    name = unique("video-failed")
    with pytest.raises(ConnectionError):
        ingest_videos(clips / "labels.csv", name, videos=clips, frames_dir=tmp_path / "frames")
    assert name not in fo.list_datasets()
    assert not any(p.is_file() for p in (tmp_path / "frames").rglob("*"))


# --- the sampling rule, frame numbers, rotation, edit lists, limits, interruption ---------


def test_the_sampling_rule_keeps_the_first_frame_at_or_after_each_time() -> None:
    from fractions import Fraction

    from curation.curator.video import sample_indices

    at_25 = [Fraction(i, 25) for i in range(60)]
    # 0.5 s falls between frames 12 (0.48 s) and 13 (0.52 s): the frame after it is kept
    assert sample_indices(at_25, fps=2) == [0, 13, 25, 38, 50]
    # a frame exactly at k/F is that time's frame
    assert sample_indices([Fraction(i, 10) for i in range(12)], fps=5) == [0, 2, 4, 6, 8, 10]
    # a frame on screen through several times k/F is kept once; none is kept twice
    assert sample_indices([Fraction(0), Fraction(1), Fraction(5, 2)], fps=2) == [0, 1, 2]
    assert sample_indices(at_25, every_n=7) == list(range(0, 60, 7))
    # times taken as floats (PyAV's frame.time) give the same frames
    assert sample_indices([i / 25 for i in range(60)], fps=2) == [0, 13, 25, 38, 50]


def _ingest(labels: Path, videos: Path, tmp_path: Path, **options) -> tuple[str, object]:
    name = unique("video-case")
    result = ingest_videos(labels, name, videos=videos, frames_dir=tmp_path / "frames", **options)
    return name, result


def _write_rows(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_frame_numbered_rows_on_a_variable_frame_rate_label_the_decoded_frames(
    tmp_path: Path,
) -> None:
    from curation.synthetic_video import write_marker_clip

    # frames 0-9 at 10 fps, then 10-49 at 50 fps: the average rate (24.5) fits neither
    times = [i / 10 for i in range(10)] + [1.0 + (i - 10) / 50 for i in range(10, 50)]
    write_marker_clip(tmp_path / "v" / "vfr.mp4", 50, 10, times=times)
    labels = _write_rows(
        tmp_path / "frames.csv",
        ["video", "start_frame", "end_frame", "label"],
        [["vfr.mp4", 0, 9, "walk"], ["vfr.mp4", 10, 45, "fall"]],
    )
    name, result = _ingest(labels, tmp_path / "v", tmp_path, every_n=1, margin=0.0)
    got = {f["frame_index"]: f["answer"] for f in frames_of(name)}
    assert got == {i: "no" for i in range(10)} | {i: "yes" for i in range(10, 46)}
    assert result.unlabelled == 4  # frames 46-49 are in no row: never labelled
    # a row past the last frame is refused in frame numbers, the unit it was written in
    bad = _write_rows(
        tmp_path / "bad.csv",
        ["video", "start_frame", "end_frame", "label"],
        [["vfr.mp4", 10, 60, "fall"]],
    )
    with pytest.raises(DataError, match=r"end_frame: frame 60 is past the last frame .*0-49"):
        _ingest(bad, tmp_path / "v", tmp_path, every_n=1)


def test_a_rotated_clip_is_stored_as_it_is_shown(tmp_path: Path) -> None:
    from PIL import Image

    from curation.synthetic_video import write_marker_clip

    write_marker_clip(tmp_path / "v" / "phone.mp4", 10, 10, size=(64, 32), rotation=90)
    labels = _write_rows(
        tmp_path / "l.csv", ["video", "start", "end", "label"], [["phone.mp4", 0, 1, "walk"]]
    )
    name, _ = _ingest(labels, tmp_path / "v", tmp_path, every_n=5)
    for f in frames_of(name):
        with Image.open(f["filepath"]) as im:
            # 90 degrees counter-clockwise: 64x32 stored, 32x64 shown, and the white
            # block of the stored top-left corner at the bottom-left
            assert im.size == (32, 64)
            assert min(im.convert("L").getpixel((2, 61)), 255) > 200
            assert im.convert("L").getpixel((2, 2)) < 200


def test_a_trimmed_mp4_with_an_edit_list_is_no_truncated_file(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    import subprocess

    import av

    from curation.synthetic_video import write_marker_clip

    whole = write_marker_clip(tmp_path / "whole.mp4", 40, 10)
    (tmp_path / "v").mkdir()
    trimmed = tmp_path / "v" / "trimmed.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-ss", "0.75", "-i", whole]
        + ["-t", "2.2", "-c", "copy", trimmed],
        check=True,
    )
    with av.open(str(trimmed)) as c:
        header = c.streams.video[0].frames
        decodable = sum(1 for _ in c.decode(video=0))
    assert header > decodable  # the edit list hides frames the header counts
    labels = _write_rows(
        tmp_path / "l.csv", ["video", "start", "end", "label"], [["trimmed.mp4", 0, 2.2, "walk"]]
    )
    name, result = _ingest(labels, tmp_path / "v", tmp_path, every_n=1)
    assert result.frames + result.unlabelled == decodable  # every frame sampled once
    assert result.frames == len(frames_of(name)) > 0


def test_frames_over_the_pixel_limit_are_refused_before_decoding(
    clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curation import images

    monkeypatch.setattr(images, "MAX_PIXELS", 96 * 96 - 1)  # the clips are 96x96
    name = unique("video-bomb")
    with pytest.raises(DataError, match=r"frames of 96x96 pixels are over the limit of 9,215"):
        ingest_videos(clips / "labels.csv", name, videos=clips, frames_dir=tmp_path / "f")
    assert name not in fo.list_datasets()
    assert not (tmp_path / "f").exists()


def test_an_end_within_one_frame_of_the_video_end_is_the_video_end(tmp_path: Path) -> None:
    from fractions import Fraction

    from curation.synthetic_video import write_marker_clip

    # 180 frames at 29.97 fps last 6.006 s; the row's end is rounded to 6.0
    write_marker_clip(tmp_path / "v" / "ntsc.mp4", 180, Fraction(30000, 1001), size=(32, 32))
    labels = _write_rows(
        tmp_path / "l.csv",
        ["video", "start", "end", "label"],
        [["ntsc.mp4", 0, 3.0, "walk"], ["ntsc.mp4", 3.0, 6.0, "sitting"]],
    )
    name, _ = _ingest(labels, tmp_path / "v", tmp_path, fps=2.0, margin=0.5)
    late = [f for f in frames_of(name) if f["time"] > 5.4]
    assert late and all(f["answer"] == "no" for f in late), late  # not unsure: 6.0 is no boundary


def test_a_video_ends_when_its_last_decoded_frame_stops_showing_not_at_its_header(
    tmp_path: Path,
) -> None:
    """20 frames at 10 fps, then one at 2.5 s: the header says 2.1 s, the frames end at
    2.6 s. A row may end at 2.55 s, one past 2.6 s is refused naming 2.6 s, and the frame
    at 2.5 s lies in no row that ends at 2.1 s."""
    from curation.synthetic_video import write_marker_clip

    times = [i / 10 for i in range(20)] + [2.5]
    write_marker_clip(tmp_path / "v" / "tail.mp4", 21, 10, times=times)
    head = ["video", "start", "end", "label"]
    late = _write_rows(tmp_path / "late.csv", head, [["tail.mp4", 0, 2.55, "fallen"]])
    name, _ = _ingest(late, tmp_path / "v", tmp_path, every_n=1, margin=0.2)
    assert {f["frame_index"]: f["answer"] for f in frames_of(name)}[20] == "yes"
    past = _write_rows(tmp_path / "past.csv", head, [["tail.mp4", 0, 2.8, "fallen"]])
    with pytest.raises(DataError, match=r"lasts 2\.6 s. Fix: correct the row \(end at most 2\.6\)"):
        _ingest(past, tmp_path / "v", tmp_path, every_n=1)
    header = _write_rows(
        tmp_path / "header.csv",
        head,
        [["tail.mp4", 0, 1.0, "walk"], ["tail.mp4", 1.0, 2.1, "fallen"]],
    )
    name, _ = _ingest(header, tmp_path / "v", tmp_path, every_n=1, margin=0.5)
    stored = {f["frame_index"]: f["answer"] for f in frames_of(name)}
    assert 20 not in stored  # at 2.5 s, after the row's end
    assert stored[19] is None  # 1.9 s: within the margin of the boundary at 2.1 s


def test_short_yes_segments_keep_their_middle_frame_and_counts_per_class(
    clips: Path, tmp_path: Path
) -> None:
    # the "fall" segments last 0.5 s: every frame of theirs is within 0.5 s of a boundary
    off = ingest_videos(
        clips / "labels.csv",
        unique("video-nomiddle"),
        videos=clips,
        frames_dir=tmp_path / "f",
        keep_middle=False,
    )
    assert off.per_class["fall"]["labelled"] == 0 < off.per_class["fall"]["unsure"]
    falls = [w for w in off.empty_yes if "'fall' segment (1.5-2 s)" in w]
    assert len(falls) == 2 and "--margin 0.5 s" in falls[0]  # one per fall clip
    on = ingest_videos(
        clips / "labels.csv", unique("video-middle"), videos=clips, frames_dir=tmp_path / "f"
    )
    assert on.per_class["fall"]["labelled"] == 2 and not on.empty_yes
    counts = {
        c: sum(on.per_class[c].values())
        for c in on.per_class
        if c not in ("fall", "fallen")  # the middle frames add to these
    }
    assert counts == {c: sum(off.per_class[c].values()) for c in counts}
    # the command prints both
    args = ["ingest", clips / "labels.csv", "--videos", clips, "--dataset", unique("video-cli")]
    args += ["--frames-dir", tmp_path / "f", "--no-middle"]
    out = runner.invoke(app, [str(a) for a in args], terminal_width=400).output
    assert "frames per class (labelled/unsure):" in out and "fall 0/" in out
    assert "warning: " in out and "'fall' segment (1.5-2 s) gives no labelled frame" in out


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupt_while_decoding_stops_the_pool_and_removes_the_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    import signal
    import threading

    from curation.curator.video import decode as video

    root = tmp_path / "many"
    write_clips(root, subjects=3, cameras=2, seed=5)  # 24 clips
    stops: list[threading.Event] = []
    writes: list[Path] = []
    real_cut, real_write = video.cut_video, video.atomic_write_bytes

    def cut(*args, **kwargs):
        if kwargs.get("stop") is not None:
            stops.append(kwargs["stop"])
        return real_cut(*args, **kwargs)

    def write(path, data, **kwargs):
        if writes and stops:  # after the interrupt: a worker writes once the pool was told
            stops[0].wait(30)  # to stop (bounded: a pool that is never told goes on)
        real_write(path, data, **kwargs)
        writes.append(path)
        if len(writes) == 1:  # the signal, as a terminal or `kill` sends it, after a frame
            sig = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
            signal.pthread_kill(threading.main_thread().ident, sig)

    monkeypatch.setattr(video, "cut_video", cut)
    monkeypatch.setattr(video, "atomic_write_bytes", write)
    name = unique("video-interrupted")
    if how == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            ingest_videos(root / "labels.csv", name, videos=root, frames_dir=tmp_path / "frames")
    else:  # the command maps SIGTERM to the same unwinding, exit 143
        args = ["ingest", root / "labels.csv", "--videos", root, "--dataset", name]
        result = runner.invoke(app, [str(a) for a in [*args, "--frames-dir", tmp_path / "frames"]])
        assert result.exit_code == 143, result.output
        assert "terminated (SIGTERM)" in result.output
    assert not [t for t in threading.enumerate() if t.name.startswith("curate-video")]
    # at most the frame each worker was writing when told to stop, of 24 x 7
    assert len(writes) <= 1 + (os.cpu_count() or 1)
    assert not (tmp_path / "frames").exists()
    assert name not in fo.list_datasets()


# --- the schedule recorded, and video-only options refused for images ---------------------


def test_the_sampling_is_stored_on_each_frame_and_in_the_result(
    clips: Path, tmp_path: Path
) -> None:
    from curation.curator.video import Sampling

    name, result = _ingest(clips / "labels.csv", clips, tmp_path, every_n=5, margin=0.25)
    assert result.sampling == Sampling(every_n=5, margin=0.25)
    stored = {f["sampling"] for f in frames_of(name)}
    assert stored == {"every_n=5 margin=0.25 middle=yes"}


def test_video_only_options_for_an_image_source_are_named_and_refused(tmp_path: Path) -> None:
    name = unique("images-with-video-options")
    args = ["ingest", str(SAMPLE), "--dataset", name, "--fps", "2", "--margin", "0.5"]
    result = runner.invoke(app, [*args, "--no-middle"])
    assert result.exit_code == 2, result.output
    # --margin at its default says nothing; the options really given are named
    assert "--fps, --no-middle apply to videos only" in result.output
    assert name not in fo.list_datasets()


def test_the_same_label_file_under_another_name_adds_no_frame_twice(
    clips: Path, tmp_path: Path
) -> None:
    """A copy of the label file under another name labels the same frames the same way:
    nothing added, the summary counts each frame once, each video stored once."""
    copy = tmp_path / "labels-copy.csv"
    shutil.copy(clips / "labels.csv", copy)
    name, first = _ingest(clips / "labels.csv", clips, tmp_path, fps=2.0)
    again = ingest_videos(copy, name, videos=clips, frames_dir=tmp_path / "frames", fps=2.0)
    assert again.ingest.added == 0 and again.ingest.already_present == again.frames
    assert again.ingest.total == first.ingest.total == len(fo.load_dataset(name))
    assert again.ingest.holds == first.ingest.holds
    videos = fo.load_dataset(f"{name}-videos")
    assert len(videos) == first.videos
