"""The question-following check: does the model answer the question, or just say "yes"?

A model trained on fall images with "yes" as the answer can learn "fall image
-> yes" whatever it is asked. Asked about something that is not in the
picture ("Is there a dog in this image?") on those same images, where the
truthful answer is "no", such a model still says "yes". General VQA data in
the mix is what teaches a model to read the question; this check measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.answers import to_yes_no
from curation.evaluate.metrics import COLLAPSE_NEGATIVE_YES

if TYPE_CHECKING:
    from curation.training.predict import LoadedModel

#: Questions whose truthful answer is "no" on every fall scene of both synthetic renderers,
#: in two vocabularies: easy-VQA's own words and forms (a triangle: neither renderer draws
#: one), and words easy-VQA never uses. None of them is among `curate mix`'s distractor
#: questions (curation/data/distractors.yaml), so the check measures what a model
#: generalised, not what it was shown.
FOLLOWING_QUESTIONS: dict[str, tuple[str, ...]] = {
    "easy-VQA's words": (
        "Is there a triangle in the image?",
        "Does the image contain a triangle?",
        "Is a triangle present?",
    ),
    "unseen words": (
        "Is there a cat in this image?",
        "Is there a dog in this image?",
        "Is there a car in the picture?",
    ),
}
UNRELATED_QUESTIONS: tuple[str, ...] = tuple(q for qs in FOLLOWING_QUESTIONS.values() for q in qs)
#: Saying "yes" to more than this share of them fails the check (the collapse alarm's line);
#: so does saying "no" to less than the rest (answers that are neither follow nothing).
MAX_UNRELATED_YES = COLLAPSE_NEGATIVE_YES


@dataclass
class FollowingResult:
    """Answers to unrelated questions on images where the truth is "no"."""

    n_images: int
    per_question: dict[str, dict[str, float]]  # question -> {"yes": rate, "no": ..., "other": ...}

    @property
    def yes_rate(self) -> float:
        rates = [v["yes"] for v in self.per_question.values()]
        return sum(rates) / len(rates) if rates else 0.0

    @property
    def no_rate(self) -> float:
        rates = [v["no"] for v in self.per_question.values()]
        return sum(rates) / len(rates) if rates else 0.0

    @property
    def passed(self) -> bool:
        """Mostly the truthful "no": a model answering "blue" to "Is there a dog?" no more
        follows the question than one answering "yes"."""
        return self.yes_rate <= MAX_UNRELATED_YES and self.no_rate >= 1 - MAX_UNRELATED_YES

    def by_vocabulary(self) -> dict[str, dict[str, float]]:
        """Mean yes / no rates per vocabulary of ``FOLLOWING_QUESTIONS`` that was asked."""
        out: dict[str, dict[str, float]] = {}
        for name, questions in FOLLOWING_QUESTIONS.items():
            asked = [self.per_question[q] for q in questions if q in self.per_question]
            if asked:
                out[name] = {k: sum(a[k] for a in asked) / len(asked) for k in ("yes", "no")}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "questions": self.per_question,
            "vocabularies": self.by_vocabulary(),
            "yes_rate": self.yes_rate,
            "no_rate": self.no_rate,
            "max_yes_rate": MAX_UNRELATED_YES,
            "min_no_rate": 1 - MAX_UNRELATED_YES,
            "passed": self.passed,
        }


def question_following(
    loaded: LoadedModel,
    images: Sequence[Path],
    questions: Sequence[str] = UNRELATED_QUESTIONS,
    batch_size: int = 32,
) -> FollowingResult:
    """Ask each unrelated question about every image; count yes / no / other answers.

    ``images`` should be ones where every question's true answer is "no" (the
    task's fall images, for the default questions). Answers are generated, as
    ``curate predict`` gives them, and mapped by the one answer rule.
    """
    from curation.training.predict import answer

    per_question: dict[str, dict[str, float]] = {}
    for q in questions:
        said = [to_yes_no(a) for a in answer(loaded, list(images), [q] * len(images), batch_size)]
        n = max(1, len(said))
        per_question[q] = {k: said.count(k) / n for k in ("yes", "no", "other")}
    return FollowingResult(len(images), per_question)


def check_question_following(
    checkpoint: str | Path,
    images: Sequence[Path],
    questions: Sequence[str] = UNRELATED_QUESTIONS,
    config: str | Path | None = None,
    trust_checkpoint: bool = False,
) -> FollowingResult:
    """``question_following`` for a checkpoint file (loads it the way ``curate predict`` does)."""
    from curation.training.predict import load_model

    return question_following(load_model(checkpoint, config, trust_checkpoint), images, questions)
