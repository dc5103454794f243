"""`curate train --nproc-per-node N` on CPU: two gloo processes through torchrun, real LAVIS code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("lavis")

from conftest import SAMPLE  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curation.cli import app  # noqa: E402
from curation.errors import UsageError  # noqa: E402
from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training._worker import SHARD_HOOK  # noqa: E402
from curation.training.distributed import LaunchOptions, dead_ranks  # noqa: E402

runner = CliRunner()
BATCH = 8  # per process; the global batch is 2 x 8


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    return out


def test_two_gloo_processes_train_one_epoch_then_predict(
    export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    monkeypatch.setenv(SHARD_HOOK, str(shards))
    args = ["train", str(export_dir / "lavis.yaml"), "run.max_epoch=1", "run.device=cpu"]
    args += [f"run.batch_size_train={BATCH}", "--nproc-per-node", "2", "--run-id", "two"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run_dir = export_dir / "runs" / "two"
    assert (run_dir / "checkpoint_0.pth").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["distributed"] == {"processes": 2, "backend": "gloo", "losses_of": "rank 0"}

    # every rank trained on its own shard: disjoint, all from the training split, and as
    # many steps as one process with the same global batch (2 x 8) takes
    records = json.loads((export_dir / "train.json").read_text())
    train_ids = {str(r["instance_id"]) for r in records}  # the dataset keeps them as text
    seen = [json.loads((shards / f"rank-{r}.json").read_text())["instance_ids"] for r in (0, 1)]
    steps = len(train_ids) // (2 * BATCH)
    assert manifest["steps"] == steps > 0
    assert [len(s) for s in seen] == [steps * BATCH] * 2
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) <= train_ids

    # only rank 0 wrote the log, and the evaluation merged both ranks' answers
    assert (run_dir / "lavis.log").stat().st_size > 0
    merged = json.loads((run_dir / "result" / "test_vqa_result.json").read_text())
    test_records = json.loads((export_dir / "test.json").read_text())
    assert len(merged) == len(test_records)

    image = export_dir / "images" / test_records[0]["image"]
    predicted = runner.invoke(app, ["predict", str(run_dir / "checkpoint_0.pth"), str(image)])
    assert predicted.exit_code == 0, predicted.output
    assert image.name in predicted.output


@pytest.mark.parametrize(
    ("options", "run_id", "needle"),
    [
        (LaunchOptions(0), None, "at least 1 process"),
        (LaunchOptions(2, nnodes=2, rdzv_endpoint="node0:29500"), None, "--run-id"),
        (LaunchOptions(2, nnodes=2), "r", "--rdzv-endpoint"),
        (LaunchOptions(2, nnodes=2, node_rank=2, rdzv_endpoint="node0:29500"), "r", "0 to 1"),
        (LaunchOptions(2, rdzv_endpoint="node0"), None, "HOST:PORT"),
    ],
)
def test_launch_options_are_checked(options: LaunchOptions, run_id: str | None, needle: str):
    with pytest.raises(UsageError, match=needle):
        options.check(run_id)


def test_torchrun_arguments() -> None:
    assert "--standalone" in LaunchOptions(2).torchrun_args()
    two_nodes = LaunchOptions(4, nnodes=2, node_rank=1, rdzv_endpoint="node0:29500")
    assert two_nodes.torchrun_args() == [
        "--nproc-per-node=4",
        "--max-restarts=0",
        "--nnodes=2",
        "--node-rank=1",
        "--rdzv-backend=static",
        "--rdzv-endpoint=node0:29500",
    ]


def test_dead_ranks_are_read_from_torchrun_summary() -> None:
    summary = """
Failures:
[1]:
  time      : 2026-11-26_08:57:45
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 14621)
  error_file: <N/A>
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 14620)
"""
    assert dead_ranks(summary) == {1: -9, 0: 1}


def test_a_secondary_node_says_node_0_writes_the_run(tmp_path: Path) -> None:
    from rich.console import Console

    from curation._render import train_result
    from curation.training.train import TrainResult

    console = Console(record=True, width=200)
    train_result(console, TrainResult(tmp_path, [], [], [], {}, 0.0, 0, 0.0, "cuda", 1))
    shown = console.export_text()
    assert "node 1's processes finished; node 0 writes the run" in shown
    assert "0 steps" not in shown
