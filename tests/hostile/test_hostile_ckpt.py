"""Hostile checkpoints and images for predict, eval and resume.

The session's tiny run (tests/conftest.py) is copied once for the module; each test
copies what it breaks into its own folder, so the run is never changed.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import shutil
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
from conftest import copy_of

pytest.importorskip("lavis")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "raw" / "sample"
TIED = ("t5_model.encoder.embed_tokens.weight", "t5_model.decoder.embed_tokens.weight")


@pytest.fixture(scope="module")
def run(trained_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run: ``<export>/runs/r1/`` with checkpoint_0.pth and config.yaml.

    The module's own copy of the session's trained sample (resume adds runs beside it).
    """
    export = copy_of(trained_sample, tmp_path_factory.mktemp("ckpt") / "export")
    return export / "runs" / "r1"


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)


def _save(obj: object, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


class _PlantsMarker:
    """Unpickling this calls ``open(marker, 'w')``: a file appears if the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (builtins.open, (str(self.marker), "w"))


def _command(
    kind: str, ckpt: Path, run: Path, out: Path, run_id: str | None = None
) -> list[str | Path]:
    export = run.parents[1]
    if kind == "predict":
        return ["predict", ckpt, SAMPLE / "fall" / "0000.png", "--config", run / "config.yaml"]
    if kind == "eval":
        return [
            "eval",
            ckpt,
            "--data",
            export / "test.json",
            "--config",
            run / "config.yaml",
            "--out",
            out,
            "--fiftyone-field",
            "",
        ]
    return [
        "train",
        export / "lavis.yaml",
        f"run.resume_ckpt_path={ckpt}",
        "--run-id",
        run_id or f"resume-{ckpt.parent.name}",
    ]


KINDS = ["predict", "eval", "resume"]


def _run_hostile(kind: str, ckpt: Path, run: Path, tmp_path: Path, *extra: str):
    export = run.parents[1]
    out = tmp_path / "out"
    with untouched(
        export, SAMPLE, ckpt.parent, allow=[export / "runs" / f"resume-{ckpt.parent.name}"]
    ):
        return invoke([*_command(kind, ckpt, run, out), *extra])


@pytest.mark.parametrize("kind", KINDS)
def test_a_checkpoint_whose_pickle_runs_code_is_refused(
    kind: str, run: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    state = _load(run / "checkpoint_0.pth")
    state["extra"] = _PlantsMarker(marker)
    evil = _save(state, tmp_path / "evil" / "checkpoint_0.pth")
    outcome = _run_hostile(kind, evil, run, tmp_path)
    assert not marker.exists(), "code in the checkpoint ran"
    expect(outcome, 1, str(evil), "refused", "open", "--trust-checkpoint", "runs any code")


@pytest.mark.parametrize("kind", KINDS)
def test_trust_checkpoint_loads_a_pickle_the_user_vouches_for(
    kind: str, run: Path, tmp_path: Path
) -> None:
    state = _load(run / "checkpoint_0.pth")
    state["args"] = argparse.Namespace(note="written by an older script")
    ckpt = _save(state, tmp_path / "old" / "checkpoint_0.pth")
    refused = _run_hostile(kind, ckpt, run, tmp_path)
    expect(refused, 1, str(ckpt), "argparse.Namespace", "--trust-checkpoint")
    extra = ["--trust-checkpoint"] + (["run.max_epoch=2"] if kind == "resume" else [])
    trusted = invoke([*_command(kind, ckpt, run, tmp_path / "out", "trusted"), *extra])
    # eval exits 3 when the one-epoch model's answers collapse: that is a result, not a refusal
    expect(trusted, 3 if trusted.exit_code == 3 and kind == "eval" else 0)
    if kind == "resume":
        assert (run.parents[1] / "runs" / "trusted" / "checkpoint_1.pth").is_file()


def _truncated(run: Path, path: Path) -> Path:
    data = (run / "checkpoint_0.pth").read_bytes()
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def _empty(run: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return path


def _weights_only(run: Path, path: Path) -> Path:
    """A bare state dict: fine for predict and eval, but no training state to resume."""
    return _save(_load(run / "checkpoint_0.pth")["model"], path)


def _not_a_zip(run: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_text("model weights are in the other folder\n")
    return path


def _other_architecture(run: Path, path: Path) -> Path:
    """The same names with a hidden size of 32 instead of 64 (another preset)."""
    import torch

    state = _load(run / "checkpoint_0.pth")
    state["model"] = {
        k: torch.zeros(*v.shape[:-1], 32) if v.dim() and v.shape[-1] == 64 else v
        for k, v in state["model"].items()
    }
    return _save(state, path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_truncated, "is truncated or damaged"),
        (_not_a_zip, "is not a PyTorch checkpoint"),
        (_empty, "is empty (0 bytes)"),
        (_other_architecture, "tensor(s) have another shape"),
    ],
    ids=["truncated", "not-a-zip", "empty", "other-architecture"],
)
def test_a_broken_checkpoint_is_one_clear_error(
    kind: str, make, needle: str, run: Path, tmp_path: Path
) -> None:
    ckpt = make(run, tmp_path / make.__name__.strip("_") / "checkpoint_0.pth")
    outcome = _run_hostile(kind, ckpt, run, tmp_path)
    expect(outcome, 1, str(ckpt), needle, "Fix:")


def test_resume_needs_a_training_state(run: Path, tmp_path: Path) -> None:
    ckpt = _weights_only(run, tmp_path / "bare" / "checkpoint_0.pth")
    outcome = _run_hostile("resume", ckpt, run, tmp_path)
    expect(outcome, 1, str(ckpt), "has no optimizer or epoch", "model.pretrained=")
    expect(_run_hostile("predict", ckpt, run, tmp_path), 0)


def test_tied_weights_left_out_of_a_checkpoint_are_not_missing(run: Path, tmp_path: Path) -> None:
    from curation.training.checkpoints import load_weights
    from curation.training.predict import load_model

    state = _load(run / "checkpoint_0.pth")
    for key in TIED:
        del state["model"][key]
    ckpt = _save(state, tmp_path / "untied" / "checkpoint_0.pth")
    loaded = load_model(ckpt, run / "config.yaml")
    assert loaded.load_report["missing"] == []
    assert sorted(loaded.load_report["tied"]) == sorted(TIED)
    report = load_weights(loaded.model, ckpt)  # the same loader resume and eval use
    assert report["missing"] == [] and report["unexpected"] == []
    # and what they alias was really loaded
    shared = loaded.model.t5_model.shared.weight
    assert loaded.model.t5_model.encoder.embed_tokens.weight.data_ptr() == shared.data_ptr()
    assert (shared.detach().cpu() == state["model"]["t5_model.shared.weight"]).all()
    resumed = invoke([*_command("resume", ckpt, run, tmp_path / "out"), "run.max_epoch=2"])
    expect(resumed, 0)


def test_a_missing_untied_weight_is_still_missing(run: Path, tmp_path: Path) -> None:
    state = _load(run / "checkpoint_0.pth")
    del state["model"]["t5_model.shared.weight"]
    for key in TIED:
        del state["model"][key]
    ckpt = _save(state, tmp_path / "noembed" / "checkpoint_0.pth")
    outcome = _run_hostile("predict", ckpt, run, tmp_path)
    expect(outcome, 1, str(ckpt), "3 missing key(s)", "t5_model.shared.weight")


@pytest.fixture
def bad_images(tmp_path: Path) -> dict[str, Path]:
    from PIL import Image

    root = tmp_path / "bad"
    root.mkdir()
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    good = (SAMPLE / "fall" / "0000.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    return {"bomb": root / "bomb.png", "truncated": root / "truncated.png"}


def test_predict_refuses_a_truncated_image_and_a_decompression_bomb(
    run: Path, bad_images: dict[str, Path], tmp_path: Path
) -> None:
    assert bad_images["bomb"].stat().st_size < 100_000
    good = SAMPLE / "fall" / "0000.png"
    with untouched(run.parents[1], SAMPLE, bad_images["bomb"].parent):
        outcome = invoke(
            ["predict", run / "checkpoint_0.pth", good, *bad_images.values(), "--json"]
        )
    expect(
        outcome,
        1,
        "2 of 3 image(s) cannot be used, nothing was answered",
        f"{bad_images['bomb']}: image is too large",
        f"{bad_images['truncated']}: image is corrupt or truncated",
    )
    assert '"answer"' not in outcome.output


def test_eval_refuses_a_truncated_image(run: Path, bad_images: dict[str, Path], tmp_path: Path):
    export = run.parents[1]
    records = json.loads((export / "test.json").read_text())
    root = tmp_path / "images"
    shutil.copytree(export / "images", root, symlinks=False)
    broken = root / records[1]["image"]
    broken.write_bytes(bad_images["truncated"].read_bytes())
    data = tmp_path / "test.json"
    data.write_text(json.dumps(records))
    out = tmp_path / "out"
    with untouched(export, root, data, allow=[out]):
        outcome = invoke(
            [*_command("eval", run / "checkpoint_0.pth", run, out)[:3], data]
            + ["--image-root", root, "--config", run / "config.yaml", "--out", out]
            + ["--fiftyone-field", ""]
        )
    expect(outcome, 1, str(broken), "corrupt or truncated")
    assert not (out / "eval.json").exists()


def _dataset(root: Path, names: list[str]):
    from omegaconf import OmegaConf

    from curation.training import import_plugin

    plugin = import_plugin()
    from lavis.common.registry import registry

    records = [
        {"instance_id": i, "image": n, "text_input": "is anyone falling?", "answer": ["no"]}
        for i, n in enumerate(names)
    ]
    ann = root / "ann.json"
    ann.write_text(json.dumps(records))
    cfg = OmegaConf.create({"name": "blip_image_eval", "image_size": 64})
    vis = registry.get_processor_class("blip_image_eval").from_config(cfg)
    return plugin.FalldownVQADataset(vis, None, str(root), [str(ann)])


def test_a_16_bit_png_reaches_the_model_as_its_8_bit_twin(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (64, 1))  # a dark-to-light ramp
    Image.fromarray(ramp.astype(np.uint8), mode="L").save(tmp_path / "eight.png")
    Image.fromarray(ramp * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode.startswith("I")
    ds = _dataset(tmp_path, ["eight.png", "sixteen.png"])
    eight, sixteen = ds[0]["image"], ds[1]["image"]
    assert eight.std() > 0.5  # a ramp, not one flat colour
    assert (eight - sixteen).abs().max() < 0.02


def test_an_exif_rotated_jpeg_reaches_the_model_upright(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    # a person-sized bright bar standing in the left half, in 16 px blocks (JPEG-friendly)
    upright = np.zeros((64, 64, 3), dtype=np.uint8)
    upright[8:56, 16:32] = 255
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=100)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "rotated.jpg", quality=100, exif=exif)
    ds = _dataset(tmp_path, ["upright.jpg", "rotated.jpg"])
    a, b = ds[0]["image"], ds[1]["image"]
    assert (a - b).abs().mean() < 0.05, "the rotated file was not turned upright"
    assert (a - a.transpose(1, 2)).abs().mean() > 0.5  # a rotation would have been seen


def test_checkpoints_are_ordered_by_epoch_number_not_text_or_time(tmp_path: Path) -> None:
    from curation.training.checkpoints import latest_checkpoint, sorted_checkpoints

    names = ["checkpoint_10.pth", "checkpoint_best.pth", "checkpoint_9.pth", "checkpoint_2.pth"]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (1_000_000 - i, 1_000_000 - i))  # 9 is newer than 10
    paths = list(tmp_path.iterdir())
    assert [p.name for p in sorted_checkpoints(paths)] == [
        "checkpoint_2.pth",
        "checkpoint_9.pth",
        "checkpoint_10.pth",
        "checkpoint_best.pth",
    ]
    assert latest_checkpoint(paths) == tmp_path / "checkpoint_10.pth"
    assert latest_checkpoint([tmp_path / "checkpoint_best.pth"]) is None


def test_the_runner_tests_the_highest_epoch_when_no_best_was_saved(
    run: Path, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from curation.training._lavis_runner import runner_class
    from curation.training.predict import load_model

    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(run / "checkpoint_0.pth", folder / "checkpoint_10.pth")
    (folder / "checkpoint_9.pth").write_text("an older epoch, damaged\n")  # newer file time
    cls = runner_class()
    runner = cls.__new__(cls)
    runner.output_dir = folder
    runner.config = SimpleNamespace(run_cfg=SimpleNamespace(distributed=False))
    model = load_model(run / "checkpoint_0.pth", run / "config.yaml").model
    assert runner._reload_best_model(model) is model
    assert (folder / "checkpoint_best.pth").samefile(folder / "checkpoint_10.pth")


def test_a_frozen_t5_saved_as_lavis_saves_it_loads_without_missing_keys(
    run: Path, tmp_path: Path
) -> None:
    from curation.training.checkpoints import load_weights
    from curation.training.predict import load_model

    model = load_model(run / "checkpoint_0.pth", run / "config.yaml").model
    for p in model.t5_model.parameters():
        p.requires_grad = False  # the full-size preset's freeze_t5
    # LAVIS's _save_checkpoint: drop what named_parameters() calls frozen, keep the rest
    grads = {k: v.requires_grad for k, v in model.named_parameters()}
    state = {k: v for k, v in model.state_dict().items() if grads.get(k, True)}
    assert "t5_model.shared.weight" not in state
    ckpt = _save({"model": state}, tmp_path / "frozen" / "checkpoint_0.pth")
    report = load_weights(model, ckpt)
    assert report["missing"] == [] and report["unexpected"] == []
    assert "t5_model.shared.weight" in report["tied"] + report["missing_frozen"]
    # and a checkpoint without any embedding copy: frozen, not missing
    for key in TIED:
        del state[key]
    report = load_weights(model, _save({"model": state}, tmp_path / "none" / "ckpt.pth"))
    assert report["missing"] == []
    assert set(TIED) | {"t5_model.shared.weight"} <= set(report["missing_frozen"])
