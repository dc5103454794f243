"""LAVIS guarded: the catalogue of overrides, the import-time check, one test per workaround."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lavis")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from conftest import REPO, SAMPLE  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from curation.errors import UsageError  # noqa: E402
from curation.training import _lavis_catalogue, import_plugin  # noqa: E402

plugin = import_plugin()


def test_lavis_is_the_supported_version_and_every_override_exists() -> None:
    assert _lavis_catalogue.lavis_version() == _lavis_catalogue.SUPPORTED_LAVIS
    assert _lavis_catalogue.missing_names() == []
    _lavis_catalogue.check_lavis()


def test_the_catalogue_names_tests_that_exist() -> None:
    for item in _lavis_catalogue.CATALOGUE:
        path, _, name = item.test.partition("::")
        name = name.split(" ")[0]
        source = (REPO / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{item.name}: {item.test} not found"
        where = item.where.split(":")[0]
        assert (REPO / "curation" / "training" / where).is_file(), item.where


def test_version_check_names_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from lavis.runners.runner_base import RunnerBase

    monkeypatch.delattr(RunnerBase, "_reload_best_model")
    with pytest.raises(UsageError) as info:
        _lavis_catalogue.check_lavis()
    message = str(info.value)
    assert "RunnerBase._reload_best_model (best model when accuracy stayed 0)" in message
    assert "supports only LAVIS 1.0.2" in message
    assert "pip install 'salesforce-lavis==1.0.2'" in message


def test_version_check_names_a_missing_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    from lavis.tasks.base_task import BaseTask

    monkeypatch.setattr(BaseTask, "evaluation", lambda self, model, data_loader: None)
    with pytest.raises(UsageError, match=r"VQATask\.evaluation\(cuda_enabled=\.\.\.\)"):
        _lavis_catalogue.check_lavis()


def test_version_check_refuses_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lavis_catalogue, "lavis_version", lambda: "1.1.0")
    with pytest.raises(UsageError, match="LAVIS 1.1.0 is installed.*supports only LAVIS 1.0.2"):
        _lavis_catalogue.check_lavis()


def test_train_stops_at_plugin_import_when_a_name_is_gone(tmp_path: Path) -> None:
    """Through the CLI, in a fresh process whose LAVIS lost a name: exit 2, nothing trained."""
    from curation.export import ExportOptions, export_task

    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    code = (
        "import lavis.runners.runner_base as r; del r.RunnerBase._load_checkpoint; "
        "from curation.cli import app; app()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "train", str(out / "lavis.yaml"), "--run-id", "never"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "300", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "RunnerBase._load_checkpoint (resume without frozen weights)" in output
    assert "Traceback" not in output
    assert not (out / "runs" / "never").exists()


def test_barrier_answered_without_a_process_group() -> None:
    import lavis.runners.runner_base as runner_module
    import torch.distributed as dist

    from curation.training._lavis_runner import _SingleProcessDist, single_process_group

    assert not dist.is_initialized()
    with pytest.raises((RuntimeError, ValueError)):
        dist.barrier()  # what RunnerBase.train would call
    with single_process_group():
        assert isinstance(runner_module.dist, _SingleProcessDist)
        runner_module.dist.barrier()
        assert runner_module.dist.is_initialized() is False  # everything else is torch's
    assert runner_module.dist is dist


def test_cpu_loader_replaces_the_cuda_prefetcher() -> None:
    from lavis.datasets.datasets.dataloader_utils import PrefetchLoader

    from curation.training._lavis_runner import _CpuLoader

    loader = torch.utils.data.DataLoader(torch.arange(5.0), batch_size=2)
    cpu = _CpuLoader(loader)
    batches = list(cpu)
    assert len(cpu) == 3 and cpu.batch_size == 2
    assert torch.equal(torch.cat(batches), torch.arange(5.0))
    assert all(b.device.type == "cpu" for b in batches)
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError)):
            list(PrefetchLoader(loader))  # LAVIS's opens a CUDA stream


def test_iter_loader_changes_epoch_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    from lavis.datasets.datasets import dataloader_utils

    from curation.training._lavis_runner import _no_sleep_iter_loader

    sleeps: list[float] = []
    monkeypatch.setattr(dataloader_utils.time, "sleep", sleeps.append)
    loader = torch.utils.data.DataLoader(torch.arange(3.0), batch_size=2)
    lavis_loader = dataloader_utils.IterLoader(loader)
    [next(lavis_loader) for _ in range(3)]
    assert sleeps == [2] and lavis_loader.epoch == 1  # the trap: 2 s at each epoch change

    sleeps.clear()
    ours = _no_sleep_iter_loader()(loader)
    got = [next(ours) for _ in range(5)]
    assert sleeps == [] and ours.epoch == 2
    assert [b.tolist() for b in got] == [[0, 1], [2], [0, 1], [2], [0, 1]]


def test_lr_schedulers_are_registered() -> None:
    from lavis.common.registry import registry

    assert registry.get_lr_scheduler_class("linear_warmup_cosine_lr") is not None


def _gradient(low: int = 3, high: int = 250) -> Image.Image:
    """An RGB image whose darkest value is above 0 (every real photo's case)."""
    row = np.linspace(low, high, 64).round().astype(np.uint8)
    return Image.fromarray(np.stack([np.tile(row, (16, 1))] * 3, axis=-1))


def test_falldown_image_train_fixes_autocontrast() -> None:
    from lavis.common.registry import registry
    from lavis.processors.randaugment import RandomAugment, autocontrast_func
    from omegaconf import OmegaConf

    from curation.training._processors import FixedRandomAugment, autocontrast

    image = _gradient()
    expected = np.asarray(ImageOps.autocontrast(image)).astype(int)
    with np.errstate(over="ignore"):
        lavis_out = autocontrast_func(np.array(image)).astype(int)
    # LAVIS: -3 wraps to 253 on uint8, the offset turns positive, the image goes white
    assert lavis_out.min() > 200 and np.abs(lavis_out - expected).max() > 100
    ours = autocontrast(np.array(image)).astype(int)
    assert np.abs(ours - expected).max() <= 1 and ours.min() == 0 and ours.max() == 255

    processor = registry.get_processor_class("falldown_image_train").from_config(
        OmegaConf.create({"image_size": 64})
    )
    augments = [t for t in processor.transform.transforms if isinstance(t, RandomAugment)]
    assert len(augments) == 1 and isinstance(augments[0], FixedRandomAugment)
    # the same step forced to AutoContrast, LAVIS's and ours
    lavis_step = RandomAugment(1, 5, isPIL=True, augs=["AutoContrast"])
    ours_step = augments[0]
    for step in (lavis_step, ours_step):
        step.get_random_ops = lambda step=step: [("AutoContrast", 1.0, step.M)]
    with np.errstate(over="ignore"):
        assert np.abs(lavis_step(image).astype(int) - expected).max() > 100
    assert np.abs(ours_step(image).astype(int) - expected).max() <= 1
    # and the whole processor still gives LAVIS's tensor shape
    assert processor(image).shape == (3, 64, 64)


def test_registry_paths_are_forgotten_between_runs() -> None:
    from lavis.common.registry import registry

    from curation.training._lavis_runner import forget_previous_run

    registry.mapping["paths"]["output_dir"] = "/somewhere"
    registry.mapping["paths"]["result_dir"] = "/somewhere/result"
    # LAVIS refuses to register a path twice: a second run in one process would fail
    with pytest.raises(KeyError, match="already registered"):
        registry.register_path("output_dir", "/elsewhere")
    forget_previous_run()
    registry.register_path("output_dir", "/elsewhere")
    assert registry.get_path("output_dir") == "/elsewhere"
    forget_previous_run()
    assert "output_dir" not in registry.mapping["paths"]


def test_the_dataset_keeps_the_files_own_instance_ids(tmp_path) -> None:
    from curation.synthetic import render_scene
    from curation.training.plugin import FalldownVQADataset

    render_scene(True, 1, 64).save(tmp_path / "a.png")
    records = [
        {"instance_id": 7, "image": "a.png", "text_input": "q1", "answer": ["yes"]},
        {"instance_id": 3, "image": "a.png", "text_input": "q2", "answer": ["no"]},
    ]
    (tmp_path / "train.json").write_text(__import__("json").dumps(records))
    ds = FalldownVQADataset(lambda im: im, None, str(tmp_path), [str(tmp_path / "train.json")])
    # LAVIS's BaseDataset._add_instance_ids would have renumbered them 0 and 1
    assert [ds[i]["instance_id"] for i in range(2)] == ["7", "3"]
    assert ds[1]["text_output"] == "no"
