"""The task question and its paraphrases (``configs/questions.yaml``, package default)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.errors import ConfigError, UsageError

#: The task question, as the model is asked it (the default of predict and synthetic data).
TASK_QUESTION = "Is anyone falling in this image?"
#: Package data: the default paraphrases, found the same way from any current folder.
DEFAULT_QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "questions.yaml"


class QuestionTemplates(BaseModel):
    """Paraphrases of the task question; folder images get one each."""

    model_config = ConfigDict(extra="forbid")
    questions: list[str] = Field(min_length=1)

    @field_validator("questions")
    @classmethod
    def _no_blank_question(cls, questions: list[str]) -> list[str]:
        for i, q in enumerate(questions):
            if not q.strip():
                raise ValueError(f"question #{i} is empty (train refuses an empty question)")
        return questions


_EXAMPLE = 'questions:\n  - "Is anyone falling in this image?"'


def load_questions(path: str | Path | None = None) -> QuestionTemplates:
    """Read a question file (default: the package's paraphrases, independent of the cwd)."""
    path = Path(path) if path is not None else DEFAULT_QUESTIONS_FILE
    from curation._io import not_a_file, path_kind

    kind = path_kind(path, "--questions")
    if kind != "file":
        raise UsageError(
            f"question template file {not_a_file(kind)}: {path}. Fix: --questions FILE.yaml holding\n{_EXAMPLE}"
        )
    from curation._yaml import read_yaml

    data = read_yaml(path, f"Fix: write it as\n{_EXAMPLE}")
    try:
        return QuestionTemplates.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"{path}: {problems}. Fix: a non-empty list of questions, e.g.\n{_EXAMPLE}"
        ) from None


def question_key(text: str) -> str:
    """A question compared as people read it: case, spacing and punctuation ignored."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


@functools.cache
def _task_keys() -> frozenset[str]:
    return frozenset(question_key(q) for q in [TASK_QUESTION, *load_questions().questions])


@functools.cache
def _task_spellings() -> dict[str, str]:
    spellings: dict[str, str] = {}
    for q in [TASK_QUESTION, *load_questions().questions]:
        spellings.setdefault(question_key(q), q)
    return spellings


def canonical_question(text: str) -> str:
    """The task question (or paraphrase) as the model was trained on it, where ``text`` is
    one in another case, spacing or punctuation; any other question unchanged. The
    operating point is chosen on these spellings, so a task question is scored with them."""
    return _task_spellings().get(question_key(text), text)


def is_task_question(text: str) -> bool:
    """True for the task question or one of its default paraphrases."""
    return question_key(text) in _task_keys()


def same_question_key(text: str) -> str:
    """Key under which two questions count as one: every task paraphrase maps to one key."""
    return "<task question>" if is_task_question(text) else question_key(text)
