"""cleanlab on P(yes) (``curation.label_issues``) and the K-fold dealing (``curation.split``)."""

from __future__ import annotations

import random
import sys
from collections import Counter

import pytest

from curation.errors import DataError, MissingDependencyError, UsageError
from curation.label_issues import find_label_issues, flag_quality
from curation.split import assign_folds

pytest.importorskip("cleanlab")


def planted(n: int, flips: int, seed: int) -> tuple[list[str], list[float], set[int]]:
    """Labels with ``flips`` of them wrong, and a confident, correct model's P(yes)."""
    rng = random.Random(seed)
    truth = ["yes" if i % 2 else "no" for i in range(n)]
    wrong = set(rng.sample(range(n), flips))
    labels = [("no" if t == "yes" else "yes") if i in wrong else t for i, t in enumerate(truth)]
    p_yes = [rng.uniform(0.8, 0.99) if t == "yes" else rng.uniform(0.01, 0.2) for t in truth]
    return labels, p_yes, wrong


def test_a_confident_correct_model_flags_exactly_the_planted_flips() -> None:
    labels, p_yes, wrong = planted(200, 20, seed=1)
    issues = find_label_issues(labels, p_yes)
    # cleanlab flags as many as it estimates are wrong: no false flag, nearly every flip
    flagged = set(issues.flagged_indices)
    assert flagged <= wrong
    assert len(flagged) >= 0.9 * len(wrong)
    # the score is P(the other answer): every flip scores above every correct label
    assert min(issues.scores[i] for i in wrong) > max(
        s for i, s in enumerate(issues.scores) if i not in wrong
    )
    for lab, p, s in zip(labels, p_yes, issues.scores, strict=True):
        assert s == pytest.approx(1 - p if lab == "yes" else p)
    ranked = issues.flagged_indices
    assert [issues.scores[i] for i in ranked] == sorted(
        (issues.scores[i] for i in ranked), reverse=True
    )


def test_an_uninformative_model_flags_few() -> None:
    labels, _, wrong = planted(200, 20, seed=2)
    issues = find_label_issues(labels, [0.5] * len(labels))
    quality = flag_quality([str(i) for i in issues.flagged_indices], [str(i) for i in wrong])
    assert quality.flagged < len(labels) // 4


def test_flag_quality_counts() -> None:
    q = flag_quality(["a", "b", "c", "d"], ["b", "d", "e"])
    assert (q.hits, q.precision, q.recall) == (2, 0.5, 2 / 3)
    assert flag_quality([], ["x"]).precision is None


@pytest.mark.parametrize(
    ("labels", "p_yes", "needle"),
    [
        (["yes", "yes"], [0.2, 0.9], "every label is 'yes'"),
        (["yes", "maybe"], [0.2, 0.9], "'maybe'"),
        (["yes", "no"], [0.2], "2 labels but 1"),
        (["yes", "no"], [0.2, float("nan")], "not in [0, 1]"),
        (["yes", "no"], [1.5, 0.1], "not in [0, 1]"),
    ],
)
def test_bad_inputs_are_data_errors(labels: list[str], p_yes: list[float], needle: str) -> None:
    with pytest.raises(DataError, match=needle.replace("[", r"\[")):
        find_label_issues(labels, p_yes)


def test_without_cleanlab_the_error_says_what_to_install(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "cleanlab" or m.startswith("cleanlab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # import cleanlab -> ImportError
    with pytest.raises(MissingDependencyError, match=r"falldown-curate\[cleanlab\]"):
        find_label_issues(["yes", "no"], [0.9, 0.1])


def test_folds_keep_groups_together_and_are_balanced() -> None:
    rng = random.Random(3)
    keys = [f"g{rng.randrange(40)}" for _ in range(300)]  # 40 groups of uneven size
    for k in (2, 3, 5):
        folds = assign_folds(keys, k, seed=7)
        by_key: dict[str, set[int]] = {}
        for key, f in zip(keys, folds, strict=True):
            by_key.setdefault(key, set()).add(f)
        assert all(len(fs) == 1 for fs in by_key.values())
        sizes = Counter(folds)
        assert set(sizes) == set(range(k))
        assert max(sizes.values()) - min(sizes.values()) <= max(Counter(keys).values())
        assert assign_folds(keys, k, seed=7) == folds  # same seed, same folds
    assert assign_folds(keys, 3, seed=8) != assign_folds(keys, 3, seed=7)


@pytest.mark.parametrize("k", [1, 0, -2])
def test_fewer_than_two_folds_is_a_usage_error(k: int) -> None:
    with pytest.raises(UsageError, match="at least 2"):
        assign_folds(["a", "b", "c"], k)


def test_find_issues_warns_when_the_scoring_models_barely_learned() -> None:
    """Folds trained too briefly give near-random P(yes); cleanlab still flags some, and
    the user was not told the flags were noise."""
    import io

    from rich.console import Console

    from curation import _render
    from curation.curator.find_issues import FindIssuesResult, ScoredSample

    def result(p_yes: list[float], labels: list[str]) -> FindIssuesResult:
        samples = [
            ScoredSample(str(i), f"{i}.png", lab, p, 0.0, False, "fold 1")
            for i, (lab, p) in enumerate(zip(labels, p_yes, strict=True))
        ]
        return FindIssuesResult("d", "folds", samples)

    labels, good, _ = planted(100, 10, seed=2)
    rng = random.Random(3)
    noise = [rng.uniform(0.45, 0.55) for _ in labels]
    printed = {}
    for name, probs in (("good", good), ("noise", noise)):
        out = io.StringIO()
        _render.label_issues_result(Console(file=out, width=200), result(probs, labels))
        printed[name] = out.getvalue()
    assert result(good, labels).roc_auc > 0.8 and "barely learned" not in printed["good"]
    assert result(noise, labels).barely_learned
    assert "barely learned the task" in printed["noise"] and "run.max_epoch" in printed["noise"]
