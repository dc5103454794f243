"""Every YAML file a user edits refuses a key given twice (PyYAML keeps the last silently).

One reader (``curation._yaml``) serves the run config, the question file, the
class map and ``curate.yaml``; each case here names the file, the key, its line
and the fix, with no traceback and nothing written.
"""

from __future__ import annotations

from pathlib import Path

from _harness import expect, invoke, untouched
from conftest import SAMPLE

from curation.export import ExportOptions, export_task


def test_a_run_config_with_a_section_twice_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    config = out / "lavis.yaml"
    # a second run: section (e.g. pasted from a tutorial) replaced the first one silently
    config.write_text(config.read_text() + "run:\n  max_epoch: 1000\n")
    with untouched(tmp_path):
        outcome = invoke(["train", str(config)])
    expect(outcome, 1, str(config), "the key 'run' is given twice", "Fix:")
    assert not (out / "runs").exists()


def test_a_question_file_with_questions_twice_is_refused(tmp_path: Path) -> None:
    questions = tmp_path / "q.yaml"
    questions.write_text('questions:\n  - "Is anyone falling?"\nquestions:\n  - "Is it?"\n')
    with untouched(tmp_path):
        outcome = invoke(
            ["ingest", str(SAMPLE), "--dataset", "yaml-twice", "--questions", str(questions)]
        )
    expect(outcome, 1, str(questions), "the key 'questions' is given twice (line 3)")


def test_a_project_file_with_a_key_twice_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "curate.yaml").write_text(
        "database_uri: mongodb://127.0.0.1:1/a\ndatabase_uri: mongodb://127.0.0.1:2/b\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    with untouched(tmp_path):
        outcome = invoke(["check", "--dataset", "anything"])
    expect(outcome, 1, "curate.yaml", "the key 'database_uri' is given twice (line 2)")


# --- bounded: an alias bomb or an endless file is refused before anything is built ----------


def alias_bomb(levels: int = 6, width: int = 10) -> str:
    """``levels`` anchors, each a list of ``width`` aliases to the one before: width**levels
    values once expanded, from a few hundred bytes of YAML."""
    lines = [f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "bomb:\n" + "\n".join(lines) + "\n"


def test_an_alias_bomb_in_a_run_config_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    config = out / "lavis.yaml"
    config.write_text(alias_bomb() + config.read_text())
    with untouched(tmp_path):
        outcome = invoke(["train", str(config)])
    expect(outcome, 1, str(config), "aliases (*name) expand to more than 200,000 values", "Fix:")


def test_an_alias_that_holds_itself_is_refused(tmp_path: Path) -> None:
    class_map = tmp_path / "class_map.yaml"
    class_map.write_text("classes: &c\n  fall: [*c]\n")
    with untouched(tmp_path):
        outcome = invoke(
            [
                "mix",
                "--task",
                SAMPLE / "annotations.json",
                "--out",
                tmp_path / "m",
                "--vqav2-ratio",
                "0",
                "--class-map",
                class_map,
            ]
        )
    expect(outcome, 1, str(class_map), "the value anchored at line 1 holds an alias to itself")


def test_an_alias_bomb_in_an_override_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    flow = alias_bomb().replace("\n  ", ", ").replace("bomb:, ", "{").rstrip("\n") + "}"
    with untouched(tmp_path):
        outcome = invoke(["train", str(out / "lavis.yaml"), f"run.bomb={flow}"])
    expect(outcome, 2, "override 'run.bomb'", "expand to more than 200,000 values")


def test_a_yaml_file_larger_than_any_config_is_refused_unread(tmp_path: Path) -> None:
    questions = tmp_path / "q.yaml"
    questions.write_text("questions:\n" + '  - "Is anyone falling?"\n' * 200_000)  # 5 MB
    with untouched(tmp_path):
        outcome = invoke(
            ["ingest", str(SAMPLE), "--dataset", "yaml-big", "--questions", str(questions)]
        )
    expect(outcome, 2, str(questions), "more than the 4,194,304 such a file can hold")
