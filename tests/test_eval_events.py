"""`curate eval-events`: falls from the label file, alerts matched to them, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.cli import app
from curation.events import Event
from curation.events.evaluate import (
    Interval,
    Tolerance,
    match_alerts,
    poisson_interval,
    truth_from_segments,
)
from tests._footage import FALL, TableScorer, patch_scorer, tiny_footage, truncate

runner = CliRunner()


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("footage")
    return root, tiny_footage(root, subjects=3)


def run(root: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        [
            "eval-events",
            str(root / "labels.csv"),
            "--videos",
            str(root),
            "--model",
            str(out.parent / "run" / "checkpoint_best.pth"),
            "--out",
            str(out),
            *extra,
        ],
    )


def test_a_perfect_scorer_finds_every_fall_and_no_false_alarm(footage, tmp_path, monkeypatch):
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos))
    result = run(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    falls = sum(v.falls for v in videos)
    assert (report["falls"], report["detected"]) == (falls, falls)
    assert report["event_recall"] == 1.0 and report["event_precision"] == 1.0
    assert report["false_alarms"] == 0 and report["false_alarms_per_hour"] == 0.0
    assert 0 < report["delay_p50"] <= report["delay_p95"] < 5
    assert {a["video"] for a in report["alerts"]} == {f"footage/video/{v.path}.mp4" for v in videos}
    assert all({"video", "kind", "start", "end"} <= set(a) for a in report["alerts"])
    assert report["hours"] == pytest.approx(sum(v.seconds for v in videos) / 3600, abs=0.001)
    md = (tmp_path / "out" / "events_eval.md").read_text()
    assert "| event recall |" in md and f"({falls}/{falls})" in md
    pngs = sorted(p.name for p in (tmp_path / "out" / "timelines").iterdir())
    assert pngs == sorted(f"footage__video__{v.path}.png" for v in videos)
    assert "event recall 1" in result.stdout


def test_alerts_while_lying_on_purpose_are_false_alarms_named_by_kind(
    footage, tmp_path, monkeypatch
):
    root, videos = footage
    # a detector that also says yes to lying down on purpose (on a bed or the floor)
    patch_scorer(monkeypatch, TableScorer(videos, yes_labels=(*FALL, "lie_down", "lying")))
    result = run(root, tmp_path / "out", "--set", "refractory=0")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    lying = sum(1 for v in videos for s in v.segments if s.label == "lying" and s.end - s.start > 3)
    assert lying > 0
    assert report["false_alarms"] >= lying
    assert set(report["false_alarms_by_kind"]) <= {"lie_down", "lying"}
    assert report["event_precision"] < 1.0
    lo, hi = report["false_alarms_per_hour_ci95"]
    assert lo < report["false_alarms_per_hour"] < hi
    assert "false alarms while lie" in result.stdout


def test_a_truncated_video_is_skipped_and_named_in_the_report(tmp_path, monkeypatch):
    root = tmp_path / "videos"
    videos = tiny_footage(root, subjects=2)
    scorer = TableScorer(videos)
    truncate(videos[1].file)
    patch_scorer(monkeypatch, scorer)
    result = run(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "s02_c01_footage.mp4" in result.stderr and "Traceback" not in result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    assert [v["video"] for v in report["per_video"]] == [f"footage/video/{videos[0].path}.mp4"]
    assert report["skipped"] and "s02_c01_footage.mp4" in report["skipped"][0]
    assert report["falls"] == videos[0].falls


def test_tune_on_val_chooses_on_val_and_reports_on_test_only(footage, tmp_path, monkeypatch):
    root, videos = footage
    split = tmp_path / "split.json"
    split.write_text(
        json.dumps({"train": ["footage/1"], "val": ["footage/2"], "test": ["footage/3"]})
    )
    patch_scorer(monkeypatch, TableScorer(videos))
    (tmp_path / "run").mkdir()
    result = run(root, tmp_path / "out", "--split-file", str(split), "--tune-on", "val")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    assert report["tuned_on_val"]["videos"] == ["footage/video/s02_c01_footage.mp4"]
    assert report["selection"]["videos"] == ["footage/video/s03_c01_footage.mp4"]
    beside = tmp_path / "run" / "events.yaml"
    assert beside.is_file() and (tmp_path / "out" / "events.yaml").read_text() == beside.read_text()
    from curation.events.watch import event_params_for

    params, _ = event_params_for(tmp_path / "run" / "checkpoint_best.pth", None, None)
    assert params.model_dump() == report["params"]
    assert params.on_threshold is not None


def test_tune_on_val_needs_a_split_file(footage, tmp_path, monkeypatch):
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos))
    result = run(root, tmp_path / "out", "--tune-on", "val")
    assert result.exit_code == 2
    assert "--tune-on val needs --split-file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_subjects_select_the_videos_reported(footage, tmp_path, monkeypatch):
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos))
    result = run(root, tmp_path / "out", "--subjects", "2")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    assert [v["video"] for v in report["per_video"]] == ["footage/video/s02_c01_footage.mp4"]
    result = run(root, tmp_path / "out2", "--subjects", "9")
    assert result.exit_code == 2 and "no video of the label file" in result.stderr


def test_a_fall_and_the_fallen_after_it_are_one_fall():
    from curation.class_map import load_class_map
    from curation.curator.video import SegmentRow

    cmap = load_class_map()

    def seg(name, start, end, video="a.mp4"):
        return SegmentRow("row", video, start, end, False, name, cmap.rule(name)[1])

    truth = truth_from_segments(
        [
            seg("walk", 0, 3),
            seg("fall", 3, 3.5),
            seg("fallen", 3.5, 10),
            seg("stand_up", 10, 12),
            seg("lying", 12, 30),
            seg("fall", 30, 31),
        ]
    )["a.mp4"]
    assert [(f.start, f.end) for f in truth.falls] == [(3, 10), (30, 31)]
    assert [o.kind for o in truth.others] == ["walk", "stand_up", "lying"]


def test_each_fall_counts_once_and_later_alerts_in_its_window_are_duplicates():
    falls = [Interval(10, 20, "fall")]
    others = [Interval(40, 80, "lying")]
    alerts = [
        Event("fall", 9.5, 11.0, 0.9),  # inside: 1 s before is allowed
        Event("fall", 22.0, 23.0, 0.9),  # still in the window (end + 5 s): a duplicate
        Event("fall", 26.0, 27.0, 0.9),  # past it: a false alarm outside any segment
        Event("fall", 50.0, 51.0, 0.9),  # while lying on purpose
        Event("long_lie", 9.5, 70.0, 0.9),  # not an alert to match
    ]
    matches = match_alerts(falls, others, alerts, Tolerance(1.0, 5.0))
    assert [(m.outcome, m.overlaps) for m in matches] == [
        ("hit", None),
        ("duplicate", None),
        ("false_alarm", "unlabelled"),
        ("false_alarm", "lying"),
    ]
    assert matches[0].delay == 1.0


def test_poisson_interval_of_no_event_is_the_closed_form():
    # zero events: the upper 97.5% bound solves exp(-mu) = 0.025
    lo, hi = poisson_interval(0, 2.0)
    assert lo == 0.0 and hi == pytest.approx(-math.log(0.025) / 2.0)


def test_threshold_on_the_command_line_wins_over_on_threshold_beside_the_model(
    footage, tmp_path, monkeypatch
):
    root, videos = footage
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "events.yaml").write_text("on_threshold: 0.25\n")
    patch_scorer(monkeypatch, TableScorer(videos))  # P(yes) 0.95 in a fall, else 0.05
    result = run(root, tmp_path / "out", "--threshold", "0.97")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    assert report["threshold"]["on"] == 0.97 and report["threshold"]["from"] == "--threshold 0.97"
    assert report["detected"] == 0 and report["alerts"] == []  # no frame reaches 0.97
    assert "on 0.97 (--threshold 0.97)" in result.stderr


def test_threshold_with_tune_on_val_is_a_usage_error(footage, tmp_path, monkeypatch):
    root, videos = footage
    patch_scorer(monkeypatch, TableScorer(videos))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"val": [], "test": []}))
    result = run(
        root, tmp_path / "out", "--tune-on", "val", "--split-file", str(split), "--threshold", "0.5"
    )
    assert result.exit_code == 2
    assert "--threshold 0.5 with --tune-on val" in result.stderr


def test_a_fall_labelled_after_the_video_ends_is_named_and_left_out_of_recall(
    footage, tmp_path, monkeypatch
):
    import csv
    import shutil

    root, videos = footage
    mine = tmp_path / "videos"
    shutil.copytree(root, mine)
    labels = mine / "labels.csv"
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    first = dict(rows[0])
    n_rows = len(rows)
    with labels.open("a", newline="") as f:  # a fall long after the 90 s video's end
        csv.DictWriter(f, fieldnames=list(first)).writerow(
            first | {"label": "1", "start": "500", "end": "501"}
        )
    patch_scorer(monkeypatch, TableScorer(videos))
    result = run(mine, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "events_eval.json").read_text())
    falls = sum(v.falls for v in videos)
    assert (report["falls"], report["detected"], report["event_recall"]) == (falls, falls, 1.0)
    video = f"{first['dataset']}/video/{first['path']}.mp4"
    [warning] = report["warnings"]
    assert f"row {n_rows + 1}" in warning and "500-501 s starts after the end of" in warning
    assert video in warning and "lasts 9" in warning
    assert "starts after the end of" in result.stderr


def test_out_at_an_existing_file_is_a_usage_error(footage, tmp_path, monkeypatch):
    root, videos = footage
    taken = tmp_path / "report.txt"
    taken.write_text("mine\n")
    scorer = TableScorer(videos)
    patch_scorer(monkeypatch, scorer)
    result = run(root, taken)
    assert result.exit_code == 2, result.output
    assert f"--out {taken} is a file, not a folder" in result.stderr
    assert taken.read_text() == "mine\n" and scorer.calls == 0
    inside = run(root, taken / "out")
    assert inside.exit_code == 2
    assert f"{taken} is a file, not a folder" in inside.stderr
