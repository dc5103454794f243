"""Hostile database settings: unreachable servers, wrong passwords, bad URIs, a bad curate.yaml.

Promises: one clear error within seconds (the server-selection timeout), never a
hang or a traceback; a password in a URI is never printed; the next command on
FiftyOne's own database still works in the same process.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _mongod import (  # noqa: E402, F401 - the fixtures
    Mongod,
    free_port,
    mongod_uri,
    own_auth_mongod,
    user_uri,
)

from curation.synthetic import render_scene  # noqa: E402

fo = pytest.importorskip("fiftyone")

SECRET = "s3cr3t-pw"


@pytest.fixture(autouse=True)
def back_to_this_runs_database():  # noqa: ANN201
    """After each test, this process uses the test run's own database again (other modules
    call FiftyOne directly, without curate's choice of database)."""
    yield
    from curation.curator import database
    from curation.curator._fo import fiftyone

    database.select_database(None)
    fiftyone().list_datasets()


def folder(root: Path) -> Path:
    for label, falling in (("fall", True), ("no_fall", False)):
        (root / label).mkdir(parents=True)
        render_scene(falling, 7, 40).save(root / label / "0.png")
    return root


def test_unreachable_server_is_one_clear_error_naming_no_password(tmp_path: Path) -> None:
    uri = f"mongodb://alice:{SECRET}@127.0.0.1:{free_port()}/"
    source = folder(tmp_path / "set")
    with untouched(tmp_path):
        for args in (
            ["check", "--dataset", "falls"],
            ["ingest", str(source), "--dataset", "falls"],
            ["export", "--dataset", "falls", "--out", str(tmp_path / "out")],
        ):
            out = invoke([*args, "--database-uri", uri])
            expect(
                out,
                1,
                "cannot use the MongoDB server mongodb://alice:***@127.0.0.1",
                "(from --database-uri): the server refused the connection: nothing listens",
                "Fix: check the host and port",
            )
            assert SECRET not in out.output
    # the same process goes back to FiftyOne's own database for the next command
    expect(invoke(["check", "--dataset", f"nope-{uuid.uuid4().hex[:6]}"]), 2, "no FiftyOne dataset")


def test_unreachable_server_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FIFTYONE_DATABASE_URI", f"mongodb://bob:{SECRET}@127.0.0.1:{free_port()}")
    out = invoke(["check", "--dataset", "falls"])
    expect(out, 1, "(from FIFTYONE_DATABASE_URI)", "bob:***@")
    assert SECRET not in out.output
    monkeypatch.delenv("FIFTYONE_DATABASE_URI")
    expect(invoke(["check", "--dataset", f"nope-{uuid.uuid4().hex[:6]}"]), 2, "no FiftyOne dataset")


def test_wrong_password_is_named_not_shown(mongod_uri: str) -> None:  # noqa: F811
    uri = mongod_uri.replace("mongodb://", f"mongodb://nobody:{SECRET}@")
    out = invoke(["check", "--dataset", "falls", "--database-uri", uri])
    expect(
        out,
        1,
        "the server refused the login",
        "nobody:***@",
        "authSource",
    )
    assert SECRET not in out.output
    expect(invoke(["check", "--dataset", f"nope-{uuid.uuid4().hex[:6]}"]), 2, "no FiftyOne dataset")


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("http://db.example.org", "'http://db.example.org' is not a MongoDB connection string"),
        (f"mongodb://u:{SECRET}@", "'mongodb://u:***@' is not a MongoDB connection string"),
        ("", "'' is not a MongoDB connection string"),
        (f"mongodb://u:{SECRET}@127.0.0.1:99999/", "Port must be an integer"),
        (f"mongodb+srv://u:{SECRET}@db.example.org:27017/", "must not include a port"),
    ],
)
def test_not_a_mongodb_uri_is_a_usage_error(uri: str, needle: str) -> None:
    out = invoke(["check", "--dataset", "falls", "--database-uri", uri])
    expect(out, 2, needle)
    assert SECRET not in out.output


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ("serverSelectionTimeoutMS=abc", "serverselectiontimeoutms must be an integer or float"),
        ("foo=bar", "Unknown option: foo"),
        ("authSource=admin&authSource=other", "Duplicate URI option 'authSource'"),
        ("tls=maybe", "The value of tls must be 'true' or 'false'"),
    ],
)
def test_a_bad_uri_option_is_refused_not_warned_about(
    options: str, needle: str, monkeypatch, tmp_path: Path
) -> None:
    """pymongo only warns (twice, with its own file and line) and connects without it."""
    uri = f"mongodb://u:{SECRET}@127.0.0.1:{free_port()}/?{options}"
    flagged = invoke(["check", "--dataset", "falls", "--database-uri", uri])
    expect(flagged, 2, "--database-uri: 'mongodb://u:***@127.0.0.1", "has an option", needle)
    assert "UserWarning" not in flagged.output and SECRET not in flagged.output
    (tmp_path / "curate.yaml").write_text(f"database_uri: {uri}\n")
    expect(invoke(["check", "--dataset", "falls"], cwd=tmp_path), 2, "curate.yaml", needle)
    monkeypatch.setenv("FIFTYONE_DATABASE_URI", uri)
    expect(invoke(["check", "--dataset", "falls"]), 2, "FIFTYONE_DATABASE_URI", needle)


def test_a_silent_server_is_waited_for_as_long_as_the_uri_says() -> None:
    """A port that accepts connections and never answers; the URI sets 1.5 s."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1500"
        out = invoke(["check", "--dataset", "falls", "--database-uri", uri])
    expect(out, 1, f"{uri} (from --database-uri): no answer within 1.5 s")


def test_a_refused_tls_handshake_is_named(mongod_uri: str) -> None:  # noqa: F811
    """tls=true against a server without TLS: not a server that did not answer."""
    uri = f"{mongod_uri}?tls=true&serverSelectionTimeoutMS=3000"
    out = invoke(["check", "--dataset", "falls", "--database-uri", uri])
    expect(out, 1, "the TLS handshake failed", "tls=true only with a server that has TLS")
    assert "no answer within" not in out.output


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("database_url: mongodb://x\n", ["curate.yaml", "database_url", "Extra inputs"]),
        ("database_uri: [1\n", ["curate.yaml", "not valid YAML", "line"]),
        ("database_uri: 12\n", ["curate.yaml", "database_uri"]),
        ("- a list\n", ["curate.yaml", "the file"]),
        ("database_uri: ftp://x\n", ["database_uri in", "curate.yaml", "not a MongoDB"]),
    ],
)
def test_bad_project_file_names_file_and_key(
    tmp_path: Path, content: str, needles: list[str]
) -> None:
    (tmp_path / "curate.yaml").write_text(content)
    code = 2 if "ftp" in content else 1
    with untouched(tmp_path):
        expect(invoke(["check", "--dataset", "falls"], cwd=tmp_path), code, *needles)


def test_a_duplicate_that_slips_past_the_known_keys_is_refused_by_the_index(
    tmp_path: Path, monkeypatch
) -> None:
    """Even if a writer did not see another's keys (no lock), the database refuses the copy."""
    import fiftyone.core.collections as foc

    source = folder(tmp_path / "set")
    name = f"unique-{uuid.uuid4().hex[:8]}"
    expect(invoke(["ingest", source, "--dataset", name]), 0, "2 added")
    real = foc.SampleCollection.distinct

    def blind(self, field, *args, **kwargs):  # as if another writer's samples were not there yet
        return [] if field == "ingest_key" else real(self, field, *args, **kwargs)

    monkeypatch.setattr(foc.SampleCollection, "distinct", blind)
    with untouched(tmp_path):
        expect(
            invoke(["ingest", source, "--dataset", name]),
            1,
            f"dataset {name!r}: another writer added some of these samples at the same time",
            "nothing of this run was kept",
        )
    monkeypatch.undo()
    assert len(fo.load_dataset(name)) == 2
    expect(invoke(["ingest", source, "--dataset", name]), 0, "0 added, 2 already there, 2 in")


def test_a_server_lost_mid_ingest_in_a_notebook_then_the_next_command_works(
    tmp_path: Path,
    own_auth_mongod: Mongod,  # noqa: F811
    monkeypatch,
) -> None:
    """In one process: the lost server is one error, and the next command (on FiftyOne's
    own database) neither waits on it nor reuses what was cached for it."""
    import fiftyone.core.dataset as fods

    real = fods.Dataset.add_samples

    def then_the_server_dies(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        own_auth_mongod.proc.kill()
        own_auth_mongod.proc.wait(timeout=60)
        return out

    monkeypatch.setattr(fods.Dataset, "add_samples", then_the_server_dies)
    source = folder(tmp_path / "set")
    uri = user_uri(own_auth_mongod.uri)
    out = invoke(["ingest", source, "--dataset", "falls", "--database-uri", uri])
    expect(out, 1, "lost the MongoDB server mongodb://curator:***@127.0.0.1", "did not finish")
    assert "p%40ss" not in out.output
    monkeypatch.undo()
    name = f"after-{uuid.uuid4().hex[:6]}"
    expect(invoke(["ingest", source, "--dataset", name]), 0, "2 added")
    assert name in fo.list_datasets()


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("a/b", "holds '/'"),
        ("x.y", "holds '.'"),
        ("has space", "holds ' '"),
        ("n" * 80, "80 bytes"),
    ],
)
def test_a_database_name_mongodb_refuses_is_named_not_a_traceback(
    tmp_path: Path, name: str, needle: str
) -> None:
    """Before: pymongo's InvalidName / OperationFailure escaped as a traceback."""
    pytest.importorskip("fiftyone")
    (tmp_path / "curate.yaml").write_text(f'database_name: "{name}"\n')
    with untouched(tmp_path):
        outcome = invoke(["check", "--dataset", "falls"], cwd=tmp_path)
    expect(outcome, 1, "database_name in", "curate.yaml", needle, "Fix:")
    (tmp_path / "curate.yaml").unlink()
    with untouched(tmp_path):
        outcome = invoke(
            ["check", "--dataset", "falls"], cwd=tmp_path, env={"FIFTYONE_DATABASE_NAME": name}
        )
    expect(outcome, 2, "FIFTYONE_DATABASE_NAME", needle, "Fix:")


def test_ctrl_c_while_fiftyone_reads_its_config_is_not_swallowed(monkeypatch) -> None:
    """Before: every FiftyOne access re-reads FiftyOne's config, which lists the installed
    packages under a bare ``except:``; a Ctrl-C in that window (~0.15 s, at the start of
    each command and of find-issues' write-back) was swallowed and the command went on."""
    fo = pytest.importorskip("fiftyone")
    import time

    import fiftyone.core.config as foc

    from curation.curator import database

    def interrupted_listing():  # noqa: ANN202 - the user presses Ctrl-C while it runs
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        return iter(())

    monkeypatch.setattr(foc.metadata, "distributions", interrupted_listing)
    # a runner started in the background (nohup, `cmd &`) inherits SIGINT ignored: give the
    # test the handler an interactive user has
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            database._own_config(fo)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
