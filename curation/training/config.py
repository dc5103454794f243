"""Load ``lavis.yaml`` into the pydantic config, apply ``key=value`` overrides, resolve paths."""

from __future__ import annotations

import copy
import difflib
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from curation._io import atomic_write_text
from curation._yaml import YAMLTooLarge, parse_yaml, read_yaml
from curation.errors import ConfigError, UsageError
from curation.schemas.config import TrainConfig

_MODEL_PATHS = ("pretrained", "finetuned", "vit_weights", "t5_model", "qformer_tokenizer")


@dataclass
class LoadedConfig:
    """A validated config and the folder its relative paths start from."""

    config: TrainConfig
    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (self.base / p)


def override_key(item: str) -> str:
    """``run.max_epoch=1`` -> ``run.max_epoch``: the dotted key an override sets."""
    return item.partition("=")[0].strip()


def parse_overrides(items: Sequence[str]) -> list[tuple[list[str], Any]]:
    """``run.max_epoch=1`` -> ``(["run", "max_epoch"], 1)`` (values parsed as YAML)."""
    parsed = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise UsageError(f"override {item!r} is not key=value. Example: run.max_epoch=1")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except YAMLTooLarge as exc:
            raise UsageError(f"override {key!r}: the value is too large: {exc}") from None
        except yaml.YAMLError:
            value = raw
        except RecursionError:
            raise UsageError(f"override {key!r}: the value is nested too deeply") from None
        parsed.append((override_key(item).split("."), value))
    return parsed


def refuse_repeated_keys(items: Sequence[str]) -> None:
    """A user's ``KEY=VALUE`` list names each key once (the config file's own rule).

    Raises:
        UsageError: a key given twice (the last would win, silently).
    """
    seen: dict[str, str] = {}
    for item in items:
        key = override_key(item)
        if key in seen:
            raise UsageError(
                f"override {key} is given twice ({seen[key]!r} and {item!r}); only one would "
                "count. Fix: give each key once."
            )
        seen[key] = item


def apply_overrides(data: dict[str, Any], items: Sequence[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for keys, value in parse_overrides(items):
        node = data
        for k in keys[:-1]:
            child = node.get(k)
            if not isinstance(child, dict):
                child = node[k] = {}
            node = child
        node[keys[-1]] = value
    return data


def _merged(base: Any, over: Any) -> Any:
    """OmegaConf.merge's rule for plain data: mappings merge key by key, the rest replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return copy.deepcopy(over)


def with_preset_model(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its ``model:`` merged over the preset's, as LAVIS builds the model.

    LAVIS reads the preset file ``model.model_type`` names and merges the config's
    ``model:`` over it (``Config.build_model_config``): ``model.vit: {}`` keeps the preset's
    ViT. The check must see the model LAVIS will build, not the config's text alone.
    """
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("model_type"), str):
        return data  # the validator names what is wrong
    from curation.presets import get_preset

    try:
        preset = get_preset(model["model_type"])
    except UsageError:
        return data  # an unknown preset: the validator names it
    return {**data, "model": _merged(preset.model, model)}


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> LoadedConfig:
    """Read, override and validate a run config.

    Raises:
        UsageError: the file does not exist.
        ConfigError: YAML syntax, unknown keys or bad values (all of them, named).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config not found: {path}")
    data = read_yaml(path, "Fix: pass the export's lavis.yaml (curate train OUT/lavis.yaml).")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with model, datasets and run sections")
    data = with_preset_model(apply_overrides(data, overrides))
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(config_error_text(path, exc, overrides)) from None
    return LoadedConfig(config, path)


def config_error_text(path: Path, exc: ValidationError, overrides: Sequence[str] = ()) -> str:
    given = [(override_key(item), item) for item in overrides]
    with_them = f" with your override(s) {' '.join(overrides)}" if overrides else ""
    lines = [f"{path}{with_them}: {exc.error_count()} problem(s) in the config:"]
    hints = {
        "run.task": "set run.task: vqa (LAVIS needs it; without it nothing is trained).",
        "run.inference_method": "BLIP-2 has no 'rank' inference; use generate.",
        "run.prompt": "leave run.prompt empty; put the template in datasets.<name>.prompt "
        "so train, eval and predict see the same question text.",
        "run.distributed": "leave it False; curate train --nproc-per-node N runs LAVIS's "
        "distributed mode (gloo on CPU, nccl on GPUs).",
        "run.world_size": "leave it 1; the process count is curate train --nproc-per-node N "
        "(times --nnodes).",
    }
    for err in exc.errors(include_url=False):
        # a model-level check (one that compares two keys) has no location of its own
        key = ".".join(str(p) for p in err["loc"]) or "(the config)"
        msg = err["msg"]
        if err["type"] == "value_error":  # our own check's text, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
            close = difflib.get_close_matches(str(err["loc"][-1]), _keys_at(err["loc"][:-1]), 1)
            if close:
                msg = (
                    f"unknown key; did you mean {'.'.join([*map(str, err['loc'][:-1]), close[0]])}?"
                )
        hint = next((h for k, h in hints.items() if key.startswith(k)), "")
        # the override that set this key (or the section above it), if one did
        source = next(
            (item for k, item in reversed(given) if key == k or key.startswith(f"{k}.")), None
        )
        if source and not hint:
            hint = f"this comes from your override {source}; change or drop it"
        stop = "" if msg.endswith(("?", ".")) else "."
        lines.append(f"  {key}: {msg}" + (f"{stop} Fix: {hint}" if hint else ""))
    return "\n".join(lines)


def _keys_at(loc: Sequence[Any]) -> list[str]:
    """The keys the config model allows at ``loc`` (``("run",)`` -> RunConfig's fields)."""
    node: Any = TrainConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if typing.get_origin(node) is dict:  # datasets: <any name> -> DatasetConfig
            node = typing.get_args(node)[1]
            continue
        fields = getattr(node, "model_fields", None)
        if not fields or part not in fields:
            return []
        node = fields[part].annotation
        models = [
            a for a in typing.get_args(node) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if models and typing.get_origin(node) is not dict:  # VitConfig | None
            node = models[0]
    fields = getattr(node, "model_fields", None)
    return list(fields) if fields else []


def map_paths(data: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """Apply ``fn`` to every path in a config dict (model files, data files, run folders)."""
    data = copy.deepcopy(data)
    model = data.get("model", {})
    for key in _MODEL_PATHS:
        if model.get(key):
            model[key] = fn(model[key])
    for ds in data.get("datasets", {}).values():
        info = ds.get("build_info", {})
        for ann in info.get("annotations", {}).values():
            st = ann["storage"]
            ann["storage"] = [fn(s) for s in st] if isinstance(st, list) else fn(st)
        if "images" in info:
            info["images"]["storage"] = fn(info["images"]["storage"])
    run = data.get("run", {})
    for key in ("output_dir", "resume_ckpt_path"):
        if run.get(key):
            run[key] = fn(run[key])
    return data


def absolute_dict(loaded: LoadedConfig) -> dict[str, Any]:
    """The config as LAVIS gets it: every relative path made absolute (in memory only)."""
    return map_paths(loaded.config.to_yaml_dict(), lambda p: str(loaded.resolve(p).resolve()))


def relocated_dict(loaded: LoadedConfig, new_base: Path) -> dict[str, Any]:
    """The config with its relative paths rewritten relative to ``new_base``."""

    def rel(p: str) -> str:
        if Path(p).is_absolute():
            return p
        return Path(os.path.relpath(loaded.resolve(p).resolve(), new_base.resolve())).as_posix()

    return map_paths(loaded.config.to_yaml_dict(), rel)


def write_config(path: Path, data: dict[str, Any], header: str) -> None:
    text = "".join(f"# {line}\n" for line in header.splitlines())
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)
