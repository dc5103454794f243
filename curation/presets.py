"""Model presets as data: one YAML file each in ``curation/data/presets/``.

A preset holds everything the toolkit knows about one model: LAVIS's model
config (``model:``), the run defaults an export writes (``run_defaults:``; LAVIS merges
this whole file under the user's config, so a ``run:`` key here would override the user's), the
training image processor, which local files ``curate train`` must find before
reading any weight, and an optional Python hook run at export time (the tiny
preset writes its tokenizers). The user's ``--model`` name and LAVIS's
``model_type`` are one vocabulary: the preset's ``name`` (``aliases`` keep
LAVIS's own names readable). Adding a preset is adding one file.

Needs neither torch nor LAVIS, so exporting a config stays light.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation._yaml import parse_yaml
from curation.errors import ConfigError, UsageError

PRESET_DIR = Path(__file__).resolve().parent / "data" / "presets"
#: Keys of ``model:`` that name local files `curate train` can check.
LOCAL_FILE_KEYS = ("pretrained", "vit_weights", "t5_model", "qformer_tokenizer", "finetuned")


class Preset(BaseModel):
    """One preset file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    aliases: tuple[str, ...] = ()
    export_hook: str | None = Field(
        None, description="'module:function(folder, texts)' writing OUT/model/ at export time"
    )
    required_files: tuple[str, ...] = ()
    vis_processor_train: str
    model: dict[str, Any]
    run_defaults: dict[str, Any] = Field(
        description="run settings an export writes; not 'run:', which LAVIS would merge over the user's"
    )
    path: Path | None = None

    @property
    def image_size(self) -> int:
        return int(self.model["image_size"])

    def hook(self) -> Callable[[Path, list[str]], None] | None:
        """The export hook, imported only when an export asks for it."""
        if not self.export_hook:
            return None
        module, _, func = self.export_hook.partition(":")
        return getattr(importlib.import_module(module), func)


def _load(path: Path) -> Preset:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
        preset = Preset.model_validate({**data, "path": path})
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise ConfigError(f"model preset {path} is broken: {exc}") from None
    if path.stem != preset.name or preset.model.get("model_type") != preset.name:
        raise ConfigError(
            f"model preset {path}: the file name, 'name' and model.model_type must be one name "
            f"(got {path.stem!r}, {preset.name!r}, {preset.model.get('model_type')!r})"
        )
    unknown = set(preset.required_files) - set(LOCAL_FILE_KEYS)
    if unknown:
        raise ConfigError(f"model preset {path}: unknown required_files {sorted(unknown)}")
    return preset


@functools.cache
def presets() -> dict[str, Preset]:
    """Every shipped preset by name (aliases not included)."""
    return {p.name: p for p in map(_load, sorted(PRESET_DIR.glob("*.yaml")))}


def preset_names() -> list[str]:
    return sorted(presets())


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (or one of its aliases).

    Raises:
        UsageError: no such preset; the message lists the valid names.
    """
    for preset in presets().values():
        if name == preset.name or name in preset.aliases:
            return preset
    raise UsageError(
        f"unknown model preset {name!r}. Fix: choose one of: {', '.join(preset_names())}"
    )


def preset_files() -> dict[str, str]:
    """model_type -> preset file, aliases included (what LAVIS's default_config_path reads)."""
    out: dict[str, str] = {}
    for preset in presets().values():
        for name in (preset.name, *preset.aliases):
            out[name] = str(preset.path)
    return out
