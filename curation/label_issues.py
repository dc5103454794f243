"""Label issues: which yes/no labels an out-of-sample P(yes) says are likely wrong (cleanlab).

cleanlab's confident learning does the finding: ``cleanlab.filter.find_label_issues``
(``filter_by="prune_by_noise_rate"``) on the given labels and ``pred_probs`` =
``[P(no), P(yes)]``. The score is ``1 - self_confidence``: the probability the
model gives the *other* answer (cleanlab's ``get_label_quality_scores`` with
``method="self_confidence"``, subtracted from 1 so that higher means more likely
wrong). The probabilities must be out-of-sample (a model that never trained on
the record); ``curation.curator.find_issues`` makes sure of that.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from curation.errors import DataError, require

#: Label order of cleanlab's ``pred_probs`` columns: 0 = "no", 1 = "yes".
CLASSES = ("no", "yes")
#: What ``label_issue_score`` is, in words (reports and docs/label-issues.md quote it).
SCORE_MEANING = (
    "1 - cleanlab self-confidence: the out-of-sample probability of the other answer "
    "(higher = more likely mislabelled)"
)


@dataclass(frozen=True)
class LabelIssues:
    """cleanlab's verdict on each record: flagged or not, and a score."""

    flagged: list[bool]
    scores: list[float]  # 1 - P(given label): higher = more likely wrong

    @property
    def flagged_indices(self) -> list[int]:
        """Indices of the flagged records, highest score first."""
        return sorted(
            (i for i, f in enumerate(self.flagged) if f), key=lambda i: (-self.scores[i], i)
        )


def find_label_issues(labels: Sequence[str], p_yes: Sequence[float]) -> LabelIssues:
    """Run cleanlab on yes/no ``labels`` and out-of-sample ``p_yes`` (one per record).

    Raises:
        DataError: lengths differ, a label is not "yes"/"no", a probability is not in
            [0, 1], or only one answer occurs (cleanlab needs both to estimate noise).
        MissingDependencyError: cleanlab is not installed (``falldown-curate[cleanlab]``).
    """
    if len(labels) != len(p_yes):
        raise DataError(f"{len(labels)} labels but {len(p_yes)} probabilities")
    bad = [(i, lab) for i, lab in enumerate(labels) if lab not in CLASSES]
    if bad:
        raise DataError(f"labels must be 'yes' or 'no'; record #{bad[0][0]} has {bad[0][1]!r}")
    odd = [i for i, p in enumerate(p_yes) if not (math.isfinite(p) and 0 <= p <= 1)]
    if odd:
        raise DataError(f"P(yes) of record #{odd[0]} is {p_yes[odd[0]]!r}, not in [0, 1]")
    present = set(labels)
    if len(present) < 2:
        only = next(iter(present), "nothing")
        raise DataError(
            f"every label is {only!r}: cleanlab needs both 'yes' and 'no' labels to tell a "
            "wrong label from the class itself. Fix: add samples of the other answer "
            "(curate ingest), then run find-issues again."
        )
    filt = require("cleanlab.filter", "cleanlab")
    rank = require("cleanlab.rank", "cleanlab")
    import numpy as np

    y = np.array([CLASSES.index(lab) for lab in labels])
    p = np.clip(np.asarray(p_yes, dtype=float), 0.0, 1.0)
    pred_probs = np.stack([1.0 - p, p], axis=1)
    issues = filt.find_label_issues(y, pred_probs, filter_by="prune_by_noise_rate")
    quality = rank.get_label_quality_scores(y, pred_probs, method="self_confidence")
    return LabelIssues([bool(f) for f in issues], [float(1.0 - q) for q in quality])


@dataclass(frozen=True)
class FlagQuality:
    """Precision and recall of a flagged set against the known wrong labels."""

    flagged: int
    planted: int
    hits: int

    @property
    def precision(self) -> float | None:
        return self.hits / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.hits / self.planted if self.planted else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "flagged": self.flagged,
            "planted": self.planted,
            "hits": self.hits,
            "precision": self.precision,
            "recall": self.recall,
        }


def flag_quality(flagged: Collection[str], planted: Collection[str]) -> FlagQuality:
    """How well ``flagged`` (ids) finds ``planted`` (ids of labels known to be wrong)."""
    hits = len(set(flagged) & set(planted))
    return FlagQuality(len(set(flagged)), len(set(planted)), hits)
