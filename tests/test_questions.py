"""The task question and its paraphrases: one list, found from any folder."""

from __future__ import annotations

from pathlib import Path

import yaml

from curation.schemas.questions import (
    DEFAULT_QUESTIONS_FILE,
    TASK_QUESTION,
    is_task_question,
    load_questions,
    same_question_key,
)

REPO = Path(__file__).resolve().parent.parent


def test_project_copy_equals_the_packaged_default() -> None:
    shipped = yaml.safe_load((REPO / "configs" / "questions.yaml").read_text())
    assert shipped == yaml.safe_load(DEFAULT_QUESTIONS_FILE.read_text())


def test_default_does_not_depend_on_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    here = load_questions().questions
    monkeypatch.chdir(tmp_path)
    assert load_questions().questions == here
    assert TASK_QUESTION in here


def test_paraphrases_are_one_question() -> None:
    assert is_task_question("is someone falling in this picture")
    assert same_question_key("Has anyone fallen in this image?") == same_question_key(TASK_QUESTION)
    assert not is_task_question("Is there a dog?")
    assert same_question_key("Is there a dog?") != same_question_key(TASK_QUESTION)
