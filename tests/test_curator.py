"""The FiftyOne curator on a real MongoDB (started by FiftyOne, isolated per test run)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, write_json
from PIL import Image
from typer.testing import CliRunner

from curation.cli import app
from curation.errors import DataError, UsageError

fo = pytest.importorskip("fiftyone")
runner = CliRunner()
QUESTION = "Is anyone falling in this image?"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def raw_set(tmp_path: Path) -> Path:
    """A copy of the bundled sample plus planted cases: a copy, a near-copy, an unsure image."""
    root = tmp_path / "set"
    shutil.copytree(SAMPLE / "fall", root / "fall")
    shutil.copytree(SAMPLE / "no_fall", root / "no_fall")
    (root / "unsure").mkdir()
    shutil.copy(SAMPLE / "fall" / "0005.png", root / "unsure" / "maybe.png")
    shutil.copy(SAMPLE / "fall" / "0001.png", root / "fall" / "copy_of_0001.png")
    Image.open(SAMPLE / "no_fall" / "0002.png").save(root / "no_fall" / "near_0002.jpg", quality=85)
    return root


def ingest(source: Path | str, dataset: str, *extra: str):
    return runner.invoke(app, ["ingest", str(source), "--dataset", dataset, *extra])


def test_ingest_folder_fields_and_idempotence(raw_set: Path) -> None:
    name = unique("folder")
    result = ingest(raw_set, name, "--questions", str(REPO / "configs" / "questions.yaml"))
    assert result.exit_code == 0, result.output
    assert "52 added, 0 already there, 52 in the dataset (1 unsure" in result.output
    ds = fo.load_dataset(name)
    assert ds.persistent
    sample = ds.match(fo.ViewField("original_id") == "fall/0000.png").first()
    assert sample.answers == ["yes"] and sample.answer == "yes"
    assert sample.label_provenance == "folder" and sample.source == "folder:set"
    assert len(sample.sha256) == 64 and len(sample.phash) == 16
    assert sample.question in {
        q for q in (REPO / "configs" / "questions.yaml").read_text().split('"')
    }
    assert len(ds.match_tags("unsure")) == 1
    again = ingest(raw_set, name)
    assert "0 added, 52 already there, 52 in the dataset" in again.output
    assert len(fo.load_dataset(name)) == 52
    replaced = ingest(raw_set, name, "--overwrite")
    assert "52 added" in replaced.output


def test_ingest_annotation_file_and_easy_vqa() -> None:
    name = unique("file")
    result = ingest(SAMPLE / "annotations.json", name)
    assert result.exit_code == 0, result.output
    ds = fo.load_dataset(name)
    assert len(ds) == 49 and set(ds.distinct("label_provenance")) == {"file"}
    result = ingest("easy-vqa", name, "--max-records", "30")
    assert result.exit_code == 0, result.output
    assert len(ds.match(fo.ViewField("part") == "general")) == 30
    assert "yes/no" in ds.distinct("answer_type")


def test_bad_input_adds_nothing(raw_set: Path, tmp_path: Path) -> None:
    name = unique("bad")
    assert ingest(raw_set, name).exit_code == 0
    before = len(fo.load_dataset(name))
    good = (raw_set / "fall" / "0002.png").read_bytes()
    (raw_set / "fall" / "zz_broken.png").write_bytes(good[:200])
    result = ingest(raw_set, name)
    assert result.exit_code == 1
    assert (
        "cannot be read; nothing was ingested" in result.output and "zz_broken.png" in result.output
    )
    assert len(fo.load_dataset(name)) == before
    assert ingest(tmp_path / "nowhere", name).exit_code == 2
    (tmp_path / "empty" / "fall").mkdir(parents=True)
    result = ingest(tmp_path / "empty", name)
    assert result.exit_code == 1 and "holds no images" in result.output


def test_checks_find_planted_cases(raw_set: Path, tmp_path: Path) -> None:
    name = unique("checks")
    assert ingest(raw_set, name, "--questions", str(tmp_path / "q.yaml")).exit_code == 2
    (tmp_path / "q.yaml").write_text(f'questions: ["{QUESTION}"]\n')
    assert ingest(raw_set, name, "--questions", str(tmp_path / "q.yaml")).exit_code == 0
    # a conflict: the same image and question labelled "no" by an annotation file
    conflict = write_json(
        raw_set / "conflict.json",
        [{"instance_id": 1, "image": "fall/0003.png", "text_input": QUESTION, "answer": ["no"]}],
    )
    assert ingest(conflict, name).exit_code == 0
    # a leak: near-copies in train and test files
    Image.open(raw_set / "fall" / "0004.png").save(raw_set / "leak_a.jpg", quality=90)
    Image.open(raw_set / "fall" / "0004.png").save(raw_set / "leak_b.jpg", quality=70)
    for split, image in (("train", "leak_a.jpg"), ("test", "leak_b.jpg")):
        (raw_set / "splits").mkdir(exist_ok=True)
        write_json(
            raw_set / "splits" / f"{split}.json",
            [{"instance_id": 1, "image": image, "text_input": "Is it a scene?", "answer": ["yes"]}],
        )
        assert (
            ingest(
                raw_set / "splits" / f"{split}.json", name, "--image-root", str(raw_set)
            ).exit_code
            == 0
        )
    # a file that became corrupt after ingest
    (raw_set / "no_fall" / "0007.png").write_bytes(b"\x89PNG broken")
    report_path = tmp_path / "checks.json"
    result = runner.invoke(app, ["check", "--dataset", name, "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    ds = fo.load_dataset(name)
    by_id = {s.id: s for s in ds}

    def originals(tag: str) -> set[str]:
        return {by_id[i].original_id for i in report["flagged"][tag]}

    assert originals("dup:exact") == {
        "fall/0001.png",
        "fall/copy_of_0001.png",
        "fall/0005.png",
        "unsure/maybe.png",
    }
    assert len(report["groups"]["dup:exact"]) == 2
    assert {"no_fall/0002.png", "no_fall/near_0002.jpg"} <= originals("dup:near")
    assert originals("corrupt") == {"no_fall/0007.png"}
    assert originals("conflict") == {"fall/0003.png", "1"}
    assert {"train", "test"} <= {by_id[i].split for i in report["flagged"]["leak"]}
    assert report["balance"]["folder:set"] == {"(unlabelled)": 1, "no": 26, "yes": 25}
    assert len(ds.match_tags("dup:exact")) == 4  # the tags are in FiftyOne for the App
    assert report["brain_exact_duplicates"] >= 2


def test_review_tags_flow_into_exports(raw_set: Path, tmp_path: Path) -> None:
    name = unique("review")
    assert ingest(raw_set, name).exit_code == 0
    ds = fo.load_dataset(name)
    F = fo.ViewField
    ds.match(F("original_id") == "fall/0000.png").tag_samples("exclude")
    ds.match(F("original_id") == "no_fall/0001.png").tag_samples("relabel:yes")
    # maybe.png is a copy of fall/0005.png ("yes"): relabelled "no" it would conflict
    ds.match(F("original_id") == "unsure/maybe.png").tag_samples("relabel:no")
    refused = runner.invoke(app, ["export", "--dataset", name, "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "are the same image (identical bytes)" in refused.output
    assert not (tmp_path / "x").exists()
    ds.match(F("original_id") == "unsure/maybe.png").untag_samples("relabel:no")
    ds.match(F("original_id") == "unsure/maybe.png").tag_samples("relabel:yes")
    out = tmp_path / "export"
    result = runner.invoke(app, ["export", "--dataset", name, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["review"] == {"excluded": 1, "relabelled": 2, "unlabelled": 0}
    prov = [
        p
        for s in ("train", "val", "test")
        for p in json.loads((out / f"{s}.provenance.json").read_text())
    ]
    by_original = {p["original_id"]: p for p in prov}
    assert "fall/0000.png" not in by_original
    assert by_original["no_fall/0001.png"]["review"] == "relabel:yes"
    assert by_original["no_fall/0001.png"]["original_answers"] == ["yes"]
    assert by_original["unsure/maybe.png"]["review"] == "relabel:yes"
    assert len(prov) == 52 - 1
    # copies share a split
    splits = {
        p["original_id"]: s
        for s in ("train", "val", "test")
        for p in json.loads((out / f"{s}.provenance.json").read_text())
    }
    checked = runner.invoke(
        app, ["check", "--dataset", name, "--json", str(tmp_path / "checks.json")]
    )
    assert checked.exit_code == 0, checked.output
    out2 = tmp_path / "export2"
    assert runner.invoke(app, ["export", "--dataset", name, "--out", str(out2)]).exit_code == 0
    splits = {
        p["original_id"]: s
        for s in ("train", "val", "test")
        for p in json.loads((out2 / f"{s}.provenance.json").read_text())
    }
    assert splits["fall/0001.png"] == splits["fall/copy_of_0001.png"]
    # the planted near copy (a JPEG re-save) too, and it is found as one
    near_ids = {
        ds[i].original_id
        for group in json.loads((tmp_path / "checks.json").read_text())["groups"]["dup:near"]
        for i in group
    }
    assert {"no_fall/0002.png", "no_fall/near_0002.jpg"} <= near_ids
    pair = ds.match(F("original_id").is_in(["no_fall/0002.png", "no_fall/near_0002.jpg"]))
    near_groups = pair.values("near_dup_group")
    assert len(near_groups) == 2 and near_groups[0] is not None  # one split group for both
    assert near_groups[0] == near_groups[1]
    assert splits["no_fall/0002.png"] == splits["no_fall/near_0002.jpg"]
    # the mix reads the same tags
    mixed = runner.invoke(
        app,
        [
            "mix",
            "--dataset",
            name,
            "--easy-vqa",
            "--vqav2-ratio",
            "0.5",
            "--out",
            str(tmp_path / "mix"),
        ],
    )
    assert mixed.exit_code == 0, mixed.output
    assert "1 excluded, 2 relabelled" in mixed.output
    # eval pushes predictions back onto the samples the export came from
    from curation.curator.exports import push_to_fiftyone

    test_prov = json.loads((out2 / "test.provenance.json").read_text())
    rows = [
        {"fiftyone_id": p["fiftyone_id"], "prediction": "yes", "score": 1.0 * (i % 2)}
        for i, p in enumerate(test_prov)
    ]
    pushed = push_to_fiftyone(out2 / "test.json", rows)
    assert pushed == {"dataset": name, "field": "eval_prediction", "samples": len(rows)}
    first = ds.select(rows[1]["fiftyone_id"]).first()
    assert first.eval_prediction == "yes" and first.eval_prediction_correct is True
    ds.match(F("original_id") == "fall/0002.png").tag_samples(["relabel:yes", "relabel:no"])
    from curation.curator.records import records_from_dataset

    with pytest.raises(DataError, match="both relabel:yes and relabel:no"):
        records_from_dataset(name)
    with pytest.raises(UsageError, match="no FiftyOne dataset named"):
        records_from_dataset("does-not-exist")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_served(url: str, timeout: float) -> None:
    """Poll until the App's server answers ``url`` (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the App did not answer {url} within {timeout} s")
        time.sleep(0.2)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_review_app_renders_in_a_real_browser(tmp_path: Path) -> None:
    from curation.curator.review import launch

    name = unique("app")
    assert ingest(SAMPLE / "annotations.json", name).exit_code == 0
    port = _free_port()
    session = launch(name, port=port)
    try:
        url = f"http://127.0.0.1:{port}/datasets/{name}"
        _wait_until_served(url, timeout=120)
        artifacts = REPO / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        shot = artifacts / "review.png"
        shot.unlink(missing_ok=True)
        base = [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,900",
            "--virtual-time-budget=25000",
            f"--user-data-dir={tmp_path / 'profile'}",
        ]
        dom = ""
        for _ in range(3):  # the server answers; the App's first render may need a retry
            dom = subprocess.run(
                [*base, "--dump-dom", url], capture_output=True, text=True, timeout=120
            ).stdout
            if name in dom:
                break
        subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    finally:
        session.close()
    assert name in dom, dom[:2000]  # the dataset's page, not an error page
    assert "question" in dom and "answer" in dom  # our fields in the sidebar
    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page
