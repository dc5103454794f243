"""The GPU check's CPU parts: file layouts + our loading code, speed options, the bench script.

The GPU itself is exercised by ``pipelines/gpu_check.sh`` on a lent device
(docs/gpu_check.md); these keep that script's pieces from rotting in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lavis")
pytest.importorskip("sentencepiece")

import torch  # noqa: E402
from conftest import REPO, SAMPLE  # noqa: E402

from curation.export import ExportOptions, export_task  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))  # the bench's own modules, not the package's
import step_bench  # noqa: E402
from random_weights import write_random_blip2_t5  # noqa: E402


@pytest.fixture(scope="module")
def small_blip2(tmp_path_factory: pytest.TempPathFactory) -> step_bench.Built:
    """The blip2_t5 preset at small scale, built from files in the real layouts by our code."""
    out = tmp_path_factory.mktemp("gpu") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="blip2_t5"))
    weights = write_random_blip2_t5(out / "weights", "small")
    overrides = [*weights.overrides, "model.vit_precision=fp32", "run.batch_size_train=2"]
    return step_bench.build(out / "lavis.yaml", overrides, "cpu", out / "bench.log")


def test_random_weights_have_the_real_layouts(small_blip2: step_bench.Built) -> None:
    from transformers import T5TokenizerFast

    weights = Path(small_blip2.lavis_cfg.model_cfg.t5_model).parent
    t5 = weights / "flan-t5-xl"
    index = json.loads((t5 / "pytorch_model.bin.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((t5 / s).is_file() for s in shards)
    for name in ("config.json", "spiece.model", "tokenizer.json", "tokenizer_config.json"):
        assert (t5 / name).is_file(), name
    vit = torch.load(weights / "eva_vit_g.pth", weights_only=True)
    assert "blocks.0.attn.qkv.weight" in vit  # a flat state dict, as LAVIS's release file
    assert {v.dtype for v in vit.values()} == {torch.float16}
    blip2 = torch.load(weights / "blip2_pretrained_flant5xl.pth", weights_only=True)["model"]
    assert "query_tokens" in blip2 and "t5_proj.weight" in blip2
    tok = T5TokenizerFast.from_pretrained(t5)
    ids = tok("Is anyone falling in this image?").input_ids
    assert ids[-1] == tok.eos_token_id == 1 and tok.unk_token_id not in ids
    assert tok.convert_tokens_to_ids("<extra_id_0>") == len(tok) - 1


def test_our_loading_code_reads_every_file(small_blip2: step_bench.Built) -> None:
    model = small_blip2.model
    report = model.load_report
    # the checkpoint fills every trainable weight and nothing else
    assert report["missing"] == [] and report["unexpected"] == [] and report["loaded"] > 0
    weights = Path(small_blip2.lavis_cfg.model_cfg.t5_model).parent
    vit = torch.load(weights / "eva_vit_g.pth", weights_only=True)
    key = "blocks.0.attn.qkv.weight"
    assert torch.equal(model.visual_encoder.state_dict()[key], vit[key].float())
    assert not any(p.requires_grad for p in model.visual_encoder.parameters())
    assert not any(p.requires_grad for p in model.t5_model.parameters())
    assert model.t5_model.shared.weight.dtype == torch.bfloat16  # LAVIS's cast


def test_speed_options_are_real_runner_paths(small_blip2: step_bench.Built) -> None:
    from curation.training.speed_options import train_autocast

    runner, run_cfg = small_blip2.runner, small_blip2.lavis_cfg.run_cfg
    run_cfg.amp, run_cfg.amp_dtype, run_cfg.fused_adamw = True, "bf16", True
    try:
        runner._optimizer = runner._scaler = None
        assert runner.scaler is None  # bf16: no GradScaler
        opt = runner.optimizer
        assert all(g["fused"] for g in opt.param_groups)
        trainable = {id(p) for p in runner.model.parameters() if p.requires_grad}
        assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable
        # LAVIS's two groups (weight decay and none) survive the rebuild
        assert sorted(g["weight_decay"] for g in opt.param_groups) == [0, 0.05]
        with train_autocast(run_cfg, "cuda") as ctx:
            assert ctx is not None and ctx.fast_dtype == torch.bfloat16
        assert train_autocast(run_cfg, "cpu").__class__.__name__ == "nullcontext"
        run_cfg.amp_dtype, run_cfg.fused_adamw = "fp16", False
        runner._optimizer = runner._scaler = None
        assert not any(g.get("fused") for g in runner.optimizer.param_groups)
    finally:
        run_cfg.amp, run_cfg.amp_dtype, run_cfg.fused_adamw = False, "fp16", False
        runner._optimizer = runner._scaler = runner._lr_sched = None


def test_a_fused_step_trains_through_lavis_loop(small_blip2: step_bench.Built) -> None:
    batch = step_bench.batch_of(small_blip2, 2)
    before = small_blip2.model.t5_proj.weight.detach().clone()
    fig = step_bench.measure_steps(small_blip2, "bf16+fused", batch, steps=1, warmup=1)
    assert fig.error is None and fig.seconds_per_step and fig.seconds_per_step > 0
    assert not torch.equal(before, small_blip2.model.t5_proj.weight.detach())
    assert small_blip2.task.losses and all(x == x for x in small_blip2.task.losses)


def test_compile_frozen_keeps_names_and_outputs(small_blip2: step_bench.Built) -> None:
    from curation.training.speed_options import compile_frozen

    model = small_blip2.model
    names = list(model.state_dict())
    image = step_bench.batch_of(small_blip2, 1)["image"]
    with torch.no_grad():
        before = model.visual_encoder(image)
    try:
        # the eager backend: the same wrapping as inductor, without a C++ build in CI
        compiled = compile_frozen(model, backend="eager")
        assert compiled == ["visual_encoder", "t5_model.encoder.block", "t5_model.decoder.block"]
        assert list(model.state_dict()) == names
        with torch.no_grad():
            assert torch.allclose(model.visual_encoder(image), before)
    finally:
        for module in model.modules():
            module._compiled_call_impl = None
    assert compile_frozen(torch.nn.Linear(2, 2)) == []  # nothing frozen: nothing compiled


def test_run_config_accepts_the_speed_options(tmp_path: Path) -> None:
    from curation.errors import ConfigError
    from curation.training.config import load_train_config

    out = tmp_path / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    plain = load_train_config(out / "lavis.yaml").config.run
    assert (plain.amp_dtype, plain.fused_adamw, plain.compile_frozen) == ("fp16", False, False)
    on = ["run.amp_dtype=bf16", "run.fused_adamw=true", "run.compile_frozen=true"]
    run = load_train_config(out / "lavis.yaml", on).config.run
    assert (run.amp_dtype, run.fused_adamw, run.compile_frozen) == ("bf16", True, True)
    with pytest.raises(ConfigError, match="run.amp_dtype"):
        load_train_config(out / "lavis.yaml", ["run.amp_dtype=fp8"])


@pytest.mark.slow
def test_bench_script_cpu_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_train_bench.py"), "--out", str(out)]
        + ["--cpu-smoke"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    assert report["errors"] == [] and report["load_report"]["missing"] == 0
    assert {s["variant"] for s in report["steps"]} == {"baseline", "bf16+fused"}
    assert all(s["seconds_per_step"] > 0 for s in report["steps"])
    assert "| baseline | 2 |" in (out / "bench.md").read_text()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_full_size_on_the_gpu(tmp_path: Path) -> None:
    """The real thing (minutes, about 20 GB of files): only on a lent GPU machine."""
    out = tmp_path / "bench"
    cmd = [sys.executable, str(REPO / "benchmarks" / "gpu_train_bench.py"), "--out", str(out)]
    done = subprocess.run(cmd + ["--batches", "4", "--steps", "3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    assert report["parameters"] > 3.5e9 and report["errors"] == []
