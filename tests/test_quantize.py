"""`curate quantize`: a model folder that loads safely, a re-fitted threshold, a parity report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

pytest.importorskip("lavis")
pytest.importorskip("torchao")

from curation.cli import app  # noqa: E402
from curation.errors import DataError, UsageError  # noqa: E402
from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training.train import train  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run's checkpoint (export/runs/q/checkpoint_0.pth)."""
    out = tmp_path_factory.mktemp("quantize") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    train(out / "lavis.yaml", ["run.max_epoch=1"], run_id="q")
    return out / "runs" / "q" / "checkpoint_0.pth"


@pytest.fixture(scope="module")
def int8_folder(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "model"
    result = runner.invoke(
        app,
        [
            "quantize", str(trained), "--scheme", "int8-weight",
            "--calibrate", str(trained.parents[2] / "val.json"), "--out", str(out), "--force",
        ],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "parity on the calibration set" in result.output and "ROC-AUC" in result.output
    return out


def test_manifest_lists_every_file_with_its_sha256_and_the_parity(int8_folder: Path) -> None:
    manifest = json.loads((int8_folder / "manifest.json").read_text())
    assert manifest["scheme"] == "int8-weight"
    on_disk = {
        p.relative_to(int8_folder).as_posix()
        for p in int8_folder.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((int8_folder / name).read_bytes()).hexdigest() == digest
    parity = manifest["parity"]
    assert {"roc_auc_delta", "agreement", "max_abs_p_yes_delta"} <= set(parity)
    assert parity["roc_auc_delta"] == pytest.approx(
        parity["roc_auc"]["quantized"] - parity["roc_auc"]["original"]
    )
    assert manifest["versions"]["torch"] and manifest["versions"]["torchao"]
    assert manifest["source"]["fingerprint"].startswith(str(manifest["source"]["size_bytes"]))


def test_weights_load_with_weights_only(int8_folder: Path) -> None:
    import torch
    import torchao  # noqa: F401 - registers its int8 tensor as safe to load

    state = torch.load(int8_folder / "model.pt", weights_only=True)
    assert any(type(t).__name__ == "Int8Tensor" for t in state.values())


def test_wo_lm_head_and_norms_stay_out_of_int8(int8_folder: Path) -> None:
    import torch

    from curation.inference.model import load_model

    manifest = json.loads((int8_folder / "manifest.json").read_text())
    kept, quantized = manifest["modules"]["kept"], manifest["modules"]["quantized"]
    assert not [n for n in quantized if n.endswith((".wo", "lm_head")) or "norm" in n.lower()]
    assert [n for n in kept if n.endswith(".wo")] and "t5_model.lm_head" in kept
    model = load_model(int8_folder).model
    modules = dict(model.named_modules())
    for name in kept:
        weight = getattr(modules[name], "weight", None)
        assert weight is None or type(weight.data) is torch.Tensor, name
    for name in quantized:
        assert type(modules[name].weight).__name__ == "Int8Tensor", name


def test_threshold_is_refit_on_calibrate_not_copied(trained: Path, tmp_path: Path) -> None:
    from curation.evaluate.metrics import threshold_at_false_alarm
    from curation.inference.model import load_model
    from curation.inference.operating_point import write_point
    from curation.inference.scoring import p_yes
    from curation.validate import load_records

    run = trained.parent
    # the checkpoint's own point (as eval writes it): quantize must not carry it over
    write_point(run, {"threshold": 0.123456, "chosen_on": "val.json"}, trained)
    calibrate = trained.parents[2] / "val.json"
    out = tmp_path / "bf16"
    result = runner.invoke(
        app,
        ["quantize", str(trained), "--scheme", "bf16", "--calibrate", str(calibrate),
         "--out", str(out), "--force", "--max-false-alarm", "0.34"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = load_model(out)
    records = load_records(calibrate)
    images = [calibrate.parent / "images" / r["image"] for r in records]
    probs = p_yes(folder, images, [r["text_input"] for r in records])
    truths = [r["answer"][0] == "yes" for r in records]
    expected = threshold_at_false_alarm(truths, probs, 0.34)["threshold"]
    saved = json.loads((out / "operating_point.json").read_text())
    assert saved["threshold"] == pytest.approx(expected, abs=1e-9) != 0.123456
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["operating_point"]["threshold"] == saved["threshold"]
    answers = json.loads(runner.invoke(app, ["predict", str(out), str(images[0]), "--json"]).output)
    assert answers[0]["threshold"] == saved["threshold"]
    assert answers[0]["p_yes"] == pytest.approx(probs[0], abs=1e-9)


def test_bf16_never_uses_fp16_and_fp16_is_refused_with_the_reason(trained: Path) -> None:
    import torch

    from curation.inference.schemes import apply_scheme, check_scheme
    from curation.training.predict import load_model

    with pytest.raises(UsageError, match="T5 overflows in fp16"):
        check_scheme("fp16")
    model = load_model(trained).model
    apply_scheme(model, "bf16")
    dtypes = {p.dtype for p in model.parameters()}
    assert torch.float16 not in dtypes and torch.bfloat16 in dtypes
    assert {p.dtype for p in model.t5_model.encoder.final_layer_norm.parameters()} == {
        torch.float32
    }


def _relabelled_calibration(trained: Path, tmp_path: Path) -> Path:
    """val.json with "yes" on the image the model scores highest: the model's ROC-AUC is 1."""
    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes

    val = trained.parents[2] / "val.json"
    records = json.loads(val.read_text())
    probs = p_yes(
        load_model(trained),
        [val.parent / "images" / r["image"] for r in records],
        [r["text_input"] for r in records],
    )
    top = max(range(len(probs)), key=probs.__getitem__)
    assert sorted(probs)[-2] < probs[top]  # a unique top: the ranking is perfect
    for i, r in enumerate(records):
        r["answer"] = ["yes" if i == top else "no"]
    out = tmp_path / "cal" / "val.json"
    out.parent.mkdir()
    (out.parent / "images").symlink_to(val.parent / "images")
    out.write_text(json.dumps(records))
    return out


def test_worse_parity_is_refused_with_its_figures_and_nothing_written(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curation.inference.schemes as schemes

    calibrate = _relabelled_calibration(trained, tmp_path)
    real = schemes.apply_scheme

    def broken(model, scheme):  # a quantization that loses the ranking: P(yes) constant
        applied = real(model, scheme)
        model.score_answers = lambda samples, candidates: __import__("torch").zeros(
            len(samples["text_input"]), len(candidates)
        )
        return applied

    monkeypatch.setattr(schemes, "apply_scheme", broken)
    out = tmp_path / "refused"
    args = ["quantize", str(trained), "--scheme", "int8-dynamic", "--calibrate", str(calibrate)]
    result = runner.invoke(app, [*args, "--out", str(out)], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "ROC-AUC 1.0000 -> 0.5000" in result.output and "nothing was written" in result.output
    assert "answers that agree" in result.output
    assert not out.exists() and not list(tmp_path.glob(".refused.*"))


def test_eval_takes_a_model_folder_and_leaves_its_operating_point_alone(
    int8_folder: Path, trained: Path, tmp_path: Path
) -> None:
    import shutil

    from curation.inference.model import load_model

    int8_folder = Path(shutil.copytree(int8_folder, tmp_path / "model"))
    before = (int8_folder / "operating_point.json").read_bytes()
    data = trained.parents[2] / "test.json"
    result = runner.invoke(app, ["eval", str(int8_folder), "--data", str(data)], terminal_width=200)
    assert result.exit_code in (0, 3), result.output
    report = json.loads((int8_folder / "eval" / "eval.json").read_text())
    assert report["checkpoint"] == str(int8_folder)
    assert (int8_folder / "operating_point.json").read_bytes() == before
    assert load_model(int8_folder).scheme == "int8-weight"  # its manifest still matches


def test_a_changed_folder_is_refused(int8_folder: Path, tmp_path: Path) -> None:
    import shutil

    from curation.inference.model import load_model

    copy = tmp_path / "copy"
    shutil.copytree(int8_folder, copy)
    with open(copy / "model.pt", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match="sha256 differs"):
        load_model(copy)


def test_a_file_the_manifest_does_not_list_is_refused_before_loading(
    int8_folder: Path, tmp_path: Path
) -> None:
    import shutil

    from curation.inference.model import load_model

    copy = tmp_path / "copy"
    shutil.copytree(int8_folder, copy)
    # what eval and eval-events --tune write into the folder later is no model file
    (copy / "eval").mkdir()
    (copy / "eval" / "eval.json").write_text("{}")
    (copy / "events.yaml").write_text("on: 0.5\n")
    assert load_model(copy).scheme == "int8-weight"
    # a tokenizer file added beside the listed ones changes the vocabulary the model loads
    added = copy / "model_files" / "t5_model" / "added_tokens.json"
    added.write_text('{"falling": 2}')
    with pytest.raises(DataError, match="added_tokens.json: not listed in manifest.json"):
        load_model(copy)
    image = sorted((SAMPLE / "fall").glob("*.png"))[0]
    result = runner.invoke(app, ["predict", str(copy), str(image), "--json"])
    assert result.exit_code == 1, result.output
    assert str(added) in result.output and "Fix: delete it" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["empty", "missing"])
def test_out_that_is_a_link_is_a_usage_error(trained: Path, tmp_path: Path, target: str) -> None:
    if target == "empty":
        (tmp_path / "empty").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / target)
    result = runner.invoke(
        app,
        ["quantize", str(trained), "--scheme", "bf16", "--calibrate",
         str(trained.parents[2] / "val.json"), "--out", str(link), "--force"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"--out {link} is a link to" in result.output and "Fix: give --out" in result.output
    assert link.is_symlink() and not list(tmp_path.glob(".link.*"))


def test_out_that_exists_is_refused(trained: Path, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    result = runner.invoke(
        app,
        ["quantize", str(trained), "--scheme", "bf16", "--calibrate",
         str(trained.parents[2] / "val.json"), "--out", str(tmp_path / "full")],
    )  # fmt: skip
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert (tmp_path / "full" / "x").read_text() == "keep"


@pytest.fixture(scope="module")
def blip2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The blip2_t5 preset (EVA-ViT, Q-Former, FlanT5) from random weights in the real file
    layouts at toy size, saved as a run's checkpoint with its config.yaml beside it."""
    import sys

    import torch
    from conftest import REPO
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from curation.training import import_plugin
    from curation.training.config import (
        absolute_dict,
        load_train_config,
        relocated_dict,
        write_config,
    )

    sys.path.insert(0, str(REPO / "benchmarks"))
    from random_weights import write_random_blip2_t5

    out = tmp_path_factory.mktemp("blip2") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="blip2_t5"))
    weights = write_random_blip2_t5(out / "weights", "small")
    loaded = load_train_config(out / "lavis.yaml", [*weights.overrides, "model.vit_precision=fp32"])
    run = out / "runs" / "r"
    run.mkdir(parents=True)
    write_config(run / "config.yaml", relocated_dict(loaded, run), "blip2_t5 at toy size")
    import_plugin()
    data = absolute_dict(loaded)
    model = registry.get_model_class(data["model"]["arch"]).from_config(
        OmegaConf.create(data["model"])
    )
    torch.save({"model": model.state_dict()}, run / "checkpoint_0.pth")
    return run / "checkpoint_0.pth"


def test_blip2_t5_layout_quantizes_into_a_folder_that_needs_no_original_files(
    blip2_checkpoint: Path, tmp_path: Path
) -> None:
    import shutil

    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes
    from curation.quantize import quantize

    export = blip2_checkpoint.parents[2]
    folder = tmp_path / "blip2-int8"
    result = quantize(blip2_checkpoint, "int8-weight", export / "val.json", folder, force=True)
    modules = result.manifest["modules"]
    assert any(
        n.startswith("t5_model.encoder.block.0.layer.0.SelfAttention") for n in modules["quantized"]
    )
    assert any(n.startswith("Qformer.") for n in modules["quantized"])
    wo = [n for n in modules["kept"] if n.endswith("DenseReluDense.wo")]
    assert wo and "t5_model.lm_head" in modules["kept"]
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pth"))
    shutil.rmtree(export / "weights")  # the folder alone is what a server gets
    again = load_model(folder)
    image = sorted((export / "images").glob("*.png"))[0]
    assert 0 < p_yes(again, [image], ["Is anyone falling in this image?"])[0] < 1


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
def test_model_folder_scores_alike_on_cuda(int8_folder: Path) -> None:
    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes

    image = sorted((int8_folder.parents[1]).rglob("*.png"))[:1] or [SAMPLE / "fall" / "0000.png"]
    cpu = p_yes(load_model(int8_folder, device="cpu"), image, ["Is anyone falling?"])
    gpu = p_yes(load_model(int8_folder, device="cuda"), image, ["Is anyone falling?"])
    assert gpu[0] == pytest.approx(cpu[0], abs=1e-2)
