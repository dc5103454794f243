"""Task records and general ones without a provenance sidecar: told apart by the question.

An export writes ``SPLIT.provenance.json`` beside ``SPLIT.json``; a copy of a split without
it (or a hand-made file) must still score only the fall question's records as task data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_json
from typer.testing import CliRunner

from curation.evaluate.run import load_provenance, provenance_note

runner = CliRunner()

#: a general VQA question asked of the same images (no paraphrase of the task question)
GENERAL_QUESTION = "Is there a circle in the picture?"


def _mixed(export: Path, folder: Path, with_sidecar: bool) -> Path:
    """``folder/mixed.json``: the export's val records, plus one general yes/no record per
    image answered the other way round (so counting it as task data changes every figure);
    with its provenance sidecar when ``with_sidecar``."""
    records = json.loads((export / "val.json").read_text())
    rows = {p["instance_id"]: p for p in json.loads((export / "val.provenance.json").read_text())}
    top = max(r["instance_id"] for r in records)
    general = []
    for k, rec in enumerate(records, start=1):
        flipped = "no" if rec["answer"][0] == "yes" else "yes"
        general.append(
            {**rec, "instance_id": top + k, "text_input": GENERAL_QUESTION, "answer": [flipped]}
        )
        if "question" in rec:
            general[-1]["question"] = GENERAL_QUESTION
        if "question_id" in rec:
            general[-1]["question_id"] = top + k
    folder.mkdir(parents=True)
    data = write_json(folder / "mixed.json", records + general)
    if with_sidecar:
        sidecar = [rows[r["instance_id"]] for r in records] + [
            {"instance_id": r["instance_id"], "source": "easy_vqa", "part": "general",
             "answer_type": "yes/no"}
            for r in general
        ]  # fmt: skip
        write_json(folder / "mixed.provenance.json", sidecar)
    return data


def test_without_a_sidecar_only_task_questions_are_task_records(tmp_path: Path) -> None:
    from conftest import record

    recs = [
        record(0, answer=["yes"]),
        record(1, answer=["no"], text_input="Has anyone fallen in this image?"),
        record(2, answer=["yes"], text_input=GENERAL_QUESTION),
        record(3, answer=["2"], text_input="How many circles are there?"),
    ]
    data = write_json(tmp_path / "test.json", recs)
    prov = load_provenance(data, recs)
    assert [p["part"] for p in prov] == ["task", "task", "general", "general"]
    assert [p["answer_type"] for p in prov] == ["yes/no", "yes/no", "yes/no", "other"]
    note = provenance_note(data)
    assert note and "test.provenance.json" in note and "question" in note
    write_json(tmp_path / "test.provenance.json", [{"instance_id": r["instance_id"]} for r in recs])
    assert provenance_note(data) is None
    # the sidecar wins: rows without a part are task data, whatever the question
    assert [p.get("part", "task") for p in load_provenance(data, recs)] == ["task"] * 4


def _figures(report: dict) -> tuple:
    task = report["task"]
    op = task.get("operating_point") or {}
    return (
        report["n"],
        task["n"],
        report["general"]["n"],
        task["accuracy"],
        task["roc_auc"],
        op.get("threshold"),
        op.get("recall"),
        op.get("false_alarm_rate"),
    )


def test_eval_scores_a_split_without_its_sidecar_as_with_it(
    trained_sample: Path, tmp_path: Path
) -> None:
    from curation.cli import app

    checkpoint = trained_sample / "runs" / "r1" / "checkpoint_0.pth"
    reports, outputs = [], []
    for name, sidecar in (("with", True), ("without", False)):
        data = _mixed(trained_sample, tmp_path / name, sidecar)
        out = tmp_path / f"eval-{name}"
        result = runner.invoke(
            app,
            ["eval", str(checkpoint), "--data", str(data), "--image-root",
             str(trained_sample / "images"), "--out", str(out)],
            terminal_width=200,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports.append(json.loads((out / "eval.json").read_text()))
        outputs.append(result.output)
    n_task = len(json.loads((trained_sample / "val.json").read_text()))
    assert reports[0]["task"]["n"] == n_task and reports[0]["general"]["n"] == n_task
    assert _figures(reports[1]) == _figures(reports[0])
    assert "told from general ones by their question" in outputs[1]
    assert "by their question" not in outputs[0]


def test_quantize_calibrates_on_a_split_without_its_sidecar_as_with_it(
    trained_sample: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torchao")
    from curation.cli import app

    checkpoint = trained_sample / "runs" / "r1" / "checkpoint_0.pth"
    manifests, outputs = [], []
    for name, sidecar in (("with", True), ("without", False)):
        data = _mixed(trained_sample, tmp_path / name, sidecar)
        out = tmp_path / f"int8-{name}"
        result = runner.invoke(
            app,
            ["quantize", str(checkpoint), "--scheme", "int8-weight", "--calibrate", str(data),
             "--image-root", str(trained_sample / "images"), "--out", str(out), "--force"],
            terminal_width=200,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        manifests.append(json.loads((out / "manifest.json").read_text()))
        outputs.append(result.output)
        shutil.rmtree(out)
    n_task = len(json.loads((trained_sample / "val.json").read_text()))
    assert manifests[0]["calibration"]["n"] == n_task
    assert manifests[1]["calibration"]["n"] == manifests[0]["calibration"]["n"]
    assert manifests[1]["parity"]["roc_auc"] == manifests[0]["parity"]["roc_auc"]
    points = [m["operating_point"] for m in manifests]
    assert points[1].get("threshold") == pytest.approx(points[0].get("threshold"), abs=1e-6)
    assert "by their question" in outputs[1] and "by their question" not in outputs[0]
