"""One process of ``curate train --nproc-per-node N``, started by ``torch.distributed.run``.

``python -m curation.training._worker SPEC.json``: reads the run the launcher
prepared (``distributed.train_distributed``), opens the process group itself
(gloo on CPU, nccl on GPUs, ``run.dist_timeout`` seconds for any collective),
and trains in LAVIS's distributed mode. It never prints: rank 0 writes LAVIS's
log, checkpoints and manifest in the run folder, and its result and progress to
the launcher's private folder; any rank that fails leaves its error there, so
the launcher can name it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation._io import atomic_write_json
from curation.errors import CurationError

#: Test hooks (hidden): "R:S" makes rank R kill itself (SIGKILL) at training step S;
#: a folder makes each rank write the instance ids it trained on there.
KILL_HOOK = "_CURATE_TEST_KILL_RANK_AT_STEP"
SHARD_HOOK = "_CURATE_TEST_SHARD_DIR"


@contextlib.contextmanager
def _process_group(
    backend: str, rank: int, world_size: int, local_rank: int, timeout: int
) -> Iterator[None]:
    """What LAVIS's ``init_distributed_mode`` does, minus its CUDA-only and 365-day parts."""
    import torch
    import torch.distributed as dist

    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        world_size=world_size,
        rank=rank,
        timeout=datetime.timedelta(seconds=timeout),
    )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def _write(path: Path, data: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        atomic_write_json(path, data)


def run(spec_path: Path) -> int:
    """Train this rank's share; return the process exit code."""
    from curation.training.checkpoints import trusted_checkpoints
    from curation.training.train import RankInfo, TrainEvent, train_one_rank

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    work = Path(spec["work"])
    rank = int(os.environ["RANK"])
    ranks = RankInfo(
        rank=rank,
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ["LOCAL_RANK"]),
        backend=spec["backend"],
    )
    kill_rank, _, kill_step = os.environ.get(KILL_HOOK, "").partition(":")
    shard_dir = os.environ.get(SHARD_HOOK)
    seen: list[Any] = []
    events = work / "events.jsonl" if rank == 0 else None

    def on_event(event: TrainEvent) -> None:
        if event.kind == "step":
            seen.extend(event.data.get("instance_ids", ()))
            if kill_rank == str(rank) and event.step >= int(kill_step or 0):
                os.kill(os.getpid(), signal.SIGKILL)
        if events is not None:
            line = json.dumps(
                {
                    "kind": event.kind,
                    "epoch": event.epoch,
                    "step": event.step,
                    "steps": event.steps,
                    "loss": event.loss,
                    "data": {k: v for k, v in event.data.items() if k != "instance_ids"},
                },
                default=str,
            )
            with open(events, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    try:
        with (
            _process_group(
                ranks.backend, rank, ranks.world_size, ranks.local_rank, int(spec["timeout"])
            ),
            trusted_checkpoints(bool(spec.get("trust_checkpoint"))),
        ):
            result = train_one_rank(
                spec["config"], spec["overrides"], spec["run_id"], spec["device"], ranks, on_event
            )
        if shard_dir:
            _write(Path(shard_dir) / f"rank-{rank}.json", {"instance_ids": seen})
        if rank == 0:
            _write(
                work / "result.json",
                {
                    "run_dir": str(result.run_dir),
                    "checkpoints": [str(c) for c in result.checkpoints],
                    "losses": result.losses,
                    "epochs": result.epochs,
                    "test_metrics": result.test_metrics,
                    "seconds": result.seconds,
                    "steps": result.steps,
                    "peak_rss_mb": result.peak_rss_mb,
                    "device": result.device,
                },
            )
        return 0
    except CurationError as exc:
        error: dict[str, Any] = {
            "kind": type(exc).__name__,
            "message": str(exc),
            "exit_code": exc.exit_code,
        }
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # a bug, or a peer that went away: the launcher names it
        error = {
            "kind": type(exc).__name__,
            "message": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            "exit_code": 1,
            "traceback": traceback.format_exc(),
        }
    _write(work / f"rank-{rank}.error.json", {"rank": rank, "time": time.time(), **error})
    return int(error["exit_code"])


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
