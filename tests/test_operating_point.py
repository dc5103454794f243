"""P(yes) metrics: ranking, calibration and the threshold at a false-alarm budget."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curation.evaluate.metrics import (
    NEVER_YES,
    expected_calibration_error,
    pr_auc,
    rates_at,
    reliability,
    roc_auc,
    threshold_at_false_alarm,
)


def brute_auc(truths: list[bool], scores: list[float]) -> float:
    pos = [s for t, s in zip(truths, scores, strict=True) if t]
    neg = [s for t, s in zip(truths, scores, strict=True) if not t]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_threshold(truths: list[bool], scores: list[float], budget: float) -> float:
    """The definition, checked over every candidate: of the thresholds within the budget,
    those with the highest recall; of those, the highest."""
    candidates = sorted({*scores, NEVER_YES})  # NEVER_YES: "no" to every P(yes)
    ok = [t for t in candidates if (rates_at(truths, scores, t)["false_alarm_rate"] or 0) <= budget]
    top = max(rates_at(truths, scores, t)["recall"] or 0 for t in ok)
    return max(t for t in ok if (rates_at(truths, scores, t)["recall"] or 0) == top)


def test_auc_on_known_sets() -> None:
    assert roc_auc([True, True, False, False], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([True, True, False, False], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([True, False], [0.5, 0.5]) == 0.5
    assert roc_auc([True, True], [0.1, 0.2]) is None
    # one positive below one negative: 3 of 4 pairs ordered
    assert roc_auc([True, True, False, False], [0.9, 0.3, 0.4, 0.1]) == 0.75
    assert pr_auc([True, True, False, False], [0.9, 0.8, 0.2, 0.1]) == 1.0
    # ranks: T(0.9) F(0.8) T(0.7): AP = (1/1 + 2/3) / 2
    assert pr_auc([True, False, True], [0.9, 0.8, 0.7]) == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_threshold_match_their_definitions(seed: int) -> None:
    rng = random.Random(seed)
    truths = [rng.random() < 0.4 for _ in range(200)]
    scores = [round(rng.random() * 0.6 + 0.4 * t, 2) for t in truths]  # ties on purpose
    assert roc_auc(truths, scores) == pytest.approx(brute_auc(truths, scores))
    for budget in (0.0, 0.05, 0.2, 1.0):
        found = threshold_at_false_alarm(truths, scores, budget)
        assert found["threshold"] == pytest.approx(brute_threshold(truths, scores, budget))
        assert found["false_alarm_rate"] <= budget


def test_threshold_on_a_known_set() -> None:
    truths = [True, True, True, False, False, False, False]
    scores = [0.95, 0.7, 0.4, 0.8, 0.3, 0.2, 0.1]
    # within 0 false alarms: only 0.95 is above the 0.8 negative -> threshold 0.95, recall 1/3
    zero = threshold_at_false_alarm(truths, scores, 0.0)
    assert zero["threshold"] == 0.95 and zero["recall"] == pytest.approx(1 / 3)
    # one false alarm in four allowed: down to 0.4 (0.3 would make it two)
    quarter = threshold_at_false_alarm(truths, scores, 0.25)
    assert quarter["threshold"] == 0.4 and quarter["recall"] == 1.0
    assert quarter["false_alarm_rate"] == 0.25


def test_threshold_adds_no_false_alarm_that_catches_no_fall() -> None:
    # every fall is above every negative: the budget allows one false alarm in four, but
    # spending it catches nothing, so the threshold stays at the lowest fall (0.6), not 0.5
    truths = [True, True, False, False, False, False]
    scores = [0.9, 0.6, 0.5, 0.3, 0.2, 0.1]
    found = threshold_at_false_alarm(truths, scores, 0.25)
    assert found["threshold"] == 0.6 and found["recall"] == 1.0
    assert found["false_alarm_rate"] == 0.0


def test_calibration() -> None:
    perfect = [True] * 8 + [False] * 2  # 80% yes at confidence 0.8: calibrated
    assert expected_calibration_error(perfect, [0.8] * 10) == pytest.approx(0.0)
    assert expected_calibration_error([True, False], [1.0, 1.0]) == pytest.approx(0.5)
    bins = reliability([True, False, True], [0.05, 0.05, 0.95])
    assert [(b["n"], b["yes_rate"]) for b in bins] == [(2, 0.5), (1, 1.0)]


@pytest.mark.parametrize(
    ("truths", "scores", "budget"),
    [
        ([True, False], [0.5, 0.6], 0.0),  # the top score is a negative, no false alarm allowed
        ([True, True, False], [0.2, 0.3, 0.9], 0.0),
        ([True, False, False, False], [0.1, 0.8, 0.7, 0.6], 0.5),  # falls below 3 negatives
    ],
)
def test_no_threshold_within_the_budget_is_never_yes_on_any_later_split(
    truths: list[bool], scores: list[float], budget: float
) -> None:
    found = threshold_at_false_alarm(truths, scores, budget)
    assert found["threshold"] > 1 and found["never_yes"] is True
    assert found["recall"] == 0.0 and found["false_alarm_rate"] == 0.0
    # a later split with a higher P(yes) than any seen on the calibration split: still no
    later = rates_at([True, False], [0.99, 0.95], found["threshold"])
    assert later["recall"] == 0.0 and later["false_alarm_rate"] == 0.0


def test_a_met_budget_is_not_never_yes() -> None:
    found = threshold_at_false_alarm([True, False], [0.9, 0.1], 0.0)
    assert found["threshold"] == 0.9 and found["never_yes"] is False


def test_a_never_yes_point_reads_never_yes_in_eval_json_md_and_the_saved_point(
    tmp_path: Path,
) -> None:
    from curation.evaluate.report import EvalReport
    from curation.evaluate.run import score, summary_markdown, write_report
    from curation.inference.operating_point import saved_threshold, write_point

    point = {**threshold_at_false_alarm([True, False], [0.5, 0.6], 0.0), "chosen_on": "val.json"}
    records = [
        {"instance_id": i, "image": f"{i}.png", "text_input": "Is anyone falling?", "answer": [a]}
        for i, a in enumerate(["yes", "no", "yes"])
    ]
    body = score(records, [{"part": "task"}] * 3, ["yes", "no", "yes"], [0.9, 0.2, 1.0], point)
    op = body["task"]["operating_point"]
    assert op["recall"] == 0.0 and op["never_yes"] is True
    report = EvalReport("ck.pth", "test.json", ".", **body)
    markdown = summary_markdown(report)
    assert "Operating point: never yes" in markdown
    files = write_report(tmp_path / "out", report)  # the plots take a never-yes point too
    assert (tmp_path / "out" / "eval.md").read_text() == markdown and files
    row = next(line for line in markdown.splitlines() if "P(yes) threshold" in line)
    assert "never yes" in row and "| 1.000 |" not in row and ">= 1" not in markdown
    checkpoint = tmp_path / "checkpoint_1.pth"
    checkpoint.write_bytes(b"weights")
    write_point(tmp_path, point, checkpoint)
    assert json.loads((tmp_path / "operating_point.json").read_text())["never_yes"] is True
    threshold, _ = saved_threshold(checkpoint)
    assert threshold is not None and threshold > 1  # predict: "yes" when p >= it: never


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.000341, "0.000341"),
        (1.39e-14, "1.39e-14"),
        (0.99999994, "0.99999994"),
        (0.5, "0.5"),
        (0.0, "0"),
        (1.0, "1"),
    ],
)
def test_one_threshold_formatter_for_eval_md_the_terminal_and_compare(
    tmp_path: Path, value: float, shown: str
) -> None:
    from typer.testing import CliRunner

    from curation import _render
    from curation.cli import app
    from curation.evaluate.report import EvalReport, threshold_text
    from curation.evaluate.run import EvalResult, score, summary_markdown

    assert threshold_text(value) == shown
    point = {"threshold": value, "chosen_on": "val.json", "max_false_alarm": 0.05}
    records = [
        {"instance_id": i, "image": f"{i}.png", "text_input": "Is anyone falling?", "answer": [a]}
        for i, a in enumerate(["yes", "no"])
    ]
    body = score(records, [{"part": "task"}] * 2, ["yes", "no"], [0.9, 0.0002], point)
    report = EvalReport("ck.pth", "test.json", ".", **body)
    markdown = summary_markdown(report)
    assert f"| operating point: P(yes) threshold | {shown} |" in markdown
    assert f"Operating point: P(yes) >= {shown}, chosen on val.json" in markdown
    console = _render.Console(width=300, record=True)
    _render.eval_result(console, EvalResult(report, tmp_path, []))
    terminal = console.export_text()
    assert f"operating point: P(yes) >= {shown}, chosen on val.json" in terminal
    row = next(line for line in terminal.splitlines() if "P(yes) threshold" in line)
    assert row.replace("│", " ").split()[-1] == shown
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps(report.to_dict()))
    result = CliRunner().invoke(
        app,
        ["eval", "--compare", str(tmp_path / "a" / "eval.json"), str(tmp_path / "b" / "eval.json")],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "P(yes) threshold" in line)
    assert row.replace("│", " ").replace("┃", " ").split()[-2:] == [shown, shown]


def test_a_never_yes_threshold_reads_never_yes_without_its_digits(tmp_path: Path) -> None:
    """eval's table, eval.md and --compare show the point above 1 as "never yes", not as
    1.0000000000000002 with a note."""
    from typer.testing import CliRunner

    from curation import _render
    from curation.cli import app
    from curation.evaluate.report import EvalReport, threshold_text
    from curation.evaluate.run import EvalResult, score, summary_markdown

    assert threshold_text(NEVER_YES) == "never yes"
    point = {**threshold_at_false_alarm([True, False], [0.5, 0.6], 0.0), "chosen_on": "val.json"}
    assert point["threshold"] > 1
    records = [
        {"instance_id": i, "image": f"{i}.png", "text_input": "Is anyone falling?", "answer": [a]}
        for i, a in enumerate(["yes", "no"])
    ]
    body = score(records, [{"part": "task"}] * 2, ["yes", "no"], [0.9, 0.2], point)
    report = EvalReport("ck.pth", "test.json", ".", **body)
    markdown = summary_markdown(report)
    assert "| operating point: P(yes) threshold | never yes |" in markdown
    console = _render.Console(width=300, record=True)
    _render.eval_result(console, EvalResult(report, tmp_path, []))
    rows = [line for line in console.export_text().splitlines() if "P(yes) threshold" in line]
    assert rows and rows[0].replace("│", " ").split()[-2:] == ["never", "yes"]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps(report.to_dict()))
    result = CliRunner().invoke(
        app,
        ["eval", "--compare", str(tmp_path / "a" / "eval.json"), str(tmp_path / "b" / "eval.json")],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "P(yes) threshold" in line)
    assert row.replace("│", " ").replace("┃", " ").split()[-4:] == ["never", "yes"] * 2
    assert "1.0000000000000002" not in markdown + console.export_text() + result.output
