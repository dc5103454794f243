"""Write an export folder that LAVIS trains and evaluates on directly.

Shape (shared by ``curate export`` and ``curate mix``)::

    OUT/train.json val.json test.json      the LAVIS VQA contract
    OUT/{split}.provenance.json            source, original id and answers per record
    OUT/images/                            one image root (vis_root), content-named files
    OUT/vqa_eval/{val,test}_*.json         official VQAv2-format files for LAVIS's VQATask
    OUT/vqa_eval/answer_list.json          every answer (LAVIS's coco-vqa builder reads one)
    OUT/model/                             tiny preset only: local tokenizer + config files
    OUT/lavis.yaml                         ready for `curate train`
    OUT/manifest.json                      counts, seed, inputs with sha256, tool version

The folder is built beside OUT and renamed into place, so an interrupted run
leaves nothing half-written. Same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curation import __version__, defaults
from curation._io import (
    EXPORT_TOOL,
    atomic_write_json,
    atomic_write_text,
    check_export_out,
    check_output_path,
    remove_stale_temp_folders,
    sha256_file,
)
from curation.contract import BUILDER_NAME, PROMPT
from curation.errors import ConfigError, DataError, UsageError
from curation.presets import get_preset
from curation.record_types import ExportRecord
from curation.schemas.questions import same_question_key
from curation.split import (  # the one splitter (split_records re-exported here)
    SPLITS,
    check_group_by,
    load_split_file,
    split_by_groups,
    split_records,  # noqa: F401 - re-exported
)

ModelPreset = str  # a preset name: curation.presets.preset_names()
DEFAULT_BUILDER = BUILDER_NAME
DEFAULT_PROMPT = PROMPT


@dataclass(frozen=True)
class ExportOptions:
    """How an export is split and written (the options `curate export` and `mix` share)."""

    seed: int = 0
    model: ModelPreset = defaults.PRESET
    fractions: tuple[float, float, float] = defaults.FRACTIONS
    copy: bool = False
    overwrite: bool = False
    builder_name: str = DEFAULT_BUILDER
    group_by: str | None = None  # None: subject when known, else video (curation.split)
    split_file: Path | None = None  # a given split, used as is (fractions ignored)

    def command(self, source: str) -> str:
        """The manifest's command line (no output path: two folders stay byte-identical)."""
        extra = f" --group-by {self.group_by}" if self.group_by else ""
        if self.split_file is not None:
            extra += f" --split-file {self.split_file.name}"
        return f"curate export {source} --seed {self.seed} --model {self.model}{extra}"


@dataclass(frozen=True)
class _Job:
    """One export being written: where, what, and with which settings."""

    tmp: Path
    out: Path
    splits: dict[str, list[ExportRecord]]
    seed: int
    model: ModelPreset
    inputs: list[str | Path]
    extra_manifest: dict[str, Any]
    copy: bool
    builder_name: str
    prompt: str
    command: str


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
    model: ModelPreset = defaults.PRESET,
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

    ``protect`` names input files and folders (image roots) that ``out`` must
    not be, hold or be inside; ``inputs`` and every record's image folder are
    protected too. With ``overwrite`` only an earlier export of this tool is
    replaced.

    Raises:
        UsageError: ``out`` is unsafe (see ``check_export_out``) or the preset is unknown.
        DataError: a split is empty, or a record has no question or answer.
    """
    out = Path(out)
    get_preset(model)  # an unknown name lists the valid ones
    from curation.training.preflight import check_builder_name

    check_builder_name(builder_name)
    inputs = list(inputs)
    image_folders = {p for recs in splits.values() for r in recs for p in _image_folders(r.image)}
    check_output_path(out, "--out")
    with contextlib.suppress(OSError):  # first: a killed run's old export may come back to OUT
        remove_stale_temp_folders(out)
    check_export_out(out, [*inputs, *protect, *sorted(image_folders)], overwrite)
    extra = extra_manifest or {}
    fractions = extra.get("fractions") or (extra.get("mix") or {}).get("fractions")
    _check_trainable(splits, extra.get("groups"), fractions)
    target = Path(os.path.abspath(out))
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "images").mkdir(parents=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the export {out}: {exc.strerror} ({exc.filename}). "
            "Fix: pick a --out in a folder you can write to."
        ) from None
    try:
        summary = _write_into(
            _Job(
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
        )
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        _swap_into_place(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"the export to {out} failed: {exc.strerror} ({exc.filename}); nothing was "
            "written. Fix: check that file (or the free space), then export again."
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _image_folders(image: Path) -> tuple[Path, ...]:
    """The folder of an image, and of the file it links to (one lstat unless it is a link)."""
    if not image.is_symlink():
        return (image.parent,)
    return (image.parent, Path(os.path.realpath(image)).parent)


def _check_trainable(
    splits: dict[str, list[ExportRecord]],
    groups: dict[str, Any] | None = None,
    fractions: Sequence[float] | None = None,
) -> None:
    """Refuse what ``curate train`` would refuse: an empty split, an empty question or answer.

    ``groups`` (the splitter's info) lets the message blame too few groups when it is that;
    ``fractions`` a share of 0.
    """
    from curation.split import finer_key_hint

    total = sum(len(v) for v in splits.values())
    few = ""
    given = bool(groups and groups.get("split_file"))
    if groups:
        n = sum(groups.get("groups_per_split", {}).values())
        by = groups.get("group_by")
        few = (
            f" The records form {n} group(s) by {by} (a group never straddles splits); "
            f"with few groups: {'fix the --split-file' if given else finer_key_hint(by)}."
        )
    if not splits.get("train"):
        raise DataError("the train split is empty: nothing to train on.")
    for k, split in enumerate(SPLITS[1:], start=1):
        if not splits.get(split) and fractions is not None and not given and not fractions[k]:
            raise DataError(
                f"the {split} split is empty: --{split}-share is 0, and curate train needs "
                f"records in train, val and test. Fix: --{split}-share 0.1 (or any share "
                "above 0)."
            )
        if not splits.get(split):
            raise DataError(
                f"the {split} split is empty ({total} records in all), and curate train needs "
                f"records in train, val and test. Fix: raise --{split}-share, or export more "
                f"records.{few}"
            )
    for split in SPLITS:
        for i, rec in enumerate(splits[split]):
            field_ = "text_input" if not rec.question.strip() else None
            if field_ is None and (not rec.answers or any(not a.strip() for a in rec.answers)):
                field_ = "answer"
            if field_ is not None:
                raise DataError(
                    f"{split} record #{i} (source {rec.source}, id {rec.original_id or '-'}, "
                    f"image {rec.image}): {field_} is empty; curate train would refuse it. "
                    "Fix: give every record a question and a non-empty answer (e.g. check the "
                    "questions file), then export again."
                )


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        if old.is_symlink():  # --out was a link to an earlier export: drop the link only
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


#: Public name: ``curate find-issues`` puts its folder into place the same way.
swap_into_place = _swap_into_place


def _link_or_copy(src: Path, dst: Path, copy: bool) -> None:
    """Hard-link (or copy) the file ``src`` names, never a symlink itself."""
    src = Path(os.path.realpath(src))
    if not copy:
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy instead
            pass
    shutil.copyfile(src, dst)


def _refuse_conflict(
    labels: dict[tuple[str, str], ExportRecord], name: str, rec: ExportRecord
) -> None:
    """Copies of one image asked one question must agree, or validate and train refuse the
    export (a reviewer relabelled one copy and not the other, say)."""
    twin = labels.setdefault((name, same_question_key(rec.question)), rec)
    if twin is rec or {a.casefold() for a in twin.answers} == {a.casefold() for a in rec.answers}:
        return
    raise DataError(
        f"{rec.image} (record {rec.original_id or '-'}) and {twin.image} (record "
        f"{twin.original_id or '-'}) are the same image (identical bytes) asked the same "
        f"question, with answers {list(rec.answers)} and {list(twin.answers)}: "
        "curate train would refuse the export. Fix: give both copies the same label "
        "(in review: tag both relabel:yes or relabel:no, or exclude one), then export again."
    )


def _write_into(job: _Job) -> ExportSummary:
    tmp, out, splits, seed, model = job.tmp, job.out, job.splits, job.seed, job.model
    inputs, extra_manifest, copy = job.inputs, job.extra_manifest, job.copy
    builder_name, prompt, command = job.builder_name, job.prompt, job.command
    names: dict[Path, str] = {}
    labels: dict[tuple[str, str], ExportRecord] = {}
    next_id = 0
    for split in SPLITS:
        annotations, provenance = [], []
        for position, rec in enumerate(splits.get(split, [])):
            name = names.get(rec.image)
            if name is None:
                if not rec.image.is_file():
                    raise DataError(
                        f"image not found: {rec.image} (record {rec.original_id}): it was moved "
                        "or deleted since it was ingested. Fix: put it back, tag its sample "
                        "exclude, or ingest the source again with --overwrite."
                    )
                name = sha256_file(rec.image)[:20] + rec.image.suffix.lower()
                names[rec.image] = name
                if not (tmp / "images" / name).exists():
                    _link_or_copy(rec.image, tmp / "images" / name, copy)
            _refuse_conflict(labels, name, rec)
            annotations.append(
                {
                    "instance_id": next_id,
                    "image": name,
                    "text_input": rec.question,
                    "answer": list(rec.answers),
                    # LAVIS's stock coco-vqa builder reads these two; question_id is the
                    # record's position, the id of its entry in vqa_eval/{split}_*.json
                    "question": rec.question,
                    "question_id": position,
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
                    **rec.frame_metadata(),  # subject, video, negative_kind, ... when known
                }
            )
            next_id += 1
        atomic_write_json(tmp / f"{split}.json", annotations)
        atomic_write_json(tmp / f"{split}.provenance.json", provenance)
        if split != "train":
            _write_vqa_eval(tmp / "vqa_eval", split, annotations, provenance)
    answers = {a for recs in splits.values() for r in recs for a in r.answers}
    atomic_write_json(tmp / "vqa_eval" / "answer_list.json", sorted(answers))

    hook = get_preset(model).hook()
    if hook is not None:
        texts = [t for recs in splits.values() for r in recs for t in (r.question, *r.answers)]
        hook(tmp / "model", texts)

    counts = {
        s: dict(sorted(Counter(f"{r.part}/{r.source}/{r.kind}" for r in splits.get(s, [])).items()))
        for s in SPLITS
    }
    manifest = {
        "tool": EXPORT_TOOL,
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
    folder: Path, split: str, annotations: list[dict[str, Any]], provenance: list[dict[str, Any]]
) -> None:
    """Official VQAv2-format question/annotation files, so LAVIS's VQATask can score a split.

    A record with one answer gets it ten times: the official leave-one-out
    accuracy then scores it by exact match (one copy would always score 0).
    Answers are written normalised as the official scorer normalises a prediction
    (``normalize_answer``: punctuation, number words, articles, case): it never
    normalises the ground truth, so "two" or "Yes" would never match a prediction.
    ``curate eval`` scores the same way, so both give one accuracy.
    """
    from curation.answers import normalize_answer

    questions, anns = [], []
    for i, (a, p) in enumerate(zip(annotations, provenance, strict=True)):
        normal = [normalize_answer(x) for x in a["answer"]]
        answers = normal if len(normal) > 1 else normal * 10
        questions.append({"question_id": i, "image_id": i, "question": a["text_input"]})
        anns.append(
            {
                "question_id": i,
                "image_id": i,
                "question_type": p["source"],
                "answer_type": p["answer_type"],
                "multiple_choice_answer": Counter(normal).most_common(1)[0][0],
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


def check_export_options(options: ExportOptions) -> None:
    """Refuse a bad ``--group-by`` or ``--split-file`` before any data is read.

    Raises:
        UsageError: an unknown ``group_by`` (the valid ones listed), a split file that is
            missing or malformed.
    """
    check_group_by(options.group_by)
    if options.split_file is not None:
        load_split_file(options.split_file)


def task_records_from_file(
    task_file: str | Path, image_root: str | Path | None = None
) -> list[ExportRecord]:
    """Task records from an annotation file that passes ``validate`` (images included).

    Raises:
        DataError: the file breaks the contract (its first problems are listed).
    """
    from curation.images import default_image_root
    from curation.validate.load import load_records, require_valid

    task_file = Path(task_file)
    root = Path(image_root) if image_root is not None else default_image_root(task_file)
    require_valid(task_file, root, action="nothing was exported")
    return [
        ExportRecord(
            root / r["image"],
            r["text_input"],
            tuple(r["answer"]),
            source="task",
            original_id=str(r["instance_id"]),
            **frame_keys(task_file, i, r),
        )
        for i, r in enumerate(load_records(task_file))
    ]


def frame_keys(task_file: Path, index: int, record: dict[str, Any]) -> dict[str, Any]:
    """The optional frame keys of an annotation record (LAVIS ignores extra keys).

    Raises:
        DataError: a frame key that is not a string (``time``: not a number), named with
            the record and the fix.
    """
    from curation.record_types import FRAME_METADATA

    found: dict[str, Any] = {}
    for key in FRAME_METADATA:
        value = record.get(key)
        if value is None:
            continue
        if key == "time":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str | int) and not isinstance(value, bool)
        if not ok:
            raise DataError(
                f"{task_file} record #{index} (instance_id={record.get('instance_id')}): "
                f"{key}: got {_json_type(value)} {_shown(value)}. Fix: "
                + ('"time": seconds as a number' if key == "time" else f'"{key}": a string')
                + ", or drop the key."
            )
        found[key] = value if key == "time" else str(value)
    return found


def _shown(value: object) -> str:
    """A value as JSON text, cut to 40 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON data (from Python callers)
        text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _json_type(value: object) -> str:
    """What a JSON value is, in JSON's words (a list is an array, a dict an object)."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object")


def export_records(
    records: Sequence[ExportRecord],
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    inputs: Iterable[str | Path] = (),
    extra_manifest: dict[str, Any] | None = None,
    command: str = "curate export",
    protect: Iterable[str | Path] = (),
) -> ExportSummary:
    """Split task records by image group and write them as an export folder.

    ``protect``: input files and folders ``out`` must stay clear of (see ``write_export``).
    """
    opts = options or ExportOptions()
    grouped = split_by_groups(records, opts.fractions, opts.seed, opts.group_by, opts.split_file)
    given = [opts.split_file] if opts.split_file is not None else []
    return write_export(
        out,
        grouped.splits,
        seed=opts.seed,
        model=opts.model,
        inputs=[*inputs, *given],
        copy=opts.copy,
        overwrite=opts.overwrite,
        builder_name=opts.builder_name,
        command=command,
        extra_manifest={
            "fractions": list(opts.fractions),
            "groups": grouped.info,
            **(extra_manifest or {}),
        },
        protect=protect,
    )


def export_task(
    task_file: str | Path,
    image_root: str | Path | None,
    out: str | Path,
    options: ExportOptions | None = None,
    protect: Iterable[str | Path] = (),
) -> ExportSummary:
    """Validate a task annotation file (images too), split it by image and export it.

    Raises:
        DataError: the file breaks the contract (its first problems are listed).
    """
    opts = options or ExportOptions()
    check_export_options(opts)
    root = Path(image_root) if image_root is not None else Path(task_file).parent
    guarded = [root, *protect]
    # before validating: a refused --out costs nothing, and validate may take a while
    check_export_out(out, [task_file, *guarded], opts.overwrite)
    records = task_records_from_file(task_file, image_root)
    return export_records(
        records,
        out,
        opts,
        inputs=[task_file],
        protect=guarded,
        command=opts.command(f"--task {Path(task_file).as_posix()}"),
    )
