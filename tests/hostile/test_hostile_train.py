"""Cases a hostile new user found after the first hardening round, each kept here.

Every test reproduces one report of the attack run (README and commands only)
and checks the promise it broke: the exit code, the problem named, no
traceback, inputs untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
from conftest import SAMPLE

pytest.importorskip("lavis")

IMAGE = SAMPLE / "fall" / "0000.png"


@pytest.fixture
def trained(trained_sample: Path) -> Path:
    """An export of the sample with trained epochs: OUT/runs/r1/checkpoint_0.pth (shared)."""
    return trained_sample


@pytest.fixture
def export(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained export (tests may change its files)."""
    copy = tmp_path / "ex"
    shutil.copytree(trained, copy)
    return copy


def test_eval_never_writes_over_its_own_data(export: Path, tmp_path: Path) -> None:
    ckpt = export / "runs" / "r1" / "checkpoint_0.pth"
    data_dir = tmp_path / "evd"
    data_dir.mkdir()
    shutil.copy(export / "test.json", data_dir / "eval.json")
    with untouched(data_dir, export):
        outcome = invoke(
            [
                "eval",
                ckpt,
                "--data",
                data_dir / "eval.json",
                "--image-root",
                export / "images",
                "--out",
                data_dir,
            ]
        )
        expect(outcome, 2, "would replace the input", "eval.json")
        expect(
            invoke(["eval", ckpt, "--data", export / "test.json", "--out", export / "images"]),
            2,
            "inside the image root",
        )
        expect(
            invoke(["eval", ckpt, "--data", export / "test.json", "--out", export / "test.json"]),
            2,
            "is a file, not a folder",
        )


def test_a_builder_name_export_trains(tmp_path: Path) -> None:
    out = tmp_path / "bn"
    expect(
        invoke(
            [
                "export",
                "--task",
                SAMPLE / "annotations.json",
                "--out",
                out,
                "--builder-name",
                "falls",
            ]
        ),
        0,
    )
    # LAVIS merged our builder's default config under the alias: a second dataset, wrong paths
    expect(invoke(["train", out / "lavis.yaml", "run.max_epoch=1", "--run-id", "b"]), 0)
    assert (out / "runs" / "b" / "checkpoint_0.pth").is_file()


@pytest.mark.parametrize("name", ["", "a b", "../x", "x:y", "[red]z", "Falls", "coco_vqa"])
def test_a_builder_name_train_would_refuse_is_refused_at_export(tmp_path: Path, name: str) -> None:
    with untouched(SAMPLE):
        outcome = invoke(
            [
                "export",
                "--task",
                SAMPLE / "annotations.json",
                "--out",
                tmp_path / "o",
                "--builder-name",
                name,
            ]
        )
    expect(outcome, 2, "--builder-name")
    assert not (tmp_path / "o").exists()


def test_overwrite_refuses_to_delete_a_live_run(export: Path) -> None:
    run = export / "runs" / "busy"
    run.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".curate-train.pid").write_text(f"{sleeper.pid}\n")
        with untouched(export):
            outcome = invoke(
                ["export", "--task", SAMPLE / "annotations.json", "--out", export, "--overwrite"]
            )
        expect(outcome, 2, "curate train is running now")
    finally:
        sleeper.kill()
        sleeper.wait()
    # once that process is gone, the overwrite goes ahead
    expect(
        invoke(["export", "--task", SAMPLE / "annotations.json", "--out", export, "--overwrite"]), 0
    )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.qformer.heads=3", "qformer.heads (3) must divide"),
        ("model.vit.heads=3", "vit.heads (3) must divide"),
        ("model.vit.patch_size=1000", "larger than image_size"),
        ("model.vit.stem=resnet", "model.vit.stem"),
        # 100000 channels tried to allocate 26 GB inside the first forward (a traceback)
        ("model.vit.stem_channels=100000", "less than or equal to 1024"),
        # a ViT built for 72 px got the processor's 64 px images: LAVIS's AssertionError
        ("model.image_size=72", "differs from model.image_size (72)"),
    ],
)
def test_model_shapes_are_a_config_error(trained: Path, override: str, needle: str) -> None:
    with untouched(trained):
        outcome = invoke(["train", trained / "lavis.yaml", override, "--run-id", "shape"])
    expect(outcome, 1, needle)


@pytest.mark.parametrize(
    "content",
    [
        '{"threshold": NaN}',
        '{"threshold": Infinity}',
        '{"threshold": -1}',
        '{"threshold": 1.000000001}',
        "[" * 3000 + "]" * 3000,
    ],
    ids=["nan", "inf", "negative", "above-never-yes", "deep"],
)
def test_a_tampered_operating_point_is_named(export: Path, content: str) -> None:
    (export / "runs" / "r1" / "operating_point.json").write_text(content)
    with untouched(export):
        outcome = invoke(["predict", export / "runs" / "r1" / "checkpoint_0.pth", IMAGE, "--json"])
    expect(outcome, 1, "operating_point.json")


def test_eval_s_never_yes_operating_point_is_one_predict_accepts(export: Path) -> None:
    # a budget no threshold within P(yes) <= 1 meets (a negative at P(yes) = 1.0) makes
    # eval write the threshold just above 1; predict refused it and eval wrote it again
    from curation.evaluate.metrics import NEVER_YES, threshold_at_false_alarm

    point = threshold_at_false_alarm([True, False], [0.5, 1.0], 0.0)
    assert point["threshold"] == NEVER_YES and point["recall"] == 0.0
    from curation.evaluate.point_file import FINGERPRINT_KEY, fingerprint

    ckpt = export / "runs" / "r1" / "checkpoint_0.pth"
    saved = {
        "threshold": point["threshold"],
        "checkpoint": ckpt.name,
        FINGERPRINT_KEY: fingerprint(ckpt),
    }
    (export / "runs" / "r1" / "operating_point.json").write_text(json.dumps(saved))
    outcome = invoke(["predict", export / "runs" / "r1" / "checkpoint_0.pth", IMAGE, "--json"])
    expect(outcome, 0)
    row = json.loads(outcome.output[outcome.output.index("[") :])[0]
    assert row["threshold"] == NEVER_YES and row["answer"] == "no"


def test_an_operating_point_of_another_checkpoint_is_not_used(export: Path) -> None:
    point = {"threshold": 0.0, "checkpoint": "checkpoint_best.pth"}
    (export / "runs" / "r1" / "operating_point.json").write_text(json.dumps(point))
    outcome = invoke(["predict", export / "runs" / "r1" / "checkpoint_0.pth", IMAGE, "--json"])
    expect(outcome, 0)
    row = json.loads(outcome.output[outcome.output.index("[") :])[0]
    assert row["threshold"] is None and row["answer"] == row["generated"]
    assert not math.isnan(row["p_yes"])


def test_an_eval_that_finds_no_operating_point_removes_the_stale_one(export: Path) -> None:
    run = export / "runs" / "r1"
    (run / "operating_point.json").write_text(
        '{"threshold": 0.5, "checkpoint": "checkpoint_0.pth"}'
    )
    only_yes = [r for r in json.loads((export / "test.json").read_text()) if r["answer"] == ["yes"]]
    data = export / "only_yes" / "test.json"
    data.parent.mkdir()
    data.write_text(json.dumps(only_yes))
    outcome = invoke(
        ["eval", run / "checkpoint_0.pth", "--data", data, "--image-root", export / "images"]
    )
    assert outcome.exit_code in (0, 3) and outcome.exception is None, str(outcome)
    assert not (run / "operating_point.json").exists()


def test_resume_with_no_epoch_left_is_a_pre_check(export: Path) -> None:
    with untouched(export):
        outcome = invoke(
            [
                "train",
                export / "lavis.yaml",
                "run.max_epoch=1",
                "--run-id",
                "rs",
                "run.resume_ckpt_path=runs/r1/checkpoint_0.pth",
            ]
        )
    expect(outcome, 1, "leaves no epoch to train", "run.max_epoch=2")


@pytest.mark.parametrize("folder", ["images", "model/t5", "vqa_eval"])
def test_runs_never_go_into_the_data_the_run_reads(export: Path, folder: str) -> None:
    with untouched(export):
        outcome = invoke(
            ["train", export / "lavis.yaml", f"run.output_dir={folder}", "--run-id", "x"]
        )
    expect(outcome, 1, "which training reads")


def test_small_messages(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expect(
        invoke(["predict", export / "runs" / "r1" / "checkpoint_0.pth", IMAGE, "--question", " "]),
        2,
        "--question is empty",
    )
    expect(invoke(["eval", "--compare", export / "runs", export / "runs"]), 2, "is a folder")
    expect(invoke(["schema", "--check", "--out", tmp_path / "nope"]), 2, "is not a folder")
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["export", "--task", SAMPLE / "annotations.json", "--out", "-dash"])
    expect(outcome, 0, "next: curate train ./-dash/lavis.yaml")


def test_vqav2_answers_that_are_a_string_are_named(tmp_path: Path) -> None:
    from PIL import Image

    images = tmp_path / "img"
    images.mkdir()
    questions, annotations = [], []
    for i in range(1, 121):
        Image.new("RGB", (40, 40), (i * 2, i, 90)).save(images / f"COCO_train2014_{i:012d}.jpg")
        questions.append({"image_id": i, "question": f"Is it {i}?", "question_id": i * 10})
        annotations.append(
            {
                "question_id": i * 10,
                "image_id": i,
                "answers": "yes",
                "multiple_choice_answer": "yes",
                "answer_type": "yes/no",
            }
        )
    (tmp_path / "q.json").write_text(json.dumps({"questions": questions}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": annotations}))
    with untouched(tmp_path, SAMPLE):
        outcome = invoke(
            [
                "mix",
                "--task",
                SAMPLE / "annotations.json",
                "--vqav2-questions",
                tmp_path / "q.json",
                "--vqav2-annotations",
                tmp_path / "a.json",
                "--vqav2-images",
                images,
                "--vqav2-ratio",
                "0.5",
                "--out",
                tmp_path.parent / f"{tmp_path.name}-out",
            ]
        )
    expect(outcome, 1, "answers:")
    assert not os.path.exists(tmp_path.parent / f"{tmp_path.name}-out")
