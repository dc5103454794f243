"""Seconds per training step, peak GPU memory and ``generate`` throughput of a preset.

The model, the task and the runner are built exactly as ``curate train``
builds them (the export's ``lavis.yaml``, our file checks, LAVIS's task, our
runner); steps run through LAVIS's own inner loop (``_train_inner_loop``),
so autocast, GradScaler, optimizer and scheduler are the run's. Each speed
option (``run.amp_dtype``, ``run.fused_adamw``, ``run.compile_frozen``) is
switched on the same built model, so options are compared within one run.
``benchmarks/gpu_train_bench.py`` drives it; the figures are printed and
written, never asserted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation._io import atomic_write_json
from curation.synthetic import QUESTION, render_scenes

#: name -> run settings switched on for it (applied on top of LAVIS's settings, in order)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},  # LAVIS's own: amp = fp16 autocast + GradScaler, plain AdamW
    "bf16": {"amp_dtype": "bf16"},
    "bf16+fused": {"amp_dtype": "bf16", "fused_adamw": True},
    "bf16+fused+compile": {"amp_dtype": "bf16", "fused_adamw": True, "compile_frozen": True},
}


@dataclass
class StepFigures:
    variant: str
    batch: int
    steps: int
    seconds_per_step: float | None = None
    samples_per_s: float | None = None
    peak_gib: float | None = None
    compiled: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Built:
    """A model built as ``curate train`` builds it, with its task, datasets and runner."""

    lavis_cfg: Any
    task: Any
    datasets: dict[str, Any]
    model: Any
    runner: Any
    device: str
    load_seconds: float
    compiled: list[str] = field(default_factory=list)


def write_task_export(folder: Path, images: int, model: str, size: int = 224) -> Path:
    """Synthetic fall / no-fall scenes exported with ``--model MODEL``; returns the export folder."""
    from curation.export import ExportOptions, export_task

    raw = folder / "raw"
    scenes = render_scenes(raw, images // 2, images - images // 2, seed=0, size=size)
    records = [
        {
            "instance_id": i,
            "image": s.path.relative_to(raw).as_posix(),
            "text_input": QUESTION,
            "answer": ["yes" if s.fallen else "no"],
        }
        for i, s in enumerate(scenes)
    ]
    (raw / "annotations.json").write_text(json.dumps(records), encoding="utf-8")
    out = folder / "export"
    export_task(raw / "annotations.json", raw, out, ExportOptions(seed=0, model=model))
    return out


def build(config: Path, overrides: Sequence[str], device: str, log: Path) -> Built:
    """Build model, task, datasets and runner from ``config`` as ``curate train`` does."""
    from curation.training import import_plugin
    from curation.training._lavis_runner import forget_previous_run, runner_class
    from curation.training.config import absolute_dict
    from curation.training.preflight import check_builders
    from curation.training.train import lavis_run_config, observed_task, prepare

    loaded, _ = prepare(config, overrides)
    import_plugin()
    check_builders(loaded)
    data = absolute_dict(loaded)
    data["run"].update(
        device=device,
        amp=loaded.config.run.amp and device == "cuda",
        output_dir=str(log.parent.resolve() / "runs"),
    )
    started = time.perf_counter()
    with _quiet(log):
        lavis_cfg = lavis_run_config(data)
        task = observed_task(lavis_cfg, lambda event: None)
        datasets = task.build_datasets(lavis_cfg)
        model = task.build_model(lavis_cfg)
        forget_previous_run()
        runner = runner_class()(
            cfg=lavis_cfg, task=task, model=model, datasets=datasets, job_id="bench"
        )
        runner.model  # noqa: B018 - moves the model to the device, as the runner does
    return Built(lavis_cfg, task, datasets, model, runner, device, time.perf_counter() - started)


@contextlib.contextmanager
def _quiet(log: Path) -> Iterator[None]:
    """LAVIS prints (MetricLogger, model building) go to ``log``, not the terminal."""
    with open(log, "a", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
        yield


def batch_of(built: Built, size: int) -> dict[str, Any]:
    """A training batch of ``size`` items (cycling the train split), on the run's device."""
    from lavis.datasets.data_utils import prepare_sample

    dataset = train_split(built)
    items = [dataset[i % len(dataset)] for i in range(size)]
    return prepare_sample(dataset.collater(items), cuda_enabled=built.device == "cuda")


def train_split(built: Built) -> Any:
    """The train split of the (first) dataset: LAVIS's datasets are {name: {split: dataset}}."""
    return next(iter(built.datasets.values()))["train"]


def load_summary(report: Any) -> dict[str, Any] | None:
    """The BLIP-2 checkpoint's load report, counted (the frozen keys it leaves out are many)."""
    if not report:
        return None
    return {k: (len(v) if isinstance(v, list) else v) for k, v in dict(report).items()}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_steps(
    built: Built, variant: str, batch: dict[str, Any], steps: int, warmup: int
) -> StepFigures:
    """Seconds per step through LAVIS's inner loop with ``variant``'s run settings."""
    import torch

    from curation.training.speed_options import compile_frozen

    size = int(batch["image"].shape[0])
    fig = StepFigures(variant, size, steps)
    settings = VARIANTS[variant]
    run_cfg = built.lavis_cfg.run_cfg
    for key in ("amp_dtype", "fused_adamw"):
        run_cfg[key] = settings.get(key, {"amp_dtype": "fp16", "fused_adamw": False}[key])
    if settings.get("compile_frozen") and not built.compiled:
        built.compiled = compile_frozen(built.model)
    fig.compiled = list(built.compiled)
    runner = built.runner
    runner._optimizer = runner._scaler = runner._lr_sched = None  # rebuilt with the settings
    model = runner.model
    model.train()

    def run(n: int) -> None:
        built.task._train_inner_loop(
            epoch=0,
            iters_per_epoch=n,
            model=model,
            data_loader=itertools.repeat(batch),
            optimizer=runner.optimizer,
            lr_scheduler=runner.lr_scheduler,
            scaler=runner.scaler,
            cuda_enabled=built.device == "cuda",
            log_freq=10**9,
            accum_grad_iters=1,
        )

    with _quiet(Path(os.devnull)):
        run(warmup)  # compile, cuDNN autotuning, optimizer state
        _sync(built.device)
        if built.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        run(steps)
        _sync(built.device)
    seconds = (time.perf_counter() - started) / steps
    fig.seconds_per_step = round(seconds, 4)
    fig.samples_per_s = round(size / seconds, 2)
    if built.device == "cuda":
        fig.peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return fig


def measure_generate(built: Built, batch: dict[str, Any], reps: int) -> dict[str, Any]:
    """Images per second of ``predict_answers`` (LAVIS's VQA eval path) with the run's beams."""
    import torch

    run = built.lavis_cfg.run_cfg
    model = built.runner.model
    model.eval()
    size = int(batch["image"].shape[0])

    def once() -> list[str]:
        with torch.no_grad():
            return model.predict_answers(
                batch,
                num_beams=int(run.num_beams),
                max_len=int(run.max_len),
                min_len=int(run.min_len),
            )

    once()
    _sync(built.device)
    started = time.perf_counter()
    for _ in range(reps):
        answers = once()
    _sync(built.device)
    seconds = (time.perf_counter() - started) / reps
    model.train()
    return {
        "batch": size,
        "num_beams": int(run.num_beams),
        "seconds_per_batch": round(seconds, 4),
        "images_per_s": round(size / seconds, 2),
        "example_answer": answers[0] if answers else None,
    }


def measure_loader(built: Built, workers: int, batch: int, batches: int) -> dict[str, Any]:
    """Images per second the train split's loader delivers (decode + LAVIS's augmentation)."""
    from torch.utils.data import DataLoader

    dataset = train_split(built)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        collate_fn=dataset.collater,
        drop_last=False,
        persistent_workers=False,
    )
    stream = itertools.chain.from_iterable(itertools.repeat(loader))
    next(stream)  # workers started
    started = time.perf_counter()
    count = sum(int(next(stream)["image"].shape[0]) for _ in range(batches))
    seconds = time.perf_counter() - started
    return {"workers": workers, "batch": batch, "images_per_s": round(count / seconds, 1)}


def profile_steps(built: Built, batch: dict[str, Any], steps: int, out: Path) -> None:
    """torch.profiler over ``steps`` baseline steps: the top operators, as text."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if built.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        measure_steps(built, "baseline", batch, steps, warmup=0)
    key = "self_cuda_time_total" if built.device == "cuda" else "self_cpu_time_total"
    out.write_text(prof.key_averages().table(sort_by=key, row_limit=25) + "\n", encoding="utf-8")


def guarded(what: str, errors: list[str], fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one measurement; a failure is recorded and the others still run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure and goes on
        errors.append(f"{what}: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return None


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``bench.json`` and a markdown table ``bench.md`` under ``out``."""
    atomic_write_json(out / "bench.json", report)
    lines = [
        f"# Step benchmark: {report['preset']} ({report['scale']}) on {report['device_name']}",
        "",
        f"{report['parameters'] / 1e9:.3f} B parameters, {report['trainable'] / 1e6:.1f} M "
        f"trainable; files written in {report['write_seconds']} s, model built in "
        f"{report['load_seconds']} s.",
        "",
        "| variant | batch | s/step | samples/s | peak GiB | speed-up vs baseline |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    base = {s["batch"]: s["samples_per_s"] for s in report["steps"] if s["variant"] == "baseline"}
    for s in report["steps"]:
        if s["error"]:
            lines.append(f"| {s['variant']} | {s['batch']} | failed: {s['error']} | | | |")
            continue
        ref = base.get(s["batch"])
        up = f"{s['samples_per_s'] / ref:.2f}x" if ref and s["samples_per_s"] else ""
        lines.append(
            f"| {s['variant']} | {s['batch']} | {s['seconds_per_step']} | {s['samples_per_s']} "
            f"| {s['peak_gib'] if s['peak_gib'] is not None else 'n/a'} | {up} |"
        )
    if report.get("generate"):
        g = report["generate"]
        lines += [
            "",
            f"`predict_answers` (eval): batch {g['batch']}, {g['num_beams']} beams: "
            f"{g['seconds_per_batch']} s/batch, {g['images_per_s']} images/s.",
        ]
    if report.get("loader"):
        lines += ["", "| loader workers | images/s |", "| --- | --- |"]
        lines += [f"| {x['workers']} | {x['images_per_s']} |" for x in report["loader"]]
    if report["errors"]:
        lines += ["", "Failures:", *(f"- {e}" for e in report["errors"])]
    (out / "bench.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def figures_dict(fig: StepFigures) -> dict[str, Any]:
    return asdict(fig)
