"""Every LAVIS internal we override or lean on, in one catalogue, checked at import.

We never edit LAVIS's site-packages; instead a few private names are swapped
for the length of a run, overridden in subclasses, or called. Each one breaks
silently (or mid-training) if LAVIS renames it, so importing our plugin first
checks that LAVIS is the version we support and that every name below still
exists, and stops with a clear error naming what is gone.

The runner-side overrides live in ``_lavis_runner.py`` (the single-process
barrier, the CPU loader, the IterLoader without its sleep, ``FalldownRunner``
with its checkpoint save/reload/resume, the registry reset), the speed options
in ``speed_options.py``; the model-side ones are our ``Blip2T5`` subclass in
``plugin.py`` and the processor in ``_processors.py``. ``where`` says where each
lives, ``test`` names the test that covers it. This module imports nothing heavy
(LAVIS is imported only to resolve the names when checked).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from curation.errors import UsageError

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
        "_lavis_runner.py: _SingleProcessDist, single_process_group (module attribute, for the run)",
        "tests/test_lavis_guard.py::test_barrier_answered_without_a_process_group",
    ),
    Override(
        "CPU loader",
        "lavis.runners.runner_base:PrefetchLoader",
        "PrefetchLoader opens a CUDA stream even when training on CPU",
        "_lavis_runner.py: _CpuLoader, swapped in FalldownRunner.create_loaders",
        "tests/test_lavis_guard.py::test_cpu_loader_replaces_the_cuda_prefetcher",
    ),
    Override(
        "IterLoader without the 2 s sleep",
        "lavis.runners.runner_base:IterLoader",
        "IterLoader.__next__ sleeps 2 s at every epoch change (a guard against worker "
        "deadlocks); with num_workers: 0 there are no workers. Relies on its "
        "iter_loader/_epoch/_dataloader attributes",
        "_lavis_runner.py: _no_sleep_iter_loader, swapped in FalldownRunner.create_loaders",
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
        "_lavis_runner.py: _synchronize_on_group_device, swapped by distributed_run",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "disjoint training shards",
        "lavis.runners.runner_base:DistributedSampler",
        "LAVIS's sampler pads the last shard with records of other ranks and shuffles with "
        "seed 0; ours drops the remainder when training (every record in at most one shard "
        "per epoch) and shuffles with run.seed",
        "_lavis_runner.py: _sharded_sampler, swapped in FalldownRunner.create_loaders",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "DDP on CPU",
        "lavis.runners.runner_base:RunnerBase.model",
        "LAVIS wraps DDP only when the model changes device (never on CPU) and always "
        "passes device_ids (wrong for a CPU model)",
        "_lavis_runner.py: FalldownRunner.model",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "shard order per epoch",
        "lavis.runners.runner_base:IterLoader",
        "IterLoader calls sampler.set_epoch with its own counter, through PrefetchLoader "
        "which has no .sampler; we set the runner's epoch and restart the iterator at each "
        "epoch (a resumed run shuffles as the uninterrupted one)",
        "_lavis_runner.py: _start_shard_epoch, called in FalldownRunner.train_epoch",
        "tests/test_distributed.py::test_two_gloo_processes_train_one_epoch_then_predict",
    ),
    Override(
        "wrapped model on CPU",
        "lavis.runners.runner_base:RunnerBase.model",
        "RunnerBase.model returns None unless the model was moved to another device",
        "_lavis_runner.py: FalldownRunner.model",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "loaders built per run",
        "lavis.runners.runner_base:RunnerBase.create_loaders",
        "the hook where the two loader swaps above are applied",
        "_lavis_runner.py: FalldownRunner.create_loaders",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "a checkpoint every epoch",
        "lavis.runners.runner_base:RunnerBase._save_checkpoint",
        "with validation splits LAVIS saves only checkpoint_best.pth, and only once "
        "accuracy rises above 0; resume needs the latest epoch",
        "_lavis_runner.py: FalldownRunner.train_epoch calls it",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "best model when accuracy stayed 0",
        "lavis.runners.runner_base:RunnerBase._reload_best_model",
        "the test split reloads checkpoint_best.pth, which LAVIS never wrote",
        "_lavis_runner.py: FalldownRunner._reload_best_model",
        "tests/hostile/test_hostile_ckpt.py::test_the_runner_tests_the_highest_epoch_when_no_best_was_saved",
    ),
    Override(
        "resume without frozen weights",
        "lavis.runners.runner_base:RunnerBase._load_checkpoint",
        "LAVIS's checkpoints leave out frozen weights; its strict load then fails",
        "_lavis_runner.py: FalldownRunner._load_checkpoint",
        "tests/test_training.py::test_resume_continues_from_the_checkpoint",
    ),
    Override(
        "evaluation on CPU",
        "lavis.tasks.vqa:VQATask.evaluation",
        "the runner never passes cuda_enabled, whose default moves batches to CUDA",
        "train.py: observed_task (ObservedVQATask.evaluation)",
        "tests/test_training.py::test_train_tiny_then_predict",
        param="cuda_enabled",
    ),
    Override(
        "loss observed per step",
        "lavis.tasks.vqa:VQATask.train_step",
        "the CLI's progress bar and the NaN check read each step's loss",
        "train.py: observed_task (ObservedVQATask.train_step)",
        "tests/test_training.py::test_train_tiny_then_predict",
    ),
    Override(
        "registry paths forgotten between runs",
        "lavis.common.registry:registry.mapping",
        "LAVIS registers result_dir/output_dir globally and refuses a second run in a "
        "process; we pop mapping['paths'] and read mapping['builder_name_mapping']",
        "_lavis_runner.py: forget_previous_run; plugin.py: register_builder, is_ours",
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
        "_lavis_runner.py: FalldownRunner.scaler; speed_options.py: train_autocast",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "bf16 autocast in the train step",
        "lavis.tasks.base_task:BaseTask._train_inner_loop",
        "its autocast is fp16 and opens only when it gets a scaler (use_amp = scaler is "
        "not None); with bf16 it gets none and our train_step opens a bf16 autocast",
        "speed_options.py: train_autocast, used by train.py's ObservedVQATask.train_step",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "fused AdamW",
        "lavis.runners.runner_base:RunnerBase.optimizer",
        "LAVIS builds a plain AdamW; ours rebuilds it fused from LAVIS's own parameter groups",
        "_lavis_runner.py: FalldownRunner.optimizer; speed_options.py: fused_adamw",
        "tests/test_gpu_check.py::test_speed_options_are_real_runner_paths",
    ),
    Override(
        "compiled frozen ViT",
        "lavis.models.eva_vit:VisionTransformer",
        "the frozen EVA-ViT runs the same shapes every step; compiled in place, its "
        "state-dict names stay LAVIS's",
        "speed_options.py: compile_frozen, called by train.py when run.compile_frozen",
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
        if item.param and (
            not callable(obj) or item.param not in inspect.signature(obj).parameters
        ):
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
        f"(see curation/training/_lavis_catalogue.py). "
        f"Fix: pip install '{DISTRIBUTION}=={SUPPORTED_LAVIS}'"
    )
