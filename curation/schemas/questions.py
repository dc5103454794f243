"""The question template file (``configs/questions.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.errors import ConfigError, UsageError


class QuestionTemplates(BaseModel):
    """Paraphrases of the task question; folder images get one each."""

    model_config = ConfigDict(extra="forbid")
    questions: list[str] = Field(min_length=1)


def load_questions(path: str | Path) -> QuestionTemplates:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"question template file not found: {path}")
    try:
        return QuestionTemplates.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
