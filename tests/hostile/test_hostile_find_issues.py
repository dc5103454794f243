"""Hostile inputs for `curate find-issues`: each a clear error, nothing trained, inputs untouched.

Every case here fails before a model is built: a missing dataset, no task
samples, one answer only, too few samples for K folds, K < 2, and options
that do not fit together.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _harness import expect, invoke, unique, untouched

from curation.synthetic import render_scene

fo = pytest.importorskip("fiftyone")
pytest.importorskip("cleanlab")


def ingested(tmp_path: Path, n_fall: int, n_no_fall: int, n_unsure: int = 0) -> str:
    """A fresh dataset from a folder of distinct scenes; return its name."""
    root = tmp_path / "set"
    for folder, count, fallen in (
        ("fall", n_fall, True),
        ("no_fall", n_no_fall, False),
        ("unsure", n_unsure, True),
    ):
        if count:
            (root / folder).mkdir(parents=True)
        for i in range(count):
            render_scene(fallen, hash((folder, i)) % 100_000, 40).save(root / folder / f"{i}.png")
    name = unique("issues")
    expect(invoke(["ingest", root, "--dataset", name]), 0)
    return name


def folds_run(tmp_path: Path, name: str, k: str = "2", *extra: str):  # noqa: ANN201 - an outcome
    """`curate find-issues --dataset NAME --folds K --out tmp/out [EXTRA]`, tmp untouched."""
    with untouched(tmp_path):
        return invoke(
            ["find-issues", "--dataset", name, "--folds", k, "--out", tmp_path / "out", *extra]
        )


def test_missing_dataset_is_a_usage_error(tmp_path: Path) -> None:
    name = unique("nothing-here")
    outcome = folds_run(tmp_path, name)
    expect(outcome, 2, f"no FiftyOne dataset named {name!r}", "curate ingest")


def test_no_labelled_task_samples(tmp_path: Path) -> None:
    name = ingested(tmp_path, 1, 1, n_unsure=1)
    ds = fo.load_dataset(name)
    ds.select([s.id for s in ds if s.answers]).tag_samples("exclude")
    outcome = folds_run(tmp_path, name)
    expect(outcome, 1, "no labelled yes/no task samples", "1 unlabelled, 2 excluded", "Fix:")


def test_one_class_only(tmp_path: Path) -> None:
    name = ingested(tmp_path, 4, 0)
    outcome = folds_run(tmp_path, name)
    expect(outcome, 1, "all 4 labelled task samples say 'yes'", "both 'yes' and 'no'", "Fix:")


def test_too_few_samples_for_k_folds(tmp_path: Path) -> None:
    name = ingested(tmp_path, 2, 2)
    outcome = folds_run(tmp_path, name, "5")
    expect(outcome, 1, "--folds 5 would leave a fold empty", "a smaller --folds")


def test_a_training_part_with_one_answer_is_refused(tmp_path: Path) -> None:
    # one "no" sample: the fold that holds it would train on "yes" only
    name = ingested(tmp_path, 3, 1)
    outcome = folds_run(tmp_path, name)
    expect(outcome, 1, "would train only on ['yes'] labels", "Fix:")


@pytest.mark.parametrize("k", ["1", "0", "-3"])
def test_fewer_than_two_folds(tmp_path: Path, k: str) -> None:
    outcome = folds_run(tmp_path, "any", k)
    expect(outcome, 2, "--folds must be at least 2", "Fix: --folds 3")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "exactly one of --folds K"),
        (["--folds", "2", "--checkpoint", "c.pth"], "exactly one of --folds K"),
        (["--folds", "2"], "needs a folder"),
        (["--checkpoint", "c.pth", "--out", "o"], "takes no --out"),
        (["--checkpoint", "c.pth", "run.max_epoch=2"], "takes no --out and no training"),
    ],
)
def test_options_that_do_not_fit_together(tmp_path: Path, args: list[str], needle: str) -> None:
    with untouched(tmp_path):
        outcome = invoke(["find-issues", "--dataset", "any", *args], cwd=tmp_path)
    expect(outcome, 2, needle)


def test_json_never_replaces_another_file(tmp_path: Path) -> None:
    other = tmp_path / "notes.json"
    other.write_text('{"mine": true}')
    (tmp_path / "folder.json").mkdir()
    with untouched(tmp_path):
        for target, needle in (
            (other, "not a curate find-issues report"),
            (tmp_path / "folder.json", "is a folder"),
        ):
            outcome = invoke(
                [
                    "find-issues",
                    "--dataset",
                    "any",
                    "--folds",
                    "2",
                    "--out",
                    tmp_path / "o",
                    "--json",
                    target,
                ]
            )
            expect(outcome, 2, needle)


def test_out_on_the_image_folder_is_refused(tmp_path: Path) -> None:
    name = ingested(tmp_path, 2, 2)
    with untouched(tmp_path):
        outcome = invoke(
            ["find-issues", "--dataset", name, "--folds", "2", "--out", tmp_path / "set" / "fall"]
        )
    expect(outcome, 2, "--out", "could overwrite or delete it")


def test_checkpoint_of_an_export_from_elsewhere(tmp_path: Path) -> None:
    name = ingested(tmp_path, 2, 2)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint_0.pth").write_bytes(b"not read: the export is checked first")
    (run / "config.yaml").write_text("{}\n")
    with untouched(tmp_path):
        outcome = invoke(
            ["find-issues", "--dataset", name, "--checkpoint", run / "checkpoint_0.pth"]
        )
    expect(outcome, 1, "came from no FiftyOne dataset", "cannot be mapped to samples", "--folds K")


def test_missing_checkpoint(tmp_path: Path) -> None:
    outcome = invoke(["find-issues", "--dataset", "any", "--checkpoint", tmp_path / "none.pth"])
    expect(outcome, 2, "not found")


def test_review_of_a_view_that_is_not_saved(tmp_path: Path) -> None:
    name = ingested(tmp_path, 1, 1)
    from curation.curator.review import review_target
    from curation.errors import UsageError

    with pytest.raises(UsageError, match="no saved view 'likely-mislabelled'.*find-issues"):
        review_target(name, "likely-mislabelled")
    assert review_target(name).name == name  # the whole dataset without --view


def test_a_bad_training_override_is_named_as_the_user_s_not_a_temporary_file(
    tmp_path: Path,
) -> None:
    """Before: the error named OUT's hidden temporary fold-1/lavis.yaml, removed right after."""
    name = ingested(tmp_path, 6, 6)
    outcome = folds_run(tmp_path, name, "2", "run.max_epoch=true")
    expect(outcome, 1, "your override(s) run.max_epoch=true", "run.max_epoch: expected a number")
    assert ".tmp-" not in outcome.output and not (tmp_path / "out").exists()


def test_a_finished_run_ends_on_its_last_line_not_on_warning_stacks(tmp_path: Path) -> None:
    """Before: after its report, find-issues printed about 95 lines of ResourceWarning
    stacks (unclosed MongoClients, the database service's handle) and tokenizers' fork
    warnings: a successful run that read like a crash. Run as the user runs it: the
    installed `curate` script in its own process, so the interpreter's shutdown is real."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("curate")
    if not script.exists():
        pytest.skip("no installed curate script beside this interpreter")
    name = ingested(tmp_path, 8, 8)
    args = ["find-issues", "--dataset", name, "--folds", "2", "--out", tmp_path / "out"]
    proc = subprocess.run(
        [script, *map(str, args), "run.max_epoch=1", "run.batch_size_train=4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "next: curate review" in proc.stdout
    for noise in ("ResourceWarning", "Unclosed MongoClient", "just got forked", "Traceback"):
        assert noise not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_a_fold_refusal_names_the_override_not_a_removed_temporary_file(tmp_path: Path) -> None:
    """Before: 'error: OUT/.out.tmp-N/fold-1/lavis.yaml: 6 training record(s), fewer than
    one batch', a file find-issues removed on the way out."""
    name = ingested(tmp_path, 6, 6)
    outcome = folds_run(tmp_path, name, "2", "run.batch_size_train=100")
    expect(outcome, 1, "training fold 1", "your override(s) run.batch_size_train=100")
    expect(outcome, 1, "fewer than one batch")
    assert ".tmp-" not in outcome.output and not (tmp_path / "out").exists()


def test_sigterm_mid_training_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    """Before: SIGTERM (kill, a scheduler's stop) ended find-issues on the spot: exit 143,
    no message, and OUT's hidden temporary folder left behind."""
    import signal
    import subprocess
    import sys
    import time

    script = Path(sys.executable).with_name("curate")
    if not script.exists():
        pytest.skip("no installed curate script beside this interpreter")
    name = ingested(tmp_path, 8, 8)
    args = ["find-issues", "--dataset", name, "--folds", "2", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [str(script), *args, "run.max_epoch=200", "run.batch_size_train=4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 300
    while "training on" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    time.sleep(3)  # inside the first fold's training
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    output = seen + rest
    assert proc.returncode == 143, output
    assert "terminated (SIGTERM)" in output and "Traceback" not in output
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not leftovers and not (tmp_path / "out").exists(), leftovers


def test_a_forked_worker_dies_of_sigterm_as_before_not_with_a_traceback() -> None:
    """CI caught it: multiprocessing's pool, forked while the command's SIGTERM handler was
    installed, inherited it; pool.terminate() then made each worker raise and print a
    traceback. A forked child now dies of SIGTERM as it would have."""
    import multiprocessing
    import signal
    import time

    from curation.cli import terminate_like_ctrl_c

    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with terminate_like_ctrl_c():
            child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
            child.start()
            time.sleep(0.5)
            child.terminate()  # SIGTERM
            child.join(10)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert child.exitcode == -signal.SIGTERM  # killed by the signal, not exit 1 from a raise


@pytest.mark.parametrize("k", ["99999999999999999999", "100000000"])
def test_folds_beyond_the_groups_are_refused_before_dealing(tmp_path: Path, k: str) -> None:
    # dealing K folds filled a list of K counters: 10**20 overflowed, 10**8 spun for minutes
    name = ingested(tmp_path, 2, 2)
    outcome = folds_run(tmp_path, name, k)
    expect(outcome, 1, f"--folds {k} would leave a fold empty", "a smaller --folds (2 to 4)")
    assert not (tmp_path / "out").exists()


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
