"""Long synthetic footage: deterministic, OmniFall's layout, falls and lookalikes in it."""

from __future__ import annotations

from pathlib import Path

import pytest

av = pytest.importorskip("av")

from curation.class_map import load_class_map  # noqa: E402
from curation.curator.video import read_segments  # noqa: E402
from curation.synthetic_footage import render_story, write_footage  # noqa: E402


def decoded(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").tobytes() for f in container.decode(video=0)]


def test_same_seed_same_labels_and_frames_another_seed_others(tmp_path: Path) -> None:
    a = write_footage(tmp_path / "a", subjects=1, cameras=1, minutes=1, seed=3, size=48)
    b = write_footage(tmp_path / "b", subjects=1, cameras=1, minutes=1, seed=3, size=48)
    c = write_footage(tmp_path / "c", subjects=1, cameras=1, minutes=1, seed=4, size=48)
    same = (tmp_path / "a" / "labels.csv").read_text()
    assert same == (tmp_path / "b" / "labels.csv").read_text()
    assert same != (tmp_path / "c" / "labels.csv").read_text()
    assert decoded(a[0].file) == decoded(b[0].file)
    assert a[0].segments != c[0].segments


def test_footage_is_omnifall_layout_with_falls_and_lookalikes(tmp_path: Path) -> None:
    videos = write_footage(
        tmp_path, subjects=2, cameras=2, minutes=3, falls_per_video=2, seed=0, size=48
    )
    assert {(v.subject, v.camera) for v in videos} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(v.falls == 2 for v in videos)
    fmt, segments = read_segments(tmp_path / "labels.csv", tmp_path, load_class_map())
    assert fmt == "omnifall" and len(segments) == sum(len(v.segments) for v in videos)
    for v in videos:
        assert v.file == tmp_path / "footage" / "video" / f"{v.path}.mp4"
        frames = len(decoded(v.file))
        assert frames == int(v.seconds * 2)  # rendered at the sampling rate
        ends = [s.end for s in v.segments]
        assert [s.start for s in v.segments[1:]] == ends[:-1]  # no gap, no overlap
        for k, s in enumerate(v.segments):
            if s.label == "fall":  # a fall is followed by lying still, then getting up
                assert [x.label for x in v.segments[k + 1 : k + 3]] == ["fallen", "stand_up"]
    labels = {s.label for v in videos for s in v.segments}
    assert {"lie_down", "lying", "sit_down", "sitting", "walk"} <= labels
    assert v.seconds >= 180


def test_a_story_is_the_activities_asked_for(tmp_path: Path) -> None:
    data, segments = render_story(["walk", "bed"], 3, 1, size=48)
    names = [s.label for s in segments]
    assert names[-4:] == ["lie_down", "lying", "stand_up", "standing"]
    assert "fall" not in names
    _, falling = render_story(["walk", "fall"], 3, 1, size=48)
    assert [s.label for s in falling].count("fall") == 1
