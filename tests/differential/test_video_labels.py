"""Video frame labels against a computation from the label file alone.

Each stored frame's label is recomputed without the ingest's code: the rows read
with the ``csv`` module, the classes with PyYAML from the class map file, each
frame's time from PyAV's decoded timestamps (pts x time base, exact fractions),
and the rule docs/videos.md states: a frame takes the answer of the segment it lies
in (``start <= t < end``), and is unsure when its class is, when covering rows
disagree, or when it lies less than ``--margin`` seconds from a boundary between
segments; a frame in no segment is not stored. Checked after an ingest and after
a corrected label file is ingested again with ``--relabel``: no stored frame may
keep a label the file no longer gives, and no frame the file labels may be missing.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

av = pytest.importorskip("av")
fo = pytest.importorskip("fiftyone")

from curation.class_map import DEFAULT_CLASS_MAP_FILE  # noqa: E402
from curation.curator.video import ingest_videos  # noqa: E402
from curation.errors import DataError  # noqa: E402
from curation.synthetic_video import write_clips  # noqa: E402

MARGIN = "0.15"  # no frame of the 10 fps clips lies exactly this far from a boundary


def classes() -> dict[str, tuple[str, str, str | None]]:
    """Class id -> (name, answer, negative kind), from the YAML file itself."""
    data = yaml.safe_load(DEFAULT_CLASS_MAP_FILE.read_text(encoding="utf-8"))
    out = {}
    for name, rule in data["classes"].items():
        kind = (rule.get("negative_kind") or name) if rule["answer"] == "no" else None
        out[str(rule["id"])] = (name, rule["answer"], kind)
    return out


def rows_by_video(labels: Path) -> dict[str, list[tuple[Fraction, Fraction, str]]]:
    """OmniFall rows -> {video as stored: [(start, end, class id)]}, exact as written."""
    out: dict[str, list[tuple[Fraction, Fraction, str]]] = {}
    with labels.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            video = f"{row['dataset']}/video/{row['path']}.mp4"
            out.setdefault(video, []).append(
                (Fraction(row["start"]), Fraction(row["end"]), row["label"])
            )
    return out


def decoded_times(path: Path) -> list[Fraction]:
    """Each decoded frame's time from the stream's start, in decoding order (PyAV)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        origin = Fraction(stream.start_time or 0) * tb
        return [Fraction(frame.pts) * tb - origin for frame in container.decode(stream)]


def expected_label(
    t: Fraction, rows: list[tuple[Fraction, Fraction, str]], margin: Fraction
) -> tuple[str | None, str, str | None] | None:
    """(answer or None for unsure, class name, negative kind) of a frame at ``t``."""
    known = classes()
    covering = [(s, e, known[label]) for s, e, label in rows if s <= t < e]
    if not covering:
        return None
    if len({answer for _, _, (_, answer, _) in covering}) > 1:
        return None, "/".join(sorted({name for _, _, (name, _, _) in covering})), None
    _, _, (name, answer, kind) = max(covering, key=lambda c: c[0])
    last = max(e for _, e, _ in rows)
    boundaries = {s for s, _, _ in rows if s > 0} | {e for _, e, _ in rows if e < last}
    if answer == "unsure" or any(abs(t - b) < margin for b in boundaries):
        return None, name, kind
    return answer, name, kind


def stored(name: str) -> dict[tuple[str, int], dict]:
    ds = fo.load_dataset(name)
    fields = ["video", "frame_index", "time", "answer", "answers", "tags"]
    fields += ["activity", "negative_kind"]
    return {
        (row["video"], row["frame_index"]): row
        for row in (dict(zip(fields, v, strict=True)) for v in zip(*ds.values(fields), strict=True))
    }


def assert_labels_follow_the_file(name: str, labels: Path, videos: Path) -> int:
    """Every stored frame as the file labels it, and every frame the file labels stored."""
    margin = Fraction(MARGIN)
    frames = stored(name)
    checked = 0
    for video, rows in rows_by_video(labels).items():
        for index, t in enumerate(decoded_times(videos / video)):
            want = expected_label(t, rows, margin)
            got = frames.pop((video, index), None)
            if want is None:
                assert got is None, f"{video}#{index} at {float(t)} s lies in no row: {got}"
                continue
            assert got is not None, f"{video}#{index} at {float(t)} s is labelled but not stored"
            answer, activity, kind = want
            assert got["time"] == pytest.approx(float(t), abs=1e-6)
            assert got["answer"] == answer, (video, index, float(t), got, want)
            assert got["answers"] == ([answer] if answer else [])
            assert ("unsure" in (got["tags"] or [])) == (answer is None)
            assert got["activity"] == activity, (video, index, got, want)
            assert got["negative_kind"] == (kind if answer != "yes" else None)
            checked += 1
    assert not frames, f"frames of videos the file does not name: {sorted(frames)[:3]}"
    return checked


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("label-clips")
    write_clips(root, scenarios=("fall", "sit"), subjects=1, cameras=1, seed=11, size=48)
    return root


def test_labels_after_an_ingest_and_after_a_relabelling_reingest(
    clips: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    shutil.copy(clips / "labels.csv", labels)
    name = f"difflabels-{uuid.uuid4().hex[:8]}"
    options = {"videos": clips, "every_n": 1, "margin": float(MARGIN)}
    options["frames_dir"] = tmp_path / "frames"
    ingest_videos(labels, name, **options)
    first = assert_labels_follow_the_file(name, labels, clips)
    assert first > 0

    # the correction: the fall clip's walk ends at 1.2 s, not 1.5 s (the fall starts
    # earlier); the sit clip's sit_down row goes, leaving a gap no row labels
    with labels.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    walk, fall, sit_down = ("0", "1", "3")
    corrected = []
    for r in rows:
        if r["path"].endswith("_fall") and r["label"] == walk:
            r["end"] = "1.2"
        elif r["path"].endswith("_fall") and r["label"] == fall:
            r["start"] = "1.2"
        elif r["path"].endswith("_sit") and r["label"] == sit_down:
            continue
        corrected.append(r)
    with labels.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(corrected)
    with pytest.raises(DataError, match="--relabel"):
        ingest_videos(labels, name, **options)
    ingest_videos(labels, name, relabel=True, **options)
    second = assert_labels_follow_the_file(name, labels, clips)
    assert second < first  # the frames of the dropped row are gone


def test_a_corrected_label_file_under_another_name_relabels_the_same_frames(
    clips: Path, tmp_path: Path
) -> None:
    """The corrected file saved as another file: the frames it labels otherwise are refused
    with the --relabel fix, then relabelled in place; every frame stored once, and every
    stored frame as the new file labels it (recomputed from the file alone)."""
    name = f"diffrename-{uuid.uuid4().hex[:8]}"
    options = {"videos": clips, "every_n": 1, "margin": float(MARGIN)}
    options["frames_dir"] = tmp_path / "frames"
    ingest_videos(clips / "labels.csv", name, **options)
    before = len(fo.load_dataset(name))
    with (clips / "labels.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:  # the fall starts at 1.2 s, not 1.5 s
        if r["path"].endswith("_fall") and r["label"] == "0":
            r["end"] = "1.2"
        elif r["path"].endswith("_fall") and r["label"] == "1":
            r["start"] = "1.2"
    renamed = tmp_path / "labels-corrected.csv"
    with renamed.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=r"stored from another label file: labels\.csv.*--relabel"):
        ingest_videos(renamed, name, **options)
    assert len(fo.load_dataset(name)) == before
    result = ingest_videos(renamed, name, relabel=True, **options)
    ds = fo.load_dataset(name)
    frames = list(zip(*ds.values(["video", "frame_index"]), strict=True))
    assert len(frames) == len(set(frames)) == before  # each frame once, none added
    assert result.ingest.relabelled > 0 and result.ingest.added == 0
    assert assert_labels_follow_the_file(name, renamed, clips) == before
