"""Hostile input to curate eval: outputs over its own data, the per-kind table and plots,
provenance sidecars.

Every test reproduces one report and checks the promise it broke: the exit code,
the problem named with its fix, no traceback, inputs untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _data import write_frame_set, write_json
from _harness import expect, invoke, untouched


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames: 2 datasets x 3 subjects x 4 frames; odd frames are "no" (walk, lie_down)."""
    return write_frame_set(tmp_path_factory.mktemp("eval-frames"))


@pytest.fixture
def export(trained_sample: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained export (tests may change its files)."""
    copy = tmp_path / "ex"
    shutil.copytree(trained_sample, copy)
    return copy


def _report(task: dict, general: dict | None = None) -> object:
    from curation.evaluate.report import EvalReport

    return EvalReport("c.pth", "test.json", ".", 2, task, general or {}, False, [])


def test_plots_show_kinds_and_answer_types_as_is(tmp_path: Path) -> None:
    # a negative_kind "$\\foo$" (a valid string in an annotation file) made matplotlib parse
    # it as mathtext: curate eval ended in a ValueError traceback after writing eval.json
    pytest.importorskip("matplotlib")
    from curation.evaluate.plots import write_plots
    from curation.mix import MixPlan, composition_png
    from curation.record_types import ExportRecord

    kinds = {
        "$\\foo$": {"n": 1, "false_alarms": 1, "rate": 1.0},
        "a|b": {"n": 1, "false_alarms": 0, "rate": 0.0},
    }
    task = {"false_alarms_by_kind": kinds, "misses_by_class": {}}
    general = {"per_answer_type": {"$\\bar$": 0.5}}
    written = write_plots(tmp_path, _report(task, general))  # type: ignore[arg-type]
    assert {p.name for p in written} >= {"false_alarms_by_kind.png", "accuracy_by_type.png"}
    rec = ExportRecord(tmp_path / "x.png", "q?", ("a",), source="$\\qux$", part="general")
    plan = MixPlan({"train": [rec], "val": [], "test": []}, {}, 0.5, 0.5, 0)
    assert (composition_png(plan) or b"").startswith(b"\x89PNG")


def test_eval_markdown_keeps_a_kind_with_a_bar_in_one_cell() -> None:
    from curation.evaluate.run import per_kind_markdown

    kinds = {"a|b\nc": {"n": 1, "false_alarms": 1, "rate": 1.0}}
    lines = per_kind_markdown({"false_alarms_by_kind": kinds, "misses_by_class": {}})
    row = next(line for line in lines if line.startswith("| no |"))
    assert row.count("|") - row.count("\\|") == 6, row  # five cells, the bar escaped


def test_eval_of_a_plain_annotation_file_reads_its_negative_kinds(frames: Path) -> None:
    # without a provenance sidecar every record was scored without its kind: the per-kind
    # table the docs promise came out empty for a frame annotation file
    from curation.evaluate.run import load_provenance

    recs = json.loads((frames / "task.json").read_text())
    prov = load_provenance(frames / "task.json", recs)
    assert prov[1]["negative_kind"] == "lie_down" and prov[1]["part"] == "task"
    assert "negative_kind" not in prov[0]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"a": 1}',
        '[{"instance_id": [1]}]',
        '[{"instance_id": 0, "negative_kind": ["x"]}]',
    ],
)
def test_a_broken_provenance_sidecar_is_one_clear_error(tmp_path: Path, content: str) -> None:
    # it was a JSONDecodeError (or TypeError: unhashable list) traceback
    from curation.errors import DataError
    from curation.evaluate.run import load_provenance

    data = write_json(tmp_path / "test.json", [{"instance_id": 0}])
    (tmp_path / "test.provenance.json").write_text(content)
    with pytest.raises(DataError, match=r"test\.provenance\.json.*Fix:"):
        load_provenance(data, [{"instance_id": 0}])


def test_eval_never_writes_over_its_own_data(export: Path, tmp_path: Path) -> None:
    ckpt = export / "runs" / "r1" / "checkpoint_0.pth"
    data_dir = tmp_path / "evd"
    data_dir.mkdir()
    shutil.copy(export / "test.json", data_dir / "eval.json")
    with untouched(data_dir, export):
        outcome = invoke(
            [
                "eval",
                ckpt,
                "--data",
                data_dir / "eval.json",
                "--image-root",
                export / "images",
                "--out",
                data_dir,
            ]
        )
        expect(outcome, 2, "would replace the input", "eval.json")
        expect(
            invoke(["eval", ckpt, "--data", export / "test.json", "--out", export / "images"]),
            2,
            "inside the image root",
        )
        expect(
            invoke(["eval", ckpt, "--data", export / "test.json", "--out", export / "test.json"]),
            2,
            "is a file, not a folder",
        )
