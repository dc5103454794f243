"""Reading what a user names: regular files only, and a ``--json`` report replaces only a report.

``curate validate /dev/zero`` read until memory ran out; ``curate check --json`` onto
an existing JSON file nested deeply enough ended in a RecursionError. Every command
reads a user's file through ``read_user_file`` and checks a ``--json`` path with one
guard (``check_report_path``), so each case is one line naming the path and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

from curation._io import check_report_path, read_user_file
from curation.cli import app
from curation.errors import UsageError

runner = CliRunner()

#: a character device every Linux has; read, it is an empty file (so without the guard
#: validate reads it and reports "no records" instead of naming what it is)
DEVICE = Path("/dev/null")


def run(*args: str | os.PathLike[str]):  # noqa: ANN201 - click's Result
    result = runner.invoke(app, [os.fspath(a) for a in args], terminal_width=200)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    return result


def deeply_nested(path: Path, depth: int = 100_000) -> Path:
    """A valid JSON file nested deeper than Python's json module recurses."""
    path.write_text("[" * depth + "]" * depth)
    return path


def test_validate_refuses_a_device() -> None:
    result = run("validate", DEVICE, "--no-images")
    assert result.exit_code == 2, result.output
    assert f"annotation file {DEVICE} is not a regular file" in result.output
    assert "Fix:" in result.output


def test_mix_task_refuses_a_device(tmp_path: Path) -> None:
    result = run("mix", "--task", DEVICE, "--out", tmp_path / "mix", "--vqav2-ratio", "0")
    assert result.exit_code == 2, result.output
    assert f"annotation file {DEVICE} is not a regular file" in result.output
    assert not (tmp_path / "mix").exists()


def test_a_general_vqa_file_that_is_a_device_is_named_not_missing(tmp_path: Path) -> None:
    result = run(
        *["mix", "--task", SAMPLE / "annotations.json", "--out", tmp_path / "mix"],
        *["--vqav2-questions", DEVICE, "--vqav2-annotations", DEVICE],
        *["--vqav2-images", tmp_path, "--vqav2-ratio", "0.5"],
    )
    assert result.exit_code == 2, result.output
    assert f"VQAv2 questions file {DEVICE} is not a regular file" in result.output


def test_a_video_label_file_that_is_a_device_is_refused(tmp_path: Path) -> None:
    videos = SAMPLE / "videos"
    result = run("ingest", DEVICE, "--videos", videos, "--dataset", "device-labels")
    assert result.exit_code == 2, result.output
    assert f"label file {DEVICE} is not a regular file" in result.output


def test_fix_refuses_a_device(tmp_path: Path) -> None:
    from curation.fix import fix_file

    with pytest.raises(UsageError, match="is not a regular file"):
        fix_file(DEVICE, tmp_path / "fixed.json")
    assert not (tmp_path / "fixed.json").exists()


def test_read_user_file_refuses_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="is not a regular file"):
        read_user_file(fifo, "annotation file", "Fix: pass a file.")


def test_read_user_file_bounds_the_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 101)
    with pytest.raises(UsageError, match="101 bytes, more than the 100"):
        read_user_file(big, "YAML file", "Fix: a smaller file.", max_bytes=100)
    assert read_user_file(big, "YAML file", "Fix.", max_bytes=101) == b"x" * 101


def test_check_json_onto_a_deeply_nested_file_is_refused(tmp_path: Path) -> None:
    nested = deeply_nested(tmp_path / "nested.json")
    before = nested.read_bytes()
    result = run("check", "--dataset", "any", "--json", nested)
    assert result.exit_code == 2, result.output
    assert "is not a curate check report; refusing to overwrite it" in result.output
    assert nested.read_bytes() == before


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("validate", ["validate", SAMPLE / "annotations.json", "--no-images"]),
        ("check", ["check", "--dataset", "any"]),
        ("find-issues", ["find-issues", "--dataset", "any", "--folds", "2", "--out", "OUT"]),
    ],
)
def test_every_json_report_replaces_only_its_own_report(
    tmp_path: Path, command: str, args: list
) -> None:
    args = [tmp_path / "out" if a == "OUT" else a for a in args]
    for name, text in (
        ("nested.json", None),
        ("notes.json", '{"mine": true}'),
        ("list.json", "[1, 2]"),
    ):
        target = tmp_path / name
        if text is None:
            deeply_nested(target)
        else:
            target.write_text(text)
        before = target.read_bytes()
        result = run(*args, "--json", target)
        assert result.exit_code == 2, result.output
        assert f"is not a curate {command} report; refusing to overwrite it" in result.output
        assert target.read_bytes() == before


def test_validate_json_replaces_its_own_earlier_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    args = ["validate", SAMPLE / "annotations.json", "--no-images", "--json", report]
    assert run(*args).exit_code == 0
    first = json.loads(report.read_text())
    report.write_text(json.dumps({**first, "records": -1}))
    assert run(*args).exit_code == 0
    assert json.loads(report.read_text())["records"] == first["records"]


def test_the_guard_accepts_a_new_path_and_refuses_a_folder(tmp_path: Path) -> None:
    check_report_path(tmp_path / "new.json", "check", {"dataset"}, "Fix: a new file.")
    with pytest.raises(UsageError, match="is a folder"):
        check_report_path(tmp_path, "check", {"dataset"}, "Fix: a new file.")
