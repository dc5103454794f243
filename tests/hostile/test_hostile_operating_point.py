"""Hostile input to the operating point (operating_point.json), predict, eval and configs.

Each test reproduces one report (the docs and commands only) and checks the promise
it broke: the problem named with its fix, no traceback, nothing used that was not
meant for this checkpoint, nothing unbounded read.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
from _harness import sample_export as _sample_export
from conftest import SAMPLE

pytest.importorskip("lavis")

from curation.evaluate.point_file import FINGERPRINT_KEY, fingerprint  # noqa: E402
from curation.synthetic import render_scene  # noqa: E402

IMAGE = SAMPLE / "fall" / "0000.png"


@pytest.fixture
def trained(trained_sample_2: Path) -> Path:
    """An export of the sample with two trained epochs: OUT/runs/r1/checkpoint_1.pth (shared)."""
    return trained_sample_2


@pytest.fixture
def export(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ex"
    shutil.copytree(trained, copy)
    return copy


def _predict(ckpt: Path, *args: object) -> list[dict]:
    outcome = invoke(["predict", ckpt, IMAGE, "--json", *args])
    expect(outcome, 0)
    return json.loads(outcome.output[outcome.output.index("[") :])


def test_a_point_copied_beside_another_checkpoint_of_the_same_name_is_not_used(
    export: Path, tmp_path: Path
) -> None:
    """Before: the point named its checkpoint by file name only, so one chosen for
    another run's checkpoint_1.pth steered this run's checkpoint_1.pth."""
    import torch

    from curation.training.checkpoints import read_checkpoint

    run = export / "runs" / "r1"
    val = export / "val.json"
    evaluated = invoke(["eval", run / "checkpoint_1.pth", "--data", val, "--out", tmp_path / "ev"])
    assert evaluated.exit_code in (0, 3), str(evaluated)  # 3: the barely trained model's alarm
    foreign = json.loads((tmp_path / "ev" / "operating_point.json").read_text())
    assert foreign["checkpoint"] == "checkpoint_1.pth"
    assert foreign[FINGERPRINT_KEY] == fingerprint(run / "checkpoint_1.pth")
    # the same name, other bytes: another training of the run's checkpoint_1.pth
    other = export / "runs" / "r2"  # config.yaml's model paths are relative to the run folder
    other.mkdir()
    state = read_checkpoint(run / "checkpoint_1.pth")
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name] + 1e-3
    torch.save(state, other / "checkpoint_1.pth")
    shutil.copy(run / "config.yaml", other / "config.yaml")
    (other / "operating_point.json").write_text(json.dumps({**foreign, "threshold": 0.0}))
    with untouched(other):
        outcome = invoke(["predict", other / "checkpoint_1.pth", IMAGE])
    expect(outcome, 0, "its bytes differ", "not used")
    row = _predict(other / "checkpoint_1.pth")[0]
    assert row["threshold"] is None and row["answer"] == row["generated"]
    # beside the checkpoint it was chosen for, the same file is used
    shutil.copy(run / "checkpoint_1.pth", other / "checkpoint_1.pth")
    assert _predict(other / "checkpoint_1.pth")[0]["threshold"] == 0.0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[0.5]", "a JSON list, not the object"),
        ('{"recall": 1.0}', "no 'threshold' key"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
    ids=["syntax", "list", "no-threshold", "binary"],
)
def test_a_malformed_operating_point_says_what_is_wrong_with_it(
    export: Path, content: str | bytes, needle: str
) -> None:
    """Before: every one of these read "needs a 'threshold'", even a file that had one."""
    point = export / "runs" / "r1" / "operating_point.json"
    if isinstance(content, bytes):
        point.write_bytes(content)
    else:
        point.write_text(content)
    with untouched(export):
        outcome = invoke(["predict", export / "runs" / "r1" / "checkpoint_1.pth", IMAGE])
    expect(outcome, 1, "operating_point.json", needle, "Fix:")


def test_a_threshold_for_another_question_says_it_was_not_used(export: Path) -> None:
    """Before: the note under the table was the bare word '--threshold'."""
    ckpt = export / "runs" / "r1" / "checkpoint_1.pth"
    outcome = invoke(
        ["predict", ckpt, IMAGE, "--question", "Is there a dog?", "--threshold", "0.5"]
    )
    expect(outcome, 0, "not the task question", "--threshold 0.5", "paraphrases only")
    assert "\n--threshold\n" not in outcome.output


def test_predict_shows_the_threshold_without_rounding_it_to_another_side(export: Path) -> None:
    """Before: 0.9935678 printed as 0.994, so a P(yes) shown as 0.994 could be a 'no'."""
    run = export / "runs" / "r1"
    mine = {
        "checkpoint": "checkpoint_1.pth",
        FINGERPRINT_KEY: fingerprint(run / "checkpoint_1.pth"),
    }
    point = {"threshold": 0.9935678839683533, **mine}
    (run / "operating_point.json").write_text(json.dumps(point))
    outcome = invoke(["predict", run / "checkpoint_1.pth", IMAGE])
    expect(outcome, 0, "P(yes) >= 0.993568")
    never = {"threshold": 1.0000000000000002, **mine}
    (run / "operating_point.json").write_text(json.dumps(never))
    outcome = invoke(["predict", run / "checkpoint_1.pth", IMAGE])
    expect(outcome, 0, "answered no to every image", "above 1")


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1.5"])
def test_a_false_alarm_budget_that_is_not_a_rate_is_named(export: Path, value: str) -> None:
    """Before: nan read 'Input should be less than or equal to 1'."""
    ckpt = export / "runs" / "r1" / "checkpoint_1.pth"
    with untouched(export):
        outcome = invoke(["eval", ckpt, "--data", export / "test.json", "--max-false-alarm", value])
    expect(outcome, 2, "--max-false-alarm", "must be a number from 0 to 1")


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        # pydantic read true as 1: a one-epoch run nobody asked for
        ("run.max_epoch=true", "run.max_epoch: expected a number, got the boolean true"),
        ("run.init_lr=yes", "run.init_lr: expected a number, got the boolean true"),
        ("model.num_query_token=on", "model.num_query_token: expected a number"),
        # null built the full EVA-ViT-g (1B parameters) into the tiny model
        ("model.vit=null", "model.vit is null, but the tiny preset"),
        # a check across two keys printed with an empty key and pydantic's prefix
        ("model.image_size=32", "(the config): datasets."),
        # null took the Q-Former's size from the tokenizer folder, unrecorded
        ("model.qformer=null", "model.qformer is null, but the tiny preset"),
        # inf passed the check and failed at step 1; nan read "greater than 0"
        ("run.init_lr=.inf", "run.init_lr: Input should be a finite number"),
        ("run.init_lr=.nan", "run.init_lr: Input should be a finite number"),
        # the error blamed the file, which is valid; the override was not named
        ("model={}", "your override model={}; change or drop it"),
        ("run.max_epoch=0", "from your override run.max_epoch=0"),
        # nan read "differs from model.image_size (64)"
        (
            "datasets.falldown_vqa.vis_processor.train.image_size=.nan",
            "image_size must be a whole number of pixels",
        ),
        # "did you mean run.max_epoch?." with a stray full stop
        ("run. max_epoch=2", "did you mean run.max_epoch? Fix:"),
    ],
)
def test_config_values_that_change_the_model_silently_are_named(
    export: Path, override: str, needle: str
) -> None:
    with untouched(export):
        outcome = invoke(["train", export / "lavis.yaml", override, "--run-id", "bad"])
    expect(outcome, 1, needle)
    assert "Value error," not in outcome.output and "\n  : " not in outcome.output
    assert not (export / "runs" / "bad").exists()


def test_an_empty_vit_mapping_is_the_preset_s_vit_as_lavis_builds_it(export: Path) -> None:
    """LAVIS merges model: over the preset's file: {} keeps its ViT. The check saw the
    defaults (16 px patches) where LAVIS built the preset's; now both see the preset's."""
    from curation.presets import get_preset
    from curation.schemas.config import VitConfig
    from curation.training.config import load_train_config

    # the small preset's ViT (a conv stem, 8 px patches) is not VitConfig's defaults
    loaded = load_train_config(export / "lavis.yaml", ["model.model_type=small", "model.vit={}"])
    preset = get_preset(loaded.config.model.model_type).model["vit"]
    assert loaded.config.model.vit == VitConfig(**preset) != VitConfig()


@pytest.mark.parametrize(
    "identity",
    [{}, {FINGERPRINT_KEY: None}, {FINGERPRINT_KEY: 5}, {"checkpoint": None}],
    ids=["no-fingerprint", "null", "number", "no-name"],
)
def test_a_point_that_does_not_prove_its_checkpoint_is_not_used(
    export: Path, identity: dict
) -> None:
    """Before: without checkpoint_sha256 (or with null or 5 in it) another run's point
    steered this checkpoint's answers, silently."""
    run = export / "runs" / "r1"
    ckpt = run / "checkpoint_1.pth"
    point = {"threshold": 0.0, "checkpoint": ckpt.name, **identity}
    (run / "operating_point.json").write_text(json.dumps(point))
    outcome = invoke(["predict", ckpt, IMAGE])
    expect(outcome, 0, "not used", "curate eval checkpoint_1.pth")
    row = _predict(ckpt)[0]
    assert row["threshold"] is None and row["answer"] == row["generated"]


def test_predict_says_where_its_threshold_came_from_or_that_there_is_none(
    export: Path, tmp_path: Path
) -> None:
    run = export / "runs" / "r1"
    ckpt = run / "checkpoint_1.pth"
    outcome = invoke(["predict", ckpt, IMAGE])
    expect(outcome, 0, "no operating point beside the checkpoint", "curate eval checkpoint_1.pth")
    evaluated = invoke(["eval", ckpt, "--data", export / "val.json"])
    assert evaluated.exit_code in (0, 3), str(evaluated)
    saved = json.loads((run / "operating_point.json").read_text())
    expect(invoke(["predict", ckpt, IMAGE]), 0, f"chosen on {saved['chosen_on']}", "records")
    # a dangling link is named as one, not as a missing file
    (run / "operating_point.json").unlink()
    (run / "operating_point.json").symlink_to(tmp_path / "gone.json")
    expect(invoke(["predict", ckpt, IMAGE]), 1, "is a link to", "which does not exist")


def test_a_negative_zero_is_zero(export: Path) -> None:
    ckpt = export / "runs" / "r1" / "checkpoint_1.pth"
    outcome = invoke(["predict", ckpt, IMAGE, "--threshold", "-0"])
    expect(outcome, 0, "P(yes) >= 0 (--threshold 0)")
    assert "-0" not in outcome.output.split("answered yes when")[-1]


@pytest.mark.parametrize("what", ["link", "folder"])
def test_eval_refuses_an_output_it_cannot_replace_before_scoring(
    export: Path, tmp_path: Path, what: str
) -> None:
    """Before: eval scored everything, wrote eval.json, eval.md and three plots, and only
    then refused operating_point.json (a link or a folder): exit 2 with half its outputs."""
    run = export / "runs" / "r1"
    point = run / "operating_point.json"
    if what == "link":
        victim = tmp_path / "victim.txt"
        victim.write_text("V")
        point.symlink_to(victim)
    else:
        point.mkdir()
    with untouched(tmp_path):
        outcome = invoke(["eval", run / "checkpoint_1.pth", "--data", export / "val.json"])
    expect(outcome, 2, "operating_point.json", "Fix:")
    assert not (run / "eval.json").exists() and not (run / "eval.md").exists()


def test_a_key_given_twice_on_the_command_line_is_refused(export: Path) -> None:
    """Before: run.max_epoch=1 run.max_epoch=2 trained 2 epochs, silently."""
    with untouched(export):
        outcome = invoke(
            ["train", export / "lavis.yaml", "run.max_epoch=1", "run.max_epoch=2", "--run-id", "d"]
        )
    expect(outcome, 2, "run.max_epoch is given twice", "Fix:")


def test_a_run_folder_moved_out_of_its_export_says_so_not_download_flan_t5(
    export: Path, tmp_path: Path
) -> None:
    """Before: 'Get it from the Hugging Face model google/flan-t5-xl' for the tiny preset,
    whose T5 export writes."""
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("checkpoint_1.pth", "config.yaml"):
        shutil.copy(export / "runs" / "r1" / name, moved / name)
    with untouched(tmp_path):
        outcome = invoke(["predict", moved / "checkpoint_1.pth", IMAGE])
    expect(outcome, 1, "written by curate export", "keep the run folder inside its export")
    assert "flan-t5-xl" not in outcome.output and "preset's the " not in outcome.output


def test_eval_never_writes_through_a_hard_link_in_out(export: Path, tmp_path: Path) -> None:
    """Before: savefig opened confusion.png, yes_rate.png and reliability.png in place, so a
    hard link in --out to a file elsewhere had that file rewritten with a PNG."""
    import os

    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "ev"
    out.mkdir()
    for name in ("confusion.png", "yes_rate.png", "reliability.png", "eval.json"):
        (outside / name).write_text(f"mine: {name}")
        os.link(outside / name, out / name)
    with untouched(outside):
        outcome = invoke(
            ["eval", export / "runs" / "r1" / "checkpoint_1.pth", "--data", export / "val.json"]
            + ["--out", out]
        )
        assert outcome.exit_code in (0, 3), str(outcome)
    assert (out / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_eval_says_when_it_replaces_another_checkpoint_s_point(export: Path) -> None:
    """Before: eval of checkpoint_0 in the run folder replaced checkpoint_best's operating
    point without a word; predict for best then found it 'not used'."""
    run = export / "runs" / "r1"
    shutil.copy(run / "checkpoint_1.pth", run / "checkpoint_best.pth")  # another name
    first = invoke(["eval", run / "checkpoint_best.pth", "--data", export / "val.json"])
    assert first.exit_code in (0, 3), str(first)
    assert "operating point: P(yes) >= " in first.output and "chosen on" in first.output
    second = invoke(["eval", run / "checkpoint_1.pth", "--data", export / "val.json"])
    assert second.exit_code in (0, 3), str(second)
    assert "replaced" in second.output and "chosen for checkpoint_best.pth" in second.output
    outcome = invoke(["predict", run / "checkpoint_1.pth", IMAGE, "--json"])
    expect(outcome, 0)
    point = json.loads((run / "operating_point.json").read_text())
    assert point["checkpoint"] == "checkpoint_1.pth"


def test_predict_json_says_on_stderr_why_a_point_was_not_used(export: Path) -> None:
    run = export / "runs" / "r1"
    (run / "operating_point.json").write_text(
        json.dumps({"threshold": 0.5, "checkpoint": "checkpoint_9.pth"})
    )
    outcome = invoke(["predict", run / "checkpoint_1.pth", IMAGE, "--json"])
    expect(outcome, 0, "note: operating_point.json was chosen for checkpoint_9.pth")


def test_a_threshold_is_never_printed_as_0_or_1_when_it_is_not() -> None:
    """The demo's eval printed 'P(yes) >= 0.000000' for 1.39e-14 and '1.000000' for A's
    never-yes point: 6 fixed decimals hid both."""
    from curation._render import threshold_text

    assert threshold_text(0.9935678839683533) == "0.993568"
    assert threshold_text(1.39e-14) == "1.39e-14"
    assert threshold_text(0.99999994) == "0.99999994"
    assert threshold_text(1.0000000000000002) == "never yes"
    assert threshold_text(0.0) == "0" and threshold_text(1.0) == "1"


def _checkpoint_beside(tmp_path: Path, what: str) -> tuple[Path, Path]:
    """A (fake) checkpoint with ``operating_point.json`` beside it made ``what``; an image."""
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "checkpoint_0.pth"
    ckpt.write_bytes(b"x")
    (run / "config.yaml").write_text("model: {}\n")
    point = run / "operating_point.json"
    if what == "dev-zero":
        point.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(point)
    elif what == "huge":
        with open(point, "wb") as fh:
            fh.write(b'{"threshold": 0.5, "pad": "')
            fh.truncate(64 << 20)  # sparse: 64 MiB of NULs after the opening
    image = tmp_path / "img.png"
    render_scene(True, 1, 40).save(image)
    return ckpt, image


@contextmanager
def bounded(seconds: int = 60, extra_bytes: int = 2 << 30) -> Iterator[None]:
    """Fail (not hang, not fill the machine's memory) when the code under test would."""

    def late(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    limit = used + extra_bytes if hard == resource.RLIM_INFINITY else min(hard, used + extra_bytes)
    old = signal.signal(signal.SIGALRM, late)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("dev-zero", "not a regular file"),
        ("fifo", "not a regular file"),
        ("huge", "larger than"),
    ],
)
def test_an_operating_point_that_is_not_a_small_file_is_refused(
    tmp_path: Path, what: str, needle: str
) -> None:
    """Before: /dev/zero filled memory (MemoryError traceback), a FIFO blocked forever."""
    ckpt, image = _checkpoint_beside(tmp_path, what)
    with untouched(tmp_path), bounded():
        outcome = invoke(["predict", ckpt, image, "--json"])
    expect(outcome, 1, "operating_point.json", needle, "--threshold")


def test_eval_without_a_point_keeps_the_point_chosen_for_another_checkpoint(
    tmp_path: Path,
) -> None:
    """Before: eval of checkpoint_0 on a one-answer val.json deleted the operating point
    that eval had chosen for checkpoint_best (predict uses it only for checkpoint_best)."""
    pytest.importorskip("lavis")
    export = _sample_export(tmp_path)
    expect(invoke(["train", export / "lavis.yaml", "run.max_epoch=1", "--run-id", "r1"]), 0)
    run = export / "runs" / "r1"
    point = run / "operating_point.json"
    best = run / "checkpoint_best.pth"
    data = export / "test.json"
    first = invoke(["eval", best, "--data", data, "--fiftyone-field", ""])
    assert first.exit_code in (0, 3) and first.exception is None, first  # 3: collapse alarm
    assert json.loads(point.read_text())["checkpoint"] == "checkpoint_best.pth"
    kept = point.read_bytes()
    # a copy of the export whose val.json holds one answer only: no point can be chosen
    for name in ("val.json", "val.provenance.json"):
        rows = json.loads((export / name).read_text())
        answers = json.loads((export / "val.json").read_text())
        keep = [
            r for r, a in zip(rows, answers, strict=True) if a["answer"] == answers[0]["answer"]
        ]
        (tmp_path / name).write_text(json.dumps(keep))
    one = tmp_path / "one"
    one.mkdir()
    for name in ("val.json", "val.provenance.json"):
        (tmp_path / name).rename(one / name)
    for name in ("test.json", "test.provenance.json"):
        (one / name).write_bytes((export / name).read_bytes())
    args = ["eval", run / "checkpoint_0.pth", "--data", one / "test.json"]
    outcome = invoke([*args, "--image-root", export / "images", "--fiftyone-field", ""])
    assert outcome.exit_code in (0, 3) and outcome.exception is None, outcome
    assert "operating_point.json" not in outcome.output.split("wrote")[-1]
    assert point.read_bytes() == kept
