"""The short collapse experiment: the seed's all-"yes" data collapses, the mix does not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import REPO

pytest.importorskip("lavis")
pytest.importorskip("easy_vqa")


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
