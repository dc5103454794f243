"""The task question and its paraphrases: one list, found from any folder."""

from __future__ import annotations

from pathlib import Path

import yaml

from curation.schemas.questions import (
    DEFAULT_QUESTIONS_FILE,
    TASK_QUESTION,
    is_task_question,
    load_questions,
    question_key,
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


def test_the_project_s_distractor_list_equals_the_packaged_default() -> None:
    from curation.distractors import DEFAULT_DISTRACTORS_FILE

    shipped = yaml.safe_load((REPO / "configs" / "distractors.yaml").read_text())
    assert shipped == yaml.safe_load(DEFAULT_DISTRACTORS_FILE.read_text())


def test_distractors_are_neither_the_task_nor_the_following_check_s_questions() -> None:
    """The check must measure what a model generalised, not questions it was trained on."""
    from curation.distractors import load_distractors
    from curation.evaluate.following import UNRELATED_QUESTIONS

    distractors = load_distractors()
    assert not any(is_task_question(q) for q in distractors.questions())
    asked = {w for q in UNRELATED_QUESTIONS for w in question_key(q).split()}
    for thing in distractors.things:
        assert question_key(thing).split()[-1] not in asked, thing
    assert not {question_key(q) for q in distractors.questions()} & {
        question_key(q) for q in UNRELATED_QUESTIONS
    }
