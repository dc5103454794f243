"""P(yes) metrics: ranking, calibration and the threshold at a false-alarm budget."""

from __future__ import annotations

import math
import random

import pytest

from curation.evaluate.metrics import (
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
    candidates = sorted({*scores, math.nextafter(max(scores), 2.0)})
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
