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
    """Stop the mongod FiftyOne started for the tests, and wait until it is gone."""
    import sys

    database = sys.modules.get("fiftyone.core.odm.database")
    service = getattr(database, "_db_service", None)
    child = getattr(service, "child", None)
    if service is not None and child is not None:
        with contextlib.suppress(Exception):
            database._disconnect()  # mongod stops only once no client is connected
        service.stop()  # closes the service's stdin: it stops mongod when no client is left
        # best effort: .ci/run checks that no mongod survives
        with contextlib.suppress(Exception):
            child.wait(timeout=60)
    # the service exits before its mongod has finished shutting down; removing the folder
    # under a live mongod makes it abort (exit -6): wait for it first
    import time

    deadline = time.monotonic() + 30
    while _mongod_running(_DATABASE_DIR) and time.monotonic() < deadline:
        time.sleep(0.2)
    # a database folder holds about 300 MB of preallocated files: never leave one behind
    import shutil

    shutil.rmtree(_DATABASE_DIR, ignore_errors=True)


def _mongod_running(dbpath: str) -> bool:
    """Whether a mongod serving ``dbpath`` is still alive (Linux /proc; False elsewhere)."""
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"mongod") and dbpath.encode() in argv:
                return True
    return False
