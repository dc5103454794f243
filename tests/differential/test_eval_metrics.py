"""eval's P(yes) figures and find-issues' verdicts, computed a second way.

ROC-AUC and PR-AUC against scikit-learn; the operating point against
scikit-learn's ROC curve and a brute-force search over every threshold; eval's
rates at the point against scikit-learn's confusion matrix; find-issues' flags
against cleanlab's ``find_label_issues`` run on the probabilities find-issues
stored (its JSON report and the FiftyOne fields it writes back).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from curation.evaluate.metrics import (  # noqa: E402
    NEVER_YES,
    pr_auc,
    roc_auc,
    threshold_at_false_alarm,
)
from curation.evaluate.run import score  # noqa: E402


def _sets(seed: int, n: int = 300) -> tuple[list[bool], list[float]]:
    """Labels and P(yes) with ties (rounded scores) and overlap between the classes."""
    rng = random.Random(seed)
    truths = [rng.random() < rng.choice([0.1, 0.3, 0.5]) for _ in range(n)]
    digits = rng.choice([1, 2, 3, 6])
    scores = [round(min(1.0, max(0.0, rng.gauss(0.35 + 0.3 * t, 0.2))), digits) for t in truths]
    if not any(truths) or all(truths):
        truths[0] = not truths[0]
    if seed % 3 == 0:  # a negative at the top: a budget of 0 then catches nothing
        scores = [min(s, 0.9) for s in scores]
        scores[truths.index(False)] = 0.95  # (below 1: P(yes) > 0.95 may come later)
    return truths, scores


@pytest.mark.parametrize("seed", range(12))
def test_roc_auc_and_pr_auc_equal_scikit_learn(seed: int) -> None:
    truths, scores = _sets(seed)
    assert roc_auc(truths, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(truths, scores), abs=1e-12
    )
    assert pr_auc(truths, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(truths, scores), abs=1e-12
    )


def _point_from_roc_curve(truths: list[bool], scores: list[float], budget: float) -> float:
    """The operating point read off scikit-learn's ROC curve: of the thresholds whose
    false-positive rate is within the budget, those with the highest recall; of those,
    the highest threshold. The curve's first threshold (inf) is "never yes"."""
    fpr, tpr, thresholds = sklearn_metrics.roc_curve(truths, scores, drop_intermediate=False)
    ok = fpr <= budget
    best = tpr[ok].max()
    chosen = thresholds[ok][tpr[ok] == best].max()
    return NEVER_YES if np.isinf(chosen) or chosen > 1 else float(chosen)


def _point_by_brute_force(truths: list[bool], scores: list[float], budget: float) -> float:
    """Every observed score and "never yes" tried, each counted by hand; of those within the
    budget, the highest recall; of those, the highest threshold."""
    y, s = np.array(truths), np.array(scores)

    def rates(t: float) -> tuple[float, float]:
        said = s >= t
        return (said & y).sum() / y.sum(), (said & ~y).sum() / (~y).sum()

    ok = [t for t in sorted({*scores, NEVER_YES}) if rates(t)[1] <= budget]
    top = max(rates(t)[0] for t in ok)
    # no threshold between the scores does better within the budget either
    grid = np.linspace(0.0, 1.0, 401)
    assert all(rates(t)[0] <= top for t in grid if rates(t)[1] <= budget)
    return max(t for t in ok if rates(t)[0] == top)


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize("budget", [0.0, 0.01, 0.05, 0.2, 0.5, 1.0])
def test_the_operating_point_equals_scikit_learn_s_roc_curve_and_brute_force(
    seed: int, budget: float
) -> None:
    truths, scores = _sets(seed)
    found = threshold_at_false_alarm(truths, scores, budget)
    assert found["threshold"] == _point_from_roc_curve(truths, scores, budget)
    assert found["threshold"] == _point_by_brute_force(truths, scores, budget)
    assert found["never_yes"] == (found["threshold"] > 1)


def test_a_budget_no_threshold_meets_is_never_yes_in_scikit_learn_s_terms_too() -> None:
    truths = [True, False, True, False]
    scores = [0.5, 0.9, 0.4, 0.8]  # every fall below every negative: no fall without alarm
    assert _point_from_roc_curve(truths, scores, 0.0) == NEVER_YES
    assert threshold_at_false_alarm(truths, scores, 0.0)["threshold"] == NEVER_YES


@pytest.mark.parametrize("seed", range(6))
def test_eval_s_figures_on_its_predictions_equal_scikit_learn(seed: int) -> None:
    """eval's figures as ``score`` writes them into eval.json, recomputed from the rows."""
    val_truths, val_scores = _sets(seed)
    point = {**threshold_at_false_alarm(val_truths, val_scores, 0.05), "chosen_on": "val.json"}
    truths, scores = _sets(seed + 100)
    records = [
        {
            "instance_id": i,
            "image": f"{i}.png",
            "text_input": "Is anyone falling in this image?",
            "answer": ["yes" if t else "no"],
        }
        for i, t in enumerate(truths)
    ]
    predictions = ["yes" if s >= 0.5 else "no" for s in scores]
    report = score(records, [{"part": "task"}] * len(records), predictions, scores, point)
    rows = report["predictions"]
    y = [r["answers"] == ["yes"] for r in rows]
    p = [r["p_yes"] for r in rows]
    task = report["task"]
    assert task["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, p), abs=1e-12)
    assert task["pr_auc"] == pytest.approx(sklearn_metrics.average_precision_score(y, p), abs=1e-12)
    said = [x >= point["threshold"] for x in p]
    tn, fp, fn, tp = sklearn_metrics.confusion_matrix(y, said, labels=[False, True]).ravel()
    op = task["operating_point"]
    assert op["recall"] == pytest.approx(tp / (tp + fn))
    assert op["false_alarm_rate"] == pytest.approx(fp / (fp + tn))
    generated = [r["yes_no"] == "yes" for r in rows]
    assert task["balanced_accuracy"] == pytest.approx(
        sklearn_metrics.balanced_accuracy_score(y, generated)
    )
    assert task["f1_yes"] == pytest.approx(sklearn_metrics.f1_score(y, generated))


#: the task question and two of its default paraphrases, and general questions on the images
_TASK_QUESTIONS = (
    "Is anyone falling in this image?",
    "Has anyone fallen in this image?",
    "Is a person falling down here?",
)
_GENERAL_QUESTIONS = (
    "Is there a circle?",
    "Is the shape red?",
    "Does this image contain a square?",
)


@pytest.mark.parametrize("seed", range(4))
def test_task_roc_auc_without_a_sidecar_equals_scikit_learn_on_the_task_questions(
    tmp_path: Path, seed: int
) -> None:
    """A split without its provenance sidecar: the task ROC-AUC is scikit-learn's on the
    records whose question is the task question (general yes/no records left out)."""
    from curation.evaluate.run import load_provenance

    truths, scores = _sets(seed)
    rng = random.Random(seed)
    questions = [
        rng.choice(_TASK_QUESTIONS if rng.random() < 0.4 else _GENERAL_QUESTIONS) for _ in truths
    ]
    records = [
        {"instance_id": i, "image": f"{i}.png", "text_input": q, "answer": ["yes" if t else "no"]}
        for i, (q, t) in enumerate(zip(questions, truths, strict=True))
    ]
    data = tmp_path / "val2.json"
    data.write_text(json.dumps(records), encoding="utf-8")
    raw = json.loads(data.read_text(encoding="utf-8"))
    predictions = ["yes" if s >= 0.5 else "no" for s in scores]
    report = score(records, load_provenance(data, records), predictions, scores)
    task = [i for i, r in enumerate(raw) if r["text_input"] in _TASK_QUESTIONS]
    y = [raw[i]["answer"] == ["yes"] for i in task]
    assert report["task"]["n"] == len(task)
    assert report["task"]["roc_auc"] == pytest.approx(
        sklearn_metrics.roc_auc_score(y, [scores[i] for i in task]), abs=1e-12
    )


# --- find-issues: its flags against cleanlab on the probabilities it stored -------------


def _noisy_labels(seed: int, n: int = 120) -> tuple[list[str], list[float]]:
    """Labels with about 10% flipped, and an out-of-sample P(yes) that knows the truth."""
    rng = random.Random(seed)
    truth = [rng.random() < 0.5 for _ in range(n)]
    p_yes = [min(1.0, max(0.0, rng.gauss(0.8 if t else 0.2, 0.15))) for t in truth]
    labels = ["yes" if (t != (rng.random() < 0.1)) else "no" for t in truth]
    return labels, p_yes


def _cleanlab_flags(labels: list[str], p_yes: list[float]) -> list[bool]:
    from cleanlab.filter import find_label_issues

    y = np.array([lab == "yes" for lab in labels], dtype=int)
    p = np.clip(np.array(p_yes), 0.0, 1.0)
    return find_label_issues(
        y, np.stack([1 - p, p], axis=1), filter_by="prune_by_noise_rate"
    ).tolist()


def _scored_samples(labels: list[str], p_yes: list[float], ids: list[str] | None = None):  # noqa: ANN202
    from curation.curator.find_issues import _scored
    from curation.record_types import ExportRecord

    ids = ids or [f"s{i:03d}" for i in range(len(labels))]
    records = [
        ExportRecord(Path(f"/data/{i}.png"), "Is anyone falling?", (lab,), fiftyone_id=sid)
        for i, (sid, lab) in enumerate(zip(ids, labels, strict=True))
    ]
    return _scored(records, labels, p_yes, ["fold 0"] * len(labels))


@pytest.mark.parametrize("seed", range(5))
def test_find_issues_report_flags_equal_cleanlab_on_its_stored_probabilities(
    tmp_path: Path, seed: int
) -> None:
    pytest.importorskip("cleanlab")
    from curation.curator.find_issues import FindIssuesResult

    labels, p_yes = _noisy_labels(seed)
    result = FindIssuesResult("ds", "folds", _scored_samples(labels, p_yes))
    result.write_json(tmp_path / "label_issues.json")
    stored = json.loads((tmp_path / "label_issues.json").read_text())["samples"]
    stored_labels = [s["label"] for s in stored]
    stored_p = [s["p_yes"] for s in stored]
    expected = _cleanlab_flags(stored_labels, stored_p)
    assert [s["flagged"] for s in stored] == expected
    assert sum(expected) > 0  # the flips are found: the comparison is not all-False
    # the class order does not matter to cleanlab: "yes" as column 0 flags the same
    from cleanlab.filter import find_label_issues

    y = np.array([lab == "no" for lab in stored_labels], dtype=int)
    p = np.array(stored_p)
    swapped = find_label_issues(y, np.stack([p, 1 - p], axis=1), filter_by="prune_by_noise_rate")
    assert swapped.tolist() == expected
    # the score is the probability of the other answer
    for s in stored:
        other = 1 - s["p_yes"] if s["label"] == "yes" else s["p_yes"]
        assert s["score"] == pytest.approx(other)


def test_find_issues_tags_in_fiftyone_equal_cleanlab_on_the_stored_p_yes(tmp_path: Path) -> None:
    pytest.importorskip("cleanlab")
    fo = pytest.importorskip("fiftyone")
    import uuid

    from curation.curator._fo import CURATOR_FIELDS
    from curation.curator.find_issues import ISSUE_TAG, P_YES_FIELD, write_back

    labels, p_yes = _noisy_labels(11, n=60)
    dataset = fo.Dataset(f"diff-issues-{uuid.uuid4().hex[:8]}")
    try:
        dataset.add_samples(
            [fo.Sample(filepath=str(tmp_path / f"{i}.png")) for i in range(len(labels))]
        )
        for name in CURATOR_FIELDS:  # write_back opens it as a dataset curate ingest made
            dataset.add_sample_field(name, fo.StringField)
        ids = dataset.values("id")
        write_back(dataset.name, _scored_samples(labels, p_yes, ids))
        dataset.reload()
        stored = dict(zip(dataset.values("id"), dataset.values(P_YES_FIELD), strict=True))
        tags = dict(zip(dataset.values("id"), dataset.values("tags"), strict=True))
        stored_p = [stored[i] for i in ids]
        expected = _cleanlab_flags(labels, stored_p)
        assert [ISSUE_TAG in tags[i] for i in ids] == expected
        assert sum(expected) > 0
    finally:
        dataset.delete()
