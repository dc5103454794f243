"""Hostile inputs for --group-by, --split-file and --hard-negative-share.

Each case runs the real command and checks the documented promises: the exit
code, the problem named with its fix, no traceback, inputs untouched and no
export written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data import write_frame_set, write_json
from _harness import expect, invoke, untouched

from curation.synthetic import QUESTION, render_scene


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames: 2 datasets x 3 subjects x 4 frames; odd frames are "no" of kind walk or
    lie_down (one look-alike per subject)."""
    return write_frame_set(tmp_path_factory.mktemp("hostile-frames"))


def _export(frames: Path, out: Path, *extra: str) -> list[str]:
    return ["export", "--task", str(frames / "task.json"), "--out", str(out), *extra]


def _mix(frames: Path, out: Path, *extra: str) -> list[str]:
    task = str(frames / "task.json")
    return ["mix", "--task", task, "--out", str(out), "--vqav2-ratio", "0", *extra]


@pytest.mark.parametrize("command", [_export, _mix])
def test_unknown_group_by_lists_the_valid_ones(
    frames: Path, tmp_path: Path, command: object
) -> None:
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(command(frames, out, "--group-by", "person"))  # type: ignore[operator]
    expect(outcome, 2, "'person'", "subject", "video", "camera", "dataset")


SPLIT_FILES = {
    "missing": (None, "not found"),
    "folder": ("dir", "is a folder"),
    "bad-json": ('{"train": ["le2i/0",', "invalid JSON"),
    "json-list": ('["le2i/0"]', "not a JSON object"),
    "json-not-list": ('{"train": "le2i/0"}', "give a list of group keys"),
    "csv-header": ("subject,split\nle2i/0,train\n", "the first line must be the header"),
    "csv-columns": ("split,group\ntrain,le2i/0,extra\n", "row 2: 3 columns"),
    "two-splits": (
        '{"train": ["le2i/0"], "test": ["le2i/0"]}',
        "group 'le2i/0' is listed under both 'train' and 'test'",
    ),
    "unknown-split": ("split,group\ntraining,le2i/0\n", "split 'training' is not train, val"),
    "empty": ('{"train": []}', "lists no groups"),
    "binary": (b"\xff\xfe\x00bad", "not readable UTF-8"),
    "twice-json": ('{"train": ["le2i/0", "le2i/0"]}', "'le2i/0' is listed twice under 'train'"),
    "twice-csv": ("split,group\ntest,le2i/0\ntest,le2i/0\n", "row 2 and row 3"),
}


@pytest.mark.parametrize("case", sorted(SPLIT_FILES))
@pytest.mark.parametrize("command", [_export, _mix])
def test_bad_split_file_is_a_usage_error(
    frames: Path, tmp_path: Path, case: str, command: object
) -> None:
    content, needle = SPLIT_FILES[case]
    path = tmp_path / f"split-{case}"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(command(frames, out, "--split-file", str(path)))  # type: ignore[operator]
    expect(outcome, 2, "--split-file", needle, "Fix:")


def test_a_group_the_split_file_leaves_out_is_named(frames: Path, tmp_path: Path) -> None:
    listed = write_json(
        tmp_path / "split.json",
        {"train": ["le2i/0", "le2i/1", "up_fall/0"], "val": ["le2i/2"], "test": ["up_fall/1"]},
    )
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_export(frames, out, "--split-file", str(listed)))
    expect(outcome, 1, "does not list the subject (or video) of 4 record(s)", "'up_fall/2'", "Fix:")


def test_copies_the_split_file_puts_apart_are_refused(frames: Path, tmp_path: Path) -> None:
    root = tmp_path / "copies"
    root.mkdir()
    recs = json.loads((frames / "task.json").read_text())
    for r in recs:
        (root / r["image"]).write_bytes((frames / r["image"]).read_bytes())
    # le2i/0's first frame, filed again under up_fall/2 (same bytes, another name)
    (root / "copy.png").write_bytes((frames / "00.png").read_bytes())
    recs.append({**recs[20], "instance_id": 99, "image": "copy.png", "answer": recs[0]["answer"]})
    write_json(root / "task.json", recs)
    listed = write_json(
        tmp_path / "split.json",
        {
            "train": ["le2i/0", "le2i/1", "up_fall/0", "up_fall/1"],
            "val": ["le2i/2"],
            "test": ["up_fall/2"],
        },
    )
    out = tmp_path / "out"
    with untouched(root, tmp_path):
        outcome = invoke(_export(root, out, "--split-file", str(listed)))
    expect(outcome, 1, "puts one split group in 2 splits", "copies or near-copies", "Fix:")


def test_a_subject_and_its_video_in_two_splits_are_named_both(frames: Path, tmp_path: Path) -> None:
    listed = write_json(
        tmp_path / "split.json",
        {
            "train": ["le2i/0", "le2i/1", "up_fall/0", "up_fall/1"],
            "val": ["le2i/2", "up_fall/2"],
            "test": ["le2i/s0"],
        },
    )
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_export(frames, out, "--split-file", str(listed)))
    expect(outcome, 1, "subject 'le2i/0' under 'train'", "video 'le2i/s0' under 'test'", "Fix:")


@pytest.mark.parametrize("share", ["-0.1", "1.5", "nan"])
def test_hard_negative_share_outside_0_1(frames: Path, tmp_path: Path, share: str) -> None:
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_mix(frames, out, "--hard-negative-share", share))
    expect(outcome, 2, "--hard-negative-share must be between 0 and 1")


def test_unreachable_hard_negative_share_says_how_many_there_are(
    frames: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(_mix(frames, out, "--hard-negative-share", "0.9", "--group-by", "video"))
    expect(outcome, 1, "look-alike negatives of the", "but there are only", "Fix:")


def test_hard_negative_share_on_photos_without_kinds(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    recs = []
    for i in range(12):
        render_scene(i % 2 == 0, 4000 + i, 48).save(root / f"{i}.png")
        recs.append(
            {
                "instance_id": i,
                "image": f"{i}.png",
                "text_input": QUESTION,
                "answer": ["yes" if i % 2 == 0 else "no"],
            }
        )
    write_json(root / "task.json", recs)
    out = tmp_path / "out"
    with untouched(root):
        outcome = invoke(_mix(root, out, "--hard-negative-share", "0.3"))
    expect(outcome, 1, "none of the task's 6", "photos carry no negative_kind", "Fix:")
    assert not out.exists()


def test_missing_class_map_is_a_usage_error(frames: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with untouched(frames, tmp_path):
        outcome = invoke(
            _mix(
                frames,
                out,
                "--hard-negative-share",
                "0.3",
                "--class-map",
                str(tmp_path / "nope.yaml"),
            )
        )
    expect(outcome, 2, "class map not found", "Fix:")


@pytest.mark.parametrize(
    ("key", "value"), [("subject", ["a", "b"]), ("time", "noon"), ("video", True)]
)
def test_a_frame_key_of_the_wrong_type_is_named(
    frames: Path, tmp_path: Path, key: str, value: object
) -> None:
    root = tmp_path / "typed"
    root.mkdir()
    recs = json.loads((frames / "task.json").read_text())
    for r in recs:
        (root / r["image"]).write_bytes((frames / r["image"]).read_bytes())
    recs[3][key] = value
    write_json(root / "task.json", recs)
    out = tmp_path / "out"
    with untouched(root):
        outcome = invoke(_export(root, out))
    expect(outcome, 1, "record #3 (instance_id=3)", f"{key}:", "Fix:")
    assert not out.exists()
