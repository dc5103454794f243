"""The two scene renderers and the question-following check's counting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.errors import UsageError
from curation.evaluate import following
from curation.schemas.questions import TASK_QUESTION, load_questions
from curation.synthetic import RENDERERS, get_renderer, render_scenes


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_each_renderer_is_deterministic_and_labels_change_the_pixels(name: str) -> None:
    render = get_renderer(name).render
    a = render(True, 7, 64)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert render(True, 7, 64).tobytes() == a.tobytes()
    assert render(False, 7, 64).tobytes() != a.tobytes()
    assert render(True, 8, 64).tobytes() != a.tobytes()


def test_the_renderers_draw_different_scenes() -> None:
    stick, clutter = (get_renderer(n).render(True, 3, 64) for n in ("stick", "clutter"))
    assert stick.tobytes() != clutter.tobytes()
    # clutter's rooms are textured and noisy: many more distinct colours than flat fills
    assert len(set(clutter.getdata())) > 10 * len(set(stick.getdata()))


def test_clutter_asks_three_paraphrases_from_the_question_file(tmp_path: Path) -> None:
    scenes = render_scenes(tmp_path, n_fall=12, n_no_fall=12, seed=1, size=32, renderer="clutter")
    asked = {s.question for s in scenes}
    paraphrases = set(load_questions().questions) - {TASK_QUESTION}
    assert len(asked) == 3 and asked <= paraphrases
    assert {s.fallen for s in scenes} == {True, False}
    assert all(s.path.is_file() for s in scenes)
    assert sorted(p.parent.name for p in tmp_path.glob("*/*.png"))[::12] == ["fall", "no_fall"]
    stick = render_scenes(tmp_path / "s", n_fall=2, n_no_fall=2, seed=1, size=32)
    assert {s.question for s in stick} == {TASK_QUESTION}


def test_an_unknown_renderer_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="clutter, stick"):
        render_scenes(tmp_path, 1, 1, renderer="photos")


def test_question_following_fails_a_model_that_says_yes_to_anything(monkeypatch) -> None:
    import curation.training.predict as predict

    images = [Path(f"{i}.png") for i in range(4)]
    answers = {
        "yes": ["yes", "Yes.", "yes", "yes"],
        "no": ["no", "no", "circle", "yes"],
        "garbage": ["circle", "blue", "no", "red"],  # never "yes", yet it follows nothing
    }
    for kind, said in answers.items():
        monkeypatch.setattr(predict, "answer", lambda model, imgs, qs, batch, s=said: s)
        result = following.question_following(object(), images)
        assert result.n_images == 4
        assert set(result.per_question) == set(following.UNRELATED_QUESTIONS)
        if kind == "yes":
            assert result.yes_rate == 1.0 and not result.passed
        elif kind == "garbage":
            assert result.yes_rate == 0.0 and result.no_rate == 0.25 and not result.passed
        else:
            one = result.per_question[following.UNRELATED_QUESTIONS[0]]
            assert one == {"yes": 0.25, "no": 0.5, "other": 0.25}
            assert result.passed and result.to_dict()["passed"] is True


def test_render_scenes_script_writes_a_valid_set_and_never_replaces_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import REPO

    from curation.validate import validate_files

    out = tmp_path / "scenes"
    cmd = [sys.executable, str(REPO / "pipelines" / "render_scenes.py"), str(out)]
    args = ["--per-class", "3", "--renderer", "clutter", "--size", "32"]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    ann = out / "annotations.json"
    records = json.loads(ann.read_text())
    assert [r["answer"] for r in records].count(["yes"]) == 3 and len(records) == 6
    assert validate_files([ann], out).ok
    before = ann.read_bytes()
    again = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    assert again.returncode != 0 and "exists already" in again.stderr
    assert ann.read_bytes() == before
