"""LAVIS integration on CPU: export -> train (tiny BLIP-2, real LAVIS code) -> predict."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("lavis")

import yaml  # noqa: E402
from conftest import SAMPLE  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curation.cli import app  # noqa: E402
from curation.errors import ConfigError, DataError  # noqa: E402
from curation.export import ExportOptions, export_task  # noqa: E402
from curation.training.config import load_train_config  # noqa: E402
from curation.training.train import TrainEvent, train  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach another host fails the test: nothing may be downloaded."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "sample"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    return out


@pytest.fixture(scope="module")
def trained(export_dir: Path):
    return train(export_dir / "lavis.yaml", ["run.max_epoch=6"], run_id="base")


@pytest.fixture
def own_export(export_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared export, for a test that edits files in it."""
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy, ignore=shutil.ignore_patterns("runs"))
    return copy


def _lavis_names() -> dict[str, object]:
    """The LAVIS module attributes that a run swaps for its duration."""
    import lavis.runners.runner_base as runner_module
    from lavis.models.blip2_models import blip2_t5

    return {
        "dist": runner_module.dist,
        "PrefetchLoader": runner_module.PrefetchLoader,
        "IterLoader": runner_module.IterLoader,
        "T5ForConditionalGeneration": blip2_t5.T5ForConditionalGeneration,
    }


def test_export_folder_shape(export_dir: Path) -> None:
    names = {p.name for p in export_dir.iterdir()}
    assert {
        "train.json",
        "val.json",
        "test.json",
        "images",
        "manifest.json",
        "lavis.yaml",
        "vqa_eval",
        "model",
        "test.provenance.json",
    } <= names
    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert manifest["records"] == {"train": 39, "val": 5, "test": 5}
    assert manifest["inputs"][0]["sha256"] and manifest["seed"] == 0
    images = {
        s: {r["image"] for r in json.loads((export_dir / f"{s}.json").read_text())}
        for s in ("train", "val", "test")
    }
    assert not (
        images["train"] & images["val"]
        or images["train"] & images["test"]
        or images["val"] & images["test"]
    )


def test_export_yaml_has_no_absolute_paths_and_settles_lavis_traps(export_dir: Path) -> None:
    text = (export_dir / "lavis.yaml").read_text()
    assert text.startswith("# curate train")
    cfg = yaml.safe_load(text)
    assert cfg["run"]["task"] == "vqa"
    assert cfg["run"]["inference_method"] == "generate"
    assert cfg["run"]["prompt"] == "" and cfg["datasets"]["falldown_vqa"]["prompt"]
    assert cfg["run"]["distributed"] is False
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert str(export_dir) not in body and ":\\" not in body
    assert not any(
        Path(p).is_absolute() for p in (cfg["model"]["t5_model"], cfg["run"]["output_dir"])
    )


def test_export_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=3, model="tiny"))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix != ".yaml")
    assert files
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    strip = lambda p: [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]  # noqa: E731
    assert strip(a / "lavis.yaml") == strip(b / "lavis.yaml")


def test_train_tiny_then_predict(trained, export_dir: Path) -> None:
    losses = trained.losses
    assert len(losses) == 12  # 39 train records, batch 16 (drop_last): 2 steps x 6 epochs
    assert all(loss == loss and loss < 1e6 for loss in losses)
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    run_dir = export_dir / "runs" / "base"
    assert (run_dir / "checkpoint_5.pth").is_file() and (run_dir / "checkpoint_best.pth").is_file()
    assert (run_dir / "lavis.log").stat().st_size > 0 and (run_dir / "config.yaml").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data_manifest"] == "../../manifest.json" and manifest["steps"] == 12
    assert trained.test_metrics["split"] == "test" and "agg_metrics" in trained.test_metrics

    images = [SAMPLE / "fall" / "0000.png", SAMPLE / "no_fall" / "0001.png"]
    result = runner.invoke(
        app,
        [
            "predict",
            str(run_dir / "checkpoint_5.pth"),
            *map(str, images),
            "--question",
            "Is anyone falling in this image?",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output[result.output.index("[") :])
    assert [a["image"] for a in answers] == [str(p) for p in images]
    assert all(isinstance(a["answer"], str) and a["answer"] for a in answers)


def test_lavis_names_are_restored_after_train(trained) -> None:
    import lavis.runners.runner_base as runner_module
    import torch.distributed
    from lavis.datasets.datasets import dataloader_utils
    from lavis.models.blip2_models.modeling_t5 import T5ForConditionalGeneration

    assert trained.steps  # the run happened in this process, with every swap applied
    assert _lavis_names() == {
        "dist": torch.distributed,
        "PrefetchLoader": dataloader_utils.PrefetchLoader,
        "IterLoader": dataloader_utils.IterLoader,
        "T5ForConditionalGeneration": T5ForConditionalGeneration,
    }
    assert runner_module.RunnerBase.__module__ == "lavis.runners.runner_base"


class _Killed(Exception):
    """Stands in for a run killed part-way."""


def test_resume_continues_from_the_checkpoint(trained, export_dir: Path) -> None:
    """torchtune's check: an interrupted run, resumed, logs the uninterrupted run's losses."""
    before = _lavis_names()

    def kill_in_epoch_4(event: TrainEvent) -> None:
        if event.kind == "step" and event.epoch == 4:
            raise _Killed

    with pytest.raises(_Killed):
        train(export_dir / "lavis.yaml", ["run.max_epoch=6"], "killed", kill_in_epoch_4)
    assert _lavis_names() == before  # restored after a failed run too
    ckpt = export_dir / "runs" / "killed" / "checkpoint_3.pth"
    assert ckpt.is_file()
    resumed = train(
        export_dir / "lavis.yaml",
        ["run.max_epoch=6", f"run.resume_ckpt_path={ckpt}"],
        run_id="resumed",
    )
    assert (export_dir / "runs" / "resumed" / "checkpoint_5.pth").is_file()
    assert len(resumed.losses) == 4  # epochs 4 and 5, two steps each
    # same weights, optimizer state, learning rate, batches and dropout: the same losses
    assert resumed.losses == trained.losses[8:]


def test_predict_reports_mismatched_keys(trained, export_dir: Path, tmp_path: Path) -> None:
    import torch

    ckpt = torch.load(export_dir / "runs" / "base" / "checkpoint_5.pth", weights_only=False)
    ckpt["model"]["not_a_layer.weight"] = torch.zeros(1)
    del ckpt["model"]["t5_proj.weight"]
    bad = tmp_path / "mismatched.pth"
    torch.save(ckpt, bad)
    config = export_dir / "runs" / "base" / "config.yaml"
    result = runner.invoke(
        app, ["predict", str(bad), str(SAMPLE / "fall" / "0000.png"), "--config", str(config)]
    )
    assert result.exit_code == 1, result.output
    assert "1 missing key(s) ['t5_proj.weight']" in result.output
    assert "1 unexpected key(s) ['not_a_layer.weight']" in result.output


def test_string_answer_is_caught_before_training(own_export: Path) -> None:
    records = json.loads((own_export / "train.json").read_text())
    records[3]["answer"] = "yes"
    (own_export / "train.json").write_text(json.dumps(records))
    result = runner.invoke(app, ["train", str(own_export / "lavis.yaml"), "--run-id", "never"])
    assert result.exit_code == 1
    assert 'got the string "yes"; LAVIS iterates it as "y","e","s"' in result.output
    assert "nothing was trained" in result.output
    assert not (own_export / "runs" / "never").exists()


def test_unknown_builder_name_lists_registered(own_export: Path) -> None:
    cfg = yaml.safe_load((own_export / "lavis.yaml").read_text())
    cfg["datasets"]["my_falls"] = cfg["datasets"].pop("falldown_vqa")
    path = own_export / "renamed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["train", str(path), "--run-id", "never"])
    assert result.exit_code == 1
    assert "'my_falls' is not a registered LAVIS builder" in result.output
    assert "falldown_vqa" in result.output and "coco_vqa" in result.output
    # naming our builder makes any key work
    cfg["datasets"]["my_falls"]["builder"] = "falldown_vqa"
    path.write_text(yaml.safe_dump(cfg))
    from curation.training.preflight import check_builders

    check_builders(load_train_config(path))


def test_missing_local_weight_files_are_named(tmp_path: Path) -> None:
    out = tmp_path / "real"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="blip2_t5"))
    result = runner.invoke(app, ["train", str(out / "lavis.yaml")])
    assert result.exit_code == 1
    assert "model.pretrained" in result.output and "blip2_pretrained_flant5xl.pth" in result.output
    assert "model.vit_weights" in result.output and "eva_vit_g.pth" in result.output
    assert "model.t5_model" in result.output and "google/flan-t5-xl" in result.output
    assert "nothing is downloaded at run time" in result.output


def test_overrides_and_config_errors(export_dir: Path) -> None:
    loaded = load_train_config(export_dir / "lavis.yaml", ["run.max_epoch=1", "run.init_lr=0.5"])
    assert loaded.config.run.max_epoch == 1 and loaded.config.run.init_lr == 0.5
    with pytest.raises(ConfigError, match="run.max_epochs: unknown key"):
        load_train_config(export_dir / "lavis.yaml", ["run.max_epochs=1"])
    with pytest.raises(ConfigError, match="BLIP-2 has no 'rank' inference"):
        load_train_config(export_dir / "lavis.yaml", ["run.inference_method=rank"])
    result = runner.invoke(
        app, ["train", str(export_dir / "lavis.yaml"), "run.task=", "--run-id", "x"]
    )
    assert result.exit_code == 1 and "set run.task: vqa" in result.output
    result = runner.invoke(app, ["train", str(export_dir / "lavis.yaml"), "max_epoch"])
    assert result.exit_code == 2 and "is not key=value" in result.output


def test_export_refuses_bad_data_and_existing_out(tmp_path: Path, export_dir: Path) -> None:
    result = runner.invoke(
        app, ["export", "--task", str(SAMPLE / "seed_train.json"), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "nothing was exported" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(
        app, ["export", "--task", str(SAMPLE / "annotations.json"), "--out", str(export_dir)]
    )
    assert result.exit_code == 2 and "already exists" in result.output
    with pytest.raises(DataError):
        export_task(SAMPLE / "seed_train.json", SAMPLE, tmp_path / "y")


def test_eval_exits_3_when_the_model_collapsed(
    trained, export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: the real checkpoint loads, its answers are all "yes" (crafted)."""
    import curation.training.predict as predict

    truths = [r["answer"][0] for r in json.loads((export_dir / "test.json").read_text())]
    assert "no" in truths  # negatives to say "yes" to
    ckpt = export_dir / "runs" / "base" / "checkpoint_5.pth"
    args = ["eval", str(ckpt), "--data", str(export_dir / "test.json"), "--out"]
    monkeypatch.setattr(
        predict, "answer", lambda model, images, questions, *a: ["yes"] * len(images)
    )
    result = runner.invoke(app, [*args, str(tmp_path / "collapsed")])
    assert result.exit_code == 3, result.output
    assert "collapse" in result.output.lower() and "Traceback" not in result.output
    report = json.loads((tmp_path / "collapsed" / "eval.json").read_text())
    assert report["collapse_alarm"] is True
    assert any('says "yes" to 100% of the true negatives' in r for r in report["collapse_reasons"])


def _train_predict_eval(export: Path, device: str, amp: bool, out: Path) -> None:
    """Tiny train, then predict and eval through the CLI, on ``device``."""
    run_id = f"{device}-amp-{amp}"
    result = train(
        export / "lavis.yaml",
        ["run.max_epoch=2", f"run.device={device}", f"run.amp={str(amp).lower()}"],
        run_id=run_id,
    )
    assert result.device == device and len(result.losses) == 4
    assert all(loss == loss and loss < 1e6 for loss in result.losses)  # no NaN under amp
    ckpt = export / "runs" / run_id / "checkpoint_1.pth"
    predicted = runner.invoke(
        app, ["predict", str(ckpt), str(SAMPLE / "fall" / "0000.png"), "--json"]
    )
    assert predicted.exit_code == 0, predicted.output
    answers = json.loads(predicted.output[predicted.output.index("[") :])
    assert len(answers) == 1 and isinstance(answers[0]["answer"], str)
    evaluated = runner.invoke(
        app, ["eval", str(ckpt), "--data", str(export / "test.json"), "--out", str(out / run_id)]
    )
    assert evaluated.exit_code in (0, 3), evaluated.output  # 3: a 2-epoch model may collapse
    report = json.loads((out / run_id / "eval.json").read_text())
    assert len(report["predictions"]) == 5


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "amp"])
def test_tiny_train_predict_eval_on_cuda(own_export: Path, tmp_path: Path, amp: bool) -> None:
    _train_predict_eval(own_export, "cuda", amp, tmp_path)


def test_small_preset_trains_saves_its_stem_and_predicts(tmp_path: Path) -> None:
    """The `small` preset (conv-stem ViT): export, train, reload, predict with p_yes."""
    import torch

    out = tmp_path / "small"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="small"))
    config = yaml.safe_load((out / "lavis.yaml").read_text())
    assert config["model"]["vit"]["stem"] == "conv" and config["model"]["model_type"] == "small"
    run = train(out / "lavis.yaml", ["run.max_epoch=6"], run_id="s")
    assert run.losses and all(loss == loss for loss in run.losses)
    state = torch.load(out / "runs" / "s" / "checkpoint_5.pth", weights_only=True)["model"]
    means = [v for k, v in state.items() if k.endswith("running_mean")]
    assert means and any(m.abs().sum() > 0 for m in means)  # batch-norm statistics were saved
    result = runner.invoke(
        app,
        [
            "predict",
            str(out / "runs" / "s" / "checkpoint_5.pth"),
            str(SAMPLE / "fall" / "0000.png"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.output[result.output.index("[") :])
    assert 0.0 <= answer["p_yes"] <= 1.0 and answer["answer"] in ("yes", "no")


def _other_export(tmp_path: Path, question: str) -> Path:
    """Another export of the `tiny` preset: the sample scenes asked ``question``, seed 1."""
    records = json.loads((SAMPLE / "annotations.json").read_text())
    for record in records:
        record["text_input"] = question
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps(records))
    out = tmp_path / "other"
    export_task(ann, SAMPLE, out, ExportOptions(seed=1, model="tiny"))
    return out


def test_a_toy_checkpoint_fits_another_export_of_its_preset(
    trained, export_dir: Path, tmp_path: Path
) -> None:
    """A checkpoint of one `tiny` export starts a run on another export with other words."""
    from transformers import T5TokenizerFast

    other = _other_export(tmp_path, "Has somebody collapsed onto the linoleum floor?")
    # one text, one token sequence in both exports: a word means the same to both models
    x, y = (T5TokenizerFast.from_pretrained(str(e / "model" / "t5")) for e in (export_dir, other))
    for text in ("Is anyone falling in this image?", "Has somebody collapsed?", "yes", "no"):
        assert x(text).input_ids == y(text).input_ids
    ckpt = export_dir / "runs" / "base" / "checkpoint_5.pth"
    run = train(
        other / "lavis.yaml", [f"model.pretrained={ckpt}", "run.max_epoch=1"], run_id="from_x"
    )
    assert run.losses and all(loss == loss for loss in run.losses)
    result = runner.invoke(
        app,
        [
            "predict",
            str(other / "runs" / "from_x" / "checkpoint_0.pth"),
            str(SAMPLE / "fall" / "0000.png"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_word_no_export_saw_is_read_not_the_unknown_token(export_dir: Path) -> None:
    from transformers import T5TokenizerFast

    tok = T5TokenizerFast.from_pretrained(str(export_dir / "model" / "t5"))
    texts = json.dumps([json.loads((export_dir / f"{s}.json").read_text()) for s in ("train",)])
    for question in ("Is there a cat in this image?", "Is there a zyzzyva near the 猫?"):
        unseen = [w for w in question.lower().rstrip("?").split() if w not in texts.lower()]
        assert unseen  # words this export's data never holds
        ids = tok(question).input_ids
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == question.lower()
    # two questions about different unseen things are two different token sequences
    assert tok("Is there a cat?").input_ids != tok("Is there a dog?").input_ids
