"""The runner-side overrides of LAVIS, swapped or subclassed for the length of a run.

The single-process barrier, the CPU loader, the IterLoader without its sleep, the
distributed sampler and epoch start, ``FalldownRunner`` with its checkpoint
save/reload/resume, the registry reset and the per-epoch seeding. Each LAVIS
name they touch is listed in ``_lavis_catalogue.CATALOGUE``. LAVIS and torch are
imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.errors import DataError
from curation.training._patch import patched
from curation.training.checkpoints import (
    latest_checkpoint,
    load_state,
    load_weights,
    read_checkpoint,
    require_match,
)
from curation.training.speed_options import amp_dtype, fused_adamw


class _SingleProcessDist:
    """``torch.distributed`` as LAVIS's runner module sees it, with a no-op barrier.

    ``RunnerBase.train`` calls ``dist.barrier()`` even with ``distributed: False``.
    A real process group of size 1 would satisfy it, but then LAVIS's
    ``MetricLogger`` takes the distributed path and allocates CUDA tensors,
    which fails on CPU. Without a group, every other LAVIS call takes its
    single-process path; only this module-level name is swapped, for the
    duration of the run, and only in LAVIS's runner module.
    """

    def __init__(self, real: Any) -> None:
        self._real = real

    def barrier(self, *args: Any, **kwargs: Any) -> None:
        if self._real.is_available() and self._real.is_initialized():
            self._real.barrier(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def single_process_group() -> Iterator[None]:
    import lavis.runners.runner_base as runner_module

    with patched(runner_module, "dist", _SingleProcessDist(runner_module.dist)):
        yield


def _synchronize_on_group_device(self: Any) -> None:
    """LAVIS's ``SmoothedValue.synchronize_between_processes`` on the group's own device."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([self.count, self.total], dtype=torch.float64, device=device)
    dist.barrier()
    dist.all_reduce(t)
    count, total = t.tolist()
    self.count = int(count)
    self.total = total


@contextlib.contextmanager
def distributed_run() -> Iterator[None]:
    """The swaps a run in LAVIS's distributed mode needs on top of the single-process ones."""
    from lavis.common.logger import SmoothedValue

    with patched(SmoothedValue, "synchronize_between_processes", _synchronize_on_group_device):
        yield


def _sharded_sampler(seed: int) -> Any:
    """LAVIS's ``DistributedSampler`` call, made disjoint for training and seeded by the run."""
    from torch.utils.data import DistributedSampler

    def make(dataset: Any, shuffle: bool, num_replicas: int, rank: int) -> Any:
        # training (shuffle) drops the remainder so no record is in two shards; evaluation
        # keeps LAVIS's padding (every record scored; save_result drops the repeats)
        return DistributedSampler(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=shuffle,
        )

    return make


def _start_shard_epoch(loader: Any, epoch: int) -> None:
    """Point the training sampler at ``epoch`` and restart LAVIS's ``IterLoader`` on it.

    Each epoch consumes exactly ``len(loader)`` batches, so the previous iterator is
    spent; a fresh one reads the sampler's new order. ``IterLoader``'s own
    ``set_epoch`` (on the next StopIteration) then never runs.
    """
    dataloader = getattr(loader, "_dataloader", None)
    inner = getattr(dataloader, "loader", dataloader)  # PrefetchLoader / _CpuLoader
    set_epoch = getattr(getattr(inner, "sampler", None), "set_epoch", None)
    if dataloader is None or set_epoch is None:
        return
    set_epoch(epoch)
    loader.iter_loader = iter(dataloader)


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def forget_previous_run() -> None:
    """LAVIS registers each run's folders globally and refuses a second registration."""
    from lavis.common.registry import registry

    for name in ("result_dir", "output_dir"):
        registry.mapping["paths"].pop(name, None)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    # an epoch's seed is run.seed + epoch (+ a rank offset): past numpy's 2**32 - 1 it
    # wraps around rather than failing at the second epoch of run.seed=4294967295
    seed %= 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def runner_class() -> type:
    """LAVIS's RunnerBase, saving a checkpoint each epoch and resuming frozen models."""
    from lavis.runners.runner_base import RunnerBase

    class FalldownRunner(RunnerBase):
        # RunnerBase's own attributes (LAVIS is untyped)
        _optimizer: Any
        _model: Any
        _wrapped_model: Any

        @property
        def scaler(self) -> Any:
            # bf16 keeps fp32's exponent range: no loss scaling (train_autocast opens the
            # autocast LAVIS's loop then leaves closed)
            if amp_dtype(self.config.run_cfg) == "bf16":
                return None
            return RunnerBase.scaler.fget(self)

        @property
        def optimizer(self) -> Any:
            if self._optimizer is None:
                built = RunnerBase.optimizer.fget(self)
                if self.config.run_cfg.get("fused_adamw", False):
                    self._optimizer = fused_adamw(built)
            return RunnerBase.optimizer.fget(self)

        @property
        def model(self) -> Any:
            if self.use_distributed:
                if self._wrapped_model is None:
                    from torch.nn.parallel import DistributedDataParallel

                    self._model = self._model.to(self.device)
                    # device_ids only for a GPU model; LAVIS wraps only when the model
                    # moves, so on CPU it would train unsynchronised copies
                    ids = [self.config.run_cfg.gpu] if self.device.type == "cuda" else None
                    self._wrapped_model = DistributedDataParallel(self._model, device_ids=ids)
                return self._wrapped_model
            # LAVIS sets the wrapped model only when it moves the model to another device,
            # so on CPU its property returns None
            wrapped = RunnerBase.model.fget(self)
            if wrapped is None:
                self._wrapped_model = wrapped = self._model
            return wrapped

        def create_loaders(self, *args: Any, **kwargs: Any) -> Any:
            import lavis.runners.runner_base as runner_module

            with contextlib.ExitStack() as stack:
                if self.device.type != "cuda":
                    # LAVIS's PrefetchLoader opens a CUDA stream even on CPU
                    stack.enter_context(patched(runner_module, "PrefetchLoader", _CpuLoader))
                if int(self.config.run_cfg.num_workers) == 0:
                    # LAVIS's IterLoader sleeps 2 s at every epoch change against a deadlock
                    # of worker processes; with no workers there is nothing to wait for
                    stack.enter_context(
                        patched(runner_module, "IterLoader", _no_sleep_iter_loader())
                    )
                if self.use_distributed:
                    seed = int(self.config.run_cfg.seed)
                    stack.enter_context(
                        patched(runner_module, "DistributedSampler", _sharded_sampler(seed))
                    )
                return super().create_loaders(*args, **kwargs)

        def train_epoch(self, epoch: int) -> Any:
            # LAVIS's checkpoints carry no RNG state: reseed from (seed, epoch) so an
            # epoch's shuffling and dropout do not depend on the epochs before it, and a
            # resumed run repeats the uninterrupted run exactly
            # (each rank its own stream: augmentation differs between shards)
            seed_everything(int(self.config.run_cfg.seed) + epoch + 100_003 * _rank())
            if self.use_distributed:
                _start_shard_epoch(self.train_loader, epoch)
            stats = super().train_epoch(epoch)
            # LAVIS saves every epoch only without validation splits; with them it saves
            # only checkpoint_best.pth, and only once accuracy rises above 0. Keep the
            # latest epoch in both cases (resume needs it), and only the latest.
            if self.valid_splits:
                self._save_checkpoint(epoch, is_best=False)  # rank 0 only (main_process)
            if _rank() == 0:
                previous = Path(self.output_dir) / f"checkpoint_{epoch - 1}.pth"
                previous.unlink(missing_ok=True)
            return stats

        def _reload_best_model(self, model: Any) -> Any:
            best = Path(self.output_dir) / "checkpoint_best.pth"
            # accuracy never rose above 0: test the latest epoch (only rank 0 writes in the
            # run folder; the others wait for it, then read the same file)
            if _rank() == 0 and not best.exists():
                latest = latest_checkpoint(Path(self.output_dir).glob("checkpoint_*.pth"))
                if latest is not None:
                    os.link(latest, best)
            if self.use_distributed:
                import torch.distributed as dist

                dist.barrier()
            if not best.exists():  # resumed past the last epoch: test the model as it is
                return model
            # LAVIS's own reload retries without strict on any mismatch; this one refuses
            # eval_epoch passes the model already unwrapped from DDP
            report = load_weights(model, best, trust=False)
            require_match(report, "model being trained")
            return model

        def _load_checkpoint(self, url_or_filename: str) -> None:
            # LAVIS's checkpoints leave out frozen weights; its strict load then fails
            path = Path(url_or_filename)
            if not path.is_file():
                raise DataError(f"run.resume_ckpt_path: {path} not found")
            checkpoint = read_checkpoint(path, map_location=self.device)
            missing = [k for k in ("optimizer", "epoch") if k not in checkpoint]
            if missing:
                raise DataError(
                    f"run.resume_ckpt_path: {path} has no {' or '.join(missing)}: it holds "
                    "weights only, not a training state to resume. Fix: resume from a "
                    "checkpoint_<N>.pth of a run, or start from these weights with "
                    f"model.pretrained={path}"
                )
            model = self.unwrap_dist_model(self.model)
            require_match(load_state(model, checkpoint, path), "model being trained")
            try:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
                if self.scaler and checkpoint.get("scaler"):
                    self.scaler.load_state_dict(checkpoint["scaler"])
                self.start_epoch = int(checkpoint["epoch"]) + 1
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                raise DataError(
                    f"run.resume_ckpt_path: {path}: its optimizer state does not fit this run "
                    f"({exc}). Fix: resume with the config of the run that wrote it."
                ) from None

    return FalldownRunner


def _no_sleep_iter_loader() -> type:
    from lavis.datasets.datasets.dataloader_utils import IterLoader

    class NoSleepIterLoader(IterLoader):
        iter_loader: Any  # IterLoader's own attribute (LAVIS is untyped)

        def __next__(self) -> Any:
            try:
                return next(self.iter_loader)
            except StopIteration:
                self._epoch += 1
                self.iter_loader = iter(self._dataloader)
                return next(self.iter_loader)

    return NoSleepIterLoader


class _CpuLoader:
    """What LAVIS's PrefetchLoader does, minus the CUDA stream (batches stay on the CPU)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
