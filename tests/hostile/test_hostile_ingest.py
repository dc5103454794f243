"""Hostile input to validate --fix/--json, folder ingest, check, review and export --dataset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
from conftest import SAMPLE

from curation.errors import DataError


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    copy = tmp_path / "s"
    shutil.copytree(SAMPLE, copy)
    return copy


def test_json_and_fix_never_replace_links_fifos_or_devices(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("orig")
    (tmp_path / "lnk").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    specials = [tmp_path / "lnk", tmp_path / "fifo"]
    if os.geteuid() == 0:  # a character device like /dev/null (only root may make one)
        os.mknod(tmp_path / "null", 0o20666, os.makedev(1, 3))
        specials.append(tmp_path / "null")
    for special in specials:
        with untouched(tmp_path):
            outcome = invoke(["validate", sample / "annotations.json", "--json", special])
        expect(outcome, 2, "writing there would replace it")
        with untouched(tmp_path):
            outcome = invoke(["validate", sample / "seed_train.json", "--fix", special])
        expect(outcome, 2, "writing there would replace it")


def test_json_and_fix_never_replace_an_image_the_records_use(sample: Path) -> None:
    for option in ("--json", "--fix"):
        with untouched(sample):
            outcome = invoke(
                ["validate", sample / "annotations.json", option, sample / "fall" / "0000.png"]
            )
        expect(outcome, 2, "exists and is not a JSON file")


def test_an_integer_of_thousands_of_digits_is_one_clear_error(sample: Path, tmp_path: Path) -> None:
    big = "9" * 5000
    path = sample / "bigid.json"
    path.write_text(
        f'[{{"instance_id":{big},"image":"fall/0000.png","text_input":"q?","answer":["yes"]}}]'
    )
    with untouched(sample):
        expect(invoke(["validate", path]), 1, "a value cannot be read", "record #0")
        outcome = invoke(["validate", path, "--fix", tmp_path / "fixed.json"])
    assert outcome.exit_code == 1 and outcome.exception is None, str(outcome)
    assert "Traceback" not in outcome.output and not (tmp_path / "fixed.json").exists()


def test_copies_with_different_labels_are_refused_at_export(tmp_path: Path) -> None:
    from curation.export import ExportRecord, write_export

    images = tmp_path / "img"
    images.mkdir()
    shutil.copy(SAMPLE / "fall" / "0000.png", images / "a.png")
    shutil.copy(SAMPLE / "fall" / "0000.png", images / "a_copy.png")
    q = "Is anyone falling in this image?"
    recs = [ExportRecord(images / f"{i:02d}.png", q, ("no",)) for i in range(3)]
    for i, rec in enumerate(recs):
        shutil.copy(SAMPLE / "no_fall" / f"000{i}.png", rec.image)
    splits = {
        "train": [
            ExportRecord(images / "a.png", q, ("yes",)),
            recs[0],
            ExportRecord(images / "a_copy.png", "Is someone falling in this picture?", ("no",)),
        ],
        "val": [recs[1]],
        "test": [recs[2]],
    }
    with pytest.raises(DataError, match="are the same image"):
        write_export(tmp_path / "out", splits, seed=0)
    assert not (tmp_path / "out").exists()


def test_folder_ingest_refuses_undecodable_names_and_escaping_links(tmp_path: Path) -> None:
    pytest.importorskip("fiftyone")
    for name in ("bn", "nest"):
        (tmp_path / name / "fall").mkdir(parents=True)
        (tmp_path / name / "no_fall").mkdir()
        shutil.copy(SAMPLE / "no_fall" / "0001.png", tmp_path / name / "no_fall")
    shutil.copy(
        SAMPLE / "fall" / "0000.png", os.fsdecode(bytes(tmp_path / "bn" / "fall") + b"/caf\xe9.png")
    )
    (tmp_path / "nest" / "fall" / "escape.png").symlink_to(SAMPLE / "fall" / "0004.png")
    with untouched(tmp_path):
        expect(
            invoke(["ingest", tmp_path / "bn", "--dataset", "attack-bn"]),
            1,
            "the file name is not UTF-8",
        )
        expect(
            invoke(["ingest", tmp_path / "nest", "--dataset", "attack-nest"]),
            1,
            "outside",
            "it was not opened",
        )


def test_misspelled_review_tags_are_named() -> None:
    from curation.curator.records import refuse_misspelled_review_tags

    refuse_misspelled_review_tags("d", [["exclude"], ["relabel:yes"], None, ["dup:exact"]])
    with pytest.raises(DataError) as err:
        refuse_misspelled_review_tags("d", [["Exclude"], ["relabel: no"], ["relabel:No"]])
    text = str(err.value)
    assert "'Exclude' on 1 sample(s) (write 'exclude')" in text
    assert "'relabel: no' on 1 sample(s) (write 'relabel:no')" in text
