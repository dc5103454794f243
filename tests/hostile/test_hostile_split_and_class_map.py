"""Cases a hostile new user found in the subject/group, class-map, per-kind eval and
multi-process surface (third attack round), each kept here.

Every test reproduces one report and checks the promise it broke: the exit code,
the problem named with its fix, no traceback, inputs untouched, no process left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _data import write_frame_set, write_json
from _harness import REPO, expect, invoke, untouched


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames: 2 datasets x 3 subjects x 4 frames; odd frames are "no" (walk, lie_down)."""
    return write_frame_set(tmp_path_factory.mktemp("attack3-frames"))


def _copy(frames: Path, dest: Path) -> list[dict]:
    dest.mkdir()
    recs = json.loads((frames / "task.json").read_text())
    for r in recs:
        (dest / r["image"]).write_bytes((frames / r["image"]).read_bytes())
    return recs


def _export(frames: Path, out: Path, *extra: str) -> list[str]:
    task = str(frames / "task.json")
    return ["export", "--task", task, "--out", str(out), "--model", "blip2_t5", *extra]


# --- --split-file ----------------------------------------------------------------------


def test_a_split_named_twice_in_a_json_split_file_is_a_usage_error(
    frames: Path, tmp_path: Path
) -> None:
    # json.loads kept the last "train": the first one's groups vanished and the error
    # blamed the file for not listing groups it does list
    path = tmp_path / "split.json"
    path.write_text(
        '{"train": ["le2i/0", "le2i/1", "up_fall/0"], "train": ["up_fall/1"], '
        '"val": ["le2i/2"], "test": ["up_fall/2"]}'
    )
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_export(frames, out, "--split-file", str(path)))
    expect(outcome, 2, "the key 'train' appears twice", "Fix:")


def test_split_file_keys_that_match_no_record_are_named(frames: Path, tmp_path: Path) -> None:
    # numbers where the records' subjects read "le2i/0": the error now says the file's keys
    # match nothing, not only which groups are missing
    path = write_json(tmp_path / "split.json", {"train": [0, 1], "val": [2], "test": [3]})
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_export(frames, out, "--split-file", str(path)))
    expect(outcome, 1, "'le2i/0'", "the file's key(s) '0', '1', '2', '3' match no record", "Fix:")


@pytest.mark.parametrize("what", ["fifo", "loop"])
def test_a_split_file_or_class_map_that_is_no_regular_file_is_named(
    frames: Path, tmp_path: Path, what: str
) -> None:
    path = tmp_path / "split.csv"
    if what == "fifo":
        os.mkfifo(path)
    else:
        os.symlink(tmp_path / "other", path)
        os.symlink(path, tmp_path / "other")
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_export(frames, out, "--split-file", str(path)))
    expect(outcome, 2, "is not a regular file", "Fix:")
    assert "not found" not in outcome.output
    args = ["mix", "--task", str(frames / "task.json"), "--out", str(out)]
    args += ["--vqav2-ratio", "0", "--class-map", str(path)]
    with untouched(frames, tmp_path):
        outcome = invoke(args)
    expect(outcome, 2, "class map is not a regular file", "Fix:")


# --- annotation frame keys -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [(["a", "b"], 'got array ["a", "b"]'), ({"a": 1}, 'got object {"a": 1}'), (3.5, "got number")],
)
def test_a_frame_key_of_the_wrong_type_says_which_type(
    frames: Path, tmp_path: Path, value: object, shown: str
) -> None:
    # the message said "got str" for a list: the value was turned into text before naming it
    root = tmp_path / "typed"
    recs = _copy(frames, root)
    recs[3]["subject"] = value
    write_json(root / "task.json", recs)
    out = tmp_path / "out"
    with untouched(root):
        outcome = invoke(_export(root, out))
    expect(outcome, 1, "record #3 (instance_id=3)", f"subject: {shown}", "Fix:")
    assert "got str" not in outcome.output


def test_an_over_long_integer_is_named_by_its_key(frames: Path, tmp_path: Path) -> None:
    # the fix named instance_id wherever the 5,000-digit integer was
    root = tmp_path / "long"
    recs = _copy(frames, root)
    recs[3]["subject"] = "__LONG__"
    (root / "task.json").write_text(json.dumps(recs).replace('"__LONG__"', "9" * 5000))
    with untouched(root):
        outcome = invoke(["validate", root / "task.json"])
    expect(outcome, 1, "record #3", "subject: a value cannot be read", "write subject as")
    assert "instance_id as" not in outcome.output


def test_validate_knows_the_frame_keys(frames: Path) -> None:
    # 24 records drew 84 "unknown key" warnings for the keys the README invites
    with untouched(frames):
        outcome = invoke(["validate", frames / "task.json"])
    expect(outcome, 0, "0 warning(s)")
    assert "unknown key" not in outcome.output


# --- the class map ---------------------------------------------------------------------

_MIX = ["--vqav2-ratio", "0", "--hard-negative-share", "0.3", "--group-by", "video"]


def _mix(frames: Path, out: Path, class_map: Path) -> list[str]:
    task = str(frames / "task.json")
    return ["mix", "--task", task, "--out", str(out), *_MIX, "--class-map", str(class_map)]


def test_a_class_map_key_given_twice_is_refused(frames: Path, tmp_path: Path) -> None:
    # PyYAML keeps the last key: the second lookalike_kinds ([walk]) silently replaced the
    # first ([lie_down]) and the mix kept walking people as the "look-alike" negatives
    path = tmp_path / "map.yaml"
    path.write_text(
        "classes:\n"
        '  walk:     {id: 0, answer: "no", negative_kind: walk}\n'
        '  fall:     {id: 1, answer: "yes"}\n'
        '  lie_down: {id: 5, answer: "no", negative_kind: lie_down}\n'
        "lookalike_kinds: [lie_down]\n"
        "lookalike_kinds: [walk]\n"
    )
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_mix(frames, out, path))
    expect(outcome, 1, str(path), "the key 'lookalike_kinds' is given twice (line 6)", "Fix:")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("walk: {id: 0, answer: no, negative_kind: walk}", "classes.walk.answer"),
        ('walk: {id: true, answer: "no", negative_kind: walk}', "classes.walk.id"),
    ],
)
def test_yaml_booleans_in_a_class_map_are_explained(
    frames: Path, tmp_path: Path, line: str, needle: str
) -> None:
    # `id: true` was read as id 1 ("classes 'walk' and 'fall' share id 1"); `answer: no`
    # as false, with no word on why
    path = tmp_path / "map.yaml"
    path.write_text(
        f'classes:\n  {line}\n  fall: {{id: 1, answer: "yes"}}\nlookalike_kinds: [walk]\n'
    )
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_mix(frames, out, path))
    expect(outcome, 1, needle, "YAML reads unquoted yes, no, on, off, true and false as booleans")
    assert "share id" not in outcome.output


# --- eval's per-kind table and the plots -----------------------------------------------


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
    # table the README promises came out empty for a frame annotation file
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


# --- curate train --nproc-per-node: a killed curate leaves no process ------------------


def _children(pid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(name))
    return kids


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_a_curate_killed_by_sigkill_takes_its_training_processes_with_it(
    tmp_path: Path,
) -> None:
    # SIGKILL (kill -9, the OOM killer) gave curate no chance to stop torchrun: torchrun
    # and both ranks went on training, orphaned, to the last epoch
    pytest.importorskip("lavis")
    from conftest import SAMPLE

    from curation.export import ExportOptions, export_task

    out = tmp_path / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    args = ["train", str(out / "lavis.yaml"), "run.max_epoch=200", "run.device=cpu"]
    args += ["run.batch_size_train=8", "--nproc-per-node", "2", "--run-id", "killed"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from curation.cli import app; app()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        family: list[int] = []
        work = None
        while time.monotonic() < deadline:
            torchrun = _children(proc.pid)
            if torchrun and len(_children(torchrun[0])) == 2:
                family = [torchrun[0], *_children(torchrun[0])]
                cmdline = Path(f"/proc/{torchrun[0]}/cmdline").read_bytes().split(b"\0")
                work = Path(os.fsdecode(cmdline[-2])).parent  # .../curate-torchrun-*/spec.json
                break
            assert proc.poll() is None, "curate ended before its processes started"
            time.sleep(0.5)
        assert family, "torchrun and its two ranks did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(map(_running, family)):
            time.sleep(0.5)
        left = [p for p in family if _running(p)]
        for pid in left:  # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left running after curate was killed: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if work is not None and work.name.startswith("curate-torchrun-"):
            shutil.rmtree(work, ignore_errors=True)  # a SIGKILLed curate cannot remove it
