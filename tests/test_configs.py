"""Every shipped YAML loads into its pydantic model and says which command uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, SAMPLE
from typer.testing import CliRunner

from curation.class_map import load_class_map
from curation.cli import app
from curation.contract import BUILDER_NAME, PROMPT, SEED_MAX
from curation.distractors import load_distractors
from curation.errors import UsageError
from curation.events import load_event_params
from curation.presets import PRESET_DIR, get_preset, preset_files, preset_names
from curation.schemas.config import ModelConfig
from curation.schemas.questions import load_questions
from curation.training.plugin_data import DATA

#: Each shipped YAML's loader, giving what must not be empty.
LOADERS = {
    "questions.yaml": lambda p: load_questions(p).questions,
    "class_map.yaml": lambda p: load_class_map(p).classes,
    "events.yaml": lambda p: load_event_params(p).model_dump(),
    "distractors.yaml": lambda p: load_distractors(p).questions(),
}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads_and_names_its_command(path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# curate "), f"{path.name} must start with the command that uses it"
    assert path.name in LOADERS, f"no loader registered for {path.name}"
    assert LOADERS[path.name](path)


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads(name: str) -> None:
    preset = get_preset(name)
    assert preset.path is not None and preset.path.read_text().startswith("# curate export ")
    cfg = ModelConfig.model_validate(preset.model)
    assert cfg.model_type == name
    # LAVIS merges the whole file (its default_config_path) over the user's config
    assert not {"run", "datasets"} & set(yaml.safe_load(preset.path.read_text()))
    for key in preset.required_files:
        assert hasattr(cfg, key), f"{name}: required file key {key} is not a model field"
    hook = preset.hook()
    assert hook is None or callable(hook)


def test_preset_files_cover_every_yaml_and_alias() -> None:
    shipped = {p.stem for p in PRESET_DIR.glob("*.yaml")}
    assert shipped == set(preset_names()) and {"tiny", "blip2_t5"} <= shipped
    files = preset_files()
    assert files["pretrain_flant5xl"] == files["blip2_t5"]  # LAVIS's name, one preset
    assert get_preset("pretrain_flant5xl").name == "blip2_t5"


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="choose one of: blip2_t5, small, tiny"):
        get_preset("blip2_t5_xxl")


def test_adding_a_preset_is_one_file(tmp_path, monkeypatch) -> None:
    import curation.presets as presets

    text = (PRESET_DIR / "tiny.yaml").read_text().replace("name: tiny", "name: tiny2")
    (tmp_path / "tiny2.yaml").write_text(text.replace("model_type: tiny", "model_type: tiny2"))
    (tmp_path / "tiny.yaml").write_text((PRESET_DIR / "tiny.yaml").read_text())
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    presets.presets.cache_clear()
    try:
        from curation.export import lavis_config

        cfg = lavis_config("tiny2", 0, "falldown_vqa", "Question: {} Short answer:")
        assert cfg["model"]["model_type"] == "tiny2" and cfg["run"]["init_lr"] == 1e-3
        assert ModelConfig.model_validate(cfg["model"]).model_type == "tiny2"
    finally:
        presets.presets.cache_clear()


def test_dataset_defaults_are_lavis_shaped() -> None:
    data = yaml.safe_load((DATA / f"{BUILDER_NAME}.yaml").read_text())
    ds = data["datasets"][BUILDER_NAME]
    assert ds["prompt"] == PROMPT  # the builder's default config says the one prompt
    assert ds["prompt"].count("{}") == 1 and set(ds["build_info"]["annotations"]) == {
        "train",
        "val",
        "test",
    }


def test_blip2_t5_trains_with_the_fixed_autocontrast() -> None:
    from curation.export import lavis_config

    cfg = lavis_config("blip2_t5", 0, BUILDER_NAME, PROMPT)
    assert cfg["datasets"][BUILDER_NAME]["vis_processor"]["train"]["name"] == (
        "falldown_image_train"
    )


@pytest.mark.parametrize("patch", [3, 12, 1])
def test_a_conv_stem_needs_a_power_of_two_patch(patch: int) -> None:
    from pydantic import ValidationError

    from curation.schemas.config import VitConfig

    with pytest.raises(ValidationError, match="power of two"):
        VitConfig(patch_size=patch, stem="conv")
    assert VitConfig(patch_size=patch).stem == "patch"  # LAVIS's linear embedding takes any


@pytest.mark.parametrize(("patch", "size"), [(8, 64), (16, 64), (4, 32)])
def test_the_conv_stem_gives_the_patch_grid_lavis_expects(patch: int, size: int) -> None:
    torch = pytest.importorskip("torch")
    from curation.training.plugin import build_vision_encoder

    vit = build_vision_encoder(
        size, {"patch_size": patch, "width": 64, "depth": 1, "heads": 2, "stem": "conv"}
    )
    tokens = vit(torch.randn(2, 3, size, size))
    assert tokens.shape == (2, (size // patch) ** 2 + 1, 64)  # patches + the class token
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in vit.patch_embed.proj.modules())


# --- seeds: 0 to SEED_MAX wherever one is read ---------------------------------------------


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curation.export import ExportOptions, export_task

    out = tmp_path_factory.mktemp("seeds") / "export"
    export_task(SAMPLE / "annotations.json", SAMPLE, out, ExportOptions(seed=0, model="tiny"))
    return out


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("run.seed=-1", "run.seed"),
        (f"run.seed={SEED_MAX + 1}", "run.seed"),
        ("model.init_seed=-5", "model.init_seed"),
        ("model.init_seed=99999999999999999999", "model.init_seed"),
    ],
)
def test_a_seed_out_of_range_is_refused_before_training(
    sample_export: Path, override: str, key: str
) -> None:
    result = CliRunner().invoke(app, ["train", str(sample_export / "lavis.yaml"), override])
    assert result.exit_code == 1, result.output
    assert f"{key}: " in result.output and f"a whole number from 0 to {SEED_MAX}" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)
    assert not (sample_export / "runs").exists()


def test_the_largest_seed_trains_past_its_first_epoch(sample_export: Path) -> None:
    # each epoch reseeds from run.seed + epoch, which passes numpy's 2**32 - 1 at epoch 1
    overrides = [f"run.seed={SEED_MAX}", "run.max_epoch=2", "run.valid_splits=[]"]
    args = ["train", str(sample_export / "lavis.yaml"), *overrides, "--run-id", "top"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert (sample_export / "runs" / "top" / "checkpoint_1.pth").is_file()


@pytest.mark.parametrize("value", ["-1", str(SEED_MAX + 1)])
@pytest.mark.parametrize(
    "args",
    [
        ["find-issues", "--dataset", "any", "--folds", "2", "--out", "OUT"],
        ["export", "--task", "TASK", "--out", "OUT"],
        ["mix", "--task", "TASK", "--out", "OUT", "--vqav2-ratio", "0"],
        ["ingest", "FOLDER", "--dataset", "any"],
    ],
    ids=lambda args: args[0],
)
def test_a_seed_option_out_of_range_is_a_usage_error(
    tmp_path: Path, args: list[str], value: str
) -> None:
    where = {"OUT": str(tmp_path / "out"), "TASK": str(SAMPLE / "annotations.json")}
    where["FOLDER"] = str(SAMPLE)
    argv = [where.get(a, a) for a in args]
    result = CliRunner().invoke(app, [*argv, "--seed", value], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "--seed" in result.output and f"whole number from 0 to {SEED_MAX}" in result.output
    assert not (tmp_path / "out").exists()


def test_find_issues_checks_its_seed_in_the_library() -> None:
    from curation.curator.find_issues import FindIssuesRequest, find_issues

    request = FindIssuesRequest(dataset="any", folds=2, out=Path("unused"), seed=-1)
    with pytest.raises(UsageError, match=f"--seed -1 is not a seed: .* 0 to {SEED_MAX}"):
        find_issues(request)
