"""The short collapse experiment: the seed's all-"yes" data collapses, the mix does not."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("lavis")
pytest.importorskip("easy_vqa")

from conftest import REPO  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curation.cli import app  # noqa: E402


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
    per_class, steps = pipeline.SHORT
    results = pipeline.run_experiment(tmp_path, per_class, steps, seed=0)
    a, b = results["A"], results["B"]
    assert abs(a["steps"] - b["steps"]) <= 0.05 * steps  # same budget for both runs
    # A, trained on positives only, says "yes" to (almost) every negative: the alarm fires
    assert a["task"]["yes_rate_negatives"] >= 0.95
    assert a["collapse_alarm"] is True
    # B, the mix, says "yes" to clearly fewer negatives and answers general questions better
    assert b["task"]["yes_rate_negatives"] <= a["task"]["yes_rate_negatives"] - 0.3
    assert b["general"]["vqa_accuracy"] > a["general"]["vqa_accuracy"]
    assert (tmp_path / "results.md").read_text().count("|") > 20
    # the same verdict through the CLI: exit 3 for A's checkpoint; for B, whatever the
    # library said (at this toy size B's yes-rate on negatives sits near the 50% alarm line)
    for name, code in (("A", 3), ("B", 3 if b["collapse_alarm"] else 0)):
        result = CliRunner().invoke(
            app,
            [
                "eval",
                str(_latest_checkpoint(tmp_path / name / "runs" / "run")),
                "--data",
                str(tmp_path / "B" / "test.json"),
                "--out",
                str(tmp_path / f"cli_{name}"),
            ],
        )
        assert result.exit_code == code, result.output
        report = json.loads((tmp_path / f"cli_{name}" / "eval.json").read_text())
        assert report["collapse_alarm"] is (code == 3)


def _latest_checkpoint(run_dir: Path) -> Path:
    """The highest epoch's checkpoint (by number: checkpoint_10 comes after checkpoint_9)."""
    numbered = {
        int(m.group(1)): p
        for p in run_dir.glob("checkpoint_*.pth")
        if (m := re.fullmatch(r"checkpoint_(\d+)\.pth", p.name))
    }
    return numbered[max(numbered)]
