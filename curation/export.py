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
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from curation import __version__
from curation._io import atomic_write_json, atomic_write_text, sha256_file
from curation.answers import answer_type_of
from curation.errors import DataError, UsageError

SPLITS = ("train", "val", "test")
ModelPreset = Literal["tiny", "blip2_t5"]
MODEL_TYPES: dict[str, str] = {"tiny": "tiny", "blip2_t5": "pretrain_flant5xl"}
DEFAULT_BUILDER = "falldown_vqa"
DEFAULT_PROMPT = "Question: {} Short answer:"


@dataclass(frozen=True)
class ExportRecord:
    """One question about one image, with where it came from."""

    image: Path
    question: str
    answers: tuple[str, ...]
    source: str = "task"
    original_id: str = ""
    part: Literal["task", "general"] = "task"
    answer_type: str = ""
    group: str = ""  # records sharing a group never land in different splits
    review: str = ""  # e.g. "relabel:yes" when a reviewer changed the label
    fiftyone_id: str = ""  # the FiftyOne sample it came from, if any

    @property
    def kind(self) -> str:
        return self.answer_type or answer_type_of(self.answers)


@dataclass
class ExportSummary:
    out: Path
    counts: dict[str, dict[str, int]]
    images: int
    manifest: dict[str, Any] = field(default_factory=dict)


def split_records(
    records: Sequence[ExportRecord],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    hash_images: bool = True,
) -> dict[str, list[ExportRecord]]:
    """Split by group, so no image is in two splits.

    A record's group is its ``group`` field, else its image file's content
    (``hash_images``, which also joins exact copies) or its path. Groups are
    shuffled with ``seed`` and dealt to the split furthest below its target
    share; each split keeps the records' input order.
    """
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise UsageError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    hashes: dict[Path, str] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        if rec.group:
            key = rec.group
        elif hash_images:
            key = hashes.get(rec.image) or hashes.setdefault(rec.image, sha256_file(rec.image))
        else:
            key = str(rec.image)
        groups[key].append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    total = len(records)
    taken = dict.fromkeys(SPLITS, 0)
    assigned: dict[int, str] = {}
    for key in keys:
        split = max(SPLITS, key=lambda s: fractions[SPLITS.index(s)] * total - taken[s])
        taken[split] += len(groups[key])
        for i in groups[key]:
            assigned[i] = split
    return {s: [r for i, r in enumerate(records) if assigned[i] == s] for s in SPLITS}


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
) -> ExportSummary:
    """Write the export folder atomically; return what was written."""
    out = Path(out)
    if model not in MODEL_TYPES:
        raise UsageError(f"unknown model preset {model!r}; choose one of: {', '.join(MODEL_TYPES)}")
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

    if model == "tiny":
        from curation.training.tiny import write_tiny_model_files

        texts = [t for recs in splits.values() for r in recs for t in (r.question, *r.answers)]
        write_tiny_model_files(tmp / "model", texts)

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


def lavis_config(model: ModelPreset, seed: int, builder_name: str, prompt: str) -> dict[str, Any]:
    """The run config an export ships: LAVIS's shape, paths relative to the export folder."""
    from curation.training.plugin_data import model_defaults

    model_cfg = model_defaults(MODEL_TYPES[model])
    size = model_cfg["image_size"]
    tiny = model == "tiny"
    vis_train = "blip_image_eval" if tiny else "blip_image_train"
    dataset: dict[str, Any] = {}
    if builder_name != DEFAULT_BUILDER:
        dataset["builder"] = DEFAULT_BUILDER
    dataset.update(
        {
            "data_type": "images",
            "prompt": prompt,
            "vis_processor": {
                "train": {"name": vis_train, "image_size": size},
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
    run = {
        "task": "vqa",
        "lr_sched": "linear_warmup_cosine_lr",
        "init_lr": 1e-3 if tiny else 1e-5,
        "min_lr": 1e-5 if tiny else 0.0,
        "warmup_lr": 1e-6,
        "warmup_steps": 0 if tiny else 1000,
        "weight_decay": 0.01 if tiny else 0.05,
        "max_epoch": 10 if tiny else 5,
        "batch_size_train": 16,
        "batch_size_eval": 32,
        "num_workers": 0 if tiny else 4,
        "accum_grad_iters": 1,
        "log_freq": 10,
        "max_len": 5 if tiny else 10,
        "min_len": 1,
        "num_beams": 1 if tiny else 5,
        "inference_method": "generate",
        "prompt": "",
        "seed": seed,
        "output_dir": "runs",
        "amp": not tiny,
        "device": "auto",
        "evaluate": False,
        "train_splits": ["train"],
        "valid_splits": ["val"],
        "test_splits": ["test"],
        "distributed": False,
    }
    return {"model": model_cfg, "datasets": {builder_name: dataset}, "run": run}


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
    from curation.images import default_image_root
    from curation.validate import load_records, validate_files

    task_file = Path(task_file)
    root = Path(image_root) if image_root is not None else default_image_root(task_file)
    report = validate_files([task_file], image_root=root)
    if not report.ok:
        shown = "\n  ".join(p.render() for p in report.errors[:10])
        raise DataError(
            f"{task_file} has {len(report.errors)} error(s); nothing was exported:\n  {shown}\n"
            f"  (curate validate {task_file} --fix FIXED.json writes a corrected copy)"
        )
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
    hash_images: bool = True,
    inputs: Iterable[str | Path] = (),
    extra_manifest: dict[str, Any] | None = None,
    command: str = "curate export",
) -> ExportSummary:
    """Split task records by image group and write them as an export folder."""
    splits = split_records(records, fractions, seed, hash_images=hash_images)
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


def export_dataset(dataset: str, out: str | Path, **options: Any) -> ExportSummary:
    """Export a FiftyOne dataset's task samples, with the reviewers' tags applied.

    Copies and near-copies found by ``curate check`` share a split group.
    """
    from curation.curator.records import records_from_dataset

    found = records_from_dataset(dataset)
    if not found.task:
        raise DataError(f"dataset {dataset!r} has no labelled task samples to export")
    seed, model = options.get("seed", 0), options.get("model", "tiny")
    return export_records(
        found.task,
        out,
        hash_images=False,
        extra_manifest={"fiftyone_dataset": dataset, "review": found.review},
        command=f"curate export --dataset {dataset} --seed {seed} --model {model}",
        **options,
    )
