"""Every LAVIS internal we override or lean on, in one catalogue, checked at import.

We never edit LAVIS's site-packages; instead a few private names are swapped
for the length of a run, overridden in subclasses, or called. Each one breaks
silently (or mid-training) if LAVIS renames it, so importing our plugin first
checks that LAVIS is the version we support and that every name below still
exists, and stops with a clear error naming what is gone.

The runner-side overrides live here too (the single-process barrier, the CPU
loader, the IterLoader without its sleep, ``FalldownRunner`` with its
checkpoint save/reload/resume, the registry reset); the model-side ones are
our ``Blip2T5`` subclass in ``plugin.py`` and the processor in
``_processors.py``. ``where`` says where each lives, ``test`` names the test
that covers it. This module imports nothing heavy at import time (LAVIS and
torch are imported inside the functions that need them).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.training._patch import patched
from curation.training.checkpoints import (
    latest_checkpoint,
    load_state,
    load_weights,
    read_checkpoint,
    require_match,
)

SUPPORTED_LAVIS = "1.0.2"
DISTRIBUTION = "salesforce-lavis"


@dataclass(frozen=True)
class Override:
    """One LAVIS internal we depend on."""

    name: str  # what we call the workaround
    target: str  # "module:attr.attr" in LAVIS
    why: str
    where: str  # where our code lives
    test: str  # the test that covers it
    param: str | None = None  # a parameter our code passes by name


CATALOGUE: tuple[Override, ...] = (
    Override(
        "single-process barrier",
        "lavis.runners.runner_base:dist",
        "RunnerBase.train calls dist.barrier() even with distributed: False; a real "
        "process group would make MetricLogger allocate CUDA tensors on CPU",
        "_lavis_compat.py: _SingleProcessDist, _single_process_group (module attribute, for the run)",
        "tests/test_lavis_guard.py::test_barrier_answered_without_a_process_group",
    ),
    Override(
        "CPU loader",
        "lavis.runners.runner_base:PrefetchLoader",
        "PrefetchLoader opens a CUDA stream even when training on CPU",
        "_lavis_compat.py: _CpuLoader, swapped in FalldownRunner.create_loaders",
        "tests/test_lavis_guard.py::test_cpu_loader_replaces_the_cuda_prefetcher",
    ),
    Override(
        "IterLoader without the 2 s sleep",
        "lavis.runners.runner_base:IterLoader",
        "IterLoader.__next__ sleeps 2 s at every epoch change (a guard against worker "
        "deadlocks); with num_workers: 0 there are no workers. Relies on its "
        "iter_loader/_epoch/_dataloader attributes",
        "_lavis_compat.py: _no_sleep_iter_loader, swapped in FalldownRunner.create_loaders",
        "tests/test_lavis_guard.py::test_iter_loader_changes_epoch_without_sleeping",
    ),
    Override(
        "process group without init_distributed_mode",
        "lavis.common.dist_utils:init_distributed_mode",
        "LAVIS's init calls torch.cuda.set_device (fails on CPU), forces nccl and waits 365 "
        "days for a dead peer; our worker opens the group itself (gloo on CPU, nccl on GPUs, "
        "run.dist_timeout) and fills run_cfg's distributed/rank/world_size/gpu the same way",
        "_worker.py: _process_group; train.py: _lavis_run_settings",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "metric sync on the group's device",
        "lavis.common.logger:SmoothedValue.synchronize_between_processes",
        "it all-reduces a device='cuda' tensor, which gloo on CPU cannot",
        "_lavis_compat.py: _synchronize_on_group_device, swapped by distributed_run",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "disjoint training shards",
        "lavis.runners.runner_base:DistributedSampler",
        "LAVIS's sampler pads the last shard with records of other ranks and shuffles with "
        "seed 0; ours drops the remainder when training (every record in at most one shard "
        "per epoch) and shuffles with run.seed",
        "_lavis_compat.py: _sharded_sampler, swapped in FalldownRunner.create_loaders",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "DDP on CPU",
        "lavis.runners.runner_base:RunnerBase.model",
        "LAVIS wraps DDP only when the model changes device (never on CPU) and always "
        "passes device_ids (wrong for a CPU model)",
        "_lavis_compat.py: FalldownRunner.model",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "shard order per epoch",
        "lavis.runners.runner_base:IterLoader",
        "IterLoader calls sampler.set_epoch with its own counter, through PrefetchLoader "
        "which has no .sampler; we set the runner's epoch and restart the iterator at each "
        "epoch (a resumed run shuffles as the uninterrupted one)",
        "_lavis_compat.py: _start_shard_epoch, called in FalldownRunner.train_epoch",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "wrapped model on CPU",
        "lavis.runners.runner_base:RunnerBase.model",
        "RunnerBase.model returns None unless the model was moved to another device",
        "_lavis_compat.py: FalldownRunner.model",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "loaders built per run",
        "lavis.runners.runner_base:RunnerBase.create_loaders",
        "the hook where the two loader swaps above are applied",
        "_lavis_compat.py: FalldownRunner.create_loaders",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "a checkpoint every epoch",
        "lavis.runners.runner_base:RunnerBase._save_checkpoint",
        "with validation splits LAVIS saves only checkpoint_best.pth, and only once "
        "accuracy rises above 0; resume needs the latest epoch",
        "_lavis_compat.py: FalldownRunner.train_epoch calls it",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "best model when accuracy stayed 0",
        "lavis.runners.runner_base:RunnerBase._reload_best_model",
        "the test split reloads checkpoint_best.pth, which LAVIS never wrote",
        "_lavis_compat.py: FalldownRunner._reload_best_model",
        "tests/hostile/test_hostile_ckpt.py::test_the_runner_tests_the_highest_epoch_when_no_best_was_saved",
    ),
    Override(
        "resume without frozen weights",
        "lavis.runners.runner_base:RunnerBase._load_checkpoint",
        "LAVIS's checkpoints leave out frozen weights; its strict load then fails",
        "_lavis_compat.py: FalldownRunner._load_checkpoint",
        "tests/test_training.py::test_resume_continues_from_the_checkpoint",
    ),
    Override(
        "evaluation on CPU",
        "lavis.tasks.vqa:VQATask.evaluation",
        "the runner never passes cuda_enabled, whose default moves batches to CUDA",
        "train.py: _observed_task (ObservedVQATask.evaluation)",
        "tests/test_training.py::test_train_tiny_then_predict",
        param="cuda_enabled",
    ),
    Override(
        "loss observed per step",
        "lavis.tasks.vqa:VQATask.train_step",
        "the CLI's progress bar and the NaN check read each step's loss",
        "train.py: _observed_task (ObservedVQATask.train_step)",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "registry paths forgotten between runs",
        "lavis.common.registry:registry.mapping",
        "LAVIS registers result_dir/output_dir globally and refuses a second run in a "
        "process; we pop mapping['paths'] and read mapping['builder_name_mapping']",
        "_lavis_compat.py: _forget_previous_run; plugin.py: register_builder, is_ours",
        "tests/test_lavis_guard.py::test_registry_paths_are_forgotten_between_runs",
    ),
    Override(
        "lr schedulers registered",
        "lavis.common.optims:LinearWarmupCosineLRScheduler",
        "LAVIS's train.py imports lavis.common.optims to register the schedulers; "
        "the runner finds none without that import",
        "plugin.py: import lavis.common.optims",
        "tests/test_lavis_guard.py::test_lr_schedulers_are_registered",
    ),
    Override(
        "own instance ids",
        "lavis.datasets.datasets.base_dataset:BaseDataset._add_instance_ids",
        "the base class overwrites the file's instance_id with the index",
        "plugin.py: FalldownVQADataset._add_instance_ids",
        "tests/test_lavis_guard.py::test_the_dataset_keeps_the_files_own_instance_ids",
    ),
    Override(
        "Q-Former tokenizer from a local folder",
        "lavis.models.blip2_models.blip2:Blip2Base.init_tokenizer",
        "LAVIS fetches bert-base-uncased from the hub",
        "plugin.py: FalldownBlip2T5.init_tokenizer",
        "tests/test_training.py::test_train_tiny_then_predict (no network allowed)",
    ),
    Override(
        "Q-Former from config",
        "lavis.models.blip2_models.blip2:Blip2Base.init_Qformer",
        "LAVIS fetches bert-base-uncased's config and weights from the hub",
        "plugin.py: FalldownBlip2T5.init_Qformer",
        "tests/test_training.py::test_train_tiny_then_predict (no network allowed)",
    ),
    Override(
        "vision encoder from local weights",
        "lavis.models.blip2_models.blip2:Blip2Base.init_vision_encoder",
        "LAVIS downloads EVA-ViT-g by URL",
        "plugin.py: FalldownBlip2T5.init_vision_encoder",
        "tests/test_training.py::test_train_tiny_then_predict (no network allowed)",
    ),
    Override(
        "local Flan-T5",
        "lavis.models.blip2_models.blip2_t5:T5ForConditionalGeneration",
        "Blip2T5.__init__ loads the T5 by hub name; ours loads a local folder (or builds "
        "the tiny one from config)",
        "plugin.py: _LocalT5, swapped in FalldownBlip2T5.from_config",
        "tests/test_training.py::test_lavis_names_are_restored_after_train",
    ),
    Override(
        "checkpoint loading reports keys",
        "lavis.models.blip2_models.blip2_t5:Blip2T5.load_checkpoint_from_config",
        "LAVIS loads with strict=False and hides wrong keys",
        "plugin.py: FalldownBlip2T5.load_checkpoint_from_config, load_from_pretrained",
        "tests/test_training.py::test_predict_reports_mismatched_keys",
    ),
    Override(
        "autocontrast without uint8 wrap-around",
        "lavis.processors.randaugment:RandomAugment.__call__",
        "autocontrast_func computes offset = -low * scale on uint8 (-3 -> 253) and "
        "turns images white; our RandomAugment uses a fixed autocontrast and LAVIS's "
        "func_dict/arg_dict for everything else",
        "_processors.py: FalldownImageTrainProcessor (registered as falldown_image_train)",
        "tests/test_lavis_guard.py::test_falldown_image_train_fixes_autocontrast",
    ),
    Override(
        "augment table",
        "lavis.processors.randaugment:func_dict",
        "our RandomAugment reads LAVIS's functions by name",
        "_processors.py: _FixedRandomAugment",
        "tests/test_lavis_guard.py::test_falldown_image_train_fixes_autocontrast",
    ),
    Override(
        "train transform",
        "lavis.processors.blip_processors:BlipImageTrainProcessor.from_config",
        "our processor is LAVIS's with the RandomAugment step replaced",
        "_processors.py: FalldownImageTrainProcessor",
        "tests/test_lavis_guard.py::test_falldown_image_train_fixes_autocontrast",
    ),
    # --- speed options (run.amp_dtype, run.fused_adamw, run.compile_frozen) ---
    Override(
        "bf16 without a GradScaler",
        "lavis.runners.runner_base:RunnerBase.scaler",
        "LAVIS always pairs amp with fp16 and a GradScaler; bf16 needs no loss scaling",
        "_lavis_compat.py: FalldownRunner.scaler, train_autocast",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "bf16 autocast in the train step",
        "lavis.tasks.base_task:BaseTask._train_inner_loop",
        "its autocast is fp16 and opens only when it gets a scaler (use_amp = scaler is "
        "not None); with bf16 it gets none and our train_step opens a bf16 autocast",
        "_lavis_compat.py: train_autocast, used by train.py's ObservedVQATask.train_step",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "fused AdamW",
        "lavis.runners.runner_base:RunnerBase.optimizer",
        "LAVIS builds a plain AdamW; ours rebuilds it fused from LAVIS's own parameter groups",
        "_lavis_compat.py: FalldownRunner.optimizer, fused_adamw",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "compiled frozen ViT",
        "lavis.models.eva_vit:VisionTransformer",
        "the frozen EVA-ViT runs the same shapes every step; compiled in place, its "
        "state-dict names stay LAVIS's",
        "_lavis_compat.py: compile_frozen, called by train.py when run.compile_frozen",
        "tests/test_gpu_check.py::test_compile_frozen_keeps_names_and_outputs",
    ),
)


def lavis_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _resolve(target: str) -> object:
    module_name, _, attrs = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for attr in attrs.split("."):
        if attr not in vars(obj) and not hasattr(obj, attr):
            raise AttributeError(attr)
        obj = getattr(obj, attr)
    return obj


def missing_names(catalogue: tuple[Override, ...] = CATALOGUE) -> list[str]:
    """The catalogue's targets that this LAVIS no longer has (as ``"target (what)"``)."""
    gone = []
    for item in catalogue:
        try:
            obj = _resolve(item.target)
        except (ImportError, AttributeError):
            gone.append(f"{item.target} ({item.name})")
            continue
        if item.param and item.param not in inspect.signature(obj).parameters:  # type: ignore[arg-type]
            gone.append(f"{item.target}({item.param}=...) ({item.name})")
    return gone


def check_lavis() -> None:
    """Refuse a LAVIS whose version or private names differ from what our overrides expect.

    Raises:
        UsageError: another LAVIS version, or a name in ``CATALOGUE`` is gone.
    """
    version = lavis_version()
    gone = missing_names()
    if version == SUPPORTED_LAVIS and not gone:
        return
    problems = []
    if version != SUPPORTED_LAVIS:
        problems.append(f"LAVIS {version or '(unknown version)'} is installed")
    if gone:
        problems.append("these LAVIS names we override are gone: " + "; ".join(gone))
    raise UsageError(
        f"{'; '.join(problems)}. falldown-curate supports only LAVIS {SUPPORTED_LAVIS} "
        f"(see curation/training/_lavis_compat.py). "
        f"Fix: pip install '{DISTRIBUTION}=={SUPPORTED_LAVIS}'"
    )


# --- the runner-side overrides (swapped or subclassed for the length of a run) ---


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
def _single_process_group() -> Iterator[None]:
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
    sampler = getattr(inner, "sampler", None)
    if dataloader is None or not hasattr(sampler, "set_epoch"):
        return
    sampler.set_epoch(epoch)
    loader.iter_loader = iter(dataloader)


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _forget_previous_run() -> None:
    """LAVIS registers each run's folders globally and refuses a second registration."""
    from lavis.common.registry import registry

    for name in ("result_dir", "output_dir"):
        registry.mapping["paths"].pop(name, None)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    # an epoch's seed is run.seed + epoch (+ a rank offset): past numpy's 2**32 - 1 it
    # wraps around rather than failing at the second epoch of run.seed=4294967295
    seed %= 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _runner_class() -> type:
    """LAVIS's RunnerBase, saving a checkpoint each epoch and resuming frozen models."""
    from lavis.runners.runner_base import RunnerBase

    class FalldownRunner(RunnerBase):
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
            _seed_everything(int(self.config.run_cfg.seed) + epoch + 100_003 * _rank())
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


# --- speed options: run.amp_dtype, run.fused_adamw, run.compile_frozen ---


def amp_dtype(run_cfg: Any) -> str | None:
    """``"fp16"`` or ``"bf16"`` when the run uses amp (LAVIS's ``run.amp``), else None."""
    if not run_cfg.get("amp", False):
        return None
    return str(run_cfg.get("amp_dtype", "fp16") or "fp16")


def train_autocast(run_cfg: Any, device: Any) -> contextlib.AbstractContextManager[Any]:
    """The bf16 autocast around one train step (``run.amp_dtype: bf16`` on CUDA), else nothing.

    LAVIS's inner loop opens an fp16 autocast only when the runner gives it a
    GradScaler; with bf16 ``FalldownRunner.scaler`` gives none, so the step
    opens its own. Outside CUDA (where ``curate train`` turns amp off) it is a no-op.
    """
    import torch

    if amp_dtype(run_cfg) == "bf16" and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fused_adamw(optimizer: Any) -> Any:
    """LAVIS's AdamW rebuilt as torch's fused AdamW: same parameter groups and settings."""
    import torch

    defaults = optimizer.defaults
    groups = [
        {k: v for k, v in group.items() if k not in ("fused", "foreach")}
        for group in optimizer.param_groups
    ]
    return torch.optim.AdamW(
        groups,
        lr=defaults["lr"],
        betas=defaults["betas"],
        eps=defaults["eps"],
        weight_decay=defaults["weight_decay"],
        fused=True,
    )


def compile_frozen(model: Any, backend: str = "inductor") -> list[str]:
    """Compile the frozen vision encoder and frozen T5 blocks in place; return what was compiled.

    ``nn.Module.compile`` keeps parameter and state-dict names, so checkpoints,
    resume and ``predict`` see LAVIS's names. Trainable parts are left alone
    (the tiny preset trains everything: nothing is compiled there). The ViT
    sees one image size, so it is compiled with static shapes; T5 blocks see
    text of varying length and let torch choose dynamic shapes.
    """
    compiled = []

    def frozen(module: Any) -> bool:
        return not any(p.requires_grad for p in module.parameters())

    vit = getattr(model, "visual_encoder", None)
    if vit is not None and frozen(vit):
        vit.compile(backend=backend, dynamic=False)
        compiled.append("visual_encoder")
    t5 = getattr(model, "t5_model", None)
    if t5 is not None and frozen(t5):
        for stack_name in ("encoder", "decoder"):
            for block in getattr(t5, stack_name).block:
                block.compile(backend=backend)
            compiled.append(f"t5_model.{stack_name}.block")
    return compiled
