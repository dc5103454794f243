"""Metrics against hand-computed cases: normaliser, VQA accuracy, yes/no figures, alarm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.answers import normalize_answer, to_yes_no
from curation.cli import app
from curation.evaluate.metrics import collapse_reasons, general_metrics, task_metrics, vqa_accuracy
from curation.evaluate.run import score


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Yes.", "yes"),
        ("two dogs", "2 dogs"),
        ("A man", "man"),
        ("the Red one", "red 1"),
        ("dont", "don't"),
        ("  no\n", "no"),
        ("3.5", "3.5"),
        ("1,000", "1000"),
        ("left-hand", "left hand"),
    ],
)
def test_normalizer_follows_the_official_rules(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize(
    ("text", "mapped"),
    [
        ("yes", "yes"),
        ("Yes, someone is.", "yes"),
        ("No.", "no"),
        ("nope", "no"),
        ("a man lying on the floor", "other"),
        ("", "other"),
        ("yesterday", "other"),
    ],
)
def test_yes_no_mapping(text: str, mapped: str) -> None:
    assert to_yes_no(text) == mapped


@pytest.mark.parametrize(
    ("matching", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0)]
)
def test_official_vqa_accuracy(matching: int, expected: float) -> None:
    # ten human answers, `matching` of them "cat": the leave-one-out average by hand
    answers = ["cat"] * matching + ["dog"] * (10 - matching)
    assert vqa_accuracy("Cat", answers) == pytest.approx(expected)


def test_single_answer_is_exact_match_after_normalisation() -> None:
    assert vqa_accuracy("Two", ["2"]) == 1.0
    assert vqa_accuracy("the circle", ["circle"]) == 1.0
    assert vqa_accuracy("yes", ["no"]) == 0.0


def test_human_answers_are_normalised_like_the_prediction() -> None:
    # "two" x4 and "2" x6: every human answer reads 2, so "2" matches all ten
    assert vqa_accuracy("2", ["two"] * 4 + ["2"] * 6) == 1.0
    # three of four read "dog": leave-one-out (2/3, 2/3, 2/3, 3/3) / 4
    assert vqa_accuracy("dog", ["a dog", "the dog", "Dog", "cat"]) == pytest.approx(0.75)
    assert vqa_accuracy("cat", ["a dog", "the dog", "Dog", "cat"]) == pytest.approx(1 / 4)


def test_task_metrics_by_hand() -> None:
    truths = ["yes", "yes", "yes", "no", "no"]
    preds = ["yes", "No.", "yes", "yes", "a man standing"]
    m = task_metrics(truths, preds)
    assert m.confusion == {
        "yes": {"yes": 2, "no": 1, "other": 0},
        "no": {"yes": 1, "no": 0, "other": 1},
    }
    assert m.yes_rate == pytest.approx(3 / 5)
    assert m.yes_rate_negatives == pytest.approx(1 / 2)
    assert m.accuracy == pytest.approx(2 / 5)
    assert m.recall_yes == pytest.approx(2 / 3)
    assert m.precision_yes == pytest.approx(2 / 3)
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 0) / 2)
    assert m.f1_yes == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m.other_rate == pytest.approx(1 / 5)


def test_general_metrics_per_type_and_baseline() -> None:
    answers = [["red"], ["blue"], ["red"], ["yes"]]
    preds = ["red", "red", "Red.", "no"]
    g = general_metrics(answers, preds, ["other", "other", "other", "yes/no"])
    assert g["vqa_accuracy"] == pytest.approx(2 / 4)
    assert g["per_answer_type"] == {"other": pytest.approx(2 / 3), "yes/no": 0.0}
    assert g["majority_answer"] == "red" and g["majority_baseline"] == pytest.approx(2 / 4)


def test_collapse_alarm_rules() -> None:
    truths = ["yes"] * 50 + ["no"] * 50
    always_yes = ["yes"] * 100
    task = task_metrics(truths, always_yes)
    reasons = collapse_reasons(always_yes, truths, task, "task part")
    assert len(reasons) == 2 and "100% of the predictions but only 50%" in reasons[0]
    # 95% yes is fine when the truth is 90% yes and negatives are mostly answered "no"
    truths = ["yes"] * 90 + ["no"] * 10
    preds = ["yes"] * 90 + ["yes"] * 5 + ["no"] * 5
    assert collapse_reasons(preds, truths, task_metrics(truths, preds), "task") == []
    # ... but saying yes to 60% of negatives fires on its own
    preds = ["yes"] * 90 + ["yes"] * 6 + ["no"] * 4
    assert (
        "60% of the true negatives"
        in collapse_reasons(preds, truths, task_metrics(truths, preds), "t")[0]
    )


def test_score_uses_provenance_parts() -> None:
    records = [
        {"instance_id": 0, "image": "a.png", "text_input": "Is anyone falling?", "answer": ["yes"]},
        {"instance_id": 1, "image": "b.png", "text_input": "Is anyone falling?", "answer": ["no"]},
        {"instance_id": 2, "image": "c.png", "text_input": "What color?", "answer": ["red"] * 10},
    ]
    prov = [
        {"part": "task"},
        {"part": "task"},
        {"part": "general", "source": "vqav2", "answer_type": "other"},
    ]
    report = score(records, prov, ["yes", "yes", "red"])
    assert report["task"]["n"] == 2 and report["general"]["n"] == 1
    assert report["task"]["yes_rate_negatives"] == 1.0
    assert report["general"]["vqa_accuracy"] == 1.0
    assert report["collapse_alarm"] is True
    assert [p["part"] for p in report["predictions"]] == ["task", "task", "general"]


def test_compare_table(tmp_path: Path) -> None:
    a = {
        "task": {"yes_rate": 1.0, "yes_rate_negatives": 1.0, "balanced_accuracy": 0.5},
        "general": {"vqa_accuracy": None},
        "collapse_alarm": True,
    }
    b = {
        "task": {"yes_rate": 0.5, "yes_rate_negatives": 0.1, "balanced_accuracy": 0.9},
        "general": {"vqa_accuracy": 0.7},
        "collapse_alarm": False,
    }
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    result = CliRunner().invoke(
        app,
        ["eval", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "yes-rate on negatives" in line)
    assert "1.000" in row and "0.100" in row
    assert "does not say which data it scored" in result.output
    assert CliRunner().invoke(app, ["eval", "--compare", str(tmp_path / "a.json")]).exit_code == 2


def test_one_figure_table_feeds_markdown_terminal_compare_and_plots(tmp_path: Path) -> None:
    from curation.evaluate.report import FIGURES, EvalReport
    from curation.evaluate.run import compare, summary_markdown, write_report

    records = [
        {"instance_id": i, "image": "a.png", "text_input": "Is anyone falling?", "answer": [a]}
        for i, a in enumerate(["yes", "no", "no", "yes"])
    ]
    body = score(records, [{"part": "task"}] * 4, ["yes", "no", "yes", "yes"])
    report = EvalReport(checkpoint="ck.pth", data="test.json", image_root=".", **body)
    files = write_report(tmp_path, report)
    markdown = (tmp_path / "eval.md").read_text()
    assert markdown == summary_markdown(report)
    for figure in FIGURES:
        if figure.kind == "rate":
            assert f"| {figure.label} |" in markdown, figure.label
    assert "| task yes-rate on negatives | 50.0% |" in markdown
    again = EvalReport.from_dict(json.loads((tmp_path / "eval.json").read_text()))
    assert again.to_dict() == report.to_dict()
    assert {p.name for p in files} >= {"eval.json", "eval.md", "confusion.png", "yes_rate.png"}
    (tmp_path / "b").mkdir()
    write_report(tmp_path / "b", report)
    rows = compare([tmp_path / "eval.json", tmp_path / "b" / "eval.json"]).rows
    assert [figure.label for figure, _ in rows] == [f.label for f in FIGURES]
    assert {f.label: v for f, v in rows}["task accuracy"] == [0.75, 0.75]


def _eval_json(path: Path, data: str, records: int, **task: object) -> Path:
    body = {
        "data": data,
        "n": records,
        "task": {"n": records, "yes_rate": 0.5, **task},
        "general": {"n": 0},
        "collapse_alarm": False,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path


def test_compare_shows_each_column_s_data_and_n_and_warns_when_they_differ(
    tmp_path: Path,
) -> None:
    a = _eval_json(tmp_path / "a" / "eval.json", "exports/one/test.json", 120)
    b = _eval_json(tmp_path / "b" / "eval.json", "exports/two/val.json", 40)
    result = CliRunner().invoke(app, ["eval", "--compare", str(a), str(b)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"A: {a} (scored exports/one/test.json, n=120)" in result.output
    assert f"B: {b} (scored exports/two/val.json, n=40)" in result.output
    row = next(line for line in result.output.splitlines() if "records (n)" in line)
    assert "120" in row and "40" in row
    assert "WARNING: the reports scored different data" in result.output
    # the same data: no warning
    same = _eval_json(tmp_path / "c" / "eval.json", "exports/one/test.json", 120)
    result = CliRunner().invoke(app, ["eval", "--compare", str(a), str(same)])
    assert result.exit_code == 0 and "WARNING" not in result.output, result.output


def test_compare_tells_two_files_of_one_name_apart_by_their_checksum(tmp_path: Path) -> None:
    from curation.evaluate.run import compare

    a = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    b = _eval_json(tmp_path / "b" / "eval.json", "test.json", 10)
    for path, sha in ((a, "1" * 64), (b, "2" * 64)):
        body = json.loads(path.read_text())
        path.write_text(json.dumps({**body, "data_sha256": sha}))
    assert any("different data" in w for w in compare([a, b]).warnings)
    c = _eval_json(tmp_path / "c" / "eval.json", "elsewhere/test.json", 12)
    body = json.loads(c.read_text())
    c.write_text(json.dumps({**body, "data_sha256": "1" * 64}))
    warnings = compare([a, c]).warnings  # one file under two paths: same data, other n
    assert warnings == ["the reports scored different numbers of records: A n=10, B n=12."]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("yes_rate", "abc"),
        ("yes_rate", 1.7),
        ("accuracy", True),
        ("roc_auc", [0.5]),
        ("n", -3),
        ("n", "12"),
        ("operating_point", 0.5),
    ],
)
def test_compare_refuses_a_malformed_report(tmp_path: Path, field: str, value: object) -> None:
    good = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    bad = _eval_json(tmp_path / "b" / "eval.json", "test.json", 10, **{field: value})
    result = CliRunner().invoke(app, ["eval", "--compare", str(good), str(bad)])
    assert result.exit_code == 1, result.output
    assert f"{bad}: task.{field} is {json.dumps(value)}" in result.output
    assert "Traceback" not in result.output


def test_compare_refuses_a_malformed_threshold_and_flag(tmp_path: Path) -> None:
    good = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    bad = _eval_json(
        tmp_path / "b" / "eval.json", "test.json", 10, operating_point={"threshold": "0.5"}
    )
    body = json.loads(bad.read_text())
    bad.write_text(json.dumps({**body, "collapse_alarm": "no"}))
    result = CliRunner().invoke(app, ["eval", "--compare", str(good), str(bad)])
    assert result.exit_code == 1, result.output
    assert 'task.operating_point.threshold is "0.5"' in result.output
    assert 'collapse_alarm is "no"' in result.output


def test_a_perfect_ranking_has_a_pr_auc_of_exactly_one() -> None:
    """Before: 50 terms of 1/50 summed to 1.0000000000000004, which eval --compare refuses."""
    from curation.evaluate.metrics import pr_auc

    for n in (3, 50, 333):
        truths = [True] * n + [False] * n
        assert pr_auc(truths, [1 - i * 1e-6 for i in range(2 * n)]) == 1.0


def test_compare_names_a_fifo_as_not_a_regular_file_without_reading_it(tmp_path: Path) -> None:
    import os

    good = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    fifo = tmp_path / "b.json"
    os.mkfifo(fifo)
    result = CliRunner().invoke(app, ["eval", "--compare", str(good), str(fifo)])
    assert result.exit_code == 2, result.output
    assert f"eval report {fifo} is not a regular file" in " ".join(result.output.split())
    assert "not found" not in result.output


@pytest.mark.parametrize(
    ("op", "shown"),
    [
        ({"threshold": 0.3, "never_yes": True}, "task.operating_point.never_yes is true but"),
        ({"threshold": 1.0000000000000002, "never_yes": False}, "never_yes is false but"),
        ({"threshold": 0.3, "never_yes": "no"}, 'task.operating_point.never_yes is "no"'),
    ],
)
def test_compare_refuses_a_never_yes_flag_its_threshold_contradicts(
    tmp_path: Path, op: dict[str, object], shown: str
) -> None:
    good = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    bad = _eval_json(tmp_path / "b" / "eval.json", "test.json", 10, operating_point=op)
    result = CliRunner().invoke(app, ["eval", "--compare", str(good), str(bad)])
    assert result.exit_code == 1, result.output
    assert shown in " ".join(result.output.split())
    # what curate eval writes passes
    for threshold, flag in ((0.3, False), (1.0000000000000002, True)):
        fine = _eval_json(
            tmp_path / "c" / "eval.json",
            "test.json",
            10,
            operating_point={"threshold": threshold, "never_yes": flag},
        )
        assert CliRunner().invoke(app, ["eval", "--compare", str(good), str(fine)]).exit_code == 0


@pytest.mark.parametrize(
    ("confusion", "shown"),
    [
        ({"yes": {"yes": -3}}, 'task.confusion is {"yes": {"yes": -3}}'),
        (
            {"yes": {"yes": -3, "no": 8, "other": 0}, "no": {"yes": 0, "no": 5, "other": 0}},
            "task.confusion.yes.yes is -3",
        ),
        (
            {"yes": {"yes": 2.5, "no": 2, "other": 0}, "no": {"yes": 0, "no": 5, "other": 0}},
            "task.confusion.yes.yes is 2.5",
        ),
        (
            {"yes": {"yes": 4, "no": 2, "other": 0}, "no": {"yes": 0, "no": 5, "other": 0}},
            "task.confusion counts 11 records but task.n is 10",
        ),
        ([1, 2], "task.confusion is [1, 2]"),
    ],
)
def test_compare_refuses_a_confusion_matrix_curate_eval_cannot_write(
    tmp_path: Path, confusion: object, shown: str
) -> None:
    good = _eval_json(tmp_path / "a" / "eval.json", "test.json", 10)
    bad = _eval_json(tmp_path / "b" / "eval.json", "test.json", 10, confusion=confusion)
    result = CliRunner().invoke(app, ["eval", "--compare", str(good), str(bad)])
    assert result.exit_code == 1, result.output
    assert shown in " ".join(result.output.split())
    assert "Traceback" not in result.output
    counts = {"yes": {"yes": 3, "no": 2, "other": 0}, "no": {"yes": 0, "no": 5, "other": 0}}
    fine = _eval_json(tmp_path / "c" / "eval.json", "test.json", 10, confusion=counts)
    assert CliRunner().invoke(app, ["eval", "--compare", str(good), str(fine)]).exit_code == 0
