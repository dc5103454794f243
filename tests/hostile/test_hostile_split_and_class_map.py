"""Hostile split files, frame keys and class maps given to export, validate and mix
(frame sets grouped by subject and video).

Every test reproduces one report and checks the promise it broke: the exit code,
the problem named with its fix, no traceback, inputs untouched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _data import write_frame_set, write_json
from _harness import expect, invoke, untouched


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
    # 24 records drew 84 "unknown key" warnings for the keys the docs invite
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


# --- curate train --nproc-per-node: a killed curate leaves no process ------------------
