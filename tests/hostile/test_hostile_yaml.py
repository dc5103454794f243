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
