"""`curate train --nproc-per-node N`: a dying rank fails the run clearly; bad input stops it first."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("lavis")

from _harness import expect, invoke, untouched  # noqa: E402
from conftest import SAMPLE  # noqa: E402

from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training._worker import KILL_HOOK  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile-dist") / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    return out


def test_a_rank_killed_mid_epoch_fails_the_run_with_its_name(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rank 1 SIGKILLs itself at its first step: rank 0 is then alone in a collective.
    # torchrun stops it; run.dist_timeout bounds the wait if it did not (never a hang)
    monkeypatch.setenv(KILL_HOOK, "1:1")
    args = ["train", exported / "lavis.yaml", "run.max_epoch=1", "run.batch_size_train=8"]
    args += ["run.device=cpu", "run.dist_timeout=60", "--nproc-per-node", "2", "--run-id", "dies"]
    outcome = invoke(args)
    expect(outcome, 1, "rank 1 was killed by SIGKILL", "torchrun stopped the other processes")
    assert "rank 0 was" not in outcome.output  # stopped by torchrun, not a cause
    assert not (exported / "runs" / "dies").exists()  # failed before its first checkpoint


def test_pre_checks_run_once_before_any_process_starts(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_launch(*args: object, **kwargs: object) -> None:
        raise AssertionError("torchrun was started for a run that cannot train")

    monkeypatch.setattr(subprocess, "Popen", no_launch)
    bad = tmp_path / "export"
    shutil.copytree(exported, bad, ignore=shutil.ignore_patterns("runs"))
    records = json.loads((exported / "train.json").read_text())
    records[0]["answer"] = "yes"
    (bad / "train.json").write_text(json.dumps(records))
    with untouched(tmp_path):
        outcome = invoke(["train", bad / "lavis.yaml", "--nproc-per-node", "2"])
    expect(outcome, 1, "train.json", "answer", "Fix:")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--nproc-per-node", "0"], "at least 1 process"),
        (["--nproc-per-node", "2", "--nnodes", "2", "--rdzv-endpoint", "h:1"], "--run-id"),
        (["--nproc-per-node", "2", "--rdzv-endpoint", "no port"], "HOST:PORT"),
        (["--nnodes", "2"], "go with --nproc-per-node"),
    ],
)
def test_bad_launch_options_are_usage_errors(exported: Path, extra: list[str], needle: str):
    with untouched(exported):
        outcome = invoke(["train", exported / "lavis.yaml", *extra])
    expect(outcome, 2, needle)
