"""P(yes) through the commands: predict --json, eval's operating point, predict using it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLE, copy_of
from typer.testing import CliRunner

pytest.importorskip("lavis")

from curation.cli import app  # noqa: E402

runner = CliRunner()
IMAGES = [SAMPLE / "fall" / "0000.png", SAMPLE / "no_fall" / "0001.png"]


@pytest.fixture(scope="module")
def run_dir(trained_sample_2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's copy of the session's two-epoch run (eval writes beside the checkpoint)."""
    out = copy_of(trained_sample_2, tmp_path_factory.mktemp("op") / "export")
    return out / "runs" / "r1"


def predict_json(*args: str) -> list[dict]:
    result = runner.invoke(app, ["predict", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("[") :])


def test_eval_finds_the_operating_point_on_val_and_predict_uses_it(run_dir: Path) -> None:
    ckpt = run_dir / "checkpoint_1.pth"
    export = run_dir.parent.parent
    before = predict_json(str(ckpt), *map(str, IMAGES))
    assert all(0 < a["p_yes"] < 1 and a["threshold"] is None for a in before)
    assert [a["answer"] for a in before] == [a["generated"] for a in before]

    result = runner.invoke(
        app,
        ["eval", str(ckpt), "--data", str(export / "test.json"), "--max-false-alarm", "0.2"],
        terminal_width=200,
    )
    assert result.exit_code in (0, 3), result.output
    assert "operating point: recall (falls caught)" in result.output
    task = json.loads((run_dir / "eval.json").read_text())["task"]
    op = task["operating_point"]
    assert op["chosen_on"] == "val.json" and op["max_false_alarm"] == 0.2
    assert op["chosen_false_alarm_rate"] <= 0.2
    assert set(op) >= {"threshold", "false_alarm_rate", "recall"}
    assert task["roc_auc"] is not None and 0 <= task["ece"] <= 1
    assert (run_dir / "reliability.png").is_file()
    saved = json.loads((run_dir / "operating_point.json").read_text())
    assert saved["threshold"] == op["threshold"]

    after = predict_json(str(ckpt), *map(str, IMAGES))
    for row in after:
        assert row["threshold"] == op["threshold"]
        assert row["answer"] == ("yes" if row["p_yes"] >= op["threshold"] else "no")


def test_threshold_flag_overrides_and_other_questions_keep_generated_text(run_dir: Path) -> None:
    ckpt = str(run_dir / "checkpoint_1.pth")
    assert {a["answer"] for a in predict_json(ckpt, *map(str, IMAGES), "--threshold", "0")} == {
        "yes"
    }
    assert {a["answer"] for a in predict_json(ckpt, *map(str, IMAGES), "--threshold", "1")} == {
        "no"
    }
    other = predict_json(ckpt, str(IMAGES[0]), "--question", "What colour is the sky?")
    assert other[0]["threshold"] is None and other[0]["answer"] == other[0]["generated"]


def test_a_broken_operating_point_file_is_named(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "operating_point.json").write_text("not json")
    result = runner.invoke(app, ["predict", str(copy / "checkpoint_1.pth"), str(IMAGES[0])])
    assert result.exit_code == 1, result.output
    assert "operating_point.json: not valid JSON" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["predict", str(copy / "checkpoint_1.pth"), str(IMAGES[0]), "--threshold", "1.5"]
    )
    assert result.exit_code == 2 and "--threshold must be between 0 and 1" in result.output
