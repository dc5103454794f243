"""Hostile inputs for the FiftyOne curator: `curate ingest`, `check`, `review`.

Each test runs the real command on a real (per-test-run) MongoDB and checks the
documented promises: the exit code, the problem named, no traceback, inputs untouched.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _harness import expect, invoke, unique, untouched

from curation.synthetic import render_scene

fo = pytest.importorskip("fiftyone")

TASK = "Is anyone falling in this image?"
PARAPHRASE = "Has anyone fallen in this image?"


def scene_folder(root: Path, n_fall: int, n_no_fall: int, seed: int, no_name="no_fall") -> Path:
    """``root/fall`` and ``root/<no_name>`` with distinct real images."""
    (root / "fall").mkdir(parents=True)
    for i in range(n_fall):
        render_scene(True, seed * 100 + i, 48).save(root / "fall" / f"{i:04d}.png")
    if n_no_fall:
        (root / no_name).mkdir(parents=True)
        for i in range(n_no_fall):
            render_scene(False, seed * 100 + i, 48).save(root / no_name / f"{i:04d}.png")
    return root


def annotation_file(path: Path, images: list[str], answers: list[str]) -> Path:
    recs = [
        {"instance_id": i, "image": img, "text_input": TASK, "answer": [a]}
        for i, (img, a) in enumerate(zip(images, answers, strict=True))
    ]
    path.write_text(json.dumps(recs), encoding="utf-8")
    return path


def questions_file(path: Path, *questions: str) -> Path:
    path.write_text("questions:\n" + "".join(f"  - {json.dumps(q)}\n" for q in questions))
    return path


def count(name: str) -> int:
    return len(fo.load_dataset(name))


# case 4 (and 5): identity is the resolved source and the image bytes, not a base name


def test_same_base_name_elsewhere_is_another_source(tmp_path: Path) -> None:
    a = scene_folder(tmp_path / "A" / "photos", 2, 2, seed=1)
    b = scene_folder(tmp_path / "B" / "photos", 3, 1, seed=2)
    annotation_file(a / "train.json", ["fall/0000.png", "no_fall/0000.png"], ["yes", "no"])
    annotation_file(b / "train.json", ["fall/0001.png", "no_fall/0000.png"], ["yes", "no"])
    name = unique("basename")
    with untouched(tmp_path):
        expect(invoke(["ingest", a, "--dataset", name]), 0, "4 added")
        expect(invoke(["ingest", b, "--dataset", name]), 0, "4 added, 0 already there, 8 in")
        expect(invoke(["ingest", a / "train.json", "--dataset", name]), 0, "2 added")
        expect(invoke(["ingest", b / "train.json", "--dataset", name]), 0, "2 added, 0 already")
        # the same sources again, by relative paths from other folders: nothing new
        again = invoke(["ingest", "photos", "--dataset", name], cwd=tmp_path / "B")
        expect(again, 0, "0 added, 4 already there, 12 in the dataset")
        again = invoke(["ingest", "../A/photos/train.json", "--dataset", name], cwd=tmp_path / "B")
        expect(again, 0, "0 added, 2 already there, 12 in the dataset")
    assert count(name) == 12


def test_same_folder_from_two_cwds_same_questions_nothing_duplicated(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 3, 3, seed=3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = unique("cwd")
    with untouched(tmp_path):
        expect(invoke(["ingest", folder, "--dataset", name], cwd=elsewhere), 0, "6 added")
        first = sorted(fo.load_dataset(name).values("question"))
        expect(invoke(["ingest", ".", "--dataset", name], cwd=folder), 0, "0 added, 6 already")
    assert sorted(fo.load_dataset(name).values("question")) == first
    assert count(name) == 6


# an ingest that fails or is killed leaves no dataset behind


def test_failed_ingest_leaves_no_new_dataset(tmp_path: Path, monkeypatch) -> None:
    import fiftyone.core.dataset as fod

    from curation.curator.ingest import ingest

    folder = scene_folder(tmp_path / "set", 2, 2, seed=4)

    def broken(self, *args, **kwargs):  # the database goes away half-way
        raise ConnectionError("lost the database")

    kept = unique("kept")
    ingest(folder, kept)
    monkeypatch.setattr(fod.Dataset, "add_samples", broken)
    name = unique("failed")
    with pytest.raises(ConnectionError):
        ingest(folder, name)
    assert name not in fo.list_datasets()
    # --overwrite that fails keeps the old dataset as it was
    with pytest.raises(ConnectionError):
        ingest(folder, kept, overwrite=True)
    assert count(kept) == 4
    monkeypatch.undo()
    expect(invoke(["check", "--dataset", name]), 2, "no FiftyOne dataset named")


def test_killed_ingest_leaves_no_new_dataset(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 2, 2, seed=5)
    name = unique("killed")
    script = (
        "import os, signal, fiftyone.core.dataset as d\n"
        "d.Dataset.add_samples = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from curation.cli import app\n"
        "app()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "ingest", str(folder), "--dataset", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert name not in fo.list_datasets()
    # and the name is free: the next ingest creates it whole
    expect(invoke(["ingest", folder, "--dataset", name]), 0, "4 added, 0 already there, 4 in")


# dataset names


def test_dataset_names_empty_clashing_and_markup(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 1, 1, seed=6)
    with untouched(tmp_path):
        expect(invoke(["ingest", folder, "--dataset", ""]), 2, "--dataset is empty")
        expect(invoke(["check", "--dataset", ""]), 2, "--dataset is empty")
        tag = uuid.uuid4().hex[:8]
        expect(invoke(["ingest", folder, "--dataset", f"my-falls-{tag}"]), 0, "2 added")
        clash = invoke(["ingest", folder, "--dataset", f"my falls {tag}"])
        expect(clash, 2, f"clashes with the existing dataset 'my-falls-{tag}'")
        assert f"my falls {tag}" not in fo.list_datasets()
        marked = f"[v2] {tag}"
        expect(invoke(["ingest", folder, "--dataset", marked]), 0, f"'{marked}'", "2 added")
        expect(invoke(["check", "--dataset", marked]), 0, "checks on")
        expect(invoke(["ingest", folder, "--dataset", "[/]"]), 2, "'[/]' cannot be a FiftyOne")
        # with a markup-like name in the list, "no dataset named" still prints in full
        expect(invoke(["check", "--dataset", "[/]nope"]), 2, "no FiftyOne dataset named '[/]nope'")


# two commands starting the database at once


@pytest.mark.slow
def test_two_checks_starting_a_fresh_database_together(tmp_path: Path) -> None:
    # a fresh database folder under tmp_path (pytest removes it a few runs later, once
    # the mongod that used it is long gone)
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp_path / "fodb")}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    argv = [sys.executable, "-c", "from curation.cli import app; app()", "check"]
    # output to files, not pipes: the database service outlives the process that started
    # it and holds its stdout, and waits for the other client to be reaped
    logs = [tmp_path / f"out{i}.txt" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as fh:
            procs.append(
                subprocess.Popen(
                    [*argv, "--dataset", "nope"], env=env, stdout=fh, stderr=subprocess.STDOUT
                )
            )
    codes = [p.wait(timeout=280) for p in procs]
    for code, log in zip(codes, logs, strict=True):
        out = log.read_text()
        assert "Traceback" not in out, out
        assert code == 2, out
        assert "no FiftyOne dataset named 'nope'" in out, out


def test_another_database_folder_is_another_database(tmp_path: Path) -> None:
    """FiftyOne joins any running database service; curate joins only its folder's."""
    fo.list_datasets()  # this test run's database is up
    folder = scene_folder(tmp_path / "set", 1, 1, seed=19)
    name = unique("elsewhere")
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp_path / "other-db")}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)  # a new process, not a child of this one
    argv = [sys.executable, "-c", "from curation.cli import app; app()", "ingest"]
    proc = subprocess.run(
        [*argv, str(folder), "--dataset", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "2 added" in proc.stdout, proc.stdout + proc.stderr
    assert name not in fo.list_datasets()


# review: the port is checked before FiftyOne starts


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536"])
def test_review_port_out_of_range(port: str) -> None:
    expect(invoke(["review", "--dataset", "whatever", "--port", port, "--no-browser"]), 2, "port")


def test_review_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        outcome = invoke(["review", "--dataset", "whatever", "--port", str(port), "--no-browser"])
    expect(outcome, 2, f"127.0.0.1:{port}", "Fix: --port")


# --questions files


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        ("questions: []\n", 1, "questions: List should have at least 1 item"),
        ("questions: [unclosed\n", 1, "not valid YAML (line"),
        ("questions: just one string\n", 1, "questions: Input should be a valid list"),
        ('questions:\n  - "Is anyone falling?"\n  - "  "\n', 1, "question #1 is empty"),
        ("- a list at the top\n", 1, "Input should be a valid dictionary"),
        (b"\xff\xfe\x00q", 1, "not a UTF-8 text file"),
        (None, 2, "question template file not found"),
    ],
)
def test_bad_questions_file(tmp_path: Path, content: str | bytes | None, code: int, needle) -> None:
    folder = scene_folder(tmp_path / "set", 1, 1, seed=7)
    q = tmp_path / "q.yaml"
    if isinstance(content, bytes):
        q.write_bytes(content)
    elif content is not None:
        q.write_text(content)
    name = unique("questions")
    with untouched(tmp_path):
        outcome = invoke(["ingest", folder, "--dataset", name, "--questions", q])
    expect(outcome, code, needle, "q.yaml")
    assert name not in fo.list_datasets()


# easy-VQA: only exact names select the package data; --max-records is at least 1


@pytest.mark.parametrize("n", ["-1", "0"])
def test_max_records_must_be_positive(n: str) -> None:
    expect(invoke(["ingest", "easy-vqa", "--dataset", "x", "--max-records", n]), 2, "max-records")


def test_easy_vqa_lookalike_names_are_paths(tmp_path: Path) -> None:
    name = unique("lookalike")
    with untouched(tmp_path):
        for source in ("easy-vqa-nope", "easy-vqa:nope"):
            expect(invoke(["ingest", source, "--dataset", name], cwd=tmp_path), 2, "not found")
    assert name not in fo.list_datasets()
    scene_folder(tmp_path / "easy-vqa-nope", 1, 1, seed=8)
    outcome = invoke(["ingest", "easy-vqa-nope", "--dataset", name], cwd=tmp_path)
    expect(outcome, 0, "2 added")
    assert set(fo.load_dataset(name).distinct("source")) == {"folder:easy-vqa-nope"}


# raw folders: spellings, hidden files, unknown and empty sub-folders, one-label data


def test_folder_spellings_hidden_files_and_warnings(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 2, 3, seed=9, no_name="No-Fall")
    (folder / "unsure").mkdir()  # empty: must not block
    (folder / "extras").mkdir()
    render_scene(True, 99, 48).save(folder / "extras" / "x.png")
    (folder / "fall" / ".thumbnails").mkdir()
    render_scene(True, 98, 48).save(folder / "fall" / ".thumbnails" / "t.png")
    # macOS AppleDouble files: `._` + the name, here real image bytes so they would ingest
    render_scene(True, 97, 48).save(folder / "fall" / "._0000.png")
    name = unique("spellings")
    with untouched(tmp_path):
        outcome = invoke(["ingest", folder, "--dataset", name])
    expect(outcome, 0, "5 added", "extras/", "not label folders")
    ds = fo.load_dataset(name)
    answers = sorted(a for (a,) in ds.values("answers"))
    assert answers == ["no"] * 3 + ["yes"] * 2
    assert not [p for p in ds.values("filepath") if "/." in p]


def test_all_yes_folder_is_loud(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 2, 0, seed=10)
    (folder / "no_fall").mkdir()  # there but empty
    name = unique("allyes")
    outcome = invoke(["ingest", folder, "--dataset", name])
    expect(outcome, 0, "WARNING", "every labelled image", "'yes'", "no_fall/")


# check: conflicts by content and paraphrase; --json writes only a report


def test_conflict_across_paraphrases_and_folders(tmp_path: Path) -> None:
    a = scene_folder(tmp_path / "A", 1, 0, seed=11)
    b = scene_folder(tmp_path / "B", 1, 1, seed=12)
    # the same bytes: "yes" in A/fall/, "no" in B/no_fall/
    (b / "no_fall" / "same.png").write_bytes((a / "fall" / "0000.png").read_bytes())
    qa = questions_file(tmp_path / "qa.yaml", TASK)
    qb = questions_file(tmp_path / "qb.yaml", PARAPHRASE)
    name = unique("conflict")
    with untouched(tmp_path):
        expect(invoke(["ingest", a, "--dataset", name, "--questions", qa]), 0, "1 added")
        expect(invoke(["ingest", b, "--dataset", name, "--questions", qb]), 0, "3 added")
        expect(invoke(["check", "--dataset", name]), 0, "conflict")
    ds = fo.load_dataset(name)
    flagged = sorted(Path(p).name for p in ds.match_tags("conflict").values("filepath"))
    assert flagged == ["0000.png", "same.png"]


def test_check_json_writes_only_a_report(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 1, 1, seed=13)
    annotations = annotation_file(folder / "train.json", ["fall/0000.png"], ["yes"])
    name = unique("json")
    expect(invoke(["ingest", folder, "--dataset", name]), 0, "2 added")
    link = tmp_path / "link.json"
    link.symlink_to(annotations)
    with untouched(tmp_path):
        expect(invoke(["check", "--dataset", name, "--json", folder]), 2, "is a folder")
        nested = annotations / "report.json"
        expect(invoke(["check", "--dataset", name, "--json", nested]), 2, "is a file, not a")
        expect(invoke(["check", "--dataset", name, "--json", annotations]), 2, "not a curate check")
        expect(invoke(["check", "--dataset", name, "--json", link]), 2, "not a curate check")
    out = tmp_path / "out" / "report.json"
    expect(invoke(["check", "--dataset", name, "--json", out]), 0, "full report")
    expect(invoke(["check", "--dataset", name, "--json", out]), 0, "full report")
    assert json.loads(out.read_text())["dataset"] == name


def test_database_that_never_comes_up_is_one_clear_message(monkeypatch) -> None:
    import fiftyone.core.odm.database as fodb
    from fiftyone.core.service import ServiceListenTimeout

    import curation.curator._fo as cfo

    tries = []

    def never(*args, **kwargs):
        tries.append(1)
        raise ServiceListenTimeout("fiftyone.core.service.DatabaseService", None)

    # as in a process that has not connected yet (all three are restored afterwards)
    monkeypatch.setattr(fodb, "_client", None)
    monkeypatch.setattr(fodb, "_db_service", None)
    monkeypatch.delenv("FIFTYONE_PRIVATE_DATABASE_PORT", raising=False)
    monkeypatch.setattr(fodb, "get_db_conn", never)
    monkeypatch.setattr(fodb, "_disconnect", lambda: None)  # keep this test run's connection
    monkeypatch.setattr(cfo.time, "sleep", lambda s: None)
    expect(invoke(["check", "--dataset", "x"]), 1, "did not start after 3 tries", "Fix: run")
    assert len(tries) == cfo.CONNECT_ATTEMPTS


def test_check_on_a_dataset_not_made_by_ingest(tmp_path: Path) -> None:
    render_scene(True, 1, 48).save(tmp_path / "a.png")
    name = unique("foreign")
    ds = fo.Dataset(name)
    ds.add_sample(fo.Sample(filepath=str(tmp_path / "a.png")))
    expect(invoke(["check", "--dataset", name]), 1, "was not made by curate ingest", "sha256")
    ds.delete()


def test_paths_the_system_refuses(tmp_path: Path) -> None:
    long = tmp_path / ("x" * 5000)
    name = unique("long")
    folder = scene_folder(tmp_path / "set", 1, 1, seed=14)
    q = long
    with untouched(tmp_path):
        expect(invoke(["ingest", long, "--dataset", name]), 2, "SOURCE", "too long")
        outcome = invoke(["ingest", folder, "--dataset", name, "--questions", q])
        expect(outcome, 2, "--questions", "too long")
        expect(invoke(["check", "--dataset", name, "--json", q]), 2, "--json", "too long")


def test_image_root_only_for_annotation_files(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "set", 1, 1, seed=15)
    outcome = invoke(["ingest", folder, "--dataset", "x", "--image-root", tmp_path])
    expect(outcome, 2, "--image-root applies to an annotation file")


def test_review_views_use_the_one_answer_rule(tmp_path: Path) -> None:
    from curation.curator.review import save_review_views

    folder = scene_folder(tmp_path / "set", 2, 1, seed=16)
    name = unique("views")
    expect(invoke(["ingest", folder, "--dataset", name]), 0, "3 added")
    ds = fo.load_dataset(name)
    one = ds.match(fo.ViewField("answer") == "yes").first()
    one.answers, one.answer = ["Yes."], "Yes."  # as an annotation file may say it
    one.save()
    save_review_views(ds)
    assert len(ds.load_saved_view("answer-yes")) == 2
    assert len(ds.load_saved_view("answer-no")) == 1


def test_datasets_ingested_with_the_old_key_are_not_duplicated(tmp_path: Path) -> None:
    import hashlib

    a = scene_folder(tmp_path / "A" / "photos", 2, 1, seed=17)
    b = scene_folder(tmp_path / "B" / "photos", 2, 1, seed=18)
    name = unique("legacy")
    expect(invoke(["ingest", a, "--dataset", name]), 0, "3 added")
    ds = fo.load_dataset(name)
    # as the previous version stored them: no source_path, key from the base name
    for sample in ds:
        old = f"{sample.source}\0{sample.original_id}\0{sample.question}"
        sample.ingest_key = hashlib.sha1(old.encode()).hexdigest()
        sample.source_path = None
        sample.save()
    expect(invoke(["ingest", a, "--dataset", name]), 0, "0 added, 3 already there")
    expect(invoke(["ingest", b, "--dataset", name]), 0, "3 added, 0 already there, 6 in")
