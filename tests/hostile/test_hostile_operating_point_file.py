"""Hostile operating_point.json files beside a one-epoch run: tampered values, eval's
never-yes point, another checkpoint's point, a stale point eval no longer finds.

Each test checks the promise: the file named, no traceback, nothing used that was not
meant for this checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
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
