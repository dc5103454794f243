"""`curate quantize`: a checkpoint into a deployable model folder, with a parity report.

The folder (see :mod:`curation.inference.model`) holds the quantized state dict
(read back with ``weights_only=True``), the config and the small model files it
names, an operating point **re-fitted on the calibration set** (P(yes) moves
under quantization, so the checkpoint's threshold is not reused), and
``manifest.json``: the scheme, the modules quantized and kept (with why), the
versions, the source checkpoint's fingerprint, the sha256 of every file and the
parity report against the unquantized model on the calibration set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.inference.model import (
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    LoadedModel,
    find_config,
    load_model,
)
from curation.inference.schemes import SCHEMES, check_scheme

#: A parity worse than this ROC-AUC drop refuses the folder (unless forced).
DEFAULT_MAX_AUC_DROP = 0.005
#: Model files copied into the folder: the config's local folders, without weight files
#: (the folder's model.pt holds every weight).
MODEL_DIR_KEYS = ("t5_model", "qformer_tokenizer")
_WEIGHT_FILES = ("*.bin", "*.safetensors", "*.pth", "*.pt", "*.index.json", "*.h5", "*.msgpack")


class ParityError(DataError):
    """The quantized model ranks the calibration set worse than allowed; nothing was written."""

    def __init__(self, message: str, parity: dict[str, Any]) -> None:
        super().__init__(message)
        self.parity = parity


@dataclass
class QuantizeResult:
    out: Path
    manifest: dict[str, Any]
    forced: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class _Calibration:
    images: list[Path]
    questions: list[str]
    truths: list[bool]
    path: Path
    note: str | None = None


def load_calibration(calibrate: Path, image_root: str | Path | None = None) -> _Calibration:
    """The calibration set's task records with a yes/no answer (both answers needed).

    Raises:
        UsageError: the file is missing.
        DataError: an invalid file, missing images, or only one answer present.
    """
    from curation.answers import yes_no
    from curation.evaluate.run import default_image_root, load_provenance, provenance_note
    from curation.validate import load_records

    if not calibrate.is_file():
        raise UsageError(f"--calibrate {calibrate}: file not found")
    records = load_records(calibrate)
    provenance = load_provenance(calibrate, records)
    root = Path(image_root) if image_root else default_image_root(calibrate)
    idx = [
        i
        for i, p in enumerate(provenance)
        if p.get("part", "task") == "task" and yes_no(records[i]["answer"]) != "other"
    ]
    truths = [yes_no(records[i]["answer"]) == "yes" for i in idx]
    if not truths or all(truths) or not any(truths):
        raise DataError(
            f"{calibrate}: {len(truths)} task record(s) answered yes or no, "
            f"{sum(truths)} yes: the threshold and ROC-AUC need both answers. Fix: calibrate "
            "on a split with falls and non-falls (an export's val.json)."
        )
    images = [root / records[i]["image"] for i in idx]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) of {calibrate} not found under {root}, e.g. "
            f"{missing[0]}. Fix: --image-root DIR"
        )
    questions = [records[i]["text_input"] for i in idx]
    return _Calibration(images, questions, truths, calibrate, provenance_note(calibrate))


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an --out that exists and is not empty, or that holds an input."""
    from curation._io import check_output_path, is_within, real_path

    check_output_path(out, "--out")
    if out.is_symlink():
        # the folder is written beside --out and renamed onto it: a link is not replaced
        target = os.readlink(out)
        dangling = "" if out.exists() else ", which does not exist"
        raise UsageError(
            f"--out {out} is a link to {target}{dangling}; quantize writes a new folder in "
            "its place and replaces no link. Fix: give --out a new folder (or the link's "
            "target itself)."
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"--out {out} already exists and is not an empty folder; nothing is replaced. "
            "Fix: give --out a new folder."
        )
    for item in inputs:
        if item.exists() and is_within(real_path(item), real_path(out)):
            raise UsageError(f"--out {out} holds the input {item}. Fix: give --out a new folder.")


def quantize(
    checkpoint: str | Path,
    scheme: str,
    calibrate: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    image_root: str | Path | None = None,
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP,
    max_false_alarm: float = 0.05,
    force: bool = False,
    trust_checkpoint: bool = False,
    batch_size: int = 16,
    device: str | None = None,
) -> QuantizeResult:
    """Quantize ``checkpoint`` with ``scheme``, compare it with the original on ``calibrate``,
    re-fit the operating point there, and write the model folder ``out``.

    Raises:
        UsageError: an unknown scheme, a bad --out or limit.
        ParityError: the ROC-AUC drop exceeds ``max_auc_drop`` (and not ``force``);
            nothing is written.
        DataError: a bad checkpoint, calibration file or image.
    """
    checkpoint, calibrate, out = Path(checkpoint), Path(calibrate), Path(out)
    check_scheme(scheme)
    if scheme not in SCHEMES:
        raise UsageError(f"--scheme {scheme}: nothing to quantize. Fix: one of {SCHEMES}")
    if not max_auc_drop >= 0:
        raise UsageError(f"--max-auc-drop must be 0 or more, got {max_auc_drop}")
    if not 0 <= max_false_alarm <= 1:
        raise UsageError(f"--max-false-alarm must be between 0 and 1, got {max_false_alarm}")
    if checkpoint.is_dir():
        raise UsageError(
            f"{checkpoint} is a folder: quantize starts from a training checkpoint file. "
            "Fix: pass the checkpoint (e.g. runs/RUN/checkpoint_best.pth)."
        )
    check_out(out, [checkpoint, calibrate])
    cal = load_calibration(calibrate, image_root)
    from curation.training import import_plugin

    import_plugin()  # the load times compare loads, not the first import of LAVIS
    source = load_model(checkpoint, config, trust_checkpoint, device)
    source_cfg = find_config(checkpoint, config)
    ref = _measure(source, cal, batch_size)
    from curation.inference.schemes import apply_scheme

    fp32_bytes = _state_bytes(source.model)
    applied = apply_scheme(source.model, scheme)
    source.scheme = scheme
    quant = _measure(source, cal, batch_size)
    parity = parity_report(cal.truths, ref, quant, max_false_alarm)
    fitted = parity.pop("_point")
    parity["size_bytes"] = {"checkpoint": checkpoint.stat().st_size, "original": fp32_bytes}
    parity["load_seconds"] = {"original": round(source.load_seconds, 3)}
    drop = parity["roc_auc_drop"]
    if drop > max_auc_drop and not force:
        raise ParityError(
            f"{scheme} ranks {calibrate.name} worse than allowed: ROC-AUC "
            f"{parity['roc_auc']['original']:.4f} -> {parity['roc_auc']['quantized']:.4f} "
            f"(drop {drop:.4f} > --max-auc-drop {max_auc_drop:g}); nothing was written.\n"
            + "\n".join(parity_lines(parity))
            + "\nFix: try another --scheme, or --force to write it anyway.",
            parity,
        )
    point = {
        **fitted,
        "chosen_on": calibrate.name,
        "n": len(cal.truths),
        "max_false_alarm": max_false_alarm,
    }
    forced = bool(force and drop > max_auc_drop)
    manifest = {
        "scheme": scheme,
        "modules": {"quantized": applied.quantized, "kept": applied.kept},
        "versions": _versions(),
        "source": _source(checkpoint),
        "calibration": {"file": str(calibrate), "n": len(cal.truths)}
        | ({"note": cal.note} if cal.note else {}),
        "parity": parity,
        "operating_point": point,
        "forced": forced,
    }
    _write_folder(out, source, source_cfg, point, manifest)
    # the folder loads as serve and predict load it: the load time is measured, and its
    # P(yes) must be the one the parity report gives (a round trip that changes it is a bug)
    reloaded = load_model(out, device=source.device)
    from curation.inference.scoring import p_yes

    again = p_yes(reloaded, cal.images[:4], cal.questions[:4], batch_size)
    if max(abs(a - b) for a, b in zip(again, quant["p_yes"][:4], strict=True)) > 1e-4:
        raise DataError(f"{out}: the written folder scores differently than the model quantized")
    parity["load_seconds"]["quantized"] = round(reloaded.load_seconds, 3)
    parity["size_bytes"]["quantized"] = (out / WEIGHTS_FILE).stat().st_size
    from curation._io import atomic_write_json

    atomic_write_json(out / MANIFEST_FILE, manifest)
    return QuantizeResult(out, manifest, forced, [cal.note] if cal.note else [])


def _measure(loaded: LoadedModel, cal: _Calibration, batch_size: int) -> dict[str, Any]:
    from curation.inference.scoring import p_yes

    p_yes(loaded, cal.images[:1], cal.questions[:1], 1)  # warm-up, not timed
    started = time.perf_counter()
    probs = p_yes(loaded, cal.images, cal.questions, batch_size)
    seconds = time.perf_counter() - started
    return {"p_yes": probs, "ms_per_image": 1000 * seconds / len(probs)}


def parity_report(
    truths: list[bool], ref: dict[str, Any], quant: dict[str, Any], max_false_alarm: float
) -> dict[str, Any]:
    """ROC-AUC of each model and the difference, the share of answers that agree at each
    model's own threshold, and how far P(yes) moved."""
    from curation.evaluate.metrics import roc_auc, threshold_at_false_alarm
    from curation.inference.operating_point import answer_at

    a, b = ref["p_yes"], quant["p_yes"]
    auc_a, auc_b = roc_auc(truths, a), roc_auc(truths, b)
    assert auc_a is not None and auc_b is not None  # both answers checked on load
    point_a = threshold_at_false_alarm(truths, a, max_false_alarm)
    point_b = threshold_at_false_alarm(truths, b, max_false_alarm)
    same = sum(
        answer_at(x, point_a["threshold"]) == answer_at(y, point_b["threshold"])
        for x, y in zip(a, b, strict=True)
    )
    deltas = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return {
        "n": len(truths),
        "roc_auc": {"original": auc_a, "quantized": auc_b},
        "roc_auc_delta": auc_b - auc_a,
        "roc_auc_drop": max(0.0, auc_a - auc_b),
        "threshold": {"original": point_a["threshold"], "quantized": point_b["threshold"]},
        "agreement": same / len(truths),
        "max_abs_p_yes_delta": max(deltas),
        "mean_abs_p_yes_delta": sum(deltas) / len(deltas),
        "ms_per_image": {
            "original": round(ref["ms_per_image"], 3),
            "quantized": round(quant["ms_per_image"], 3),
        },
        "_point": point_b,
    }


def parity_lines(parity: dict[str, Any]) -> list[str]:
    """The parity report as lines for a terminal."""
    auc, thr, ms = parity["roc_auc"], parity["threshold"], parity["ms_per_image"]
    lines = [
        f"records: {parity['n']}",
        f"ROC-AUC: original {auc['original']:.4f}, quantized {auc['quantized']:.4f} "
        f"(difference {parity['roc_auc_delta']:+.4f})",
        f"threshold: original {thr['original']:.6g}, quantized {thr['quantized']:.6g}",
        f"answers that agree (each at its own threshold): {parity['agreement']:.1%}",
        f"|delta P(yes)|: max {parity['max_abs_p_yes_delta']:.4g}, "
        f"mean {parity['mean_abs_p_yes_delta']:.4g}",
        f"latency per image here: original {ms['original']:.1f} ms, "
        f"quantized {ms['quantized']:.1f} ms",
    ]
    size, load = parity.get("size_bytes", {}), parity.get("load_seconds", {})
    if "quantized" in size:
        lines.append(
            f"size: original weights {size['original'] / 1e6:.2f} MB (checkpoint file "
            f"{size['checkpoint'] / 1e6:.2f} MB), quantized {WEIGHTS_FILE} "
            f"{size['quantized'] / 1e6:.2f} MB"
        )
    if "quantized" in load:
        lines.append(
            f"load time: original {load['original']:.2f} s, quantized {load['quantized']:.2f} s"
        )
    return lines


def _state_bytes(model: Any) -> int:
    """Bytes of the model's tensors (the checkpoint file may also hold the optimizer)."""
    seen: set[int] = set()
    total = 0
    for tensor in model.state_dict().values():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("torch", "torchao", "salesforce-lavis", "transformers", "falldown-curate"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _source(checkpoint: Path) -> dict[str, Any]:
    from curation.inference.operating_point import fingerprint

    return {
        "checkpoint": str(checkpoint),
        "fingerprint": fingerprint(checkpoint),
        "size_bytes": checkpoint.stat().st_size,
    }


def _write_folder(
    out: Path,
    loaded: LoadedModel,
    source_cfg: Path,
    point: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    """Write the folder beside ``out`` and rename it into place: never half a folder."""
    import torch

    from curation._io import atomic_write_json, sha256_file
    from curation.inference.operating_point import write_point
    from curation.training.config import load_train_config, relocated_dict, write_config

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    try:
        cfg = load_train_config(source_cfg)
        data = relocated_dict(cfg, tmp)
        model = data["model"]
        for key in MODEL_DIR_KEYS:
            original = getattr(cfg.config.model, key, None)
            if original:
                target = Path("model_files") / key
                shutil.copytree(
                    cfg.resolve(original),
                    tmp / target,
                    ignore=shutil.ignore_patterns(*_WEIGHT_FILES),
                )
                model[key] = target.as_posix()
        # every weight is in model.pt: nothing else is loaded when the folder is
        for key in ("pretrained", "finetuned", "vit_weights"):
            if key in model:
                model[key] = None
        model["load_finetuned"] = False
        write_config(
            tmp / CONFIG_FILE,
            data,
            f"Model folder written by curate quantize --scheme {manifest['scheme']} "
            "(paths relative to this folder).\ncurate serve FOLDER  |  curate predict FOLDER IMAGE",
        )
        state = {k: v.to("cpu") for k, v in loaded.model.state_dict().items()}
        with open(tmp / WEIGHTS_FILE, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        write_point(tmp, point, tmp / WEIGHTS_FILE)
        manifest["files"] = {
            p.relative_to(tmp).as_posix(): sha256_file(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        atomic_write_json(tmp / MANIFEST_FILE, manifest)
        if out.exists():
            out.rmdir()  # checked empty before
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
