"""Benchmark `curate train` in one process against `--nproc-per-node N` (prints figures only).

    .venv/bin/python benchmarks/dist_train_bench.py [--nproc 2] [--epochs 2] [--batch 16]

Same export (the bundled sample, tiny preset), same global batch: one process
at ``--batch``, N gloo processes (or nccl with run.device=cuda) at
``--batch / N`` each. Prints the whole command's wall time (N processes
import torch and LAVIS each), LAVIS's training time from the manifest, the
steps and the time per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training.distributed import LaunchOptions, train_distributed  # noqa: E402
from curation.training.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sample = REPO / "raw" / "sample"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample"
        export_task(sample / "annotations.json", sample, out, ExportOptions(seed=0, model="tiny"))
        common = [f"run.max_epoch={args.epochs}", f"run.device={args.device}"]
        rows = []
        started = time.perf_counter()
        train(out / "lavis.yaml", [*common, f"run.batch_size_train={args.batch}"], run_id="one")
        rows.append(("1 process", time.perf_counter() - started, out / "runs" / "one"))
        per = max(1, args.batch // args.nproc)
        started = time.perf_counter()
        train_distributed(
            out / "lavis.yaml",
            [*common, f"run.batch_size_train={per}"],
            "many",
            LaunchOptions(args.nproc),
        )
        rows.append(
            (f"{args.nproc} processes", time.perf_counter() - started, out / "runs" / "many")
        )
        print(f"{'run':<12} {'wall s':>7} {'train s':>8} {'steps':>6} {'s/step':>7}")
        for name, wall, run in rows:
            manifest = json.loads((run / "manifest.json").read_text())
            steps, seconds = manifest["steps"], manifest["seconds"]
            per_step = seconds / steps if steps else float("nan")
            print(f"{name:<12} {wall:7.1f} {seconds:8.2f} {steps:6d} {per_step:7.3f}")


if __name__ == "__main__":
    main()
