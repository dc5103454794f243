"""Shared fixtures: tiny real image files and annotation files with planted errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pytest

# FiftyOne (imported lazily by the curator tests) gets its own database directory, so the
# tests never touch a user's datasets; its mongod ends with the test process.
_DATABASE_DIR = tempfile.mkdtemp(prefix="curate-tests-fodb-")
os.environ["FIFTYONE_DATABASE_DIR"] = _DATABASE_DIR
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
# the tiny model's small ops run fastest on one thread; two threads on a shared 2-core CPU
# wait on each other (the collapse test took 729 s instead of about 100 s). Subprocesses
# (torchrun ranks, CLI runs) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from curation.synthetic import QUESTION, render_scene  # noqa: E402 - after the env above

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "raw" / "sample"


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def record(i: int, image: str = "fall.png", answer: object = ("yes",), **extra: object) -> dict:
    rec = {"instance_id": i, "image": image, "text_input": QUESTION, "answer": list(answer)}
    if isinstance(answer, str):
        rec["answer"] = answer
    rec.update(extra)
    return rec


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A folder of real images: good ones, a duplicate, a tiny one, a corrupt and an empty file."""
    root = tmp_path / "images"
    root.mkdir()
    render_scene(True, 1, 64).save(root / "fall.png")
    render_scene(False, 2, 64).save(root / "stand.png")
    render_scene(False, 3, 64).save(root / "stand2.jpg", quality=90)
    (root / "dup.png").write_bytes((root / "fall.png").read_bytes())
    render_scene(True, 4, 8).save(root / "tiny.png")
    good = (root / "stand2.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("this is not an image")
    return root


@pytest.fixture
def good_file(image_dir: Path) -> Path:
    return write_json(
        image_dir / "train.json",
        [record(1, "fall.png", ["yes"]), record(2, "stand.png", ["no"])],
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the mongod FiftyOne started for the tests, cleanly, before removing its folder.

    FiftyOne's database service stops its mongod (SIGTERM, a clean shutdown) once
    its last client is gone; a client it still waits for (this process when it
    joined a service another process started, or any process left running) keeps
    it up. Removing the folder under a live mongod makes it abort ("exited with
    error -6", printed after the summary): so this process leaves the service,
    and a mongod still up after a while is stopped the way the service stops it.
    """
    stop_test_database(_DATABASE_DIR)


def stop_test_database(folder: str, patience: float = 10.0) -> None:
    """Leave FiftyOne's database service, stop the mongod serving ``folder``, remove it."""
    import signal
    import sys
    import time

    database = sys.modules.get("fiftyone.core.odm.database")
    service = getattr(database, "_db_service", None)
    child = getattr(service, "child", None)
    if database is not None:
        with contextlib.suppress(Exception):
            database._disconnect()  # mongod stops only once no client is connected
    if service is not None and child is not None:
        if getattr(service, "attached", False):  # joined: say this client is gone
            with contextlib.suppress(Exception):
                from fiftyone.service.util import send_ipc_message

                send_ipc_message(child, ("unregister", os.getpid()))
        with contextlib.suppress(Exception):
            service.stop()  # the original parent: closing its stdin says it is gone
        with contextlib.suppress(Exception):
            child.wait(timeout=patience)
    deadline = time.monotonic() + patience
    while _mongod_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    # still up: another client holds the service. Stop mongod as the service would.
    for pid in _mongod_pids(folder):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while _mongod_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    # a database folder holds about 300 MB of preallocated files: never leave one behind
    # (but never remove it under a mongod still shutting down)
    if not _mongod_pids(folder):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _mongod_pids(dbpath: str) -> list[int]:
    """The mongod processes serving ``dbpath`` (Linux /proc; none found elsewhere)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            # (a zombie's command line reads empty)
            if argv and argv[0].endswith(b"mongod") and dbpath.encode() in argv:
                pids.append(int(proc.name))
    return pids
