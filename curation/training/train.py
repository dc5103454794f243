"""`curate train`: LAVIS's own task and runner, local files only.

Before anything heavy is imported the config, the data (the contract) and
the model files are checked, so a bad file fails in about a second. LAVIS's
``RunnerBase.train`` calls ``dist.barrier()`` even with ``distributed: False``;
``_lavis_runner._SingleProcessDist`` answers that call for a single process. LAVIS's
source is never edited. ``train`` runs one process; ``train_one_rank`` is one
process of a ``torch.distributed.run`` launch (``curation.training.distributed``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import resource
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import __version__
from curation._io import RUN_LOCK, atomic_write_json, is_our_export, sha256_file
from curation.errors import ConfigError, DataError, UsageError
from curation.training import import_plugin
from curation.training._lavis_runner import (
    forget_previous_run,
    runner_class,
    seed_everything,
    single_process_group,
)
from curation.training.checkpoints import (
    read_checkpoint,
    sorted_checkpoints,
)
from curation.training.config import (
    LoadedConfig,
    absolute_dict,
    load_train_config,
    relocated_dict,
    write_config,
)
from curation.training.preflight import check_builders, check_data, check_model_files
from curation.training.speed_options import compile_frozen, train_autocast


@dataclass
class TrainEvent:
    """What the training loop reports to a progress display."""

    kind: str  # "start", "step", "eval"
    epoch: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_dir: Path
    checkpoints: list[Path]
    losses: list[float]
    epochs: list[dict[str, Any]]
    test_metrics: dict[str, Any]
    seconds: float
    steps: int
    peak_rss_mb: float
    device: str
    #: set on a node other than node 0 of a multi-node run: its ranks trained, but node 0
    #: writes the run (checkpoints, losses, manifest), so this node has nothing to report
    secondary_node: int | None = None


@dataclass(frozen=True)
class RankInfo:
    """Where one process sits in a distributed run (torchrun's RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str  # "gloo" or "nccl"


def prepare(
    config_path: str | Path, overrides: Sequence[str] = (), world_size: int = 1
) -> tuple[LoadedConfig, int]:
    """Load and check everything that can be checked before a weight is read."""
    loaded = load_train_config(config_path, overrides)
    check_run_paths(loaded)
    check_model_files(loaded)
    records = check_data(loaded, world_size)
    return loaded, records


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_id(run_id: str) -> str:
    """A run id is a plain folder name: letters, digits, ``._-``, at most 100 characters.

    Raises:
        UsageError: it is empty, has a ``/``, is ``..``, or is otherwise not a plain name.
    """
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise UsageError(
            f"--run-id {run_id!r} is not a plain folder name: the run goes to "
            "OUT/runs/<run-id>/, so it may not be empty, hold '/' or '..', or start with '.' "
            "or '-'. Fix: use letters, digits, '.', '_' and '-' (at most 100), e.g. --run-id first"
        )
    return run_id


def check_run_paths(loaded: LoadedConfig) -> None:
    """``run.output_dir`` stays inside the export folder; ``run.resume_ckpt_path`` exists.

    Raises:
        ConfigError: the output folder escapes the export, or the checkpoint is missing.
    """
    run = loaded.config.run
    home = export_folder(loaded.path)
    output_root = Path(os.path.realpath(loaded.resolve(run.output_dir)))
    if output_root != home and home not in output_root.parents:
        raise ConfigError(
            f"{loaded.path}: run.output_dir {run.output_dir!r} resolves to {output_root}, "
            f"outside the export folder {home}; runs are written only inside it. "
            "Fix: run.output_dir=runs (or another folder inside the export)."
        )
    for data_folder in ("images", "model", "vqa_eval"):
        inside = Path(os.path.realpath(home / data_folder))
        if output_root == inside or inside in output_root.parents:
            raise ConfigError(
                f"{loaded.path}: run.output_dir {run.output_dir!r} is inside the export's "
                f"{data_folder}/ folder, which training reads. Fix: run.output_dir=runs"
            )
    if output_root.exists() and not output_root.is_dir():
        raise ConfigError(
            f"{loaded.path}: run.output_dir {output_root} is a file, not a folder. "
            "Fix: run.output_dir=runs"
        )
    if run.resume_ckpt_path:
        ckpt = loaded.resolve(run.resume_ckpt_path)
        if not ckpt.is_file():
            raise ConfigError(
                f"{loaded.path}: run.resume_ckpt_path: {ckpt} not found (paths are relative to "
                f"the config's folder). Fix: point it at a checkpoint of an earlier run, e.g. "
                "run.resume_ckpt_path=runs/<run-id>/checkpoint_<n>.pth"
            )
        # LAVIS resumes at the saved epoch + 1 and would train nothing, yet report success
        epoch = read_checkpoint(ckpt).get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch + 1 >= run.max_epoch:
            raise ConfigError(
                f"{loaded.path}: {ckpt.name} finished epoch {epoch} (epochs count from 0), and "
                f"run.max_epoch={run.max_epoch} leaves no epoch to train. "
                f"Fix: run.max_epoch={epoch + 2} or more."
            )


def export_folder(config_path: Path) -> Path:
    """The export a config belongs to: the nearest folder up holding our manifest and lavis.yaml.

    A run's own ``config.yaml`` (in ``OUT/runs/<id>/``) belongs to ``OUT``; a
    config outside any export is confined to its own folder.
    """
    here = Path(os.path.realpath(config_path)).parent
    for folder in (here, *here.parents):
        if (folder / "lavis.yaml").is_file() and is_our_export(folder):
            return folder
    return here


def train(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    run_id: str | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
) -> TrainResult:
    """Train with LAVIS as the config says; write the run under ``<output_dir>/<run_id>/``.

    Raises:
        ConfigError / DataError: bad config, data or model files (before any training).
    """
    if run_id is not None:
        check_run_id(run_id)
    loaded, _ = prepare(config_path, overrides)
    import_plugin()
    check_builders(loaded)
    device = resolve_device(loaded.config.run.device)
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S")
    output_root = loaded.resolve(loaded.config.run.output_dir)
    run_dir = output_root / run_id
    with claimed_run_folder(run_dir):
        return _train_in(loaded, overrides, run_id, run_dir, output_root, device, on_event)


def resolve_device(requested: str) -> str:
    """``run.device``: ``auto`` is cuda when a GPU is visible, else cpu.

    Raises:
        DataError: cuda asked for, and no GPU visible.
    """
    import torch

    device = requested
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DataError("run.device is cuda but no CUDA GPU is visible. Fix: run.device=cpu")
    return device


@contextlib.contextmanager
def claimed_run_folder(run_dir: Path) -> Iterator[None]:
    """Make the run folder (refusing one that exists) and hold its lock while the block runs.

    A start that fails before the first checkpoint leaves no folder to block the id.

    Raises:
        DataError: the folder exists.
    """
    if os.path.lexists(run_dir):
        raise DataError(f"run folder {run_dir} already exists. Fix: pass another --run-id")
    run_dir.mkdir(parents=True)
    lock = run_dir / RUN_LOCK  # export/mix --overwrite refuse to delete a live run
    lock.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        yield
    except BaseException:
        if not any(run_dir.glob("checkpoint_*.pth")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.unlink(missing_ok=True)


def train_one_rank(
    config_path: str | Path,
    overrides: Sequence[str],
    run_id: str,
    device: str,
    ranks: RankInfo,
    on_event: Callable[[TrainEvent], None] | None = None,
) -> TrainResult:
    """One process of a distributed run, inside a process group that is already open.

    The launcher (``distributed.train_distributed``) ran the pre-checks, made the
    run folder and wrote its config; here the config is only read again and the
    plugin's builder names registered. Only rank 0 writes logs and the manifest.
    """
    loaded = load_train_config(config_path, overrides)
    import_plugin()
    check_builders(loaded)
    output_root = loaded.resolve(loaded.config.run.output_dir)
    run_dir = output_root / run_id
    return _train_in(loaded, overrides, run_id, run_dir, output_root, device, on_event, ranks)


def write_run_config(loaded: LoadedConfig, run_dir: Path, run_id: str) -> None:
    """The resolved config beside the checkpoints (``curate predict`` reads it)."""
    write_config(
        run_dir / "config.yaml",
        relocated_dict(loaded, run_dir),
        f"Resolved config of run {run_id} (paths relative to this folder).\n"
        f"curate predict {run_dir.as_posix()}/checkpoint_best.pth IMAGE --question '...'",
    )


def _lavis_run_settings(device: str, amp: bool, ranks: RankInfo | None) -> dict[str, Any]:
    """``run:`` keys LAVIS reads besides ours: the device and, for torchrun, its distributed mode.

    The distributed keys are what LAVIS's ``init_distributed_mode`` would set on
    ``run_cfg``; our worker opens the process group itself.
    """
    settings: dict[str, Any] = {"device": device, "amp": amp and device == "cuda"}
    if ranks is not None:
        settings.update(
            distributed=True,
            world_size=ranks.world_size,
            rank=ranks.rank,
            gpu=ranks.local_rank,
            dist_backend=ranks.backend,
            dist_url="env://",
        )
    return settings


def _train_in(
    loaded: LoadedConfig,
    overrides: Sequence[str],
    run_id: str,
    run_dir: Path,
    output_root: Path,
    device: str,
    on_event: Callable[[TrainEvent], None] | None,
    ranks: RankInfo | None = None,
) -> TrainResult:
    cfg = loaded.config
    main = ranks is None or ranks.rank == 0
    if ranks is None:  # a distributed run's launcher wrote it before any process started
        write_run_config(loaded, run_dir, run_id)
    lavis_dict = absolute_dict(loaded)
    lavis_dict["run"].update(
        _lavis_run_settings(device, cfg.run.amp, ranks), output_dir=str(output_root.resolve())
    )
    emit = on_event or (lambda e: None)
    started = time.perf_counter()
    log_path = run_dir / "lavis.log" if main else Path(os.devnull)
    with contextlib.ExitStack() as stack:
        stack.enter_context(single_process_group())
        if ranks is not None:
            from curation.training._lavis_runner import distributed_run

            stack.enter_context(distributed_run())
        stack.enter_context(_lavis_log(log_path))
        stack.enter_context(_denormals_flushed())
        lavis_cfg = lavis_run_config(lavis_dict)
        seed_everything(cfg.run.seed)
        task = observed_task(lavis_cfg, emit)
        datasets = task.build_datasets(lavis_cfg)
        model = task.build_model(lavis_cfg)
        if cfg.run.compile_frozen:
            compile_frozen(model)
        forget_previous_run()
        runner = runner_class()(
            cfg=lavis_cfg, task=task, model=model, datasets=datasets, job_id=run_id
        )
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        emit(
            TrainEvent(
                "start",
                data={
                    "run_dir": str(run_dir),
                    "device": device,
                    "trainable": trainable,
                    "epochs": cfg.run.max_epoch,
                    "load_report": getattr(model, "load_report", None),
                },
            )
        )
        runner.train()
    seconds = time.perf_counter() - started

    epochs = _read_log_stats(run_dir / "log.txt")
    test_metrics: dict[str, Any] = next(
        (e for e in reversed(task.evals) if e["split"] == "test"), {}
    )
    checkpoints = sorted_checkpoints(run_dir.glob("checkpoint_*.pth"))
    data_manifest = loaded.base / "manifest.json"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = TrainResult(
        run_dir,
        checkpoints,
        task.losses,
        epochs,
        test_metrics,
        seconds,
        len(task.losses),
        peak,
        device,
    )
    if not main:
        return result
    distributed = (
        {"processes": ranks.world_size, "backend": ranks.backend, "losses_of": "rank 0"}
        if ranks is not None
        else None
    )
    atomic_write_json(
        run_dir / "manifest.json",
        {
            "tool": "falldown-curate",
            "version": __version__,
            "run_id": run_id,
            "config": os.path.relpath(loaded.path.resolve(), run_dir.resolve()),
            "overrides": list(overrides),
            "data_manifest": os.path.relpath(data_manifest.resolve(), run_dir.resolve())
            if data_manifest.is_file()
            else None,
            "data_manifest_sha256": sha256_file(data_manifest) if data_manifest.is_file() else None,
            "device": device,
            "seconds": round(seconds, 2),
            "steps": len(task.losses),
            "first_loss": task.losses[0] if task.losses else None,
            "last_loss": task.losses[-1] if task.losses else None,
            "checkpoints": [c.name for c in checkpoints],
            "epochs": epochs,
            "evaluations": task.evals,
            **({"distributed": distributed} if distributed else {}),
        },
    )
    return result


class _Tee(io.TextIOBase):
    """Sends LAVIS's prints to its log file (the CLI shows a progress bar instead)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, text: str) -> int:
        self.fh.write(text)
        self.fh.flush()
        return len(text)


@contextlib.contextmanager
def _lavis_log(path: Path) -> Iterator[None]:
    with open(path, "a", encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        tee = _Tee(fh)
        try:
            with contextlib.redirect_stdout(tee), warnings.catch_warnings():  # MetricLogger prints
                warnings.simplefilter("default")
                yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(old_level)


def lavis_run_config(data: dict[str, Any]) -> Any:
    """LAVIS's own Config (it merges the builder's and model's default YAMLs)."""
    import argparse

    import yaml
    from lavis.common.config import Config

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(data, fh)
    try:
        return Config(argparse.Namespace(cfg_path=fh.name, options=[]))
    finally:
        os.unlink(fh.name)


@contextlib.contextmanager
def _denormals_flushed() -> Iterator[None]:
    """Flush denormal floats to zero while training, and only then.

    A model that has learned its data drives gradients into denormals, which make
    CPU arithmetic many times slower. The setting is global processor state, so it
    is switched off again afterwards (torch has no getter; off is its default).
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def observed_task(lavis_cfg: Any, emit: Callable[[TrainEvent], None]) -> Any:
    """LAVIS's VQATask, with each step's loss reported."""
    from lavis.tasks.vqa import VQATask

    class ObservedVQATask(VQATask):
        losses: list[float]
        evals: list[dict[str, Any]]

        def train_step(self, model: Any, samples: dict[str, Any]) -> Any:
            with train_autocast(lavis_cfg.run_cfg, samples["image"].device):
                loss = super().train_step(model, samples)
            value = float(loss.item())
            if value != value:  # NaN
                raise DataError(
                    f"the loss became NaN at step {len(self.losses)}; lower run.init_lr"
                )
            self.losses.append(value)
            emit(
                TrainEvent(
                    "step",
                    epoch=int(samples.get("epoch", 0)),
                    step=int(samples.get("iters", 0)) + 1,
                    steps=int(samples.get("num_iters_per_epoch", 0)),
                    loss=value,
                    data={"instance_ids": list(samples.get("instance_id", ()))},
                )
            )
            return loss

        def evaluation(self, model: Any, data_loader: Any, cuda_enabled: bool = True) -> Any:
            # LAVIS's runner never passes cuda_enabled, so evaluation moves batches to CUDA
            return super().evaluation(model, data_loader, cuda_enabled=model.device.type == "cuda")

        def after_evaluation(self, val_result: Any, split_name: str, **kwargs: Any) -> Any:
            metrics = super().after_evaluation(val_result, split_name, **kwargs)
            epoch = kwargs.get("epoch")
            self.evals.append({"split": split_name, "epoch": epoch, **(metrics or {})})
            emit(
                TrainEvent(
                    "eval", epoch=epoch if isinstance(epoch, int) else -1, data=self.evals[-1]
                )
            )
            return metrics

    task = ObservedVQATask.setup_task(cfg=lavis_cfg)
    task.losses, task.evals = [], []
    return task


def _read_log_stats(path: Path) -> list[dict[str, Any]]:
    """The per-epoch JSON lines LAVIS appends to log.txt (the config dump is skipped)."""
    if not path.exists():
        return []
    stats = []
    for line in path.read_text().splitlines():
        if line.startswith("{") and line.endswith("}") and re.match(r'\{"(train|val|test)_', line):
            stats.append(json.loads(line))
    return stats
