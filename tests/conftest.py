"""Shared fixtures: tiny real image files and annotation files with planted errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
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
# A process started in the background (`cmd &` in a script, nohup, some CI runners and
# xdist's workers under them) inherits SIGINT ignored: the tests of Ctrl-C handling would
# wait for an interrupt that never comes. The tests get the handler an interactive user has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


# --- one trained sample for the whole session -------------------------------------------------
# Training the bundled sample is the suite's most expensive step: it happens once per run
# (xdist's workers share it), never per module. The trained folder is
# shared: a test that writes into it (eval writes eval.json and operating_point.json beside
# the checkpoint, resume adds a run) works on ``copy_of(trained_sample, ...)`` instead.


def _train_sample(folder: Path, epochs: int) -> Path:
    """``curate export --task raw/sample/annotations.json --out folder/ex``, then ``curate
    train folder/ex/lavis.yaml run.max_epoch=EPOCHS --run-id r1`` (tiny preset, seed 0)."""
    from typer.testing import CliRunner

    from curation.cli import app

    out = folder / "ex"
    for args in (
        ["export", "--task", str(SAMPLE / "annotations.json"), "--out", str(out)],
        ["train", str(out / "lavis.yaml"), f"run.max_epoch={epochs}", "--run-id", "r1"],
    ):
        result = CliRunner().invoke(app, args, terminal_width=200)
        assert result.exit_code == 0, f"curate {' '.join(args)}\n{result.output}"
    return out


def _shared_trained_sample(tmp_path_factory: pytest.TempPathFactory, epochs: int) -> Path:
    """The sample trained ``epochs`` epochs once per run: xdist's workers share the folder
    (the first trains it under a lock, the others wait for it and read it)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' basetemps are popen-gw0, popen-gw1, ... in one folder
    folder = root / f"trained-sample-{epochs}-epochs"
    done = folder / "trained"
    with FileLock(f"{folder}.lock"):
        if not done.is_file():
            import shutil

            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way
            folder.mkdir()
            _train_sample(folder, epochs)
            done.touch()
    return folder / "ex"


@pytest.fixture(scope="session")
def trained_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's export trained one epoch: ``OUT/runs/r1/checkpoint_0.pth`` (read only)."""
    return _shared_trained_sample(tmp_path_factory, 1)


@pytest.fixture(scope="session")
def trained_sample_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's export trained two epochs: ``OUT/runs/r1/checkpoint_1.pth`` (read only;
    a run keeps only its latest epoch's checkpoint, and checkpoint_best.pth)."""
    return _shared_trained_sample(tmp_path_factory, 2)


def copy_of(folder: Path, dest: Path) -> Path:
    """A private copy of a shared folder (the run's config.yaml names its data relatively)."""
    import shutil

    shutil.copytree(folder, dest)
    return dest


# --- two tiers: markers follow from what a test uses ------------------------------------------
# ``make check`` runs the tests marked neither ``slow`` nor ``integration``; ``make test``
# runs them all. Nobody marks a test by hand: a test is marked by the fixtures it uses
# (directly or through other fixtures) and by the names its body and its fixtures call, so
# a new test that trains, starts a database, decodes video or runs a process is marked
# without anyone remembering to.

#: fixtures (by name, in any test's fixture closure) and the marker they bring
_FIXTURE_MARKERS = {
    "trained_sample": "slow",
    "trained_sample_2": "slow",
    "mongod_uri": "integration",
    "auth_mongod_uri": "integration",
    "own_auth_mongod": "integration",
}
#: names a test or fixture function calls (its code's global and attribute names) that
#: mean it trains, runs a model, starts FiftyOne's database, writes or decodes video, or
#: runs a process
_CALL_MARKERS = {
    "train": "slow",
    "trained_export": "slow",
    "quantize": "slow",
    "load_model": "slow",
    "tiny_footage": "slow",
    "write_clip": "slow",
    "write_video": "slow",
    "ingest_videos": "slow",
    "fiftyone": "integration",
    "fo": "integration",
    "FiftyOneCurator": "integration",
    "invoke_process": "integration",
    "subprocess": "integration",
    "Popen": "integration",
    "Server": "integration",
}
#: ``curate`` commands that train, run a model or start the database; a test or fixture
#: that runs the CLI (``invoke``, ``runner.invoke(app, ...)``) with one of them is slow
_COMMAND_MARKERS = {
    "train": "slow",
    "eval": "slow",
    "predict": "slow",
    "find-issues": "slow",
    "quantize": "slow",
    "serve": "slow",
    "watch": "slow",
    "eval-events": "slow",
    "ingest": "integration",
    "check": "integration",
    "review": "integration",
    "--nproc-per-node": "integration",
}
_CLI_NAMES = {"invoke", "invoke_process", "app", "runner"}
#: markers that imply a tier
_MARK_MARKERS = {"gpu": "integration", "integration": "integration", "slow": "slow"}


_TESTS = Path(__file__).resolve().parent


def _called_names(func: object, seen: set[object] | None = None) -> set[str]:
    """The global and attribute names a function's code refers to, through its nested
    functions and the test helpers it calls (functions defined under tests/)."""
    seen = set() if seen is None else seen
    func = getattr(func, "__wrapped__", func)
    code = getattr(func, "__code__", None)
    if code is None or func in seen:
        return set()
    seen.add(func)
    names: set[str] = set()
    stack = [code]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
        # the command a CLI call runs: "cmd:train" for the constant "train"
        names.update(f"cmd:{c}" for c in code.co_consts if c in _COMMAND_MARKERS)
    helpers = getattr(func, "__globals__", {})
    for name in list(names):
        helper = helpers.get(name)
        source = getattr(getattr(helper, "__code__", None), "co_filename", "")
        if source and Path(source).resolve().is_relative_to(_TESTS):
            names |= _called_names(helper, seen)
    return names


def tier_markers(item: pytest.Item) -> set[str]:
    """``slow`` / ``integration``: what the test's fixtures, calls and marks make it."""
    found = {_MARK_MARKERS[m.name] for m in item.iter_markers() if m.name in _MARK_MARKERS}
    info = getattr(item, "_fixtureinfo", None)
    funcs = [getattr(item, "function", None)]
    for name in getattr(item, "fixturenames", ()):
        if name in _FIXTURE_MARKERS:
            found.add(_FIXTURE_MARKERS[name])
        defs = info.name2fixturedefs.get(name, ()) if info is not None else ()
        funcs.extend(d.func for d in defs if Path(getattr(d, "baseid", "") or ".").parts)
    for func in funcs:
        if func is None or getattr(func, "__module__", "").startswith("_pytest"):
            continue
        called = _called_names(func)
        found.update(_CALL_MARKERS[n] for n in called if n in _CALL_MARKERS)
        if called & _CLI_NAMES:
            commands = {n[4:] for n in called if n.startswith("cmd:")}
            found.update(_COMMAND_MARKERS[c] for c in commands)
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(tier_markers(item)):
            item.add_marker(marker)


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
