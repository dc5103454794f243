"""Output safety: nothing lost, nothing written outside --out, no traceback.

Each test runs a real command on tiny real data and checks the documented
promises with the hostile harness: the exit code, the problem named in the
message, no traceback, and every input untouched.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _harness import expect, invoke, invoke_process, untouched

from curation.errors import DataError, UsageError
from curation.export import ExportRecord, write_export
from curation.synthetic import QUESTION, render_scene

N_IMAGES = 12


def _records(n: int = N_IMAGES) -> list[dict]:
    return [
        {
            "instance_id": i,
            "image": f"img/{i:02d}.png",
            "text_input": QUESTION,
            "answer": ["yes" if i % 2 else "no"],
        }
        for i in range(n)
    ]


def _make_data(folder: Path, n: int = N_IMAGES) -> Path:
    """``folder/annotations.json`` over ``n`` distinct real images in ``folder/img/``."""
    (folder / "img").mkdir(parents=True)
    for i in range(n):
        render_scene(bool(i % 2), 100 + i, 32).save(folder / "img" / f"{i:02d}.png")
    task = folder / "annotations.json"
    task.write_text(json.dumps(_records(n), indent=1), encoding="utf-8")
    return task


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project as a user has it: pyproject.toml, raw/x with data and an unrelated file."""
    root = tmp_path / "proj"
    (root / "raw" / "x").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'falls'\n")
    _make_data(root / "raw" / "x")
    (root / "raw" / "x" / "notes.txt").write_text("field notes: do not lose\n")
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An annotation file outside any project (no pyproject.toml above it)."""
    return _make_data(tmp_path / "data")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny export (for the train pre-check tests, which never train)."""
    base = tmp_path_factory.mktemp("outsafe")
    task = _make_data(base / "data")
    out = base / "exports" / "ok"
    expect(invoke(["export", "--task", task, "--out", out]), 0, "next: curate train")
    return out


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- case 1: --out never is, holds or sits inside an input ---------------------------


@pytest.mark.parametrize(
    "out, why",
    [
        ("raw/x", "holds the input raw/x/annotations.json"),  # the case
        ("raw/x/img/new", "is inside the input"),  # inside the image root
        ("raw", "holds the input"),  # holds the input folder
        ("raw/y", "raw/ folder"),  # a new folder in the project's raw/
        ("raw/x/annotations.json", "is a file"),  # the input file itself
    ],
)
def test_export_out_on_an_input_is_refused(project: Path, out: str, why: str) -> None:
    with untouched(project):
        outcome = invoke(
            ["export", "--task", "raw/x/annotations.json", "--out", out, "--overwrite"],
            cwd=project,
        )
    expect(outcome, 2, why, "Fix: pick a new folder for --out")


def test_export_out_is_the_project_folder(project: Path) -> None:
    with untouched(project):
        outcome = invoke(
            ["export", "--task", "raw/x/annotations.json", "--out", ".", "--overwrite"],
            cwd=project,
        )
    expect(outcome, 2, "--out .", "Fix: pick a new folder for --out")


def test_export_out_dot_in_an_old_export_is_refused(tmp_path: Path, data: Path) -> None:
    """``--out . --overwrite`` from inside an earlier export: a traceback before."""
    old = tmp_path / "old"
    expect(invoke(["export", "--task", data, "--out", old]), 0)
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", ".", "--overwrite"], cwd=old)
    expect(outcome, 2, "is the current folder")


def test_export_out_inside_any_record_image_folder_is_refused(tmp_path: Path) -> None:
    """The library guard (mix shares it): a record's image folder is protected by itself."""
    folder = tmp_path / "pool"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    recs = []
    for i in range(6):
        render_scene(bool(i % 2), i, 32).save(folder / f"{i}.png")
        recs.append(ExportRecord(folder / f"{i}.png", QUESTION, ("yes" if i % 2 else "no",)))
    splits = {"train": recs[:4], "val": recs[4:5], "test": recs[5:]}
    with untouched(tmp_path):
        for out in (folder, folder / "sub", tmp_path):
            with pytest.raises(UsageError, match="Fix: pick a new folder"):
                write_export(out, splits, seed=0, overwrite=True)


def test_overwrite_replaces_only_our_own_export(tmp_path: Path, data: Path) -> None:
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("months of work")
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", other, "--overwrite"])
    expect(outcome, 2, "replaces only an export of this tool", "manifest.json")

    ours = tmp_path / "exports" / "ok"
    expect(invoke(["export", "--task", data, "--out", ours]), 0)
    (ours / "runs").mkdir()
    expect(invoke(["export", "--task", data, "--out", ours, "--overwrite"]), 0)
    assert (ours / "manifest.json").is_file() and not (ours / "runs").exists()


def test_overwrite_through_a_link_to_an_export_drops_only_the_link(
    tmp_path: Path, data: Path
) -> None:
    real = tmp_path / "exports" / "v1"
    expect(invoke(["export", "--task", data, "--out", real]), 0)
    link = tmp_path / "latest"
    link.symlink_to(real)
    with untouched(real):
        expect(invoke(["export", "--task", data, "--out", link, "--overwrite"]), 0)
    assert not link.is_symlink() and (link / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_out_is_an_existing_file(tmp_path: Path, data: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("keep")
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", target, "--overwrite"])
    expect(outcome, 2, "is a file, not a folder")


def test_mix_out_on_its_own_image_root_is_refused(tmp_path: Path, data: Path) -> None:
    with untouched(tmp_path):
        outcome = invoke(
            [
                "mix",
                "--task",
                data,
                "--out",
                data.parent / "img",
                "--overwrite",
                "--vqav2-ratio",
                "0",
            ]
        )
    expect(outcome, 2, "Fix: pick a new folder for --out")


# --- case 2: no writer replaces an input ----------------------------------------------


@pytest.mark.parametrize("how", ["same", "dotdot", "symlink", "hardlink"])
def test_validate_json_never_overwrites_the_input(tmp_path: Path, data: Path, how: str) -> None:
    report = {
        "same": data,
        "dotdot": data.parent / "img" / ".." / data.name,
        "symlink": tmp_path / "link.json",
        "hardlink": tmp_path / "hard.json",
    }[how]
    if how == "symlink":
        report.symlink_to(data)
    if how == "hardlink":
        os.link(data, report)
    with untouched(tmp_path):
        outcome = invoke(["validate", data, "--json", report])
    expect(outcome, 2, "would overwrite the input", "Fix: give --json another path")


def test_fix_through_a_symlink_never_overwrites_the_input(tmp_path: Path, data: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(data)
    with untouched(tmp_path):
        outcome = invoke(["validate", data, "--fix", link])
    expect(outcome, 2, "would overwrite the input")


def test_json_and_fix_on_one_file_are_refused(tmp_path: Path, data: Path) -> None:
    with untouched(tmp_path):
        outcome = invoke(
            ["validate", data, "--fix", tmp_path / "a.json", "--json", tmp_path / "a.json"]
        )
    expect(outcome, 2, "are the same file")


# --- tracebacks that become one message ------------------------------------------------


def test_validate_json_to_a_folder(tmp_path: Path, data: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    with untouched(tmp_path):
        outcome = invoke(["validate", data, "--json", folder])
    expect(outcome, 2, f"--json {folder} is a folder; the report is one JSON file")


def test_validate_json_below_a_file(tmp_path: Path, data: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with untouched(tmp_path):
        outcome = invoke(["validate", data, "--json", afile / "report.json"])
    expect(outcome, 2, f"{afile} is a file, not a folder")


def test_schema_out_below_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with untouched(tmp_path):
        outcome = invoke(["schema", "--out", afile / "x"])
    expect(outcome, 2, f"{afile} is a file, not a folder")


def test_export_out_below_a_file(tmp_path: Path, data: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", afile / "x"])
    expect(outcome, 2, f"{afile} is a file, not a folder")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--json", "a" * 5000], "the path is 5000 bytes long"),
        (["--json", "d/" * 3000 + "x.json"], "the path is 6006 bytes long"),
        (["--json", "r" * 300 + ".json"], "is 305 bytes long"),
        (["--fix", "f" * 300 + ".json"], "is 305 bytes long"),
    ],
)
def test_validate_outputs_the_file_system_cannot_take(
    tmp_path: Path, data: Path, args: list[str], needle: str
) -> None:
    with untouched(tmp_path):
        outcome = invoke(["validate", data, *args], cwd=tmp_path)
    expect(outcome, 2, needle, "Fix:")


def test_export_out_with_a_name_too_long(tmp_path: Path, data: Path) -> None:
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", "e" * 300], cwd=tmp_path)
    expect(outcome, 2, "is 300 bytes long", "Fix: give --out a shorter, plain path")


def test_schema_check_on_binary_or_folder_schema_files(tmp_path: Path) -> None:
    (tmp_path / "vqa_record.schema.json").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "vqa_annotation_file.schema.json").mkdir()
    with untouched(tmp_path):
        outcome = invoke(["schema", "--check", "--out", tmp_path])
    expect(outcome, 1, "out of date", "vqa_record.schema.json", "vqa_annotation_file.schema.json")


# --- case 6: an export holds the link's target, never the link --------------------------


def test_export_copies_the_target_of_a_relative_symlink(tmp_path: Path, data: Path) -> None:
    img = data.parent / "img"
    (img / "store").mkdir()
    os.replace(img / "03.png", img / "store" / "03.png")
    (img / "03.png").symlink_to("store/03.png")  # relative, inside the image root
    out = tmp_path / "out"
    with untouched(data.parent, allow=[out]):
        expect(invoke(["export", "--task", data, "--out", out]), 0)
    linked = list((out / "images").iterdir())
    assert len(linked) == N_IMAGES
    for path in linked:
        assert not path.is_symlink(), f"{path} is a symlink to {os.readlink(path)}"
        assert path.is_file()
    expected = (img / "store" / "03.png").read_bytes()
    assert any(p.read_bytes() == expected for p in linked)


# --- case 8: modes follow the umask; a replaced file keeps its mode ---------------------


def test_outputs_follow_the_umask(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    with umask(0o022):
        expect(invoke(["export", "--task", data, "--out", out]), 0)
        expect(invoke(["validate", data, "--json", tmp_path / "r.json"]), 0)
        expect(invoke(["validate", data, "--fix", tmp_path / "f.json"]), 0)
    for path in (
        out / "lavis.yaml",
        out / "train.json",
        out / "manifest.json",
        out / "vqa_eval" / "val_questions.json",
        tmp_path / "r.json",
        tmp_path / "f.json",
    ):
        assert _mode(path) == 0o644, f"{path}: {oct(_mode(path))}"
    with umask(0o077):
        expect(invoke(["validate", data, "--json", tmp_path / "private.json"]), 0)
    assert _mode(tmp_path / "private.json") == 0o600


def test_rewriting_a_file_keeps_its_mode(tmp_path: Path, data: Path) -> None:
    report = tmp_path / "r.json"
    expect(invoke(["validate", data, "--json", report]), 0)  # --json replaces only a report
    for mode in (0o644, 0o640):
        report.chmod(mode)
        with umask(0o077):
            expect(invoke(["validate", data, "--json", report]), 0)
        assert _mode(report) == mode and json.loads(report.read_text())


# --- case 9: runs stay inside the export ------------------------------------------------


@pytest.mark.parametrize("run_id", ["/abs/run", "../escaped", "..", "", "a/b", ".hidden"])
def test_train_run_id_must_be_a_plain_name(exported: Path, tmp_path: Path, run_id: str) -> None:
    with untouched(exported.parent, tmp_path):
        outcome = invoke(["train", exported / "lavis.yaml", "--run-id", run_id])
    expect(outcome, 2, "is not a plain folder name", "Fix:")
    if run_id.startswith("/"):
        assert not os.path.lexists(run_id)


@pytest.mark.parametrize("output_dir", ["{tmp}/elsewhere", "../escaped", "/etc"])
def test_train_output_dir_must_stay_inside_the_export(
    exported: Path, tmp_path: Path, output_dir: str
) -> None:
    value = output_dir.format(tmp=tmp_path)
    with untouched(exported.parent, tmp_path):
        outcome = invoke(["train", exported / "lavis.yaml", f"run.output_dir={value}"])
    expect(outcome, 1, "outside the export folder", "Fix: run.output_dir=runs")


def test_train_output_dir_that_is_a_file(exported: Path) -> None:
    with untouched(exported.parent):
        outcome = invoke(["train", exported / "lavis.yaml", "run.output_dir=manifest.json"])
    expect(outcome, 1, "is a file, not a folder", "Fix: run.output_dir=runs")


def test_train_output_dir_symlinked_out_is_refused(exported: Path, tmp_path: Path) -> None:
    link = exported / "runs_link"
    link.symlink_to(tmp_path)
    try:
        with untouched(tmp_path):
            outcome = invoke(["train", exported / "lavis.yaml", "run.output_dir=runs_link"])
        expect(outcome, 1, "outside the export folder")
    finally:
        link.unlink()


# --- train pre-checks: nothing is built, no run folder is left ---------------------------


def test_prompt_with_other_braces_is_a_pre_check(exported: Path) -> None:
    with untouched(exported.parent):
        outcome = invoke(
            [
                "train",
                exported / "lavis.yaml",
                "datasets.falldown_vqa.prompt=Question: {} {yes/no}",
                "--run-id",
                "braces",
            ]
        )
    expect(outcome, 1, "datasets.falldown_vqa.prompt", "no other braces")


def test_missing_resume_checkpoint_is_a_pre_check(exported: Path) -> None:
    with untouched(exported.parent):
        outcome = invoke(
            [
                "train",
                exported / "lavis.yaml",
                "run.resume_ckpt_path=runs/nope/checkpoint_3.pth",
                "--run-id",
                "resume",
            ]
        )
    expect(outcome, 1, "run.resume_ckpt_path", "not found", "Fix:")


def test_a_failed_start_leaves_no_run_folder(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curation.training.train as train_module

    def broken(*args: object, **kwargs: object) -> None:
        raise DataError("the data loader failed (planted)")

    args = ["train", exported / "lavis.yaml", "run.device=cpu", "run.batch_size_train=2"]
    args += ["--run-id", "again"]
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "observed_task", broken)
        for _ in range(2):  # the second start with the same id is not blocked by the first
            expect(invoke(args), 1, "planted")
            assert not (exported / "runs" / "again").exists()
    # and a real run with that id then trains (one epoch of the tiny model)
    outcome = invoke([*args, "run.max_epoch=1"])
    expect(outcome, 0, "checkpoint")
    assert (exported / "runs" / "again" / "checkpoint_0.pth").is_file()


def test_train_on_a_binary_file_says_it_is_no_config(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    render_scene(True, 1, 32).save(image)
    with untouched(tmp_path):
        outcome = invoke(["train", image])
    expect(outcome, 1, "not a UTF-8 text file", "lavis.yaml")


def test_train_on_deeply_nested_yaml(tmp_path: Path, exported: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("run: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with untouched(tmp_path, exported.parent):
        expect(invoke(["train", deep]), 1, "nested too deeply")
        value = "[" * 50_000 + "]" * 50_000
        expect(invoke(["train", exported / "lavis.yaml", f"run.seed={value}"]), 2, "too deeply")


def test_unknown_override_key_suggests_the_right_one(exported: Path) -> None:
    with untouched(exported.parent):
        outcome = invoke(["train", exported / "lavis.yaml", "run.max_epochs=1"])
    expect(outcome, 1, "did you mean run.max_epoch?")
    outcome = invoke(["train", exported / "lavis.yaml", "datasets.falldown_vqa.promt=x"])
    expect(outcome, 1, "did you mean datasets.falldown_vqa.prompt?")


# --- export refuses what train would refuse ---------------------------------------------


def test_export_with_an_empty_val_split_is_refused(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    with untouched(tmp_path):
        outcome = invoke(["export", "--task", data, "--out", out, "--val-share", "0"])
    expect(outcome, 1, "the val split is empty", "--val-share")


def test_export_of_an_empty_question_is_refused(tmp_path: Path, data: Path) -> None:
    img = data.parent / "img"
    recs = [ExportRecord(img / f"{i:02d}.png", QUESTION, ("yes",)) for i in range(3)]
    recs[1] = ExportRecord(img / "01.png", "  ", ("no",), source="questions", original_id="7")
    with untouched(tmp_path), pytest.raises(DataError, match=r"id 7.*text_input is empty"):
        write_export(
            tmp_path / "out", {"train": recs[:2], "val": recs[2:], "test": recs[2:]}, seed=0
        )


# --- messages ----------------------------------------------------------------------------


def test_next_hint_is_shell_quoted(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "my exports $HOME"
    outcome = invoke(["export", "--task", data, "--out", out])
    expect(outcome, 0, f"next: curate train '{out}/lavis.yaml'")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_folders_of_a_dead_run_are_removed(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    dead, live = _dead_pid(), os.getppid()
    stale = [tmp_path / f".out.tmp-{dead}", tmp_path / f".out.old-{dead}"]
    alive = tmp_path / f".out.tmp-{live}"
    expect(invoke(["export", "--task", data, "--out", out]), 0)
    for folder in (*stale, alive):
        (folder / "images").mkdir(parents=True)
        (folder / "train.json").write_text("[]")
    expect(invoke(["export", "--task", data, "--out", out, "--overwrite"]), 0)
    assert not any(p.exists() for p in stale)
    assert (alive / "train.json").read_text() == "[]"


def test_an_export_killed_between_its_renames_gets_its_old_folder_back(
    tmp_path: Path, data: Path
) -> None:
    """Killed after OUT moved aside and before the new one moved in: OUT comes back."""
    out = tmp_path / "out"
    expect(invoke(["export", "--task", data, "--out", out]), 0)
    before = (out / "manifest.json").read_bytes()
    aside = tmp_path / f".out.old-{_dead_pid()}"
    os.replace(out, aside)
    outcome = invoke(["export", "--task", data, "--out", out])
    expect(outcome, 2, "already exists", "--overwrite")
    assert (out / "manifest.json").read_bytes() == before and not aside.exists()


def test_an_export_killed_mid_write_leaves_nothing_half_written(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-c", "from curation.cli import app; app()"]
    proc = subprocess.Popen(
        [*argv, "export", "--task", str(data), "--out", str(out), "--copy"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = tmp_path / f".out.tmp-{proc.pid}"
    deadline = time.monotonic() + 120
    while not tmp.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not tmp.exists():
        pytest.skip("the export finished before it could be killed")
    assert not out.exists(), "a killed export left a half-written --out"
    outcome = invoke_process(["export", "--task", data, "--out", out])
    expect(outcome, 0, "next: curate train")
    assert not tmp.exists() and (out / "manifest.json").is_file()
