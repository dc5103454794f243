"""A team's shared MongoDB: concurrent ingests and checks against one server FiftyOne did not start.

The server is a standalone mongod the fixture starts (``tests/_mongod.py``). Every
command runs as its own process, as team members on different machines would; the
processes import everything first and then start the command at the same moment
(a file barrier), so they really race on creating the dataset and on the known keys.
The results are read with plain pymongo, not through the code under test.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _mongod import (  # noqa: F401 - the fixtures
    AUTH_USER,
    Mongod,
    auth_mongod_uri,
    curate_env,
    mongod_uri,
    own_auth_mongod,
    run_curate,
    user_uri,
)

from curation.curator.database import mask_secrets, mask_uri, resolve_database
from curation.errors import ConfigError, UsageError
from curation.synthetic import render_scene

pytest.importorskip("fiftyone")

RACER = (
    "import pathlib, sys, time\n"
    "import fiftyone, curation.cli, curation.curator.ingest, curation.curator.checks\n"
    "ready, go = map(pathlib.Path, sys.argv[1:3]); del sys.argv[1:3]\n"
    "ready.touch()\n"
    "while not go.exists(): time.sleep(0.005)\n"
    "curation.cli.app()\n"
)


def scene_folder(root: Path, n: int, seed: int) -> Path:
    """``root/fall`` and ``root/no_fall``, ``n`` distinct real images each."""
    for label, falling in (("fall", True), ("no_fall", False)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            render_scene(falling, seed * 1000 + i, 40).save(root / label / f"{i:03d}.png")
    return root


def race(tmp_path: Path, commands: list[tuple[list[str], dict[str, str]]]) -> list[tuple[int, str]]:
    """Start the commands together; (exit code, output) of each."""
    tag = uuid.uuid4().hex[:8]
    go = tmp_path / f"go-{tag}"
    procs, logs, readies = [], [], []
    for i, (args, env) in enumerate(commands):
        ready = tmp_path / f"ready-{tag}-{i}"
        log = tmp_path / f"out-{tag}-{i}.txt"
        with log.open("w") as fh:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", RACER, str(ready), str(go), *args],
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(log)
        readies.append(ready)
    deadline = time.monotonic() + 240
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            log.read_text() for log in logs
        ]
        time.sleep(0.02)
    go.touch()
    codes = [p.wait(timeout=300) for p in procs]
    return [(c, log.read_text()) for c, log in zip(codes, logs, strict=True)]


def stored(uri: str, name: str) -> dict[str, list]:
    """What the server holds for dataset ``name``, read with pymongo."""
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        db = client["fiftyone"]
        doc = db.datasets.find_one({"name": name})
        assert doc is not None, f"no dataset {name!r} on the server"
        samples = db[doc["sample_collection_name"]]
        rows = list(samples.find({}, {"ingest_key": 1, "source_path": 1}))
        unique = [i["key"] for i in samples.index_information().values() if i.get("unique")]
        others = [d["name"] for d in db.datasets.find({"persistent": True}, {"name": 1})]
        return {
            "keys": [r.get("ingest_key") for r in rows],
            "sources": [r.get("source_path") for r in rows],
            "persistent": others,
            "unique": unique,
        }
    finally:
        client.close()


def ok(result: tuple[int, str], *needles: str) -> str:
    code, out = result
    assert code == 0 and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out
    return out


@pytest.mark.slow
def test_two_ingests_create_one_dataset_together(tmp_path: Path, mongod_uri: str) -> None:  # noqa: F811
    a = scene_folder(tmp_path / "a", 4, seed=1)
    b = scene_folder(tmp_path / "b", 5, seed=2)
    by_flag = curate_env()
    by_env = curate_env(FIFTYONE_DATABASE_URI=mongod_uri)
    for _ in range(3):  # several rounds: the race goes either way
        name = f"team-{uuid.uuid4().hex[:8]}"
        results = race(
            tmp_path,
            [
                (["ingest", str(a), "--dataset", name, "--database-uri", mongod_uri], by_flag),
                (["ingest", str(b), "--dataset", name], by_env),
            ],
        )
        ok(results[0], "8 added, 0 already there")
        ok(results[1], "10 added, 0 already there")
        held = stored(mongod_uri, name)
        assert len(held["keys"]) == 18 and len(set(held["keys"])) == 18
        assert sorted(set(held["sources"])) == sorted([str(a.resolve()), str(b.resolve())])
        assert name in held["persistent"]
        assert [("ingest_key", 1)] in held["unique"]  # the database refuses a second copy
        assert not [n for n in held["persistent"] if n.startswith("curate-partial-")]
        # re-ingesting both, again together, adds nothing
        again = race(
            tmp_path,
            [
                (["ingest", str(b), "--dataset", name, "--database-uri", mongod_uri], by_flag),
                (["ingest", str(a), "--dataset", name], by_env),
            ],
        )
        ok(again[0], "0 added, 10 already there, 18 in")
        ok(again[1], "0 added, 8 already there, 18 in")
        assert len(stored(mongod_uri, name)["keys"]) == 18


@pytest.mark.slow
def test_one_source_twice_at_once_is_one_copy(tmp_path: Path, mongod_uri: str) -> None:  # noqa: F811
    a = scene_folder(tmp_path / "a", 3, seed=3)
    name = f"same-{uuid.uuid4().hex[:8]}"
    env = curate_env(FIFTYONE_DATABASE_URI=mongod_uri)
    outs = [ok(r) for r in race(tmp_path, [(["ingest", str(a), "--dataset", name], env)] * 2)]
    assert sorted("6 added, 0 already there" in o for o in outs) == [False, True], outs
    assert any("0 added, 6 already there, 6 in" in o for o in outs), outs
    keys = stored(mongod_uri, name)["keys"]
    assert len(keys) == 6 and len(set(keys)) == 6


@pytest.mark.slow
def test_check_beside_two_ingests_into_one_dataset(tmp_path: Path, mongod_uri: str) -> None:  # noqa: F811
    a = scene_folder(tmp_path / "a", 2, seed=4)
    b = scene_folder(tmp_path / "b", 3, seed=5)
    c = scene_folder(tmp_path / "c", 4, seed=6)
    name = f"checked-{uuid.uuid4().hex[:8]}"
    env = curate_env(FIFTYONE_DATABASE_URI=mongod_uri)
    ok(_rc(run_curate(["ingest", str(a), "--dataset", name], env)), "4 added")
    results = race(
        tmp_path,
        [
            (["ingest", str(b), "--dataset", name], env),
            (["ingest", str(c), "--dataset", name], env),
            (["check", "--dataset", name], env),
        ],
    )
    ok(results[0], "6 added")
    ok(results[1], "8 added")
    ok(results[2], "checks on")
    keys = stored(mongod_uri, name)["keys"]
    assert len(keys) == 4 + 6 + 8 and len(set(keys)) == len(keys)
    ok(_rc(run_curate(["check", "--dataset", name], env)), f"checks on {name} (18")
    # and anyone can export the shared dataset
    out = tmp_path / "export"
    ok(_rc(run_curate(["export", "--dataset", name, "--out", str(out), "--copy"], env)))
    assert (out / "train.json").is_file() and (out / "manifest.json").is_file()


def _rc(proc: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_server_with_auth_named_in_curate_yaml(tmp_path: Path, auth_mongod_uri: str) -> None:  # noqa: F811
    from urllib.parse import quote

    user, password = AUTH_USER
    uri = auth_mongod_uri.replace("mongodb://", f"mongodb://{user}:{quote(password, safe='')}@")
    (tmp_path / "curate.yaml").write_text(f"database_uri: {uri}?authSource=admin\n")
    a = scene_folder(tmp_path / "a", 2, seed=7)
    name = f"auth-{uuid.uuid4().hex[:8]}"
    env = curate_env()
    out = ok(_rc(run_curate(["ingest", str(a), "--dataset", name], env, cwd=tmp_path)), "4 added")
    ok(_rc(run_curate(["check", "--dataset", name], env, cwd=tmp_path)), f"checks on {name} (4")
    # the password is wrong: named as a refused login, never shown
    (tmp_path / "curate.yaml").write_text(f"database_uri: {uri.replace('%40', '%41')}\n")
    code, out = _rc(run_curate(["check", "--dataset", name], env, cwd=tmp_path))
    assert code == 1 and "the server refused the login" in out and "Traceback" not in out, out
    assert "curator:***@" in out and "ss%3Aw" not in out and "ss:w" not in out, out


# which database: flag > FIFTYONE_DATABASE_URI > curate.yaml > FiftyOne's own


def test_precedence_flag_then_environment_then_project_file(tmp_path: Path) -> None:
    (tmp_path / "curate.yaml").write_text(
        "database_uri: mongodb://file-host:27017\ndatabase_name: team\n"
    )
    below = tmp_path / "sub" / "dir"
    below.mkdir(parents=True)
    env = {"FIFTYONE_DATABASE_URI": "mongodb://env-host:27017"}
    flag = "mongodb://flag-host:27017"
    got = resolve_database(flag, env, below)
    assert (got.uri, got.origin, got.name) == (flag, "--database-uri", "team")
    got = resolve_database(None, env, below)
    assert (got.uri, got.origin) == ("mongodb://env-host:27017", "FIFTYONE_DATABASE_URI")
    got = resolve_database(None, {}, below)  # found in a parent folder
    assert got.uri == "mongodb://file-host:27017"
    assert got.origin == f"database_uri in {tmp_path / 'curate.yaml'}"
    got = resolve_database(None, {"FIFTYONE_DATABASE_NAME": "mine"}, tmp_path.parent)
    assert (got.uri, got.name) == (None, "mine")


def test_a_bad_flag_is_refused_before_anything_connects() -> None:
    with pytest.raises(UsageError, match=r"'mongodb://u:\*\*\*@' is not a MongoDB"):
        resolve_database("mongodb://u:pw@", {}, Path("/"))


def test_a_project_file_with_an_unknown_key(tmp_path: Path) -> None:
    (tmp_path / "curate.yaml").write_text("databse_uri: mongodb://h\n")
    with pytest.raises(ConfigError, match="databse_uri: Extra inputs are not permitted"):
        resolve_database(None, {}, tmp_path)


@pytest.mark.parametrize(
    ("uri", "shown", "password"),
    [
        (
            "mongodb://alice:pw9@h:1/db?authSource=admin",
            "mongodb://alice:***@h:1/db?authSource=admin",
            "pw9",
        ),
        ("mongodb://alice:p%40ss@h1,h2/", "mongodb://alice:***@h1,h2/", "p@ss"),
        ("mongodb://alice:p@ss@h/", "mongodb://alice:***@h/", "p@ss"),  # an unescaped @
        ("mongodb+srv://bob@cluster.example.org/", "mongodb+srv://bob@cluster.example.org/", ""),
        ("mongodb://h:27017/", "mongodb://h:27017/", ""),
    ],
)
def test_mask_uri(uri: str, shown: str, password: str) -> None:
    assert mask_uri(uri) == shown
    text = mask_secrets(f"failed: {uri} (the server said: {password or 'no'})", uri)
    assert shown in text
    if password:
        assert password not in text and uri not in text


@pytest.mark.slow
def test_switching_databases_in_one_process_never_reuses_the_other_ones_dataset(
    tmp_path: Path,
    mongod_uri: str,  # noqa: F811
) -> None:
    """A notebook (or a test run) that uses the flag once, then its own database again."""
    import fiftyone as fo
    from typer.testing import CliRunner

    from curation.cli import app

    runner = CliRunner()
    name = f"switch-{uuid.uuid4().hex[:8]}"
    local = scene_folder(tmp_path / "local", 4, seed=1)
    shared = scene_folder(tmp_path / "shared", 6, seed=2)

    def curate(*args: object) -> str:
        result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    curate("ingest", local, "--dataset", name)
    # --overwrite deletes a dataset: FiftyOne caches the database handle it deletes through
    curate("ingest", local, "--dataset", name, "--overwrite")
    assert len(fo.load_dataset(name)) == 8  # FiftyOne now caches this Dataset object
    curate("ingest", shared, "--dataset", name, "--database-uri", mongod_uri)
    assert len(fo.load_dataset(name)) == 12  # the server's dataset, not the cached local one
    # back on the local database: the dataset objects cached under the other client are gone
    assert "8 added" in curate("ingest", local, "--dataset", name, "--overwrite")
    assert len(fo.load_dataset(name)) == 8


# an ingest that dies, or whose server goes away, while it writes

#: ``curate ARGS`` that stops after its first batch of samples is written: it touches
#: READY, then waits for GO (a test kills it, or stops its server, meanwhile).
STALLED = (
    "import pathlib, sys, time\n"
    "import fiftyone.core.dataset as fod\n"
    "ready, go = map(pathlib.Path, sys.argv[1:3]); del sys.argv[1:3]\n"
    "real = fod.Dataset.add_samples\n"
    "def stalled(self, *args, **kwargs):\n"
    "    out = real(self, *args, **kwargs)\n"
    "    ready.touch()\n"
    "    while not go.exists(): time.sleep(0.01)\n"
    "    return out\n"
    "fod.Dataset.add_samples = stalled\n"
    "from curation.cli import app; app()\n"
)


def stalled_curate(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen[str], Path, Path]:
    """``curate ARGS`` as a process, once it has written samples; (process, its log, GO)."""
    tag = uuid.uuid4().hex[:8]
    ready, go, log = (tmp_path / f"{n}-{tag}" for n in ("ready", "go", "log"))
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", STALLED, str(ready), str(go), *args],
            env=curate_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 240
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    return proc, log, go


def datasets_on(uri: str) -> dict[str, int]:
    """Every dataset the server holds (temporary ones too) and its sample count, by pymongo."""
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        db = client["fiftyone"]
        return {
            d["name"]: db[d["sample_collection_name"]].count_documents({})
            for d in db.datasets.find({}, {"name": 1, "sample_collection_name": 1})
        }
    finally:
        client.close()


@pytest.mark.slow
def test_a_killed_ingest_leaves_no_partial_dataset_with_the_documented_role(
    tmp_path: Path,
    auth_mongod_uri: str,  # noqa: F811
) -> None:
    """The user has only the documented role (readWrite on the database): FiftyOne's own
    clean-up, which needs $currentOp on all users, cannot run for it."""
    uri = user_uri(auth_mongod_uri)
    a = scene_folder(tmp_path / "a", 3, seed=9)
    name = f"killed-{uuid.uuid4().hex[:8]}"
    ingest = ["ingest", str(a), "--dataset", name, "--database-uri", uri]
    proc, log, _ = stalled_curate(tmp_path, ingest)
    try:
        partial = [n for n in datasets_on(uri) if n.startswith("curate-partial-")]
        assert len(partial) == 1 and datasets_on(uri)[partial[0]] == 6, datasets_on(uri)
        # a command beside the running ingest leaves its partial dataset alone
        beside = run_curate(["check", "--dataset", name, "--database-uri", uri])
        assert beside.returncode == 2 and "no FiftyOne dataset named" in beside.stderr, beside
        assert partial[0] in datasets_on(uri)
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own runs
        proc.wait(timeout=60)
    assert partial[0] in datasets_on(uri), "the kill itself removed nothing"
    # the next command removes it (and the dead ingest's lock does not hold it up)
    ok(_rc(run_curate(ingest)), "6 added, 0 already there, 6 in")
    held = datasets_on(uri)
    assert held[name] == 6 and not [n for n in held if n.startswith("curate-partial-")], held


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_the_server_going_away_mid_ingest_is_one_line_naming_it(
    tmp_path: Path,
    own_auth_mongod: Mongod,  # noqa: F811
    stop: str,
) -> None:
    uri = user_uri(own_auth_mongod.uri)
    a = scene_folder(tmp_path / "a", 2, seed=10)
    proc, log, go = stalled_curate(
        tmp_path, ["ingest", str(a), "--dataset", "lost", "--database-uri", uri]
    )
    getattr(own_auth_mongod.proc, stop)()  # SIGTERM (mongod shuts down) or SIGKILL
    own_auth_mongod.proc.wait(timeout=60)
    go.touch()
    code = proc.wait(timeout=240)
    out = log.read_text()
    assert code == 1 and "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    port = own_auth_mongod.uri.rsplit(":", 1)[1].strip("/")
    assert len(lines) == 1, out
    assert lines[0].startswith(
        f"error: lost the MongoDB server mongodb://curator:***@127.0.0.1:{port}/"
        "?authSource=admin (from --database-uri) during the command"
    ), out
    assert "p%40ss" not in out and AUTH_USER[1] not in out


# FiftyOne's own database in a user's own script

#: Prints the data folder of the mongod that ``fiftyone`` (imported as ARGV[1] says) uses.
WHICH_FOLDER = (
    "import sys\n"
    "if sys.argv[1] == 'plain':\n"
    "    import fiftyone as fo\n"
    "else:\n"
    "    from curation.curator.connection import connected_fiftyone\n"
    "    fo = connected_fiftyone()\n"
    "import fiftyone.core.odm.database as fod\n"
    "opts = fod.get_db_client().admin.command('getCmdLineOpts')\n"
    "print(opts['parsed']['storage']['dbPath'])\n"
)


@pytest.mark.slow
def test_a_plain_import_fiftyone_joins_a_running_database_of_another_folder(
    tmp_path: Path,
) -> None:
    """The curator guide's FIFTYONE_DATABASE_DIR advice: FiftyOne joins any running database
    service of this user; ``connected_fiftyone`` joins only its folder's."""
    from curation.curator._fo import fiftyone

    fiftyone().list_datasets()  # this test run's database service is up
    folder = tmp_path / "project-db"
    env = curate_env(FIFTYONE_DATABASE_DIR=str(folder))

    def used_folder(how: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", WHICH_FOLDER, how],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.strip().splitlines()[-1]

    assert used_folder("plain") != str(folder)  # a running service's folder, not the one set
    assert used_folder("curate") == str(folder)
