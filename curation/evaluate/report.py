"""The evaluation report: one dataclass and one table of figures that everything reads.

``eval.json`` is ``EvalReport.to_dict()``. The terminal table, ``eval.md``,
``curate eval --compare`` and the yes-rate plot all list ``FIGURES``, so a
figure added here shows up everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.errors import DataError


@dataclass(frozen=True)
class Figure:
    """One number of the report: where it lives in eval.json and how people call it."""

    key: str  # dotted path into eval.json
    label: str
    # "rate" (a percentage), "number" (3 decimals), "threshold" (3 significant digits: a
    # P(yes) threshold can be 1e-14) or "flag"
    kind: str = "rate"
    plot: str = ""  # the plot that shows it, if any


FIGURES: tuple[Figure, ...] = (
    Figure("task.yes_rate", "task yes-rate", plot="yes_rate"),
    Figure("task.true_yes_rate", "task true yes-rate", plot="yes_rate"),
    Figure("task.yes_rate_negatives", "task yes-rate on negatives", plot="yes_rate"),
    Figure("task.accuracy", "task accuracy"),
    Figure("task.balanced_accuracy", "task balanced accuracy"),
    Figure("task.f1_yes", "task F1 (yes)"),
    Figure("task.other_rate", "task answers that are neither yes nor no"),
    Figure("task.roc_auc", "task ROC-AUC of P(yes)", kind="number"),
    Figure("task.pr_auc", "task PR-AUC of P(yes)", kind="number"),
    Figure("task.ece", "task calibration error (ECE) of P(yes)", kind="number"),
    Figure("task.operating_point.threshold", "operating point: P(yes) threshold", kind="threshold"),
    Figure("task.operating_point.recall", "operating point: recall (falls caught)"),
    Figure("task.operating_point.false_alarm_rate", "operating point: false-alarm rate"),
    Figure("general.vqa_accuracy", "general VQA accuracy"),
    Figure("general.majority_baseline", "general majority-answer baseline"),
    Figure("collapse_alarm", "collapse alarm", kind="flag"),
)


def threshold_text(value: float | None) -> str:
    """A P(yes) threshold as every report shows it (eval.md, eval's table, --compare, predict).

    6 significant digits, unless that would show 0 or 1 for what is not (1e-14 and
    0.99999994 are written out whole: "P(yes) >= 0.000" reads as "yes to everything");
    a threshold above 1 is eval's "never yes" point and reads "never yes" (its digits,
    1.0000000000000002, say nothing to a reader).
    """
    if value is None:
        return "n/a"
    if value > 1:
        return "never yes"
    text = f"{value:.6g}"
    return repr(value) if text in ("0", "1") and value not in (0.0, 1.0) else text


def yes_rule(value: float) -> str:
    """When a threshold answers yes, in words: "P(yes) >= 0.000341", or "never yes (...)"."""
    if value > 1:
        return (
            "never yes (the threshold is above 1: no P(yes) threshold met the false-alarm "
            "budget where it was chosen)"
        )
    return f"P(yes) >= {threshold_text(value)}"


def lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


@dataclass
class EvalReport:
    """Everything ``curate eval`` measured on one split."""

    checkpoint: str
    data: str
    image_root: str
    n: int
    task: dict[str, Any]
    general: dict[str, Any]
    collapse_alarm: bool
    collapse_reasons: list[str]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    fiftyone: dict[str, Any] | None = None
    #: sha256 of the data file scored: ``eval --compare`` tells two files of one name apart
    data_sha256: str | None = None

    def get(self, dotted: str) -> Any:
        return lookup(self.to_dict(), dotted)

    def __getitem__(self, key: str) -> Any:  # eval.json's top-level keys, as before
        return self.to_dict()[key]

    def figures(self) -> list[tuple[Figure, Any]]:
        data = self.to_dict()
        return [(f, lookup(data, f.key)) for f in FIGURES]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "checkpoint": self.checkpoint,
            "data": self.data,
            "image_root": self.image_root,
            "n": self.n,
            "task": self.task,
            "general": self.general,
            "collapse_alarm": self.collapse_alarm,
            "collapse_reasons": self.collapse_reasons,
            "predictions": self.predictions,
        }
        if self.fiftyone is not None:
            out["fiftyone"] = self.fiftyone
        if self.data_sha256 is not None:
            out["data_sha256"] = self.data_sha256
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "eval.json") -> EvalReport:
        """Read an ``eval.json`` body back; anything else is a ``DataError`` naming ``source``."""
        needed = ("task", "general", "collapse_alarm")
        if not isinstance(data, dict) or any(k not in data for k in needed):
            raise DataError(
                f"{source}: not an eval.json written by curate eval (it needs the keys "
                f"{', '.join(needed)}). Fix: pass the eval.json files of two runs."
            )
        return cls(
            checkpoint=str(data.get("checkpoint", "")),
            data=str(data.get("data", "")),
            image_root=str(data.get("image_root", "")),
            n=int(data.get("n", 0) or 0),
            task=data["task"] if isinstance(data["task"], dict) else {},
            general=data["general"] if isinstance(data["general"], dict) else {},
            collapse_alarm=bool(data["collapse_alarm"]),
            collapse_reasons=list(data.get("collapse_reasons") or []),
            predictions=list(data.get("predictions") or []),
            fiftyone=data.get("fiftyone"),
            data_sha256=data.get("data_sha256"),
        )
