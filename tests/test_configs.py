"""Every shipped YAML loads into its pydantic model and says which command uses it."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from curation.schemas.config import ModelConfig
from curation.schemas.questions import load_questions
from curation.training.plugin_data import MODEL_FILES, model_defaults

LOADERS = {"questions.yaml": load_questions}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads_and_names_its_command(path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# curate "), f"{path.name} must start with the command that uses it"
    assert path.name in LOADERS, f"no loader registered for {path.name}"
    assert LOADERS[path.name](path).questions


@pytest.mark.parametrize("model_type", sorted(MODEL_FILES))
def test_model_presets_validate(model_type: str) -> None:
    cfg = ModelConfig.model_validate(model_defaults(model_type))
    assert cfg.model_type == model_type


def test_dataset_defaults_are_lavis_shaped() -> None:
    data = yaml.safe_load((MODEL_FILES["tiny"].parent / "falldown_vqa.yaml").read_text())
    ds = data["datasets"]["falldown_vqa"]
    assert ds["prompt"].count("{}") == 1 and set(ds["build_info"]["annotations"]) == {
        "train",
        "val",
        "test",
    }
