"""Load a model for scoring: a training checkpoint, or a model folder ``curate quantize`` wrote.

A model folder holds ``config.yaml`` (paths relative to the folder), ``model.pt``
(the state dict, read with ``weights_only=True``), the model files the config
names (tokenizers and configs, no weights), ``operating_point.json`` and
``manifest.json`` (the scheme, the modules quantized, the sha256 of every file).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.training import import_plugin
from curation.training.checkpoints import load_state, read_checkpoint, require_match
from curation.training.config import LoadedConfig, absolute_dict, load_train_config
from curation.training.preflight import check_model_files

#: The files of a model folder.
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
#: A manifest is a few kB; a larger file is not one of ours.
MAX_MANIFEST_BYTES = 1 << 22
#: What other commands write into a model folder after quantize, and the model never
#: loads: ``curate eval FOLDER`` (its reports in ``eval/``) and ``curate eval-events
#: --tune --model FOLDER`` (``events.yaml``, read by ``curate watch``).
WRITTEN_LATER = frozenset({"eval", "events.yaml"})


@dataclass
class LoadedModel:
    """A model ready to score, with the processors that turn images and questions into input."""

    model: Any
    vis_processor: Any
    question: Any  # callable: raw question -> the prompted text the model saw in training
    run: Any
    device: str
    load_report: dict[str, Any]
    #: ``fp32`` for a checkpoint, else the model folder's scheme.
    scheme: str = "fp32"
    #: The file the operating point is fingerprinted against (checkpoint or folder weights).
    weights: Path | None = None
    #: What the model is called in answers (the checkpoint's or folder's name).
    name: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with a model-folder manifest (what quantize writes)."""
    return Path(path).is_dir() and (Path(path) / MANIFEST_FILE).is_file()


def weights_file(source: str | Path) -> Path:
    """The file whose bytes the operating point is chosen for: the checkpoint, or a folder's
    ``model.pt``."""
    source = Path(source)
    return source / WEIGHTS_FILE if source.is_dir() else source


def find_config(checkpoint: Path, config: str | Path | None) -> Path:
    if config is not None:
        return Path(config)
    beside = checkpoint.parent / "config.yaml"
    if not beside.is_file():
        raise UsageError(f"no config.yaml beside {checkpoint}. Fix: pass --config lavis.yaml")
    return beside


def pick_device(device: str | None) -> str:
    """``device`` as given, else ``cuda`` when a GPU is there, else ``cpu``."""
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"device {device}: no CUDA GPU here. Fix: --device cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    source: str | Path,
    config: str | Path | None = None,
    trust_checkpoint: bool = False,
    device: str | None = None,
) -> LoadedModel:
    """Build the config's preset from local files and load ``source`` into it.

    ``source`` is a checkpoint file (its run's ``config.yaml`` beside it, or
    ``config``) or a model folder. The checkpoint is read (safely, unless
    ``trust_checkpoint``) before the model is built, so a bad file fails fast.

    Raises:
        DataError: missing files, a checkpoint that is damaged, holds code, or
            whose keys or shapes do not match the model (LAVIS's ``strict=False``
            would silently ignore them); a model folder whose files do not match
            its manifest.
    """
    started = time.perf_counter()
    source = Path(source)
    if source.is_dir():
        loaded = _load_folder(source, device)
    else:
        loaded = _load_checkpoint(source, config, trust_checkpoint, device)
    loaded.load_seconds = time.perf_counter() - started
    return loaded


def _load_checkpoint(
    checkpoint: Path, config: str | Path | None, trust: bool, device: str | None
) -> LoadedModel:
    if not checkpoint.is_file():
        raise UsageError(f"checkpoint not found: {checkpoint}")
    loaded = load_train_config(find_config(checkpoint, config))
    check_model_files(loaded)
    state = read_checkpoint(checkpoint, trust=trust)
    data, model = _build(loaded)
    report = load_state(model, state, checkpoint)
    del state
    require_match(report, f"{loaded.config.model.model_type} model")
    return _ready(model, data, loaded, dict(report), pick_device(device), "fp32", checkpoint)


def read_manifest(folder: Path) -> dict[str, Any]:
    """A model folder's manifest; DataError naming what is wrong with it."""
    path = folder / MANIFEST_FILE
    fix = "Fix: write the folder again with curate quantize."
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise DataError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes. {fix}")
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{folder} is a folder without {MANIFEST_FILE}: not a model folder. Fix: pass a "
            "checkpoint file, or a folder written by curate quantize."
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable JSON manifest ({exc}). {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scheme"), str):
        raise DataError(f"{path}: no 'scheme' in the manifest. {fix}")
    files = data.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files:
        raise DataError(f"{path}: no 'files' with the sha256 of {WEIGHTS_FILE}. {fix}")
    return data


def unlisted_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """The files in ``folder`` its manifest does not list (relative POSIX paths, sorted),
    besides the manifest itself and what other commands write there later."""
    listed = set(manifest["files"]) | {MANIFEST_FILE}
    extra: list[str] = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in WRITTEN_LATER]
            files = [f for f in files if f not in WRITTEN_LATER]
        # a link to a folder is not walked into: it is an entry of its own
        linked = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = sorted(d for d in dirs if d not in linked)
        extra += [
            name for name in ((rel / f).as_posix() for f in [*files, *linked]) if name not in listed
        ]
    return sorted(extra)


def verify_folder(folder: Path, manifest: dict[str, Any]) -> None:
    """Refuse a folder whose files differ from the sha256 its manifest gives, or that holds
    a file the manifest does not list (an added tokenizer file changes how the model loads)."""
    from curation._io import sha256_file

    for name, digest in manifest["files"].items():
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"{folder / MANIFEST_FILE}: file {name!r} is outside the folder.")
        if not path.is_file():
            raise DataError(
                f"{path}: listed in {MANIFEST_FILE} but missing. Fix: copy the whole folder."
            )
        if sha256_file(path) != digest:
            raise DataError(
                f"{path}: its sha256 differs from the one in {MANIFEST_FILE} (changed or "
                "damaged since curate quantize wrote it). Fix: copy the folder again."
            )
    extra = unlisted_files(folder, manifest)
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise DataError(
            f"{folder / extra[0]}{more}: not listed in {MANIFEST_FILE} (added since curate "
            "quantize wrote the folder; the model would load with it). Fix: delete it, or "
            "copy the folder again."
        )


def _load_folder(folder: Path, device: str | None) -> LoadedModel:
    from curation.inference.schemes import apply_scheme

    manifest = read_manifest(folder)
    verify_folder(folder, manifest)
    loaded = load_train_config(folder / CONFIG_FILE)
    _check_folder_files(folder, loaded)
    import torch

    weights = folder / WEIGHTS_FILE
    # the scheme first: applying it imports torchao, which registers its int8 tensor types
    # as safe for weights_only loading
    data, model = _build(loaded)
    apply_scheme(model, manifest["scheme"])
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(
            f"{weights}: not a weights-only state dict ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Fix: write the folder again "
            "with curate quantize."
        ) from None
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise DataError(
            f"{weights} does not match the model of {folder / CONFIG_FILE}: "
            f"{str(exc).splitlines()[0]}. Fix: write the folder again with curate quantize."
        ) from None
    del state
    report = {"path": str(folder), "scheme": manifest["scheme"], "loaded": len(model.state_dict())}
    return _ready(
        model, data, loaded, report, pick_device(device), manifest["scheme"], weights, manifest
    )


def _check_folder_files(folder: Path, loaded: LoadedConfig) -> None:
    """The model files a folder's config names (tokenizers, configs) are in the folder."""
    model = loaded.config.model
    for key in ("t5_model", "qformer_tokenizer"):
        value = getattr(model, key, None)
        if value and not loaded.resolve(value).is_dir():
            raise DataError(
                f"{folder / CONFIG_FILE}: model.{key} {value} is not a folder inside "
                f"{folder}. Fix: copy the whole model folder."
            )


def _build(loaded: LoadedConfig) -> tuple[dict[str, Any], Any]:
    import_plugin()
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    data = absolute_dict(loaded)
    model_cls = registry.get_model_class(data["model"]["arch"])
    return data, model_cls.from_config(OmegaConf.create(data["model"]))


def _ready(
    model: Any,
    data: dict[str, Any],
    loaded: LoadedConfig,
    report: dict[str, Any],
    device: str,
    scheme: str,
    weights: Path,
    manifest: dict[str, Any] | None = None,
) -> LoadedModel:
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    model = model.to(device).eval()
    ds = next(iter(data["datasets"].values()))
    vis_cfg = ds["vis_processor"]["eval"]
    txt_cfg = ds["text_processor"]["eval"]
    vis = registry.get_processor_class(vis_cfg["name"]).from_config(OmegaConf.create(vis_cfg))
    txt = registry.get_processor_class(txt_cfg["name"]).from_config(OmegaConf.create(txt_cfg))
    prompt = ds.get("prompt", "")
    plugin = import_plugin()

    def question(text: str) -> str:
        return plugin.prompted(text, txt, prompt)

    name = weights.parent.name if weights.name == WEIGHTS_FILE else weights.name
    return LoadedModel(
        model,
        vis,
        question,
        loaded.config.run,
        device,
        report,
        scheme=scheme,
        weights=weights,
        name=name,
        manifest=manifest or {},
    )
