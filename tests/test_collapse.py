"""The short collapse experiment: the seed's all-"yes" data collapses, the mix does not."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("lavis")
pytest.importorskip("easy_vqa")

from conftest import REPO  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curation.cli import app  # noqa: E402
from curation.training.checkpoints import latest_checkpoint  # noqa: E402


def load_pipeline():
    spec = importlib.util.spec_from_file_location(
        "collapse_experiment", REPO / "pipelines" / "collapse_experiment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mix_cures_always_yes(tmp_path: Path) -> None:
    pipeline = load_pipeline()
    recipe = pipeline.SHORT
    results = pipeline.run_experiment(tmp_path, recipe, runs=("A", "B"))
    (renderer,), (seed,) = recipe["renderers"], recipe["seeds"]
    cell = results["cells"][f"{renderer}/{seed}"]
    a, b = cell["A"], cell["B"]
    assert abs(a["steps"] - b["steps"]) <= 0.1 * recipe["steps"]  # same budget for both runs
    # A, trained on positives only, says "yes" to (almost) every negative: the alarm fires
    assert a["task"]["yes_rate_negatives"] >= 0.95
    assert a["collapse_alarm"] is True
    # ... and "yes" to questions about things that are not there: it ignores the question
    assert a["following"]["yes_rate"] > 0.5 and a["following"]["passed"] is False
    # B, the mix, learns the task (the `small` preset: 1.00 here, 2026-11-26) and answers
    # general questions better. Whether it also says "no" to unrelated questions takes more
    # steps than CI spends (0.99 "yes" after these 800 steps of 16, 0.07 after 1,000 of 32
    # on more scenes): the full experiment reports it, this short run does not assert it.
    assert b["task"]["balanced_accuracy"] >= 0.8
    assert b["task"]["yes_rate_negatives"] <= 0.2
    assert b["collapse_alarm"] is False
    assert b["general"]["vqa_accuracy"] > a["general"]["vqa_accuracy"]
    summary = results["summary"][f"{renderer}/A"]
    assert summary["collapse_alarms"] == 1 and summary["task.balanced_accuracy"]["sd"] == 0.0
    table = (tmp_path / "results.md").read_text()
    assert "A: positives only" in table and "B: mix 0.7, balanced" in table
    # the same verdict through the CLI: exit 3 for A's checkpoint, 0 for B's
    for name, code in (("A", 3), ("B", 0)):
        run_dir = tmp_path / renderer / f"seed{seed}" / name
        result = CliRunner().invoke(
            app,
            [
                "eval",
                str(latest_checkpoint(sorted((run_dir / "runs" / "run").glob("checkpoint_*")))),
                "--data",
                str(run_dir.parent / "B" / "test.json"),
                "--out",
                str(tmp_path / f"cli_{name}"),
            ],
        )
        assert result.exit_code == code, result.output
        report = json.loads((tmp_path / f"cli_{name}" / "eval.json").read_text())
        assert report["collapse_alarm"] is (code == 3)
        library = json.loads(Path(cell[name]["eval"]).read_text())
        assert report["task"]["yes_rate_negatives"] == library["task"]["yes_rate_negatives"]


def test_the_full_recipe_s_b_fine_tunes_c_s_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """RECIPE's b_warm_start: C trains first and B starts from C's last checkpoint (the grid's
    clutter B stayed at chance from random weights); SHORT keeps B from random weights."""
    pipeline = load_pipeline()
    assert pipeline.RECIPE["b_warm_start"] is True and pipeline.SHORT["b_warm_start"] is False
    calls: list[tuple[str, Path | None]] = []

    def fake_train(work, name, n_train, recipe, seed, start_from=None):  # noqa: ANN001, ANN202
        calls.append((name, start_from))
        return {"checkpoint": str(work / name / "ckpt.pth")}

    monkeypatch.setattr(pipeline, "train_and_score", fake_train)
    monkeypatch.setattr(pipeline, "make_task", lambda *a: tmp_path / "ann.json")

    def fake_write(here: Path, *args: object) -> dict[str, int]:
        here.mkdir(parents=True, exist_ok=True)
        return {"A": 1, "B": 1, "C": 1}

    monkeypatch.setattr(pipeline, "write_runs", fake_write)
    recipe = {**pipeline.RECIPE, "renderers": ["stick"], "seeds": [0]}
    cell = pipeline.run_one(tmp_path, "stick", 0, recipe, ("A", "B", "C"))
    assert list(cell) == ["A", "B", "C"]  # reported in the usual order
    here = tmp_path / "stick" / "seed0"
    assert calls == [("A", None), ("C", None), ("B", here / "C" / "ckpt.pth")]
    calls.clear()
    pipeline.run_one(tmp_path, "stick", 0, {**recipe, "b_warm_start": False}, ("A", "B"))
    assert calls == [("A", None), ("B", None)]
    with pytest.raises(SystemExit, match="run C too"):
        pipeline.run_experiment(tmp_path, recipe, runs=("A", "B"))
    assert pipeline.run_name("B", recipe) == pipeline.B_WARM_NAME


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--runs", "X"], "not one of A, B, C"),
        (["--runs", "C,C"], "given twice"),
        (["--seeds", "x"], "a whole number"),
        (["--batch", "0"], "above 0"),
        (["--lr", "nan"], "above 0"),
        (["--renderers", "stick,stick"], "given twice"),
        (["--runs", "B"], "run C too"),
    ],
)
def test_the_experiment_s_bad_flags_are_usage_errors_before_any_work(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    """Before: tracebacks (tuple.index, int(), ZeroDivisionError) after scenes were rendered."""
    import subprocess
    import sys

    script = REPO / "pipelines" / "collapse_experiment.py"
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, str(script), "--work", str(work), *args], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert not work.exists()


def test_a_target_met_at_zero_is_met() -> None:
    """Before: `mean or 1` read B's 0.00 yes-rate on negatives as 1 and the target as NO."""
    pipeline = load_pipeline()
    stat = {"mean": 0.0, "sd": 0.0, "min": 0.0, "max": 0.0}
    b = {
        "task.balanced_accuracy": {**stat, "mean": 0.95},
        "task.yes_rate_negatives": stat,
        "collapse_alarms": 0,
        "following_passed": 1,
        "n_seeds": 1,
    }
    results = {
        "recipe": {"renderers": ["stick"]},
        "summary": {"stick/B": b},
        "runs": ["B"],
        "seconds": 1.0,
    }
    assert pipeline.targets(results)["stick: B yes-rate on negatives <= 0.10 (mean)"] is True
