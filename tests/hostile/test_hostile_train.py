"""Hostile input to training and what it reads: the export's builder name and answers,
the run folder, resume, model shapes, a batch larger than the data, a killed run.

Every test reproduces one report (the docs and commands only) and checks the promise
it broke: the exit code, the problem named, no traceback, inputs untouched, no
process left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _harness import REPO, expect, invoke, untouched
from _harness import sample_export as _sample_export
from conftest import SAMPLE

pytest.importorskip("lavis")

IMAGE = SAMPLE / "fall" / "0000.png"


@pytest.fixture
def trained(trained_sample: Path) -> Path:
    """An export of the sample with one trained epoch: OUT/runs/r1/checkpoint_0.pth (shared)."""
    return trained_sample


@pytest.fixture
def export(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained export (tests may change its files)."""
    copy = tmp_path / "ex"
    shutil.copytree(trained, copy)
    return copy


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


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "(run.batch_size_train=64)"),
        (["--nproc-per-node", "2"], "over 2 processes"),
    ],
)
def test_fewer_training_records_than_one_batch_is_refused_before_training(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    """Before: LAVIS drops the partial batch, runs an epoch of 0 steps and dies dividing
    by zero (a ZeroDivisionError traceback; find-issues on a small dataset hit it too)."""
    export = _sample_export(tmp_path)
    n = len(json.loads((export / "train.json").read_text()))
    assert n < 64
    args = ["train", export / "lavis.yaml", "run.max_epoch=1", "run.device=cpu"]
    # one process would have a full batch; two processes' shards would not
    args.append("run.batch_size_train=64" if not extra else f"run.batch_size_train={n // 2 + 1}")
    with untouched(tmp_path):
        outcome = invoke([*args, *extra])
    expect(outcome, 1, f"{n} training record(s)", needle, "fewer than one batch", "Fix:")
    assert not (export / "runs").exists() or not any((export / "runs").iterdir())


def _children(pid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(name))
    return kids


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_a_curate_killed_by_sigkill_takes_its_training_processes_with_it(
    tmp_path: Path,
) -> None:
    # SIGKILL (kill -9, the OOM killer) gave curate no chance to stop torchrun: torchrun
    # and both ranks went on training, orphaned, to the last epoch
    pytest.importorskip("lavis")
    from conftest import SAMPLE

    from curation.export import ExportOptions, export_task

    out = tmp_path / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    args = ["train", str(out / "lavis.yaml"), "run.max_epoch=200", "run.device=cpu"]
    args += ["run.batch_size_train=8", "--nproc-per-node", "2", "--run-id", "killed"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from curation.cli import app; app()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        family: list[int] = []
        work = None
        while time.monotonic() < deadline:
            torchrun = _children(proc.pid)
            if torchrun and len(_children(torchrun[0])) == 2:
                family = [torchrun[0], *_children(torchrun[0])]
                cmdline = Path(f"/proc/{torchrun[0]}/cmdline").read_bytes().split(b"\0")
                work = Path(os.fsdecode(cmdline[-2])).parent  # .../curate-torchrun-*/spec.json
                break
            assert proc.poll() is None, "curate ended before its processes started"
            time.sleep(0.5)
        assert family, "torchrun and its two ranks did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(map(_running, family)):
            time.sleep(0.5)
        left = [p for p in family if _running(p)]
        for pid in left:  # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left running after curate was killed: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if work is not None and work.name.startswith("curate-torchrun-"):
            shutil.rmtree(work, ignore_errors=True)  # a SIGKILLed curate cannot remove it
