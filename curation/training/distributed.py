"""`curate train --nproc-per-node N`: LAVIS's distributed mode, launched through torchrun.

The launcher (this module, in the ``curate`` process) runs every pre-check once
(config, data, model files, builder names), makes the run folder and writes its
config, then starts ``python -m torch.distributed.run`` with
``curation.training._worker`` as each process. torchrun's elastic agent stops
every process as soon as one fails (``--max-restarts 0``), and each process
waits at most ``run.dist_timeout`` seconds for the others, so a dead rank ends
the run with a message naming it, never a hang. Only rank 0 writes in the run
folder. Several nodes need the export (and so the run folder) on a file system
that every node sees, as LAVIS's own result merging does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import curation
from curation.errors import ConfigError, CurationError, DataError, UsageError
from curation.training import import_plugin
from curation.training.preflight import check_builders
from curation.training.train import (
    TrainEvent,
    TrainResult,
    check_run_id,
    claimed_run_folder,
    prepare,
    resolve_device,
    write_run_config,
)

_ENDPOINT = re.compile(r"\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}")
_ERRORS: dict[str, type[CurationError]] = {
    c.__name__: c for c in (CurationError, DataError, ConfigError, UsageError)
}


@dataclass(frozen=True)
class LaunchOptions:
    """How many processes, on how many nodes (torchrun's options of the same names)."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None

    def check(self, run_id: str | None) -> None:
        """Raise ``UsageError`` for a combination torchrun would refuse or misread."""
        if self.nproc_per_node < 1:
            raise UsageError(f"--nproc-per-node {self.nproc_per_node}: at least 1 process per node")
        if self.nnodes < 1:
            raise UsageError(f"--nnodes {self.nnodes}: at least 1 node")
        if not 0 <= self.node_rank < self.nnodes:
            raise UsageError(
                f"--node-rank {self.node_rank}: with --nnodes {self.nnodes} it is 0 to "
                f"{self.nnodes - 1} (0 on the node that writes the run folder)"
            )
        if self.rdzv_endpoint is not None and not _ENDPOINT.fullmatch(self.rdzv_endpoint):
            raise UsageError(
                f"--rdzv-endpoint {self.rdzv_endpoint!r} is not HOST:PORT. "
                "Fix: the address of node 0 and a free port, e.g. --rdzv-endpoint node0:29500"
            )
        if self.nnodes > 1 and self.rdzv_endpoint is None:
            raise UsageError(
                f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (node 0's address "
                "and a free port), the same on every node"
            )
        if self.nnodes > 1 and run_id is None:
            raise UsageError(
                f"--nnodes {self.nnodes} needs --run-id NAME, the same on every node "
                "(the default, the start time, differs between nodes)"
            )

    def torchrun_args(self) -> list[str]:
        args = [f"--nproc-per-node={self.nproc_per_node}", "--max-restarts=0"]
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            return [*args, "--standalone"]  # a free local port: runs side by side never clash
        return [
            *args,
            f"--nnodes={self.nnodes}",
            f"--node-rank={self.node_rank}",
            "--rdzv-backend=static",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
        ]


def train_distributed(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    run_id: str | None = None,
    launch: LaunchOptions = LaunchOptions(1),
    on_event: Callable[[TrainEvent], None] | None = None,
    trust_checkpoint: bool = False,
) -> TrainResult:
    """Train with ``launch.nproc_per_node`` processes on this node, in LAVIS's distributed mode.

    Raises:
        UsageError: bad launch options, or more GPU processes than visible GPUs.
        ConfigError / DataError: bad config, data or model files (before any process starts).
        CurationError: a process failed or died; the message names its rank.
    """
    launch.check(run_id)
    if run_id is not None:
        check_run_id(run_id)
    loaded, _ = prepare(config_path, overrides, launch.nproc_per_node * launch.nnodes)
    import_plugin()
    check_builders(loaded)
    device = resolve_device(loaded.config.run.device)
    if device == "cuda":
        import torch

        visible = torch.cuda.device_count()
        if launch.nproc_per_node > visible:
            raise UsageError(
                f"--nproc-per-node {launch.nproc_per_node} on GPUs, but {visible} visible. "
                f"Fix: --nproc-per-node {visible} (one process per GPU), or run.device=cpu"
            )
    backend = "nccl" if device == "cuda" else "gloo"
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S")
    output_root = loaded.resolve(loaded.config.run.output_dir)
    run_dir = output_root / run_id
    spec = {
        "config": str(loaded.path.resolve()),
        "overrides": list(overrides),
        "run_id": run_id,
        "device": device,
        "backend": backend,
        "timeout": loaded.config.run.dist_timeout,
        "trust_checkpoint": trust_checkpoint,  # each process loads checkpoints itself
    }
    if launch.node_rank != 0:  # node 0's launcher owns the run folder (shared file system)
        return _launch(spec, launch, run_dir, device, on_event)
    with claimed_run_folder(run_dir):
        write_run_config(loaded, run_dir, run_id)
        return _launch(spec, launch, run_dir, device, on_event)


def _launch(
    spec: dict[str, Any],
    launch: LaunchOptions,
    run_dir: Path,
    device: str,
    on_event: Callable[[TrainEvent], None] | None,
) -> TrainResult:
    work = Path(tempfile.mkdtemp(prefix="curate-torchrun-"))
    keep = False
    try:
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps({**spec, "work": str(work)}), encoding="utf-8")
        log = work / "torchrun.log"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *launch.torchrun_args(),
            "-m",
            "curation.training._worker",
            str(spec_path),
        ]
        rc = _run_torchrun(command, log, work / "events.jsonl", on_event)
        if rc != 0:
            error, keep = _failure(work, rc, log, launch)
            raise error
        if launch.node_rank != 0:
            return TrainResult(
                run_dir, [], [], [], {}, 0.0, 0, 0.0, device, secondary_node=launch.node_rank
            )
        return _result(work / "result.json")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _child_env() -> dict[str, str]:
    """The workers import this very ``curation`` (installed or not)."""
    env = dict(os.environ)
    root = str(Path(curation.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_torchrun(
    command: list[str],
    log: Path,
    events: Path,
    on_event: Callable[[TrainEvent], None] | None,
) -> int:
    """Run torchrun, its output to ``log``, rank 0's progress passed to ``on_event``."""
    read = 0
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            cwd=os.getcwd(),
            preexec_fn=_stop_with_parent(),  # noqa: PLW1509 (no threads of ours at this point)
        )
        try:
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    rc = None
                read = _pass_events(events, read, on_event)
                if rc is not None:
                    return rc
        except BaseException:  # Ctrl-C: torchrun stops its workers on SIGINT
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


def _stop_with_parent() -> Callable[[], None] | None:
    """For the torchrun child (Linux): SIGTERM it when ``curate`` dies, even by SIGKILL.

    ``curate``'s Ctrl-C handling stops torchrun itself; a SIGKILL (``kill -9``, the
    OOM killer) gives it no chance, and torchrun and every rank would go on training,
    orphaned, holding the GPUs. torchrun stops its workers on SIGTERM.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:  # runs in the child between fork and exec
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # curate died before the line above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _pass_events(events: Path, offset: int, on_event: Callable[[TrainEvent], None] | None) -> int:
    if on_event is None or not events.is_file():
        return offset
    with open(events, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next look
    for line in chunk[:end].splitlines():
        item = json.loads(line)
        on_event(TrainEvent(**item))
    return offset + end


def _result(path: Path) -> TrainResult:
    data = json.loads(path.read_text(encoding="utf-8"))
    return TrainResult(
        run_dir=Path(data["run_dir"]),
        checkpoints=[Path(c) for c in data["checkpoints"]],
        losses=data["losses"],
        epochs=data["epochs"],
        test_metrics=data["test_metrics"],
        seconds=data["seconds"],
        steps=data["steps"],
        peak_rss_mb=data["peak_rss_mb"],
        device=data["device"],
    )


_FAILURE = re.compile(
    r"rank\s*:\s*(?P<rank>\d+)\s*\(local_rank:\s*(?P<local>\d+)\)\s*"
    r"exitcode\s*:\s*(?P<code>-?\d+)"
)


def dead_ranks(torchrun_output: str) -> dict[int, int]:
    """``{rank: exit code}`` from the failure summary torchrun prints (negative: a signal)."""
    return {int(m["rank"]): int(m["code"]) for m in _FAILURE.finditer(torchrun_output)}


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _failure(work: Path, rc: int, log: Path, launch: LaunchOptions) -> tuple[CurationError, bool]:
    """The error to show for a failed launch (a rank's own error first, else who died).

    The second value says whether the message points into ``work`` (kept for reading).
    """
    errors = []
    for path in work.glob("rank-*.error.json"):
        with contextlib.suppress(OSError, ValueError):
            errors.append(json.loads(path.read_text(encoding="utf-8")))
    errors.sort(key=lambda e: e.get("time", 0))
    ours = [e for e in errors if e.get("kind") in _ERRORS]
    if ours:  # bad data or config met in a process (e.g. NaN loss): the same error and code
        first = ours[0]
        return _ERRORS[first["kind"]](f"rank {first['rank']}: {first['message']}"), False
    output = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    written = {e["rank"] for e in errors}
    died = {r: c for r, c in dead_ranks(output).items() if c < 0 or r not in written}
    # torchrun stops the survivors with SIGTERM: name the rank that died first
    causes = {r: c for r, c in died.items() if c != -signal.SIGTERM}
    died = causes or died
    node = "" if launch.nnodes == 1 else f" on node {launch.node_rank}"
    if died:
        parts = [
            f"rank {r} was killed by {_signal_name(c)}" if c < 0 else f"rank {r} exited with {c}"
            for r, c in sorted(died.items())
        ]
        return CurationError(
            f"{'; '.join(parts)}{node}, so torchrun stopped the other processes and the run "
            "failed (out of memory is the usual cause of a kill: check `dmesg`). Checkpoints "
            "are written whole by rank 0 only; resume from the last one with "
            "run.resume_ckpt_path=runs/<run-id>/checkpoint_<n>.pth under a new --run-id."
        ), False
    if errors:
        first = errors[0]
        return CurationError(
            f"rank {first['rank']} failed{node}: {first['kind']}: {first['message']} "
            f"(details: {work}; a peer that stopped answering shows as a gloo/nccl error "
            "after run.dist_timeout seconds)"
        ), True
    last = output.strip().splitlines()[-1:] or ["(no output)"]
    return CurationError(
        f"torchrun exited with code {rc}{node} before training started: {last[0]} (details: {log})"
    ), True
