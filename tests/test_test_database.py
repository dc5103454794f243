"""The test run's own FiftyOne database stops cleanly when the run ends (``tests/conftest.py``).

A pytest run in a subprocess, with this repository's conftest, connects to its
own database and leaves a second client of it running (as a forgotten notebook
or App would): the run must still end with no mongod left on its folder, the
folder removed, and no "exited with error" from FiftyOne's database service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, _mongod_pids

pytest.importorskip("fiftyone")

#: A client of the database service of FIFTYONE_DATABASE_DIR that stays until killed.
LINGER = (
    "import pathlib, sys, time\n"
    "from curation.curator._fo import fiftyone\n"
    "fiftyone().list_datasets()\n"
    "pathlib.Path(sys.argv[1]).write_text('joined')\n"
    "time.sleep(900)\n"
)

INNER_TEST = f"""
import os, pathlib, subprocess, sys, time

def test_leaves_a_second_client_running():
    from curation.curator._fo import fiftyone

    fiftyone().list_datasets()
    out = pathlib.Path(os.environ["OUTER"])
    (out / "folder").write_text(os.environ["FIFTYONE_DATABASE_DIR"])
    env = {{k: v for k, v in os.environ.items() if k != "FIFTYONE_PRIVATE_DATABASE_PORT"}}
    joined = out / "joined"
    with (out / "client.log").open("w") as log:
        client = subprocess.Popen(
            [sys.executable, "-c", {LINGER!r}, str(joined)], env=env, stdout=log, stderr=log
        )
    (out / "client").write_text(str(client.pid))
    deadline = time.monotonic() + 240
    while not joined.exists():
        assert client.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
"""


@pytest.mark.slow
def test_the_runs_mongod_stops_cleanly_though_another_client_is_left(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_")}
    env["OUTER"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    try:
        # files, not pipes: a database service that outlived the run would hold a pipe open
        with out.open("w") as fo_out, err.open("w") as fo_err:
            code = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider"]
                + ["--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_inner.py")],
                cwd=tmp_path,
                env=env,
                stdout=fo_out,
                stderr=fo_err,
                timeout=480,
            ).returncode
        report = out.read_text() + err.read_text()
        assert code == 0 and "1 passed" in report, report
        folder = (tmp_path / "folder").read_text()
        assert _mongod_pids(folder) == [], report  # nothing to abort later
        assert not Path(folder).exists(), report
        time.sleep(1)  # the database service's last words, if any, come after mongod's exit
        assert "exited with error" not in out.read_text() + err.read_text()
    finally:
        client = tmp_path / "client"
        if client.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(client.read_text()), signal.SIGKILL)
