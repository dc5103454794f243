"""Group-aware splits, look-alike negatives and per-kind false alarms.

Frames cut from videos carry subject, video, camera, source dataset, activity
and negative_kind (``curation.class_map.FRAME_FIELDS``). Until video ingest
lands, these tests make such frames directly: small rendered images with the
frame keys in the annotation file, or set on FiftyOne samples.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import write_json
from typer.testing import CliRunner

from curation.class_map import load_class_map
from curation.cli import app
from curation.evaluate.metrics import error_rates_by_label
from curation.evaluate.run import score
from curation.export import task_records_from_file
from curation.record_types import ExportRecord
from curation.split import SPLITS, group_value, split_by_groups
from curation.synthetic import QUESTION, render_scene

runner = CliRunner()
KINDS = ["walk", "lie_down", "sitting", "kneeling", "standing"]
DATASETS = ("le2i", "up_fall")
SUBJECTS = 4


def frames(root: Path, *, videos: int = 2, per_video: int = 4) -> list[dict]:
    """Frames of 2 source datasets x 4 subjects x ``videos`` clips; even frames fall."""
    root.mkdir(parents=True, exist_ok=True)
    recs: list[dict] = []
    for ds in DATASETS:
        for subject in range(SUBJECTS):
            for v in range(videos):
                for f in range(per_video):
                    i = len(recs)
                    fall = f % 2 == 0
                    name = f"{ds}_{subject}_{v}_{f}.png"
                    render_scene(fall, 1000 + i, 48).save(root / name)
                    kind = None if fall else KINDS[(subject + v + f) % len(KINDS)]
                    recs.append(
                        {
                            "instance_id": i,
                            "image": name,
                            "text_input": QUESTION,
                            "answer": ["yes" if fall else "no"],
                            "subject": str(subject),  # "0" exists in both datasets
                            "video": f"{ds}/s{subject}v{v}",
                            "camera": f"cam{v}",
                            "source_dataset": ds,
                            "activity": ("fall" if f == 0 else "fallen") if fall else kind,
                            **({"negative_kind": kind} if kind else {}),
                            "time": f * 0.5,
                        }
                    )
    return recs


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    return write_json(root / "task.json", frames(root))


@pytest.fixture(scope="module")
def records(task_file: Path) -> list[ExportRecord]:
    return task_records_from_file(task_file)


def values_per_split(splits: dict[str, list[ExportRecord]], by: str) -> dict[str, set[str]]:
    return {s: {v for r in splits[s] if (v := group_value(r, by)) is not None} for s in SPLITS}


def assert_disjoint(per_split: dict[str, set[str]]) -> None:
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not per_split[a] & per_split[b], f"{a}/{b} share {per_split[a] & per_split[b]}"


# --- the splitter ----------------------------------------------------------------------


def test_annotation_keys_become_frame_metadata(records: list[ExportRecord]) -> None:
    first = records[1]
    assert first.subject == "0" and first.source_dataset == "le2i" and first.time == 0.5
    assert first.negative_kind in KINDS and first.activity == first.negative_kind
    # a subject id is only unique within its source dataset
    assert group_value(first, "subject") == "le2i/0"
    assert group_value(records[-1], "subject") == f"up_fall/{SUBJECTS - 1}"
    assert group_value(first, "video") == "le2i/s0v0"


@pytest.mark.parametrize("by", ["subject", "video", "camera"])
@pytest.mark.parametrize("seed", range(5))
def test_no_group_in_two_splits_across_seeds(
    records: list[ExportRecord], by: str, seed: int
) -> None:
    grouped = split_by_groups(records, (0.5, 0.25, 0.25), seed, by)
    assert sum(len(v) for v in grouped.splits.values()) == len(records)
    assert_disjoint(values_per_split(grouped.splits, by))
    assert_disjoint(values_per_split(grouped.splits, "video"))  # a clip never straddles
    assert grouped.info["group_by"] == by and grouped.info["chosen"] == "--group-by"
    assert sum(grouped.info["keys_per_split"].values()) == len(
        {group_value(r, by) for r in records}
    )


def test_default_is_subject_when_known_else_video(records: list[ExportRecord]) -> None:
    assert split_by_groups(records).info["group_by"] == "subject"
    anonymous = [replace(r, subject=None) for r in records]
    info = split_by_groups(anonymous).info
    assert info["group_by"] == "video" and info["chosen"] == "default"
    assert info["fallback_to_video"] == 0


def test_records_without_the_key_fall_back_to_video_then_content(
    records: list[ExportRecord],
) -> None:
    # le2i's subjects unknown (OmniFall's -1): those frames are kept together by video
    mixed = [replace(r, subject=None) if r.source_dataset == "le2i" else r for r in records]
    photos = [replace(r, video=None, subject=None) for r in records[:3]]
    for seed in range(4):
        grouped = split_by_groups(mixed, (0.5, 0.25, 0.25), seed, "subject")
        assert_disjoint(values_per_split(grouped.splits, "video"))
        assert_disjoint(values_per_split(grouped.splits, "subject"))
    info = grouped.info
    assert info["fallback_to_video"] == sum(r.source_dataset == "le2i" for r in records)
    only_photos = split_by_groups(photos, (0.34, 0.33, 0.33), 0, "subject").info
    assert only_photos["content_only"] == 3 and only_photos["fallback_to_video"] == 0


def test_curator_copies_stay_together_across_subjects(records: list[ExportRecord]) -> None:
    # le2i/0's first frame was found a near copy of up_fall/3's: one curator group
    a = next(i for i, r in enumerate(records) if group_value(r, "subject") == "le2i/0")
    b = next(i for i, r in enumerate(records) if group_value(r, "subject") == "up_fall/3")
    linked = list(records)
    linked[a] = replace(records[a], group="near:7")
    linked[b] = replace(records[b], group="near:7")
    # and a byte copy of le2i/1's frame filed under up_fall/2
    c = next(i for i, r in enumerate(records) if group_value(r, "subject") == "le2i/1")
    d = next(i for i, r in enumerate(records) if group_value(r, "subject") == "up_fall/2")
    linked[d] = replace(records[d], image=records[c].image)
    for seed in range(6):
        grouped = split_by_groups(linked, (0.5, 0.25, 0.25), seed, "subject")
        where = {
            group_value(r, "subject"): s for s in SPLITS for r in grouped.splits[s] if r.subject
        }
        assert where["le2i/0"] == where["up_fall/3"]
        assert where["le2i/1"] == where["up_fall/2"]
        assert_disjoint(values_per_split(grouped.splits, "subject"))


def test_split_file_json_and_csv_are_used_as_is(
    records: list[ExportRecord], tmp_path: Path
) -> None:
    listed = {
        "train": ["le2i/0", "le2i/1", "up_fall/0", "up_fall/1"],
        "val": ["le2i/2", "up_fall/2"],
        "test": ["le2i/3", "up_fall/3"],
    }
    as_json = write_json(tmp_path / "split.json", listed)
    as_csv = tmp_path / "split.csv"
    as_csv.write_text(
        "split,group\n" + "".join(f"{s},{k}\n" for s, keys in listed.items() for k in keys)
    )
    for path in (as_json, as_csv):
        for seed in (0, 1):  # a given split ignores the seed and the shares
            grouped = split_by_groups(records, (0.8, 0.1, 0.1), seed, "subject", path)
            got = values_per_split(grouped.splits, "subject")
            assert got == {s: set(keys) for s, keys in listed.items()}
            assert grouped.info["split_file"] == path.name


def test_split_file_by_video_and_unlisted_groups(
    records: list[ExportRecord], tmp_path: Path
) -> None:
    from curation.errors import DataError

    videos = sorted({r.video for r in records if r.video})
    listed = {"train": videos[:-4], "val": videos[-4:-2], "test": videos[-2:]}
    grouped = split_by_groups(
        records, (0.8, 0.1, 0.1), 0, "video", write_json(tmp_path / "v.json", listed)
    )
    assert values_per_split(grouped.splits, "video") == {s: set(v) for s, v in listed.items()}
    short = write_json(tmp_path / "short.json", {**listed, "test": videos[-2:-1]})
    missing = sum(r.video == videos[-1] for r in records)
    with pytest.raises(DataError, match=rf"does not list the video of {missing} record\(s\)"):
        split_by_groups(records, (0.8, 0.1, 0.1), 0, "video", short)


# --- export and mix through the command line ------------------------------------------


def provenance(out: Path) -> dict[str, list[dict]]:
    return {s: json.loads((out / f"{s}.provenance.json").read_text()) for s in SPLITS}


def test_export_group_by_subject_writes_frame_provenance(task_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    args = ["export", "--task", str(task_file), "--out", str(out), "--group-by", "subject"]
    result = runner.invoke(app, [*args, "--val-share", "0.25", "--test-share", "0.25"])
    assert result.exit_code == 0, result.output
    assert "grouped by subject (--group-by)" in result.output
    prov = provenance(out)
    subjects = {s: {f"{p['source_dataset']}/{p['subject']}" for p in prov[s]} for s in SPLITS}
    assert_disjoint(subjects)
    originals = {str(r["instance_id"]): r for r in json.loads(task_file.read_text())}
    for p in (p for rows in prov.values() for p in rows):
        rec = originals[p["original_id"]]
        for key in ("subject", "video", "camera", "source_dataset", "activity", "time"):
            assert p[key] == rec[key]
        assert p.get("negative_kind") == rec.get("negative_kind")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["groups"]["group_by"] == "subject"
    assert manifest["groups"]["keys_per_split"] == {s: len(subjects[s]) for s in SPLITS}
    assert "--group-by subject" in manifest["command"]


def test_photos_keep_todays_provenance(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    recs = frames(root, videos=1, per_video=2)
    for r in recs:
        for key in ("subject", "video", "camera", "source_dataset", "activity", "negative_kind"):
            r.pop(key, None)
        r.pop("time")
    write_json(root / "task.json", recs)
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--task", str(root / "task.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = provenance(out)["train"][0]
    assert "subject" not in row and "negative_kind" not in row
    groups = json.loads((out / "manifest.json").read_text())["groups"]
    assert groups["content_only"] == len(recs) and groups["group_by"] == "content"
    assert "grouped by content (default)" in result.output


def lookalike_counts(out: Path) -> dict[str, tuple[int, int]]:
    kinds = set(load_class_map().lookalike_kinds)
    counts = {}
    for split, rows in provenance(out).items():
        no = [p for p in rows if p["original_answers"] == ["no"]]
        counts[split] = (sum(p.get("negative_kind") in kinds for p in no), len(no))
    return counts


@pytest.mark.parametrize(("share", "yes_share"), [(0.5, 0.6), (1.0, 0.75)])
def test_mix_keeps_at_least_the_hard_negative_share(
    task_file: Path, tmp_path: Path, share: float, yes_share: float
) -> None:
    out = tmp_path / f"mix-{share}"
    result = runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            "--out",
            str(out),
            "--vqav2-ratio",
            "0",
            "--yes-share",
            str(yes_share),
            "--val-share",
            "0.25",
            "--test-share",
            "0.25",
            "--hard-negative-share",
            str(share),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    for split, (hard, no) in lookalike_counts(out).items():
        assert no > 0 and hard >= math.ceil(share * no), (split, hard, no)
        assert manifest["mix"]["hard_negatives"][split]["lookalike"] == hard
    assert manifest["mix"]["hard_negative_share"] == share
    assert manifest["mix"]["lookalike_kinds"] == sorted(load_class_map().lookalike_kinds)
    assert_disjoint(
        {
            s: {f"{p['source_dataset']}/{p['subject']}" for p in rows}
            for s, rows in provenance(out).items()
        }
    )


def test_mix_without_the_option_draws_as_before(task_file: Path, tmp_path: Path) -> None:
    from curation.mix import plan_mix

    records = task_records_from_file(task_file)
    plain = plan_mix(records, [], ratio=0, yes_share=0.75, fractions=(0.5, 0.25, 0.25))
    zero = plan_mix(
        records, [], ratio=0, yes_share=0.75, fractions=(0.5, 0.25, 0.25), hard_negative_share=0
    )
    assert plain.splits == zero.splits
    hard = plan_mix(
        records,
        [],
        ratio=0,
        yes_share=0.75,
        fractions=(0.5, 0.25, 0.25),
        hard_negative_share=1.0,
        lookalike_kinds=load_class_map().lookalike_kinds,
    )
    # the share changes which "no" records are kept, never how many
    for s in SPLITS:
        assert len(hard.splits[s]) == len(plain.splits[s])
        assert hard.hard_negatives(s)["other"] == 0


# --- per-kind false alarms ------------------------------------------------------------


def test_error_rates_by_label_on_a_known_set() -> None:
    kinds = ["lie_down", "lie_down", "lie_down", "walk", None, None]
    truth = [False, False, False, False, False, True]
    said = [True, True, False, False, True, True]
    table = error_rates_by_label(kinds, truth, said, positive=False)
    assert table == {
        "lie_down": {"n": 3, "false_alarms": 2, "rate": 2 / 3},
        "walk": {"n": 1, "false_alarms": 0, "rate": 0.0},
    }
    misses = error_rates_by_label(
        ["fall", "fall", "fallen"], [True, True, True], [True, False, False], positive=True
    )
    assert misses == {
        "fall": {"n": 2, "misses": 1, "rate": 0.5},
        "fallen": {"n": 1, "misses": 1, "rate": 1.0},
    }


def test_score_reports_false_alarms_per_kind_and_misses_per_class(tmp_path: Path) -> None:
    rows = [  # (truth, negative_kind, activity, prediction, p_yes)
        ("no", "lie_down", "lie_down", "yes", 0.9),
        ("no", "lie_down", "lie_down", "no", 0.6),
        ("no", "sitting", "sitting", "no", 0.1),
        ("no", "walk", "walk", "no", 0.2),
        ("yes", None, "fall", "yes", 0.95),
        ("yes", None, "fall", "no", 0.7),
        ("yes", None, "fallen", "no", 0.3),
    ]
    records = [
        {"instance_id": i, "image": f"{i}.png", "text_input": QUESTION, "answer": [t]}
        for i, (t, *_) in enumerate(rows)
    ]
    prov = [
        {"part": "task", "source": "task", "answer_type": "yes/no", "instance_id": i}
        | ({"negative_kind": k} if k else {})
        | {"activity": a}
        for i, (_, k, a, *_) in enumerate(rows)
    ]
    threshold = {"threshold": 0.5, "max_false_alarm": 0.3, "chosen_on": "val.json"}
    result = score(records, prov, [r[3] for r in rows], [r[4] for r in rows], threshold)
    task = result["task"]
    assert task["false_alarm_rate_by_kind"] == {"lie_down": 0.5, "sitting": 0.0, "walk": 0.0}
    assert task["false_alarms_by_kind"]["lie_down"] == {"n": 2, "false_alarms": 1, "rate": 0.5}
    assert task["miss_rate_by_class"] == {"fall": 0.5, "fallen": 1.0}
    op = task["operating_point"]  # P(yes) >= 0.5: both lie_down frames are false alarms
    assert op["false_alarm_rate_by_kind"] == {"lie_down": 1.0, "sitting": 0.0, "walk": 0.0}
    assert op["miss_rate_by_class"] == {"fall": 0.0, "fallen": 1.0}

    from curation.evaluate.report import EvalReport
    from curation.evaluate.run import summary_markdown, write_report

    report = EvalReport("ckpt.pth", "test.json", ".", **result)
    assert "| no | lie_down | 2 | 1 | 50.0% | 100.0% |" in summary_markdown(report)
    files = write_report(tmp_path, report)
    pytest.importorskip("matplotlib")
    assert tmp_path / "false_alarms_by_kind.png" in files
    assert (tmp_path / "false_alarms_by_kind.png").stat().st_size > 0


def test_eval_cli_on_a_tiny_model_writes_per_kind_rates(task_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("lavis")
    from curation.training.train import train

    out = tmp_path / "export"
    args = ["export", "--task", str(task_file), "--out", str(out), "--group-by", "subject"]
    result = runner.invoke(app, [*args, "--val-share", "0.25", "--test-share", "0.25"])
    assert result.exit_code == 0, result.output
    train(out / "lavis.yaml", ["run.max_epoch=1"], run_id="kinds")
    run = out / "runs" / "kinds"
    result = runner.invoke(
        app, ["eval", str(run / "checkpoint_0.pth"), "--data", str(out / "test.json")]
    )
    assert result.exit_code in (0, 3), result.output
    task = json.loads((run / "eval.json").read_text())["task"]
    test_no = [p for p in provenance(out)["test"] if p["original_answers"] == ["no"]]
    assert set(task["false_alarm_rate_by_kind"]) == {p["negative_kind"] for p in test_no}
    assert sum(v["n"] for v in task["false_alarms_by_kind"].values()) == len(test_no)
    assert set(task["miss_rate_by_class"]) <= {"fall", "fallen"}
    assert (run / "false_alarms_by_kind.png").is_file()
    assert "false alarms per negative kind" in result.output


# --- FiftyOne: records carry the frame fields; check reports group leaks ---------------


def test_dataset_frames_export_by_subject_and_check_reports_group_leaks(
    tmp_path: Path,
) -> None:
    fo = pytest.importorskip("fiftyone")
    from curation.class_map import FRAME_FIELDS
    from curation.curator.checks import run_checks
    from curation.curator.records import records_from_dataset

    root = tmp_path / "frames"
    recs = frames(root, videos=1, per_video=4)
    # one subject's frames filed under two splits: the leak curate check must name
    train = [r for r in recs if not (r["subject"] == "3" and r["source_dataset"] == "up_fall")]
    leaked = [r for r in recs if r["subject"] == "3" and r["source_dataset"] == "up_fall"]
    write_json(root / "train.json", train + leaked[:2])
    write_json(root / "test.json", leaked[2:])
    name = f"groups-{uuid.uuid4().hex[:8]}"
    for f in ("train.json", "test.json"):
        result = runner.invoke(app, ["ingest", str(root / f), "--dataset", name])
        assert result.exit_code == 0, result.output
    ds = fo.load_dataset(name)
    for field, kind in FRAME_FIELDS.items():
        if field not in ds.get_field_schema():
            ds.add_sample_field(field, getattr(fo, kind))
    by_image = {r["image"]: r for r in recs}
    for sample in ds.iter_samples(autosave=True):
        rec = by_image[Path(sample.filepath).name]
        for field in ("subject", "video", "camera", "source_dataset", "activity", "time"):
            sample[field] = rec[field]
        sample["negative_kind"] = rec.get("negative_kind")

    found = records_from_dataset(name)
    assert {r.subject for r in found.task} == {str(s) for s in range(SUBJECTS)}
    assert all(r.video and r.source_dataset and r.time is not None for r in found.task)

    report = run_checks(name, use_brain=False)
    assert report.group_leaks["subject"] == [
        {"group": "up_fall/3", "splits": {"test": 2, "train": 2}}
    ]
    assert report.group_leaks["video"] == [
        {"group": "up_fall/s3v0", "splits": {"test": 2, "train": 2}}
    ]
    assert report.counts["leak:group"] == len(leaked)
    assert report.split_balance["test"] == {
        "no": sum(r["answer"] == ["no"] for r in leaked[2:]),
        "yes": sum(r["answer"] == ["yes"] for r in leaked[2:]),
    }
    train_kinds: dict[str, int] = {}
    for r in train + leaked[:2]:
        if r["answer"] == ["no"]:
            train_kinds[r["negative_kind"]] = train_kinds.get(r["negative_kind"], 0) + 1
    assert report.negative_kinds["train"] == dict(sorted(train_kinds.items()))
    assert len(ds.match_tags("leak:group")) == len(leaked)
    checked = runner.invoke(app, ["check", "--dataset", name], terminal_width=200)
    assert checked.exit_code == 0, checked.output
    assert "LEAK: 1 subject(s) in two or more splits: up_fall/3 (test 2, train 2)" in checked.output

    out = tmp_path / "export"
    args = ["export", "--dataset", name, "--out", str(out), "--val-share", "0.25"]
    result = runner.invoke(app, [*args, "--test-share", "0.25"])
    assert result.exit_code == 0, result.output
    prov = provenance(out)
    assert_disjoint({s: {f"{p['source_dataset']}/{p['subject']}" for p in prov[s]} for s in SPLITS})
    assert all(p["fiftyone_id"] and p["video"] for rows in prov.values() for p in rows)
