"""Distractor questions: questions about task images whose answer is "no" whatever the label.

A mix whose task images are only ever asked the task question lets a model learn
"a scene like these -> the fall answer", whatever it is asked: asked "Is there a
cat?" about a fall scene, it says "yes". ``curate mix`` therefore asks a share of
the train split's general questions about task images instead, from a list of
things no task image shows (``curation/data/distractors.yaml``), with the answer
"no". Each question is a template with a thing ("Is there {thing} in this image?"
with "a giraffe").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation import defaults
from curation.errors import ConfigError, UsageError
from curation.record_types import ExportRecord

#: Package data: the default templates and things (configs/distractors.yaml is a copy to edit).
DEFAULT_DISTRACTORS_FILE = Path(__file__).resolve().parent / "data" / "distractors.yaml"
#: The share of the train split's general records that are distractor questions by default.
DEFAULT_DISTRACTOR_SHARE = defaults.DISTRACTOR_SHARE
#: The ``source`` of a distractor record (manifest, provenance and the composition table).
DISTRACTOR_SOURCE = "distractor"
_EXAMPLE = 'templates:\n  - "Is there {thing} in this image?"\nthings:\n  - "a giraffe"'


class DistractorQuestions(BaseModel):
    """Templates with one ``{thing}`` each, and the things no task image shows."""

    model_config = ConfigDict(extra="forbid")
    templates: list[str] = Field(min_length=1)
    things: list[str] = Field(min_length=1)

    @field_validator("templates")
    @classmethod
    def _one_slot(cls, templates: list[str]) -> list[str]:
        for i, t in enumerate(templates):
            rest = t.replace("{thing}", "", 1)
            if t.count("{thing}") != 1 or "{" in rest or "}" in rest:
                raise ValueError(f"template #{i} {t!r} must hold '{{thing}}' once, no other braces")
        return templates

    @field_validator("things")
    @classmethod
    def _no_blank_thing(cls, things: list[str]) -> list[str]:
        for i, thing in enumerate(things):
            if not thing.strip() or "{" in thing or "}" in thing:
                raise ValueError(f"thing #{i} {thing!r} is empty or holds a brace")
        return things

    def questions(self) -> list[str]:
        """Every template with every thing, templates first (a fixed order)."""
        return [t.replace("{thing}", thing) for t in self.templates for thing in self.things]


def load_distractors(path: str | Path | None = None) -> DistractorQuestions:
    """Read a distractor file (default: the package's).

    Raises:
        UsageError: ``path`` is not a regular file.
        ConfigError: bad YAML, a template without its one ``{thing}``, or a question that is
            the task question (its answer is the label, not "no").
    """
    from curation._io import not_a_file, path_kind
    from curation._yaml import read_yaml
    from curation.schemas.questions import is_task_question

    path = Path(path) if path is not None else DEFAULT_DISTRACTORS_FILE
    kind = path_kind(path, "--distractors")
    if kind != "file":
        raise UsageError(
            f"distractor file {not_a_file(kind)}: {path}. Fix: --distractors FILE.yaml holding"
            f"\n{_EXAMPLE}"
        )
    data = read_yaml(path, f"Fix: write it as\n{_EXAMPLE}")
    try:
        found = DistractorQuestions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}. Fix: write it as\n{_EXAMPLE}") from None
    task = [q for q in found.questions() if is_task_question(q)]
    if task:
        raise ConfigError(
            f"{path}: {task[0]!r} is the task question: its answer is the image's label, not "
            "'no'. Fix: name things no task image shows (animals, vehicles), not people."
        )
    return found


def check_distractor_share(share: float) -> None:
    """Raises: UsageError: ``share`` outside [0, 1]."""
    if not 0 <= share <= 1:
        raise UsageError(
            "--distractor-share must be between 0 and 1 (a share of the train split's general "
            f"records), got {share:g}. Fix: e.g. --distractor-share 0.1, or 0 for none"
        )


def distractor_records(
    task: Sequence[ExportRecord], n: int, questions: Sequence[str], rng: random.Random
) -> list[ExportRecord]:
    """``n`` records asking ``questions`` about the images of ``task``, each answered "no".

    Images are drawn without replacement while they last (then again), both answers alike;
    each gets a question drawn from ``questions``.
    """
    if not task or not questions or n <= 0:
        return []
    order: list[int] = []
    while len(order) < n:
        order += rng.sample(range(len(task)), min(len(task), n - len(order)))
    out = []
    for k, i in enumerate(order):
        base = task[i]
        q = rng.randrange(len(questions))
        out.append(
            ExportRecord(
                base.image,
                questions[q],
                ("no",),
                source=DISTRACTOR_SOURCE,
                original_id=f"{base.original_id or k}/distractor-{q}",
                part="general",
                answer_type="yes/no",
                group=base.group,
            )
        )
    return out
