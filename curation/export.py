"""Write an export folder that LAVIS trains and evaluates on directly.

Shape (shared by ``curate export`` and ``curate mix``)::

    OUT/train.json val.json test.json      the LAVIS VQA contract
    OUT/{split}.provenance.json            source, original id and answers per record
    OUT/images/                            one image root (vis_root), content-named files
    OUT/vqa_eval/{val,test}_*.json         official VQAv2-format files for LAVIS's VQATask
    OUT/model/                             tiny preset only: local tokenizer + config files
    OUT/lavis.yaml                         ready for `curate train`
    OUT/manifest.json                      counts, seed, inputs with sha256, tool version

The folder is built beside OUT and renamed into place, so an interrupted run
leaves nothing half-written. Same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curation import __version__
from curation._io import atomic_write_json, atomic_write_text, sha256_file
from curation.contract import BUILDER_NAME, PROMPT
from curation.errors import ConfigError, DataError, UsageError
from curation.presets import get_preset
from curation.record_types import ExportRecord
from curation.split import SPLITS, split_records  # the one splitter (re-exported here)

ModelPreset = str  # a preset name: curation.presets.preset_names()
DEFAULT_BUILDER = BUILDER_NAME
DEFAULT_PROMPT = PROMPT


@dataclass
class ExportSummary:
    out: Path
    counts: dict[str, dict[str, int]]
    images: int
    manifest: dict[str, Any] = field(default_factory=dict)


def write_export(
    out: str | Path,
    splits: dict[str, list[ExportRecord]],
    *,
    seed: int,
    model: ModelPreset = "tiny",
    inputs: Iterable[str | Path] = (),
    extra_manifest: dict[str, Any] | None = None,
    copy: bool = False,
    overwrite: bool = False,
    builder_name: str = DEFAULT_BUILDER,
    prompt: str = DEFAULT_PROMPT,
    command: str = "curate export",
    extra_files: dict[str, bytes] | None = None,
    protect: Iterable[str | Path] = (),
) -> ExportSummary:
    """Write the export folder atomically; return what was written.

    ``out`` must not be, hold or be inside a path of ``protect`` or ``inputs``.
    """
    out = Path(out)
    get_preset(model)  # an unknown name lists the valid ones
    inputs = list(inputs)
    _refuse_out_over_inputs(out, [*inputs, *protect])
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(
            f"{out} already exists and is not empty. Fix: pick a new --out, "
            "or pass --overwrite (its runs/ folder is deleted too)."
        )
    if not splits.get("train"):
        raise DataError("the train split is empty: nothing to train on.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = _write_into(
            tmp,
            out,
            splits,
            seed,
            model,
            inputs,
            extra_manifest or {},
            copy,
            builder_name,
            prompt,
            command,
        )
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _refuse_out_over_inputs(out: Path, protect: Sequence[str | Path]) -> None:
    real = Path(os.path.realpath(out))
    for p in protect:
        target = Path(os.path.realpath(p))
        if real == target or target in real.parents or real in target.parents:
            where = "is" if real == target else "is inside" if target in real.parents else "holds"
            raise UsageError(
                f"--out {out} {where} the input {p}: an export there could overwrite or "
                "delete it. Fix: pick a new folder for --out, e.g. under exports/."
            )


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _link_or_copy(src: Path, dst: Path, copy: bool) -> None:
    if not copy:
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy instead
            pass
    shutil.copyfile(src, dst)


def _write_into(
    tmp: Path,
    out: Path,
    splits: dict[str, list[ExportRecord]],
    seed: int,
    model: ModelPreset,
    inputs: Iterable[str | Path],
    extra_manifest: dict[str, Any],
    copy: bool,
    builder_name: str,
    prompt: str,
    command: str,
) -> ExportSummary:
    (tmp / "images").mkdir(parents=True)
    names: dict[Path, str] = {}
    next_id = 0
    for split in SPLITS:
        annotations, provenance = [], []
        for rec in splits.get(split, []):
            name = names.get(rec.image)
            if name is None:
                if not rec.image.is_file():
                    raise DataError(f"image not found: {rec.image} (record {rec.original_id})")
                name = sha256_file(rec.image)[:20] + rec.image.suffix.lower()
                names[rec.image] = name
                if not (tmp / "images" / name).exists():
                    _link_or_copy(rec.image, tmp / "images" / name, copy)
            annotations.append(
                {
                    "instance_id": next_id,
                    "image": name,
                    "text_input": rec.question,
                    "answer": list(rec.answers),
                }
            )
            provenance.append(
                {
                    "instance_id": next_id,
                    "source": rec.source,
                    "part": rec.part,
                    "original_id": rec.original_id,
                    "answer_type": rec.kind,
                    "original_answers": list(rec.answers),
                    "original_image": rec.image.name,
                    "review": rec.review,
                    "fiftyone_id": rec.fiftyone_id,
                }
            )
            next_id += 1
        atomic_write_json(tmp / f"{split}.json", annotations)
        atomic_write_json(tmp / f"{split}.provenance.json", provenance)
        if split != "train":
            _write_vqa_eval(tmp / "vqa_eval", split, annotations, provenance)

    hook = get_preset(model).hook()
    if hook is not None:
        texts = [t for recs in splits.values() for r in recs for t in (r.question, *r.answers)]
        hook(tmp / "model", texts)

    counts = {
        s: dict(sorted(Counter(f"{r.part}/{r.source}/{r.kind}" for r in splits.get(s, [])).items()))
        for s in SPLITS
    }
    manifest = {
        "tool": "falldown-curate",
        "version": __version__,
        "command": command,
        "seed": seed,
        "model": model,
        "builder": builder_name,
        "prompt": prompt,
        "records": {s: len(splits.get(s, [])) for s in SPLITS},
        "images": len(set(names.values())),
        "counts": counts,
        "inputs": [{"path": Path(p).as_posix(), "sha256": sha256_file(p)} for p in inputs],
        **extra_manifest,
    }
    atomic_write_json(tmp / "manifest.json", manifest)
    config = lavis_config(model, seed, builder_name, prompt)
    atomic_write_text(tmp / "lavis.yaml", _config_text(config, out))
    return ExportSummary(out, counts, manifest["images"], manifest)


def _write_vqa_eval(
    folder: Path, split: str, annotations: list[dict], provenance: list[dict]
) -> None:
    """Official VQAv2-format question/annotation files, so LAVIS's VQATask can score a split.

    A record with one answer gets it ten times: the official leave-one-out
    accuracy then scores it by exact match (one copy would always score 0).
    """
    questions, anns = [], []
    for i, (a, p) in enumerate(zip(annotations, provenance, strict=True)):
        answers = a["answer"] if len(a["answer"]) > 1 else a["answer"] * 10
        questions.append({"question_id": i, "image_id": i, "question": a["text_input"]})
        anns.append(
            {
                "question_id": i,
                "image_id": i,
                "question_type": p["source"],
                "answer_type": p["answer_type"],
                "multiple_choice_answer": Counter(a["answer"]).most_common(1)[0][0],
                "answers": [
                    {"answer": x, "answer_confidence": "yes", "answer_id": k + 1}
                    for k, x in enumerate(answers)
                ],
            }
        )
    common = {"info": {}, "license": {}, "data_type": "falldown", "data_subtype": split}
    atomic_write_json(
        folder / f"{split}_questions.json",
        {**common, "task_type": "Open-Ended", "questions": questions},
    )
    atomic_write_json(folder / f"{split}_annotations.json", {**common, "annotations": anns})


#: Run settings every export writes, whatever the preset (a preset's ``run_defaults`` fill the rest).
_RUN_COMMON: dict[str, Any] = {
    "task": "vqa",
    "lr_sched": "linear_warmup_cosine_lr",
    "init_lr": None,
    "min_lr": None,
    "warmup_lr": 1e-6,
    "warmup_steps": None,
    "weight_decay": None,
    "max_epoch": None,
    "batch_size_train": 16,
    "batch_size_eval": 32,
    "num_workers": None,
    "accum_grad_iters": 1,
    "log_freq": 10,
    "max_len": None,
    "min_len": 1,
    "num_beams": None,
    "inference_method": "generate",
    "prompt": "",
    "seed": None,
    "output_dir": "runs",
    "amp": None,
    "device": "auto",
    "evaluate": False,
    "train_splits": ["train"],
    "valid_splits": ["val"],
    "test_splits": ["test"],
    "distributed": False,
}


def lavis_config(model: str, seed: int, builder_name: str, prompt: str) -> dict[str, Any]:
    """The run config an export ships: LAVIS's shape, paths relative to the export folder."""
    preset = get_preset(model)
    size = preset.image_size
    dataset: dict[str, Any] = {}
    if builder_name != DEFAULT_BUILDER:
        dataset["builder"] = DEFAULT_BUILDER
    dataset.update(
        {
            "data_type": "images",
            "prompt": prompt,
            "vis_processor": {
                "train": {"name": preset.vis_processor_train, "image_size": size},
                "eval": {"name": "blip_image_eval", "image_size": size},
            },
            "text_processor": {
                "train": {"name": "blip_question"},
                "eval": {"name": "blip_question"},
            },
            "build_info": {
                "annotations": {
                    "train": {"storage": "train.json"},
                    "val": {
                        "storage": [
                            "val.json",
                            "vqa_eval/val_questions.json",
                            "vqa_eval/val_annotations.json",
                        ]
                    },
                    "test": {
                        "storage": [
                            "test.json",
                            "vqa_eval/test_questions.json",
                            "vqa_eval/test_annotations.json",
                        ]
                    },
                },
                "images": {"storage": "images"},
            },
        }
    )
    run = {**_RUN_COMMON, **preset.run_defaults, "seed": seed}
    unset = [k for k, v in run.items() if v is None]
    if unset:
        raise ConfigError(f"model preset {preset.path} sets no run.{', run.'.join(unset)}")
    return {"model": dict(preset.model), "datasets": {builder_name: dataset}, "run": run}


def _config_text(config: dict[str, Any], out: Path) -> str:
    header = (
        f"# curate train {out.as_posix()}/lavis.yaml [key=value ...]\n"
        "# LAVIS run config written by falldown-curate. Paths are relative to this file's\n"
        "# folder. Override any key on the command line, e.g. run.max_epoch=1.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def task_records_from_file(
    task_file: str | Path, image_root: str | Path | None = None
) -> list[ExportRecord]:
    """Task records from an annotation file that passes ``validate`` (images included).

    Raises:
        DataError: the file breaks the contract (its first problems are listed).
    """
    from curation.validate import load_records, require_valid

    task_file = Path(task_file)
    root = Path(image_root) if image_root is not None else task_file.parent
    require_valid(task_file, root, action="nothing was exported")
    return [
        ExportRecord(
            root / r["image"],
            r["text_input"],
            tuple(r["answer"]),
            source="task",
            original_id=str(r["instance_id"]),
        )
        for r in load_records(task_file)
    ]


def export_records(
    records: Sequence[ExportRecord],
    out: str | Path,
    *,
    seed: int = 0,
    model: ModelPreset = "tiny",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    copy: bool = False,
    overwrite: bool = False,
    builder_name: str = DEFAULT_BUILDER,
    inputs: Iterable[str | Path] = (),
    extra_manifest: dict[str, Any] | None = None,
    command: str = "curate export",
) -> ExportSummary:
    """Split task records by image group and write them as an export folder."""
    splits = split_records(records, fractions, seed)
    return write_export(
        out,
        splits,
        seed=seed,
        model=model,
        inputs=inputs,
        copy=copy,
        overwrite=overwrite,
        builder_name=builder_name,
        command=command,
        extra_manifest={"fractions": list(fractions), **(extra_manifest or {})},
    )


def export_task(
    task_file: str | Path, image_root: str | Path | None, out: str | Path, **options: Any
) -> ExportSummary:
    """Validate a task annotation file (images too), split it by image and export it.

    ``options`` are those of ``export_records``.

    Raises:
        DataError: the file breaks the contract (its first problems are listed).
    """
    records = task_records_from_file(task_file, image_root)
    seed, model = options.get("seed", 0), options.get("model", "tiny")
    return export_records(
        records,
        out,
        inputs=[task_file],
        command=f"curate export --task {Path(task_file).as_posix()} --seed {seed} --model {model}",
        **options,
    )
