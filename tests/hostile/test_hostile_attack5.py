"""Attack round 5: operating points, find-issues and the shared database, as a hostile user."""

from __future__ import annotations

import json
import os
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched

from curation.synthetic import render_scene

SAMPLE = Path(__file__).resolve().parents[2] / "raw" / "sample"


def _checkpoint_beside(tmp_path: Path, what: str) -> tuple[Path, Path]:
    """A (fake) checkpoint with ``operating_point.json`` beside it made ``what``; an image."""
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "checkpoint_0.pth"
    ckpt.write_bytes(b"x")
    (run / "config.yaml").write_text("model: {}\n")
    point = run / "operating_point.json"
    if what == "dev-zero":
        point.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(point)
    elif what == "huge":
        with open(point, "wb") as fh:
            fh.write(b'{"threshold": 0.5, "pad": "')
            fh.truncate(64 << 20)  # sparse: 64 MiB of NULs after the opening
    image = tmp_path / "img.png"
    render_scene(True, 1, 40).save(image)
    return ckpt, image


@contextmanager
def bounded(seconds: int = 60, extra_bytes: int = 2 << 30) -> Iterator[None]:
    """Fail (not hang, not fill the machine's memory) when the code under test would."""

    def late(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    limit = used + extra_bytes if hard == resource.RLIM_INFINITY else min(hard, used + extra_bytes)
    old = signal.signal(signal.SIGALRM, late)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("dev-zero", "not a regular file"),
        ("fifo", "not a regular file"),
        ("huge", "larger than"),
    ],
)
def test_an_operating_point_that_is_not_a_small_file_is_refused(
    tmp_path: Path, what: str, needle: str
) -> None:
    """Before: /dev/zero filled memory (MemoryError traceback), a FIFO blocked forever."""
    ckpt, image = _checkpoint_beside(tmp_path, what)
    with untouched(tmp_path), bounded():
        outcome = invoke(["predict", ckpt, image, "--json"])
    expect(outcome, 1, "operating_point.json", needle, "--threshold")


def _sample_export(tmp_path: Path) -> Path:
    from curation.export import ExportOptions, export_task

    out = tmp_path / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    return out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "(run.batch_size_train=64)"),
        (["--nproc-per-node", "2"], "over 2 processes"),
    ],
)
def test_fewer_training_records_than_one_batch_is_refused_before_training(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    """Before: LAVIS drops the partial batch, runs an epoch of 0 steps and dies dividing
    by zero (a ZeroDivisionError traceback; find-issues on a small dataset hit it too)."""
    export = _sample_export(tmp_path)
    n = len(json.loads((export / "train.json").read_text()))
    assert n < 64
    args = ["train", export / "lavis.yaml", "run.max_epoch=1", "run.device=cpu"]
    # one process would have a full batch; two processes' shards would not
    args.append("run.batch_size_train=64" if not extra else f"run.batch_size_train={n // 2 + 1}")
    with untouched(tmp_path):
        outcome = invoke([*args, *extra])
    expect(outcome, 1, f"{n} training record(s)", needle, "fewer than one batch", "Fix:")
    assert not (export / "runs").exists() or not any((export / "runs").iterdir())


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


def test_eval_without_a_point_keeps_the_point_chosen_for_another_checkpoint(
    tmp_path: Path,
) -> None:
    """Before: eval of checkpoint_0 on a one-answer val.json deleted the operating point
    that eval had chosen for checkpoint_best (predict uses it only for checkpoint_best)."""
    pytest.importorskip("lavis")
    export = _sample_export(tmp_path)
    expect(invoke(["train", export / "lavis.yaml", "run.max_epoch=1", "--run-id", "r1"]), 0)
    run = export / "runs" / "r1"
    point = run / "operating_point.json"
    best = run / "checkpoint_best.pth"
    data = export / "test.json"
    first = invoke(["eval", best, "--data", data, "--fiftyone-field", ""])
    assert first.exit_code in (0, 3) and first.exception is None, first  # 3: collapse alarm
    assert json.loads(point.read_text())["checkpoint"] == "checkpoint_best.pth"
    kept = point.read_bytes()
    # a copy of the export whose val.json holds one answer only: no point can be chosen
    for name in ("val.json", "val.provenance.json"):
        rows = json.loads((export / name).read_text())
        answers = json.loads((export / "val.json").read_text())
        keep = [
            r for r, a in zip(rows, answers, strict=True) if a["answer"] == answers[0]["answer"]
        ]
        (tmp_path / name).write_text(json.dumps(keep))
    one = tmp_path / "one"
    one.mkdir()
    for name in ("val.json", "val.provenance.json"):
        (tmp_path / name).rename(one / name)
    for name in ("test.json", "test.provenance.json"):
        (one / name).write_bytes((export / name).read_bytes())
    args = ["eval", run / "checkpoint_0.pth", "--data", one / "test.json"]
    outcome = invoke([*args, "--image-root", export / "images", "--fiftyone-field", ""])
    assert outcome.exit_code in (0, 3) and outcome.exception is None, outcome
    assert "operating_point.json" not in outcome.output.split("wrote")[-1]
    assert point.read_bytes() == kept


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


@pytest.mark.parametrize("inside", ["", "manifest.json", "fold-1/report.json"])
def test_find_issues_json_on_or_inside_out_is_refused_before_training(
    tmp_path: Path, inside: str
) -> None:
    """Before: --json OUT failed only after K trainings and the FiftyOne write-back, and
    --json OUT/manifest.json replaced the run's manifest with the report."""
    pytest.importorskip("fiftyone")
    out = tmp_path / "issues"
    report = out / inside if inside else out
    with untouched(tmp_path):
        outcome = invoke(
            ["find-issues", "--dataset", "no-such-dataset-a5", "--folds", "2"]
            + ["--out", out, "--json", report]
        )
    expect(outcome, 2, "--json", "inside", "Fix:")
