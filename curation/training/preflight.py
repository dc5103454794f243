"""Pre-flight checks that run before any weight is read: data files, model files, builder names."""

from __future__ import annotations

import re

from curation.contract import BUILDER_NAME
from curation.errors import CurationError, DataError, UsageError
from curation.presets import get_preset
from curation.training.config import LoadedConfig
from curation.validate.load import require_valid

#: What each local model file is and where users usually get it (keys of ``model:``).
LOCAL_FILE_HELP: dict[str, tuple[str, str, str]] = {
    # key: (kind, what it is, where users get it)
    "pretrained": (
        "file",
        "the BLIP-2 checkpoint (e.g. blip2_pretrained_flant5xl.pth)",
        "Salesforce's LAVIS release; its URL is in LAVIS's "
        "configs/models/blip2/blip2_pretrain_flant5xl.yaml",
    ),
    "vit_weights": (
        "file",
        "the EVA-ViT-g vision encoder weights (eva_vit_g.pth)",
        "Salesforce's LAVIS release; its URL is in lavis/models/eva_vit.py",
    ),
    "t5_model": (
        "dir",
        "the Flan-T5 folder (config.json, weights, tokenizer files)",
        "the Hugging Face model google/flan-t5-xl, downloaded on a machine with "
        "internet (huggingface-cli download google/flan-t5-xl --local-dir DIR)",
    ),
    "qformer_tokenizer": (
        "dir",
        "the BERT tokenizer and config for the Q-Former (vocab.txt, config.json)",
        "the Hugging Face model bert-base-uncased (vocab.txt and config.json are enough)",
    ),
    "finetuned": ("file", "a fine-tuned checkpoint", "a previous `curate train` run"),
}
_REQUIRED_INSIDE = {"t5_model": ("config.json",), "qformer_tokenizer": ("vocab.txt",)}


def check_model_files(loaded: LoadedConfig) -> None:
    """Raise ``DataError`` naming each missing local model file, what it is and where to get it."""
    model = loaded.config.model
    preset = get_preset(model.model_type)
    needed = list(preset.required_files)
    if model.load_finetuned:
        needed.append("finetuned")
    problems = []
    for key in needed:
        value = getattr(model, key)
        kind, what, where = LOCAL_FILE_HELP[key]
        if not value:
            problems.append(
                f"model.{key} is not set: it must point at {what}. Get it from {where}."
            )
            continue
        path = loaded.resolve(value)
        ok = path.is_file() if kind == "file" else path.is_dir()
        missing_inside = [f for f in _REQUIRED_INSIDE.get(key, ()) if not (path / f).is_file()]
        if not ok or (kind == "dir" and missing_inside):
            detail = f" (no {', '.join(missing_inside)} inside)" if ok else ""
            if preset.export_hook and key in ("t5_model", "qformer_tokenizer"):
                # the toy presets' files are written by export, not downloaded
                problems.append(
                    f"model.{key}: {path} not found{detail}. The {preset.name} preset's "
                    f"{what.removeprefix('the ')} is written by curate export into the "
                    "export's model/ folder, "
                    f"and {value} is relative to {loaded.path.parent}. Fix: keep the run "
                    "folder inside its export (OUT/runs/<run-id>/), or pass --config with "
                    f"a config whose model.{key} points at that folder."
                )
                continue
            problems.append(
                f"model.{key}: {path} not found{detail}. It is {what}. Get it from {where}; "
                f"nothing is downloaded at run time. Set it with model.{key}=PATH."
            )
    if problems:
        raise DataError("local model files are missing:\n  " + "\n  ".join(problems))


def check_data(loaded: LoadedConfig, world_size: int = 1) -> int:
    """Validate every annotation file the config names; return the number of records.

    Training drops the last partial batch (LAVIS's loader, and each process's
    shard when distributed): fewer training records per process than
    ``run.batch_size_train`` would be an epoch of no steps, refused here.
    """
    total = 0
    training = 0
    train_splits = set(loaded.config.run.train_splits)
    for name, ds in loaded.config.datasets.items():
        root = loaded.resolve(ds.build_info.images.storage)
        if not root.is_dir():
            raise DataError(f"datasets.{name}.build_info.images: image folder {root} not found")
        for split, ann in ds.build_info.annotations.items():
            storage = [ann.storage] if isinstance(ann.storage, str) else ann.storage
            paths = [loaded.resolve(p) for p in storage]
            for p in paths:
                if not p.is_file():
                    raise DataError(
                        f"datasets.{name}.build_info.annotations.{split}: {p} not found"
                    )
            report = require_valid(
                paths[0], root, action="nothing was trained", hint=f" ({split} split)", shown=5
            )
            total += report.records
            if split in train_splits:
                training += report.records
    batch = loaded.config.run.batch_size_train
    if train_splits and not loaded.config.run.evaluate and training // world_size < batch:
        per = f" over {world_size} processes" if world_size > 1 else ""
        raise DataError(
            f"{loaded.path}: {training} training record(s){per}, fewer than one batch "
            f"(run.batch_size_train={batch}) per process: training drops the last partial "
            f"batch, so no step would be taken. Fix: run.batch_size_train="
            f"{max(1, training // world_size)}, or more training records."
        )
    return total


def check_builders(loaded: LoadedConfig) -> None:
    """Register aliases and make sure every ``datasets:`` key names a registered builder."""
    from curation.training import import_plugin

    plugin = import_plugin()

    for name, ds in loaded.config.datasets.items():
        if ds.builder is not None:
            if ds.builder != plugin.BUILDER_NAME:
                raise DataError(
                    f"datasets.{name}.builder: unknown builder {ds.builder!r}; "
                    f"use {plugin.BUILDER_NAME!r}"
                )
            plugin.register_builder(name)
        elif name in plugin.registered_builders() and not plugin.is_ours(name):
            raise DataError(
                f"datasets: {name!r} is LAVIS's own builder, which downloads its data. "
                f"curate train reads local exports: add 'builder: {plugin.BUILDER_NAME}' under "
                "it and pick a name LAVIS does not use."
            )
        elif name not in plugin.registered_builders():
            raise DataError(
                f"datasets: {name!r} is not a registered LAVIS builder (LAVIS would fail with "
                "\"'NoneType' object has no attribute 'default_config_path'\"). Registered: "
                f"{', '.join(plugin.registered_builders())}. Fix: rename the key to "
                f"{plugin.BUILDER_NAME!r}, or add 'builder: {plugin.BUILDER_NAME}' under it."
            )


def check_builder_name(name: str) -> None:
    """Refuse a ``datasets:`` key that ``curate train`` could not use; export calls it before writing.

    Raises:
        UsageError: not a plain lower-case name, or the name of one of LAVIS's own builders
            (they download their data).
    """
    if name == BUILDER_NAME:
        return
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise UsageError(
            f"--builder-name {name!r}: the YAML's datasets: key must be a plain lower-case name "
            "(letters, digits, _; starting with a letter). Fix: e.g. --builder-name my_falls."
        )
    from curation.training import import_plugin

    try:
        plugin = import_plugin()
    except (ImportError, CurationError):  # without LAVIS, curate train checks the name again
        return
    if name in plugin.registered_builders() and not plugin.is_ours(name):
        raise UsageError(
            f"--builder-name {name!r} is one of LAVIS's own builders, which download their data; "
            "curate train would refuse it. Fix: pick another name, e.g. my_falls."
        )
