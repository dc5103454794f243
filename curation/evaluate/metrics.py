"""Metrics for a yes/no task part and a general VQA part; the collapse alarm."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curation.answers import normalize_answer, to_yes_no

#: One answer on at least this share of the predictions ...
COLLAPSE_SHARE = 0.95
#: ... where the truth gives it less than this share, is a collapse.
COLLAPSE_TRUE_SHARE = 0.80
#: Saying "yes" to more than this share of true negatives is a collapse too.
COLLAPSE_NEGATIVE_YES = 0.50


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQAv2 accuracy of one prediction against its human answers (0..1).

    With several human answers: min(#matching others / 3, 1), averaged over
    the leave-one-out subsets, as the official evaluation does. With one
    answer (task records, easy-VQA) the leave-one-out formula would always
    give 0 (the trap in LAVIS's copy of the evaluator): exact match instead
    (what the export's ten copies of it give in LAVIS's scorer).

    The human answers are normalised like the prediction. The official script
    normalises only the prediction, so a ground truth "two", "a dog" or "Yes"
    never matches; the export writes its ``vqa_eval`` answers normalised, so
    LAVIS's ``VQAEval`` on them and this function agree.
    """
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in answers]
    if len(gts) == 1:
        return float(pred == gts[0])
    scores = []
    for i in range(len(gts)):
        others = gts[:i] + gts[i + 1 :]
        scores.append(min(1.0, sum(a == pred for a in others) / 3))
    return sum(scores) / len(scores)


@dataclass
class TaskMetrics:
    n: int
    yes_rate: float
    yes_rate_negatives: float | None
    true_yes_rate: float
    accuracy: float
    balanced_accuracy: float | None
    precision_yes: float | None
    recall_yes: float | None
    f1_yes: float | None
    other_rate: float
    confusion: dict[str, dict[str, int]]  # truth -> prediction (yes/no/other) -> count

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def task_metrics(truths: Sequence[str], predictions: Sequence[str]) -> TaskMetrics:
    """Yes/no metrics; ``truths`` are "yes"/"no", ``predictions`` free text."""
    mapped = [to_yes_no(p) for p in predictions]
    truth = [to_yes_no(t) for t in truths]
    confusion = {t: {p: 0 for p in ("yes", "no", "other")} for t in ("yes", "no")}
    for t, p in zip(truth, mapped, strict=True):
        if t in confusion:
            confusion[t][p] += 1
    tp, fn_no, fn_other = (confusion["yes"][k] for k in ("yes", "no", "other"))
    fp, tn, _ = (confusion["no"][k] for k in ("yes", "no", "other"))
    pos, neg = sum(confusion["yes"].values()), sum(confusion["no"].values())
    n = pos + neg
    recall = _ratio(tp, pos)
    specificity = _ratio(tn, neg)
    precision = _ratio(tp, tp + fp)
    fn = fn_no + fn_other
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    balanced = (
        (recall + specificity) / 2 if recall is not None and specificity is not None else None
    )
    return TaskMetrics(
        n=n,
        yes_rate=_ratio(tp + fp, n) or 0.0,
        yes_rate_negatives=specificity if specificity is None else fp / neg,
        true_yes_rate=_ratio(pos, n) or 0.0,
        accuracy=_ratio(tp + tn, n) or 0.0,
        balanced_accuracy=balanced,
        precision_yes=precision,
        recall_yes=recall,
        f1_yes=f1,
        other_rate=_ratio(fn_other + confusion["no"]["other"], n) or 0.0,
        confusion=confusion,
    )


def general_metrics(
    answers: Sequence[Sequence[str]], predictions: Sequence[str], answer_types: Sequence[str]
) -> dict[str, Any]:
    """VQA accuracy overall and per answer type, plus the majority-answer baseline."""
    scores = [vqa_accuracy(p, a) for p, a in zip(predictions, answers, strict=True)]
    by_type: dict[str, list[float]] = defaultdict(list)
    for s, t in zip(scores, answer_types, strict=True):
        by_type[t].append(s)
    majority = Counter(normalize_answer(a[0]) for a in answers).most_common(1)
    baseline = (
        sum(vqa_accuracy(majority[0][0], a) for a in answers) / len(answers) if majority else None
    )
    return {
        "n": len(scores),
        "vqa_accuracy": sum(scores) / len(scores) if scores else None,
        "per_answer_type": {t: sum(v) / len(v) for t, v in sorted(by_type.items())},
        "majority_answer": majority[0][0] if majority else None,
        "majority_baseline": baseline,
    }


def collapse_reasons(
    predictions: Sequence[str], truths: Sequence[str], task: TaskMetrics | None, label: str
) -> list[str]:
    """Why this split counts as collapsed (empty list: it does not)."""
    reasons = []
    if predictions:
        preds = [normalize_answer(p) for p in predictions]
        answer, count = Counter(preds).most_common(1)[0]
        share = count / len(preds)
        true_share = sum(normalize_answer(t) == answer for t in truths) / len(truths)
        if share >= COLLAPSE_SHARE and true_share < COLLAPSE_TRUE_SHARE:
            reasons.append(
                f'{label}: "{answer}" is {share:.0%} of the predictions but only '
                f"{true_share:.0%} of the true answers"
            )
    if (
        task
        and task.yes_rate_negatives is not None
        and task.yes_rate_negatives > COLLAPSE_NEGATIVE_YES
    ):
        reasons.append(
            f'{label}: says "yes" to {task.yes_rate_negatives:.0%} of the true '
            "negatives (images where nobody is falling)"
        )
    return reasons


# --- per kind: false alarms per negative_kind, misses per positive class ----------------


def error_rates_by_label(
    labels: Sequence[str | None],
    truth_yes: Sequence[bool],
    said_yes: Sequence[bool],
    positive: bool,
) -> dict[str, dict[str, Any]]:
    """Per label, among the records whose truth is ``positive``: how many, how many wrong, rate.

    For negatives (``positive=False``) a mistake is a false alarm (said yes);
    for positives, a miss (said anything but yes). Records without a label
    (photos carry no ``negative_kind``) are left out.
    """
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for label, truth, said in zip(labels, truth_yes, said_yes, strict=True):
        if label is None or truth != positive:
            continue
        counts[label][0] += 1
        counts[label][1] += said != positive
    name = "misses" if positive else "false_alarms"
    return {k: {"n": n, name: wrong, "rate": wrong / n} for k, (n, wrong) in sorted(counts.items())}


def per_kind_rates(
    kinds: Sequence[str | None],
    activities: Sequence[str | None],
    truth_yes: Sequence[bool],
    said_yes: Sequence[bool],
) -> dict[str, Any]:
    """``false_alarm_rate_by_kind`` and ``miss_rate_by_class`` (``{label: rate}``), with the
    counts beside them (``false_alarms_by_kind``, ``misses_by_class``)."""
    alarms = error_rates_by_label(kinds, truth_yes, said_yes, positive=False)
    misses = error_rates_by_label(activities, truth_yes, said_yes, positive=True)
    return {
        "false_alarm_rate_by_kind": {k: v["rate"] for k, v in alarms.items()},
        "false_alarms_by_kind": alarms,
        "miss_rate_by_class": {k: v["rate"] for k, v in misses.items()},
        "misses_by_class": misses,
    }


# --- P(yes): ranking, calibration and the operating point -------------------------------


def roc_auc(truths: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (the chance a random positive outranks a random negative).

    Ties count one half (Mann-Whitney U). None when one class is absent.
    """
    pos = [s for t, s in zip(truths, scores, strict=True) if t]
    neg = [s for t, s in zip(truths, scores, strict=True) if not t]
    if not pos or not neg:
        return None
    ranked = sorted(scores)
    # average rank of each distinct score (1-based), for ties
    rank: dict[float, float] = {}
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j] == ranked[i]:
            j += 1
        rank[ranked[i]] = (i + 1 + j) / 2
        i = j
    u = sum(rank[s] for s in pos) - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def pr_auc(truths: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Average precision: precision at each positive, in descending score order (ties grouped)."""
    n_pos = sum(1 for t in truths if t)
    if n_pos == 0:
        return None
    pairs = sorted(zip(scores, truths, strict=True), key=lambda x: -x[0])
    ap, tp, seen, i = 0.0, 0, 0, 0
    while i < len(pairs):
        j = i
        group_tp = 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            group_tp += pairs[j][1]
            j += 1
        tp += group_tp
        seen = j
        ap += group_tp * (tp / seen)
        i = j
    # one division at the end: a sum of 50 terms of 1/50 is 1.0000000000000004, past 1
    return ap / n_pos


def reliability(
    truths: Sequence[bool], scores: Sequence[float], bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins of P(yes): mean confidence, observed yes-rate and count per bin."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            (t, s)
            for t, s in zip(truths, scores, strict=True)
            if lo <= s < hi or (b == bins - 1 and s == 1.0)
        ]
        if members:
            out.append(
                {
                    "low": lo,
                    "high": hi,
                    "n": len(members),
                    "mean_p_yes": sum(s for _, s in members) / len(members),
                    "yes_rate": sum(1 for t, _ in members if t) / len(members),
                }
            )
    return out


def expected_calibration_error(
    truths: Sequence[bool], scores: Sequence[float], bins: int = 10
) -> float | None:
    """ECE: the count-weighted gap between confidence and the observed yes-rate per bin."""
    if not scores:
        return None
    return sum(
        b["n"] * abs(b["mean_p_yes"] - b["yes_rate"]) for b in reliability(truths, scores, bins)
    ) / len(scores)


def rates_at(truths: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """Recall and false-alarm rate when "yes" means ``score >= threshold``."""
    tp = sum(1 for t, s in zip(truths, scores, strict=True) if t and s >= threshold)
    fp = sum(1 for t, s in zip(truths, scores, strict=True) if not t and s >= threshold)
    n_pos = sum(1 for t in truths if t)
    n_neg = len(truths) - n_pos
    return {
        "threshold": threshold,
        "recall": _ratio(tp, n_pos),
        "false_alarm_rate": _ratio(fp, n_neg),
    }


#: The highest threshold an operating point can have: just above P(yes) = 1, so that
#: "yes" (``p_yes >= threshold``) is never said. ``curate predict`` accepts up to it.
NEVER_YES = math.nextafter(1.0, 2.0)


def threshold_at_false_alarm(
    truths: Sequence[bool], scores: Sequence[float], max_false_alarm: float = 0.05
) -> dict[str, Any]:
    """The threshold that catches the most falls within ``max_false_alarm``; of those, the
    highest.

    Recall only drops as the threshold rises, so the search lowers it one distinct score
    at a time while the false-alarm rate stays within the budget, and stops at the last
    score that caught a fall: going lower adds false alarms and catches nothing (on a
    validation split the model separates perfectly, that margin is what keeps false
    alarms down on the next split). Candidates are the observed scores, and
    :data:`NEVER_YES` (answer "no" to everything: no false alarms). One sorted sweep.

    When no observed score catches a fall within the budget the point is ``NEVER_YES``,
    above every P(yes), not just above the highest score seen here: a higher P(yes) on
    the next split must not turn into "yes" (``never_yes`` in the result says so).
    """
    if not 0 <= max_false_alarm <= 1:
        raise ValueError(f"max_false_alarm must be in [0, 1], got {max_false_alarm}")
    n_neg = sum(1 for t in truths if not t)
    best = NEVER_YES  # says "no" to every P(yes), here and on any later split
    fp, i = 0, 0
    pairs = sorted(zip(scores, truths, strict=True), key=lambda x: -x[0])
    while i < len(pairs):  # lower the threshold one distinct score at a time
        j, caught = i, False
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            fp += not pairs[j][1]
            caught = caught or pairs[j][1]
            j += 1
        if n_neg and fp / n_neg > max_false_alarm:
            break
        if caught:
            best = pairs[i][0]
        i = j
    return {
        **rates_at(truths, scores, best),
        "max_false_alarm": max_false_alarm,
        "never_yes": is_never_yes(best),
    }


def is_never_yes(threshold: float) -> bool:
    """Whether "yes when P(yes) >= threshold" can never say yes (the threshold is above 1)."""
    return threshold > 1.0


def probability_metrics(
    truths: Sequence[bool], scores: Sequence[float], threshold: dict[str, Any] | None = None
) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, ECE and the reliability bins of P(yes); the operating point's rates
    on these records when a ``threshold`` (chosen elsewhere) is given."""
    out: dict[str, Any] = {
        "roc_auc": roc_auc(truths, scores),
        "pr_auc": pr_auc(truths, scores),
        "ece": expected_calibration_error(truths, scores),
        "reliability": reliability(truths, scores),
    }
    if threshold is not None:
        rates = rates_at(truths, scores, threshold["threshold"])
        out["operating_point"] = {
            **rates,
            "max_false_alarm": threshold.get("max_false_alarm"),
            "chosen_on": threshold.get("chosen_on", ""),
            "chosen_false_alarm_rate": threshold.get("false_alarm_rate"),
            "chosen_recall": threshold.get("recall"),
            "never_yes": is_never_yes(threshold["threshold"]),
        }
    return out
