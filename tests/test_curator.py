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


# --- video label files: reading them, and ingesting them again after a correction ------


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fall clip and one sit clip (10 fps, 3.5 s) with OmniFall's labels.csv."""
    pytest.importorskip("av")
    from curation.synthetic_video import write_clips

    root = tmp_path_factory.mktemp("two-clips")
    write_clips(root, scenarios=("fall", "sit"), subjects=1, cameras=1, seed=5, size=48)
    return root


def label_rows(labels: Path) -> list[dict[str, str]]:
    import csv

    with labels.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_label_rows(labels: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with labels.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return labels


def stored_labels(name: str) -> dict[str, tuple]:
    """original_id -> (answers, unsure tag, activity, negative_kind, segment, tags)."""
    ds = fo.load_dataset(name)
    fields = ["original_id", "answers", "tags", "activity", "negative_kind", "segment"]
    return {
        oid: (tuple(a or ()), "unsure" in (t or []), act, kind, seg, tuple(sorted(t or [])))
        for oid, a, t, act, kind, seg in zip(*ds.values(fields), strict=True)
    }


def test_reingesting_a_corrected_label_file_is_refused_then_relabelled(
    two_clips: Path, tmp_path: Path
) -> None:
    from curation.curator.video import ingest_videos

    labels = tmp_path / "labels.csv"
    shutil.copy(two_clips / "labels.csv", labels)
    name = unique("relabel")
    args = {"videos": two_clips, "every_n": 2, "frames_dir": tmp_path / "frames"}
    first = ingest_videos(labels, name, **args)
    before = stored_labels(name)
    assert first.ingest.added == len(before)
    # a reviewer's tag on a frame the correction changes stays on it
    ds = fo.load_dataset(name)
    tagged = ds.match(
        (fo.ViewField("activity") == "fallen") & (fo.ViewField("answer") == "yes")
    ).first()
    tagged.tags.append("exclude")
    tagged.save()
    before = stored_labels(name)
    # the correction: the fall clip's "fallen" row was walking; the sit clip's "sit_down"
    # row goes (its frames lie in no segment now)
    rows = label_rows(labels)
    fallen, sit_down = (cmap_id("fallen"), cmap_id("sit_down"))
    for r in rows:
        if r["path"].endswith("fall") and r["label"] == fallen:
            r["label"] = cmap_id("walk")
    rows = [r for r in rows if not (r["path"].endswith("sit") and r["label"] == sit_down)]
    write_label_rows(labels, rows)
    with pytest.raises(DataError) as refused:
        ingest_videos(labels, name, **args)
    message = str(refused.value)
    assert "would get another answer" in message and "--relabel" in message
    assert "in no segment" in message
    assert stored_labels(name) == before  # nothing changed
    # the same correction through the CLI: exit 1, one line naming the fix
    out = runner.invoke(
        app,
        ["ingest", str(labels), "--dataset", name, "--every-n", "2"]
        + ["--videos", str(two_clips), "--frames-dir", str(tmp_path / "frames")],
    )
    assert out.exit_code == 1 and "--relabel" in out.output and "Traceback" not in out.output
    assert stored_labels(name) == before

    done = ingest_videos(labels, name, relabel=True, **args)
    after = stored_labels(name)
    changed = {k for k in after if after[k][:5] != before[k][:5]}
    removed = set(before) - set(after)
    assert not set(after) - set(before)
    assert done.ingest.relabelled == len(changed) > 0
    assert done.ingest.removed == len(removed) > 0
    assert all("sit.mp4" in k for k in removed)
    assert all(after[k][2] != "fallen" for k in after)  # no frame keeps the old class
    assert after[tagged.original_id][5] == before[tagged.original_id][5]  # review tag kept
    assert after[tagged.original_id][0] == ("no",)
    # the summary's counts are the dataset's
    ds = fo.load_dataset(name)
    counts = ds.count_values("answer")
    assert done.ingest.holds == {
        "yes": counts.get("yes", 0),
        "no": counts.get("no", 0),
        "unsure": counts.get(None, 0),
    }
    # the videos dataset shows the corrected segments
    videos = fo.load_dataset(f"{name}-videos")
    fall = videos.match(fo.ViewField("video").ends_with("fall.mp4")).first()
    assert "fallen" not in [d.label for d in fall.segments.detections]
    # and now the label file and the dataset agree: a plain re-ingest is accepted
    again = ingest_videos(labels, name, **args)
    assert again.ingest.added == 0 and again.ingest.relabelled == 0
    assert stored_labels(name) == after


def cmap_id(name: str) -> str:
    from curation.class_map import load_class_map

    return str(load_class_map().rule(name)[1].id)


def test_reingesting_with_another_margin_is_refused_then_relabelled(
    two_clips: Path, tmp_path: Path
) -> None:
    from curation.curator.video import ingest_videos

    name = unique("margin")
    args = {"videos": two_clips, "every_n": 1, "frames_dir": tmp_path / "frames"}
    first = ingest_videos(two_clips / "labels.csv", name, margin=0.5, **args)
    assert first.unsure > 0
    before = stored_labels(name)
    with pytest.raises(DataError, match=r"--relabel"):
        ingest_videos(two_clips / "labels.csv", name, margin=0.0, **args)
    assert stored_labels(name) == before
    with pytest.raises(UsageError, match="exclude each other"):
        ingest_videos(two_clips / "labels.csv", name, margin=0.0, overwrite=True, relabel=True)
    done = ingest_videos(two_clips / "labels.csv", name, margin=0.0, relabel=True, **args)
    after = stored_labels(name)
    assert set(after) == set(before)
    # margin 0: only the unsure class (none here) leaves a frame unsure
    assert sum(v[1] for v in after.values()) == done.unsure < first.unsure
    assert done.ingest.relabelled == sum(after[k][:5] != before[k][:5] for k in after)


def test_a_failed_relabel_leaves_every_stored_label(
    two_clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fiftyone.core.dataset import Dataset

    from curation.curator.video import ingest_videos

    name = unique("relabel-fail")
    args = {"videos": two_clips, "every_n": 2, "frames_dir": tmp_path / "frames"}
    ingest_videos(two_clips / "labels.csv", name, margin=0.5, **args)
    before = stored_labels(name)
    real = Dataset.set_values
    calls: list[str] = []

    def failing(self, field_name, *a, **kw):  # noqa: ANN001, ANN202
        calls.append(field_name)
        if field_name == "tags" and calls.count("tags") == 1:
            raise RuntimeError("the server went away")
        return real(self, field_name, *a, **kw)

    monkeypatch.setattr(Dataset, "set_values", failing)
    with pytest.raises(RuntimeError, match="went away"):
        ingest_videos(two_clips / "labels.csv", name, margin=0.0, relabel=True, **args)
    assert "answers" in calls  # the answers had been rewritten ...
    assert stored_labels(name) == before  # ... and were put back


def test_reingesting_a_corrected_annotation_file_is_refused_then_relabelled(
    image_dir: Path,
) -> None:
    from conftest import record

    from curation.curator.ingest import ingest as ingest_source

    path = write_json(
        image_dir / "train.json",
        [record(1, "fall.png", ["yes"]), record(2, "stand.png", ["no"])],
    )
    name = unique("relabel-file")
    assert ingest_source(path, name).added == 2
    write_json(path, [record(1, "fall.png", ["yes"]), record(2, "stand.png", ["yes"])])
    with pytest.raises(DataError, match=r"1 would get another answer.*--relabel"):
        ingest_source(path, name)
    assert sorted(fo.load_dataset(name).values("answer")) == ["no", "yes"]
    done = ingest_source(path, name, relabel=True)
    assert done.relabelled == 1 and done.added == 0
    assert fo.load_dataset(name).values("answer") == ["yes", "yes"]
    assert done.holds == {"yes": 2, "no": 0, "unsure": 0}


@pytest.mark.parametrize(
    ("kind", "moved"),
    [("Fall", "fall/"), ("Falls", "fall/"), ("FALLING", "fall/"), ("Fallen", "fall/")]
    + [("fall", "fall/"), ("Unsure", "unsure/"), ("Other", "unsure/")],
)
def test_no_fall_kind_folders_spelling_a_fall_are_refused(
    tmp_path: Path, kind: str, moved: str
) -> None:
    from curation.class_map import load_class_map
    from curation.curator.video import clip_folder_segments

    (tmp_path / "fall").mkdir()
    (tmp_path / "fall" / "a.mp4").write_bytes(b"")
    (tmp_path / "no_fall" / kind).mkdir(parents=True)
    (tmp_path / "no_fall" / kind / "b.mp4").write_bytes(b"")
    with pytest.raises(DataError) as refused:
        clip_folder_segments(tmp_path, load_class_map())
    assert f"the folder no_fall/{kind}/" in str(refused.value)
    assert f"move the clip to {moved}" in str(refused.value)


def test_no_fall_kind_folders_are_normalised_like_label_folders(tmp_path: Path) -> None:
    from curation.class_map import load_class_map
    from curation.curator.video import clip_folder_segments

    for kind in ("Sitting", "sit-down", "My Kind", "my_kind", "No-Fall"):
        (tmp_path / "no_fall" / kind).mkdir(parents=True)
        (tmp_path / "no_fall" / kind / "b.mp4").write_bytes(b"")
    got = {
        s.video: (s.rule.answer, s.rule.negative_kind)
        for s in clip_folder_segments(tmp_path, load_class_map())
    }
    assert got == {
        "no_fall/Sitting/b.mp4": ("no", "sitting"),
        "no_fall/sit-down/b.mp4": ("no", "sit_down"),
        "no_fall/My Kind/b.mp4": ("no", "my_kind"),
        "no_fall/my_kind/b.mp4": ("no", "my_kind"),
        "no_fall/No-Fall/b.mp4": ("no", None),
    }


OMNIFALL_HEADER = "path,label,start,end,subject,cam,dataset\n"


def read_labels(tmp_path: Path, text: str, name: str = "labels.csv"):  # noqa: ANN201
    from curation.class_map import load_class_map
    from curation.curator.video import read_segments

    labels = tmp_path / name
    labels.write_text(text, encoding="utf-8")
    return read_segments(labels, tmp_path, load_class_map())


@pytest.mark.parametrize("label", ["²", "٣", "1²"])
def test_a_label_in_other_digits_is_named_not_a_traceback(tmp_path: Path, label: str) -> None:
    with pytest.raises(DataError) as refused:
        read_labels(tmp_path, f"{OMNIFALL_HEADER}a,{label},0,1,1,1,ds\n")
    assert f"row 1 (line 2): label: {label!r} is not in the class map" in str(refused.value)


def test_an_omnifall_path_ending_in_mp4_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "ds" / "video").mkdir(parents=True)
    (tmp_path / "ds" / "video" / "a.mp4").write_bytes(b"")
    _, segments = read_labels(
        tmp_path, f"{OMNIFALL_HEADER}a.mp4,1,0,1,1,1,ds\na,0,1,2,1,1,ds\nb.MP4,0,0,1,1,1,ds\n"
    )
    assert [s.video for s in segments] == ["ds/video/a.mp4", "ds/video/a.mp4", "ds/video/b.MP4"]


def test_a_semicolon_separated_label_file_gets_the_delimiter_fix(tmp_path: Path) -> None:
    text = OMNIFALL_HEADER.replace(",", ";") + "a;1;0;1,5;1;1;ds\n"
    with pytest.raises(DataError, match=r"separated by semicolons \(';'\), not commas"):
        read_labels(tmp_path, text)
    # without --videos it is a video label file too, not "invalid JSON"
    out = runner.invoke(app, ["ingest", str(tmp_path / "labels.csv"), "--dataset", "x"])
    assert out.exit_code == 1, out.output
    assert "separated by semicolons" in out.output and "JSON" not in out.output
    generic = "video\tlabel\tstart\tend\na.mp4\tfall\t0\t1\n"
    with pytest.raises(DataError, match="separated by tabs"):
        read_labels(tmp_path, generic, "segments.csv")


def test_a_video_name_in_another_unicode_form_is_named(tmp_path: Path) -> None:
    import unicodedata

    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", nfc)
    (tmp_path / "ds" / "video").mkdir(parents=True)
    (tmp_path / "ds" / "video" / f"{nfd}.mp4").write_bytes(b"")
    with pytest.raises(DataError) as refused:
        read_labels(tmp_path, f"{OMNIFALL_HEADER}{nfc},1,0,1,1,1,ds\n")
    message = str(refused.value)
    assert "row 1 (line 2): path:" in message and "not found as written (NFC)" in message
    assert f"{nfd}.mp4" in message and "convmv --nfc" in message
    generic = f"video,label,start,end\nds/video/{nfc}.mp4,fall,0,1\n"
    with pytest.raises(DataError, match=r"not found as written \(NFC\)"):
        read_labels(tmp_path, generic, "segments.csv")


@pytest.fixture
def back_to_the_test_database():  # noqa: ANN201
    """After the test this process uses the test run's own database again."""
    yield
    from curation.curator import database
    from curation.curator._fo import fiftyone

    database.select_database(None)
    fiftyone().list_datasets()


@pytest.mark.parametrize("source", ["label file", "clip folder"])
def test_video_ingest_uses_the_database_uri(
    two_clips: Path, tmp_path: Path, source: str, back_to_the_test_database: None
) -> None:
    from _mongod import free_port

    if source == "label file":
        args = [str(two_clips / "labels.csv"), "--videos", str(two_clips)]
    else:
        (tmp_path / "clips" / "fall").mkdir(parents=True)
        shutil.copy(
            two_clips / "synthetic" / "video" / "s01_c01_fall.mp4", tmp_path / "clips" / "fall"
        )
        args = [str(tmp_path / "clips")]
    name = unique("elsewhere")
    uri = f"mongodb://curator:pw@127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"
    frames = tmp_path / "frames"
    out = runner.invoke(
        app,
        ["ingest", *args, "--dataset", name, "--frames-dir", str(frames), "--database-uri", uri],
    )
    assert out.exit_code == 1, out.output
    assert "cannot use the MongoDB server mongodb://curator:***@127.0.0.1" in out.output
    assert "(from --database-uri)" in out.output
    assert not frames.exists() or not any(frames.rglob("*.jpg"))
    from curation.curator import database
    from curation.curator._fo import fiftyone

    database.select_database(None)
    assert name not in fiftyone().list_datasets()  # nothing went to this run's own database


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["export", "--out", "{out}"],
        ["mix", "--out", "{out}", "--vqav2-ratio", "0"],
        ["review", "--no-browser"],
        ["find-issues", "--folds", "2", "--out", "{out}"],
    ],
)
def test_every_dataset_command_uses_the_database_uri(
    tmp_path: Path, command: list[str], back_to_the_test_database: None
) -> None:
    from _mongod import free_port

    uri = f"mongodb://curator:pw@127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"
    args = [a.replace("{out}", str(tmp_path / "out")) for a in command]
    out = runner.invoke(app, [*args, "--dataset", "falls", "--database-uri", uri])
    assert out.exit_code == 1, out.output
    assert "cannot use the MongoDB server mongodb://curator:***@127.0.0.1" in out.output
    assert not (tmp_path / "out").exists()


def test_an_older_cut_of_a_frame_is_not_kept_beside_its_new_cut(
    two_clips: Path, tmp_path: Path
) -> None:
    from curation.curator.video import ingest_videos

    name = unique("recut")
    args = {"videos": two_clips, "every_n": 5, "frames_dir": tmp_path / "frames"}
    first = ingest_videos(two_clips / "labels.csv", name, **args)
    # as if the frame had been cut with other bytes (another decoder, the video re-encoded)
    sample = fo.load_dataset(name).first()
    sample.ingest_key = "0" * 40
    sample.save()
    with pytest.raises(DataError, match=r"1 older cuts of frames cut again.*--relabel"):
        ingest_videos(two_clips / "labels.csv", name, **args)
    assert len(fo.load_dataset(name)) == first.ingest.added
    done = ingest_videos(two_clips / "labels.csv", name, relabel=True, **args)
    assert (done.ingest.added, done.ingest.removed) == (1, 1)
    ds = fo.load_dataset(name)
    assert len(ds) == first.ingest.added and "0" * 40 not in ds.distinct("ingest_key")
